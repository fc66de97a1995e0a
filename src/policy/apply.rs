//! Reads an etcd's auth store and applies a policy's operations to it ([`super::rbac`]).
//!
//! Invariants: the operations run in [`super::rbac::plan`]'s order (while auth is off,
//! those of one kind together, many in flight: their order within a kind does not
//! matter) and stop at the first refusal (an apply that stopped half-way is finished by the next one: the plan is made
//! from what etcd holds), but for a refusal that says the operation is done already
//! (another member's keeper applying the same plan got there first); users are made without a password (a client certificate's CN
//! is the only way in), and with auth on every user is asked whether it has one
//! ([`with_password`]): one it has is cleared, but for the gateway's passwords members set
//! ([`crate::identities::password`], marked in the zone).

use std::collections::BTreeSet;

use etcd_client::{
    Client, Permission, PermissionType, RoleRevokePermissionOptions, UserAddOptions,
};

use super::rbac::{plan, Access, AuthState, Op, Perm};
use super::timing::Phases;
use crate::identities::password::{self, random_password, Answer};

/// What `client`'s etcd holds. A role or user deleted between the list and its read
/// (another member's keeper applying the same plan) is left out, as it is gone.
pub async fn read(client: &mut Client) -> Result<AuthState, String> {
    let e = |what: &str, e: etcd_client::Error| format!("{what}: {e}");
    // etcd-client has no AuthStatus call: auth counts as off here, and [`apply`] tells.
    let mut state = AuthState::default();
    let roles = client
        .role_list()
        .await
        .map_err(|err| e("role list", err))?;
    // One call per role and per user, many in flight: etcd orders each through raft, and
    // batches those that arrive together (one at a time, a policy of a thousand services
    // took seconds to read).
    let got = concurrently(client, roles.roles().to_vec(), |mut c, role| async move {
        c.role_get(role).await
    })
    .await?;
    for (role, got) in got {
        let got = match got {
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
        state.roles.insert(role, perms);
    }
    let users = client
        .user_list()
        .await
        .map_err(|err| e("user list", err))?;
    let got = concurrently(client, users.users().to_vec(), |mut c, user| async move {
        c.user_get(user).await
    })
    .await?;
    for (user, got) in got {
        let got = match got {
            Ok(got) => got,
            Err(err) if err.to_string().contains("user name not found") => continue,
            Err(err) => return Err(e("user get", err)),
        };
        let roles: BTreeSet<String> = got.roles().iter().cloned().collect();
        state.users.insert(user, roles);
    }
    Ok(state)
}

/// How many calls [`concurrently`] keeps in flight.
const IN_FLIGHT: usize = 32;

/// `call` for each of `items`, at most [`IN_FLIGHT`] at once, each on a clone of
/// `client` (one connection, many streams); the results in the order they came.
async fn concurrently<T, R, F, Fut>(
    client: &Client,
    items: Vec<T>,
    call: F,
) -> Result<Vec<(T, Result<R, etcd_client::Error>)>, String>
where
    T: Clone + Send + 'static,
    R: Send + 'static,
    F: Fn(Client, T) -> Fut,
    Fut: std::future::Future<Output = Result<R, etcd_client::Error>> + Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    let mut out = Vec::with_capacity(items.len());
    let mut items = items.into_iter();
    loop {
        while set.len() < IN_FLIGHT {
            let Some(item) = items.next() else { break };
            let call = call(client.clone(), item.clone());
            set.spawn(async move { (item, call.await) });
        }
        match set.join_next().await {
            Some(Ok(done)) => out.push(done),
            Some(Err(e)) => return Err(format!("an auth call did not finish: {e}")),
            None => return Ok(out),
        }
    }
}

/// The names of the users and roles `client`'s etcd holds: two cheap calls, so that a
/// user or role made by hand is seen at the next round, not at the next full read.
pub async fn names(client: &mut Client) -> Result<(Vec<String>, Vec<String>), String> {
    let users = client
        .user_list()
        .await
        .map_err(|e| format!("user list: {e}"))?;
    let roles = client
        .role_list()
        .await
        .map_err(|e| format!("role list: {e}"))?;
    Ok((users.users().to_vec(), roles.roles().to_vec()))
}

/// What an apply did.
#[derive(Debug)]
pub struct Outcome {
    pub ops: Vec<Op>,
    /// Whether etcd's auth is on now.
    pub auth_on: bool,
    /// Where its time went.
    pub phases: Phases,
}

/// Brings `client`'s etcd to `want` for zone `zone`. `sealed` names the users this keeper
/// gave a random password (`root`, which etcd keeps while auth is on): theirs is the
/// policy's, not planted. Turning auth on (and making every user again just before) is
/// left to one keeper, the leader's (`may_enable`): two keepers doing it at once would
/// make users again after auth went on, and every request in flight would fail with
/// etcd's "revision of auth store is old".
pub async fn apply(
    client: &mut Client,
    want: &AuthState,
    zone: &str,
    sealed: &BTreeSet<String>,
    may_enable: bool,
    probe_passwords: bool,
) -> Result<Outcome, String> {
    let mut phases = Phases::new();
    let mut current = read(client).await?;
    phases.mark("read", 2 + current.roles.len() + current.users.len());
    let users: Vec<String> = current.users.keys().cloned().collect();
    // Auth is on exactly when etcd answers about passwords (with no user, it cannot be).
    // Every user is asked only when `probe_passwords` (one question each); else one
    // user tells whether auth is on.
    let asked = if probe_passwords {
        &users[..]
    } else {
        &users[..users.len().min(1)]
    };
    let with = with_password(client, asked).await?;
    phases.mark("ask", asked.len());
    if let Some(with) = with {
        current.enabled = true;
        // The gateway's passwords a member set (read after the question: a member marks
        // a user before it sets the password).
        let gateway = if with.is_empty() {
            BTreeSet::new()
        } else {
            let marked = password::marked(client).await?;
            phases.mark("marks", 1);
            marked
        };
        current.with_password = with
            .iter()
            .filter(|u| !sealed.contains(*u) && !gateway.contains(*u))
            .cloned()
            .collect();
    }
    let mut want = want.clone();
    if !current.enabled && !may_enable {
        if want.enabled && want.exclusive {
            // Turning auth on is the leader's keeper's: it makes every user again just
            // before. Another keeper applying meanwhile re-adds the users it deleted
            // (measured at 3,300 users: the keepers undid each other's work and auth
            // never went on), so it leaves etcd alone until auth is on.
            return Ok(Outcome {
                ops: Vec::new(),
                auth_on: false,
                phases,
            });
        }
        want.enabled = false;
    }
    let ops = plan(&current, &want, zone);
    phases.mark("plan", 0);
    // While auth is off, the operations of one kind (every AddRole, then every Grant, …)
    // go many at once: their order within the kind does not matter, and each is a raft
    // write. With auth on they go one by one: each bumps the auth store's revision, and
    // a call made against an older one is refused ("revision of auth store is old").
    let mut i = 0;
    while i < ops.len() {
        let kind = std::mem::discriminant(&ops[i]);
        let mut end = i + 1;
        while end < ops.len() && std::mem::discriminant(&ops[end]) == kind {
            end += 1;
        }
        let group = ops[i..end].to_vec();
        let together = !current.enabled && group.len() > 1 && !matches!(group[0], Op::Enable);
        let check = |op: &Op, result: Result<(), etcd_client::Error>| match result {
            Ok(()) => Ok(()),
            // Another member's keeper did it between the read and now.
            Err(e) if done_already(op, &e.to_string()) => Ok(()),
            Err(e) => Err(format!("{op:?}: {e}")),
        };
        if together {
            let done = concurrently(
                client,
                group,
                |mut c, op| async move { run(&mut c, &op).await },
            )
            .await?;
            for (op, result) in done {
                check(&op, result)?;
            }
        } else {
            for op in group {
                let result = run(client, &op).await;
                check(&op, result)?;
            }
        }
        i = end;
    }
    phases.mark("ops", ops.iter().map(calls).sum());
    let auth_on = current.enabled || ops.contains(&Op::Enable);
    Ok(Outcome {
        ops,
        auth_on,
        phases,
    })
}

/// The users among `users` that have a password, or `None` while auth is off (etcd then
/// answers nothing about passwords). Asked by authenticating each with a random password:
/// etcd refuses a user without a password before it compares any (its `ErrNoPasswordUser`,
/// an Unknown status), and a user with one after the comparison (`ErrAuthFailed`,
/// InvalidArgument). An answer of neither kind fails the round: nothing is assumed.
async fn with_password(
    client: &mut Client,
    users: &[String],
) -> Result<Option<BTreeSet<String>>, String> {
    if users.is_empty() {
        return Ok(None);
    }
    let guess = random_password();
    let mut with = BTreeSet::new();
    for user in users {
        match password::ask(client, user, &guess).await? {
            // Taken: guessed (256 random bits matched it).
            Answer::Taken | Answer::Wrong => {
                with.insert(user.clone());
            }
            Answer::NoPassword => {}
            Answer::AuthOff => return Ok(None),
        }
    }
    Ok(Some(with))
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
        Op::Remake { .. } => says("user name not found") || says("user name already exists"),
        Op::Scramble(_) => false,
        Op::Grant(..) | Op::GrantRole { .. } | Op::Enable => false,
    }
}

/// The etcd calls [`run`] makes for `op`.
fn calls(op: &Op) -> usize {
    match op {
        Op::Remake { roles, .. } => 2 + roles.len(),
        _ => 1,
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
        Op::Scramble(user) => client
            .user_change_password(user.clone(), random_password())
            .await
            .map(drop),
        Op::Remake { user, roles, .. } => {
            client.user_delete(user.clone()).await?;
            client
                .user_add(user.clone(), "", Some(UserAddOptions::new().with_no_pwd()))
                .await?;
            for role in roles {
                client.user_grant_role(user.clone(), role.clone()).await?;
            }
            Ok(())
        }
    }
}
