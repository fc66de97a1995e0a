//! Reads an etcd's auth store and applies a policy's operations to it ([`super::rbac`]).
//!
//! Invariants: the operations run in [`super::rbac::plan`]'s order and stop at the first
//! refusal (an apply that stopped half-way is finished by the next one: the plan is made
//! from what etcd holds), but for a refusal that says the operation is done already
//! (another member's keeper applying the same plan got there first); users are made without a password (a client certificate's CN
//! is the only way in).

use std::collections::BTreeSet;

use etcd_client::{
    Client, Permission, PermissionType, RoleRevokePermissionOptions, UserAddOptions,
};

use super::rbac::{plan, Access, AuthState, Op, Perm};

/// What `client`'s etcd holds. A role or user deleted between the list and its read
/// (another member's keeper applying the same plan) is left out, as it is gone.
pub async fn read(client: &mut Client) -> Result<AuthState, String> {
    let e = |what: &str, e: etcd_client::Error| format!("{what}: {e}");
    // etcd-client has no AuthStatus call: auth counts as off, so every apply ends with
    // an AuthEnable, which etcd takes as a no-op once auth is on.
    let mut state = AuthState::default();
    let roles = client
        .role_list()
        .await
        .map_err(|err| e("role list", err))?;
    for role in roles.roles() {
        let got = match client.role_get(role.clone()).await {
            Ok(got) => got,
            // Another member's keeper deleted it since the list: it is gone.
            Err(err) if err.to_string().contains("role name not found") => continue,
            Err(err) => return Err(e("role get", err)),
        };
        let perms = got
            .permissions()
            .iter()
            .map(|p| Perm {
                access: match p.get_type() {
                    0 => Access::Read,
                    1 => Access::Write,
                    _ => Access::ReadWrite,
                },
                key: p.key().to_vec(),
                range_end: p.range_end().to_vec(),
            })
            .collect();
        state.roles.insert(role.clone(), perms);
    }
    let users = client
        .user_list()
        .await
        .map_err(|err| e("user list", err))?;
    for user in users.users() {
        let got = match client.user_get(user.clone()).await {
            Ok(got) => got,
            Err(err) if err.to_string().contains("user name not found") => continue,
            Err(err) => return Err(e("user get", err)),
        };
        let roles: BTreeSet<String> = got.roles().iter().cloned().collect();
        state.users.insert(user.clone(), roles);
    }
    Ok(state)
}

/// Brings `client`'s etcd to `want` for zone `zone`; returns the operations done.
pub async fn apply(client: &mut Client, want: &AuthState, zone: &str) -> Result<Vec<Op>, String> {
    let current = read(client).await?;
    let ops = plan(&current, want, zone);
    for op in &ops {
        match run(client, op).await {
            Ok(()) => {}
            // Another member's keeper did it between the read and now.
            Err(e) if done_already(op, &e.to_string()) => {}
            Err(e) => return Err(format!("{op:?}: {e}")),
        }
    }
    Ok(ops)
}

/// Whether etcd refused `op` because what it asks is so already (every member's keeper
/// applies the same plan, so one may have done it first).
fn done_already(op: &Op, error: &str) -> bool {
    let says = |what: &str| error.contains(what);
    match op {
        Op::AddRole(_) => says("role name already exists"),
        Op::AddUser(_) => says("user name already exists"),
        Op::DeleteUser(_) => says("user name not found"),
        Op::DeleteRole(_) => says("role name not found"),
        Op::RevokeRole { .. } => {
            says("role is not granted to the user") || says("user name not found")
        }
        Op::Revoke(..) => {
            says("permission is not granted to the role") || says("role name not found")
        }
        Op::Grant(..) | Op::GrantRole { .. } | Op::Enable => false,
    }
}

async fn run(client: &mut Client, op: &Op) -> Result<(), etcd_client::Error> {
    match op {
        Op::AddRole(role) => client.role_add(role.clone()).await.map(drop),
        Op::Grant(role, perm) => {
            let kind = match perm.access {
                Access::Read => PermissionType::Read,
                Access::Write => PermissionType::Write,
                Access::ReadWrite => PermissionType::Readwrite,
            };
            let permission =
                Permission::new(kind, perm.key.clone()).with_range_end(perm.range_end.clone());
            client
                .role_grant_permission(role.clone(), permission)
                .await
                .map(drop)
        }
        Op::AddUser(user) => client
            .user_add(user.clone(), "", Some(UserAddOptions::new().with_no_pwd()))
            .await
            .map(drop),
        Op::GrantRole { user, role } => client
            .user_grant_role(user.clone(), role.clone())
            .await
            .map(drop),
        Op::RevokeRole { user, role } => client
            .user_revoke_role(user.clone(), role.clone())
            .await
            .map(drop),
        Op::DeleteUser(user) => client.user_delete(user.clone()).await.map(drop),
        Op::Revoke(role, perm) => client
            .role_revoke_permission(
                role.clone(),
                perm.key.clone(),
                Some(RoleRevokePermissionOptions::new().with_range_end(perm.range_end.clone())),
            )
            .await
            .map(drop),
        Op::DeleteRole(role) => client.role_delete(role.clone()).await.map(drop),
        Op::Enable => client.auth_enable().await.map(drop),
    }
}
