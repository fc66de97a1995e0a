//! When the access keeper's look has nothing to look at: every input of a look is either
//! in etcd (the published policy, the stopped tenants, the members' records, the ledger,
//! the auth store's names) or on this node (the revocations in force, the identities
//! issued while etcd refused, the identity endpoint's start). Every change in etcd is a
//! raft entry, so a member whose committed raft index did not move holds the same keys and
//! names; a file changed on this node changes its metadata.
//!
//! Invariants: a round is skipped only when the last look ended finding everything as
//! its last apply left it ([`Idle`] recorded at that index, with the node's inputs then),
//! the member's raft index is that index now, the node's inputs are those, and no full
//! read of the auth store is due; an unknown index (etcd did not answer) is never idle.
//! An idle zone's keeper then asks its etcd one status a second instead of reading four
//! keys and verifying the revocations document each second.

use std::path::Path;
use std::time::SystemTime;

/// What a look found unchanged, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idle {
    /// The member's committed raft index when the look began (the leader's names read
    /// included: [`zone_node::policy::read::NAMES_ENTRIES`] further).
    pub raft_index: u64,
    /// This node's inputs then.
    pub local: Local,
}

/// The node's inputs to a look, by their files' metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Local {
    /// The revocations document in force on this member.
    revocations: Option<Stamp>,
    /// The directory of identities issued while etcd refused them, to be carried into
    /// the zone (its metadata changes with each file added or removed).
    ledger: Option<Stamp>,
    /// Whether the identity endpoint has started (it is told each policy in force).
    endpoint: bool,
}

/// A file's size, modification time and inode.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp(u64, Option<SystemTime>, u64);

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path).ok()?;
    Some(Stamp(meta.len(), meta.modified().ok(), meta.ino()))
}

impl Local {
    /// The inputs under `state_dir` now, and whether the endpoint has started.
    pub fn now(state_dir: &Path, endpoint: bool) -> Local {
        Local {
            revocations: stamp(&state_dir.join(zone_node::revocation::store::DOC_FILE)),
            ledger: stamp(&state_dir.join(zone_node::identities::ledger::JOURNAL)),
            endpoint,
        }
    }
}

/// Whether a round may be skipped (pure): the last look's [`Idle`] is what the member and
/// the node hold now, and no full read is due.
pub fn skip(last: Option<&Idle>, raft_index: Option<u64>, local: &Local, due: bool) -> bool {
    match (last, raft_index) {
        (Some(last), Some(now)) => !due && last.raft_index == now && last.local == *local,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_is_skipped_only_when_nothing_moved_and_no_read_is_due() {
        let dir = tempfile::tempdir().unwrap();
        let local = Local::now(dir.path(), false);
        let idle = Idle {
            raft_index: 40,
            local: local.clone(),
        };
        assert!(skip(Some(&idle), Some(40), &local, false));
        // Never without a look that ended idle, or without etcd's answer.
        assert!(!skip(None, Some(40), &local, false));
        assert!(!skip(Some(&idle), None, &local, false));
        // Any entry in the member's log: a write, an election, a user made by hand.
        assert!(!skip(Some(&idle), Some(41), &local, false));
        // The whole auth store's read is due.
        assert!(!skip(Some(&idle), Some(40), &local, true));
        // The endpoint started since.
        assert!(!skip(
            Some(&idle),
            Some(40),
            &Local::now(dir.path(), true),
            false
        ));
        // A revocations document installed, an identity put aside for the ledger.
        std::fs::write(
            dir.path().join(zone_node::revocation::store::DOC_FILE),
            "{}",
        )
        .unwrap();
        let revoked = Local::now(dir.path(), false);
        assert!(!skip(Some(&idle), Some(40), &revoked, false));
        let idle = Idle {
            raft_index: 40,
            local: revoked.clone(),
        };
        assert!(skip(Some(&idle), Some(40), &revoked, false));
        let journal = dir.path().join(zone_node::identities::ledger::JOURNAL);
        std::fs::create_dir(&journal).unwrap();
        assert!(!skip(
            Some(&idle),
            Some(40),
            &Local::now(dir.path(), false),
            false
        ));
    }
}
