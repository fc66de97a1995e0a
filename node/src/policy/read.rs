//! Reads an etcd's auth store: every role and user with its grants ([`read`], a call
//! each, many in flight), or only their names ([`names`], two calls).
//!
//! Invariants: a role or user deleted between the list and its read (another member's
//! keeper applying the same plan) is left out, as it is gone; any other refusal fails
//! the read (nothing is assumed).

use std::collections::BTreeSet;

use etcd_client::Client;

use zone_etcd_kit::cluster_api::{EtcdError, Kind};
use zone_model::policy::rbac::{Access, AuthState, Perm};

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
            Err(err) if EtcdError::of(&err).kind() == Kind::RoleNotFound => continue,
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
            Err(err) if EtcdError::of(&err).kind() == Kind::UserNotFound => continue,
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
pub(super) async fn concurrently<T, R, F, Fut>(
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

/// The names of the users and roles `client`'s etcd holds: two quick calls (each a raft
/// entry, [`NAMES_ENTRIES`]), so that a user or role made by hand is seen at the next
/// round, not at the next full read.
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

/// The raft entries one look at etcd's names adds: `UserList` and `RoleList` are each a
/// proposal (etcd orders every read of its auth store through raft).
pub const NAMES_ENTRIES: u64 = 2;

/// Whether the leader's keeper must look at etcd's users' and roles' names this round
/// (pure): unless its raft index is exactly where the last look that found them unchanged
/// left it. Every change to the auth store (a user made by hand, a grant, a password) is
/// a raft entry, so a log that did not move holds the same names; one that moved by any
/// entry (a write, a compaction, an election, a plant) is looked at. An idle zone then
/// writes no entry a second to every member's WAL only to find nothing changed; an
/// unknown index is always looked at.
pub fn names_look_due(quiet: Option<u64>, raft_index: Option<u64>) -> bool {
    match (quiet, raft_index) {
        (Some(quiet), Some(now)) => now != quiet,
        _ => true,
    }
}

/// How often [`read_unless_changed`] looks at its key.
const LOOK: std::time::Duration = std::time::Duration::from_millis(250);

/// [`read`], given up (`None`) as soon as `key`'s modification revision is no longer
/// `revision` (`None`: absent): a full read is thousands of raft requests, seconds, and a
/// policy published meanwhile is not kept waiting behind it.
pub async fn read_unless_changed(
    client: &mut Client,
    key: &str,
    revision: Option<i64>,
) -> Result<Option<AuthState>, String> {
    let mut looker = client.clone();
    let changed = async move {
        loop {
            tokio::time::sleep(LOOK).await;
            let got = zone_etcd_kit::cluster_api::within(async {
                looker
                    .get(key, None)
                    .await
                    .map_err(|e| zone_etcd_kit::cluster_api::describe(&e))
            })
            .await;
            // An error tells nothing: the read itself fails or goes on.
            if let Ok(got) = got {
                if got.kvs().first().map(|kv| kv.mod_revision()) != revision {
                    return;
                }
            }
        }
    };
    tokio::select! {
        read = read(client) => read.map(Some),
        () = changed => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::names_look_due;

    #[test]
    fn the_names_are_looked_at_unless_the_raft_log_stayed_where_the_last_look_left_it() {
        // The first look, and any round after one that applied or found a change.
        assert!(names_look_due(None, Some(40)));
        // Nothing written since the last look's own two entries.
        assert!(!names_look_due(Some(42), Some(42)));
        // A plant (one entry), a write, an election: looked at.
        assert!(names_look_due(Some(42), Some(43)));
        // A log that went back (another leader's log after a restore): looked at.
        assert!(names_look_due(Some(42), Some(41)));
        // etcd did not say its index.
        assert!(names_look_due(Some(42), None));
        assert!(names_look_due(None, None));
    }
}
