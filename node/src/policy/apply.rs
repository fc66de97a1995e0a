//! Applies a policy's operations to an etcd's auth store ([`zone_model::policy::rbac`]), planned from
//! what it reads there ([`super::read`]) or, for a publish, from what the keeper's last
//! apply left ([`super::replay`]).
//!
//! Invariants: the operations run in [`zone_model::policy::rbac::plan`]'s order (while auth is off,
//! those of one kind together, many in flight: their order within a kind does not
//! matter) and stop at the first refusal (an apply that stopped half-way is finished by
//! the next one: the keeper reads everything again after a failed apply), but for a
//! refusal that says the operation is done already (another member's keeper applying the
//! same plan got there first); users are made without a password (a client certificate's
//! CN is the only way in), and with auth on users are asked whether they have one
//! ([`super::passwords`]): one that has is made again without it, but for the gateway's
//! passwords members set ([`crate::identities::password`], marked in the zone). Auth goes
//! on first and every user is asked right after, in the same apply: a password set while
//! every client was root (auth off) lasts until then, seconds, never longer; the marks
//! written while auth was off are deleted around `AuthEnable` (only a mark written after
//! it, which takes etcd's root, lets a password stand).

use std::collections::BTreeSet;

use etcd_client::{
    Client, Permission, PermissionType, RoleRevokePermissionOptions, UserAddOptions,
};

use super::passwords;
use super::read::concurrently;
use super::read::read;
use super::replay;
use super::timing::Phases;
use crate::identities::password::random_password;
use zone_etcd_kit::cluster_api::{EtcdError, Kind};
use zone_model::policy::rbac::{plan, Access, AuthState, Op};

/// What an apply did.
#[derive(Debug)]
pub struct Outcome {
    pub ops: Vec<Op>,
    /// Whether etcd's auth is on now.
    pub auth_on: bool,
    /// What etcd's auth store holds after it (worked out, not read: [`replay::after`]).
    pub held: AuthState,
    /// Where its time went.
    pub phases: Phases,
}

/// What an apply aims at.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The users and roles the policy gives, for zone `zone`.
    pub want: &'a AuthState,
    pub zone: &'a str,
    /// The users this keeper gave a random password (`root`, which etcd keeps while auth
    /// is on): theirs is the policy's, not planted.
    pub sealed: &'a BTreeSet<String>,
    /// Whether this keeper's member leads: while auth is off under an enforced policy,
    /// only the leader's keeper touches etcd, and turns auth on (three keepers making
    /// thousands of users at once undid each other's work, and did it thrice).
    pub leader: bool,
    /// Every user is asked about a password (else one, which tells whether auth is on).
    pub probe_passwords: bool,
}

/// Brings `client`'s etcd to `want` for zone `zone`, planned from a full read (see
/// [`Target`] for the rest).
pub async fn apply(
    client: &mut Client,
    want: &AuthState,
    zone: &str,
    sealed: &BTreeSet<String>,
    leader: bool,
    probe_passwords: bool,
) -> Result<Outcome, String> {
    let mut phases = Phases::new();
    let current = read(client).await?;
    phases.mark("read", 2 + current.roles.len() + current.users.len());
    let target = Target {
        want,
        zone,
        sealed,
        leader,
        probe_passwords,
    };
    apply_to(client, current, phases, target).await
}

/// [`apply`], planned from `current`: a full read, or what the keeper's last apply left
/// ([`replay::after`]). `phases`: the time spent on getting `current`.
pub async fn apply_to(
    client: &mut Client,
    mut current: AuthState,
    mut phases: Phases,
    target: Target<'_>,
) -> Result<Outcome, String> {
    let Target {
        want,
        zone,
        sealed,
        leader,
        probe_passwords,
    } = target;
    let users: Vec<String> = current.users.keys().cloned().collect();
    // Auth is on exactly when etcd answers about passwords (with no user, it cannot be).
    let asked = if probe_passwords {
        &users[..]
    } else {
        &users[..users.len().min(1)]
    };
    let with = passwords::with_password(client, asked).await?;
    phases.mark("ask", asked.len());
    current.enabled = with.is_some();
    if let Some(with) = with {
        let marks = usize::from(!with.is_empty());
        current.with_password = passwords::planted(client, with, sealed).await?;
        phases.mark("marks", marks);
    }
    if !current.enabled && want.exclusive && !leader {
        // The leader's keeper's (see [`Target::leader`]).
        return Ok(Outcome {
            ops: Vec::new(),
            auth_on: false,
            held: current,
            phases,
        });
    }
    let mut want = want.clone();
    want.enabled &= leader || current.enabled;
    let mut ops = plan(&current, &want, zone);
    phases.mark("plan", 0);
    let enabling = ops.last() == Some(&Op::Enable);
    if enabling {
        ops.pop();
    }
    run_all(client, &ops, !current.enabled).await?;
    phases.mark("ops", ops.iter().map(calls).sum());
    if enabling {
        // Before and after: a mark written while every client was root gives nothing.
        passwords::clear_marks(client, None).await?;
        let at = client
            .auth_enable()
            .await
            .map_err(|e| format!("Enable: {e}"))?
            .header()
            .map_or(0, |h| h.revision());
        passwords::clear_marks(client, Some(at)).await?;
        ops.push(Op::Enable);
        phases.mark("auth on", 3);
        // Every user asked at once: one with a password is made again (root's scrambled).
        let mut now = replay::after(&current, &ops);
        let users: Vec<String> = now.users.keys().cloned().collect();
        let with = passwords::with_password(client, &users).await?;
        phases.mark("ask", users.len());
        let with = with.ok_or("auth went off again just after it went on")?;
        now.with_password = passwords::planted(client, with, sealed).await?;
        let sweep = plan(&now, &want, zone);
        run_all(client, &sweep, false).await?;
        phases.mark("passwords", 1 + sweep.iter().map(calls).sum::<usize>());
        ops.extend(sweep);
    }
    let auth_on = current.enabled || enabling;
    let mut held = replay::after(&current, &ops);
    held.enabled = auth_on;
    Ok(Outcome {
        ops,
        auth_on,
        held,
        phases,
    })
}

/// Runs `ops` in their order. `auth_off`: the operations of one kind (every AddRole,
/// then every Grant, …) go many at once: their order within the kind does not matter,
/// and each is a raft write. With auth on they go one by one: each bumps the auth
/// store's revision, and a call made against an older one is refused ("revision of auth
/// store is old").
async fn run_all(client: &mut Client, ops: &[Op], auth_off: bool) -> Result<(), String> {
    let check = |op: &Op, result: Result<(), etcd_client::Error>| match result {
        Ok(()) => Ok(()),
        // Another member's keeper did it between the read and now.
        Err(e) if done_already(op, EtcdError::of(&e).kind()) => Ok(()),
        Err(e) => Err(format!("{op:?}: {e}")),
    };
    let mut i = 0;
    while i < ops.len() {
        let kind = std::mem::discriminant(&ops[i]);
        let mut end = i + 1;
        while end < ops.len() && std::mem::discriminant(&ops[end]) == kind {
            end += 1;
        }
        let group = ops[i..end].to_vec();
        if auth_off && group.len() > 1 && !matches!(group[0], Op::Enable) {
            let done = concurrently(client, group, |mut c, op| async move {
                run_op_again_if_timed_out(&mut c, &op).await
            })
            .await?;
            for (op, result) in done {
                check(&op, result)?;
            }
        } else {
            for op in group {
                let result = run_op_again_if_timed_out(client, &op).await;
                check(&op, result)?;
            }
        }
        i = end;
    }
    Ok(())
}

/// [`run_op`], asked once more when etcd timed out on it ([`Kind::TimedOut`]: proposed,
/// not seen applied in time, on a member whose disk the machine's other work held up):
/// the keeper's next round would redo it after a full read, a second later, with the
/// round failed and logged. Asked again only where that is safe: a single call that was
/// applied after all is refused as done already ([`done_already`]) or is the same again
/// (a grant, a random password, auth on); not [`Op::Remake`], whose calls a timeout may
/// have cut between (its user deleted, not made again: a redo's delete would then count
/// as done), which the next round's full read finishes.
async fn run_op_again_if_timed_out(client: &mut Client, op: &Op) -> Result<(), etcd_client::Error> {
    match run_op(client, op).await {
        Err(e) if EtcdError::of(&e).kind() == Kind::TimedOut && calls(op) == 1 => {
            tracing::info!("etcd timed out on {op:?}: asking once more");
            run_op(client, op).await
        }
        other => other,
    }
}

/// Whether etcd refused `op` because what it asks is so already (every member's keeper
/// applies the same plan, so one may have done it first).
fn done_already(op: &Op, error: Kind) -> bool {
    match op {
        Op::AddRole(_) => error == Kind::RoleAlreadyExists,
        Op::AddUser(_) => error == Kind::UserAlreadyExists,
        Op::DeleteUser(_) => error == Kind::UserNotFound,
        Op::DeleteRole(_) => error == Kind::RoleNotFound,
        Op::RevokeRole { .. } => matches!(error, Kind::RoleNotGranted | Kind::UserNotFound),
        Op::Revoke(..) => matches!(error, Kind::PermissionNotGranted | Kind::RoleNotFound),
        Op::Remake { .. } => matches!(error, Kind::UserNotFound | Kind::UserAlreadyExists),
        Op::Scramble(_) => false,
        Op::Grant(..) | Op::GrantRole { .. } | Op::Enable => false,
    }
}

/// The etcd calls [`run_op`] makes for `op`.
fn calls(op: &Op) -> usize {
    match op {
        Op::Remake { roles, .. } => 2 + roles.len(),
        _ => 1,
    }
}

/// Carries out one operation on etcd's auth store.
pub async fn run_op(client: &mut Client, op: &Op) -> Result<(), etcd_client::Error> {
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
        Op::Remake { user, roles } => {
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
