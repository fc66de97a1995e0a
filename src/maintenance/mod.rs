//! What `zone-etcd maintain` does to a running cluster, decided from what its members
//! report (pure, unit-tested; the calls are in `commands::maintain`), and what an active
//! alarm means ([`alarms`], which `status` words the same way).
//!
//! Invariants:
//! - a member is defragmented only when that gives back much space, and members are
//!   defragmented one at a time (a defragmenting member answers nothing meanwhile);
//! - nothing is defragmented while a voter is down, unless forced: the member being
//!   defragmented would be a second voter missing, and could cost the quorum;
//! - a NOSPACE alarm is disarmed only once every member's database is under its quota
//!   again, so writes are not accepted only to fill it at once.

pub mod alarms;

/// A database file with less free space than this is left alone: rewriting it gains little.
pub const MIN_FREE_BYTES: i64 = 1 << 20;

/// One member as `maintain` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberState {
    pub name: String,
    pub voter: bool,
    /// `None` when the member did not answer its status (down, or unreachable).
    pub size: Option<DbSize>,
}

/// A member's database file and the part of it that holds data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DbSize {
    pub file: i64,
    pub in_use: i64,
}

impl DbSize {
    pub fn free(self) -> i64 {
        (self.file - self.in_use).max(0)
    }
}

/// Why nothing may be defragmented now: the voters that are down.
pub fn refusal(members: &[MemberState]) -> Option<Vec<String>> {
    let down: Vec<String> = members
        .iter()
        .filter(|m| m.voter && m.size.is_none())
        .map(|m| m.name.clone())
        .collect();
    (!down.is_empty()).then_some(down)
}

/// Whether a member's database is worth defragmenting: at least [`MIN_FREE_BYTES`] free,
/// and either half of the file free, the file at 80% of the quota or more, or a NOSPACE
/// alarm active (then every byte given back counts).
pub fn needs_defrag(size: DbSize, quota: i64, nospace: bool) -> bool {
    let free = size.free();
    free >= MIN_FREE_BYTES && (nospace || free * 2 >= size.file || size.file * 10 >= quota * 8)
}

/// Whether the NOSPACE alarms may be disarmed: every member answered, under its quota.
pub fn may_disarm(sizes: &[Option<DbSize>], quota: i64) -> bool {
    sizes.iter().all(|s| s.is_some_and(|s| s.file < quota))
}

/// A size the way etcdctl prints it: `512 B`, `20.0 KiB`, `3.5 MiB`.
pub fn human_size(bytes: i64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: i64 = 1 << 20;
    const QUOTA: i64 = 2048 * MIB;

    fn size(file: i64, in_use: i64) -> DbSize {
        DbSize { file, in_use }
    }

    #[test]
    fn defragments_only_when_much_is_free() {
        // A fresh member: 20 KiB, nothing to gain.
        assert!(!needs_defrag(size(20 * 1024, 16 * 1024), QUOTA, false));
        // Half the file free: yes; a third free: no.
        assert!(needs_defrag(size(10 * MIB, 5 * MIB), QUOTA, false));
        assert!(!needs_defrag(size(30 * MIB, 20 * MIB), QUOTA, false));
        // Near the quota: any megabyte counts.
        assert!(needs_defrag(size(1700 * MIB, 1600 * MIB), QUOTA, false));
        // NOSPACE: yes as soon as a megabyte is free.
        assert!(needs_defrag(size(16 * MIB, 14 * MIB), 16 * MIB, true));
        assert!(!needs_defrag(
            size(16 * MIB, 16 * MIB - 1024),
            16 * MIB,
            true
        ));
    }

    #[test]
    fn a_voter_down_refuses_a_learner_down_does_not() {
        let member = |name: &str, voter, up: bool| MemberState {
            name: name.into(),
            voter,
            size: up.then_some(size(MIB, MIB)),
        };
        assert_eq!(
            refusal(&[member("a", true, true), member("b", true, true)]),
            None
        );
        assert_eq!(
            refusal(&[member("a", true, true), member("b", true, false)]),
            Some(vec!["b".to_string()])
        );
        assert_eq!(
            refusal(&[member("a", true, true), member("l", false, false)]),
            None
        );
    }

    #[test]
    fn disarms_only_when_every_member_is_under_quota() {
        let q = 16 * MIB;
        assert!(may_disarm(
            &[Some(size(4 * MIB, MIB)), Some(size(5 * MIB, MIB))],
            q
        ));
        assert!(!may_disarm(
            &[Some(size(4 * MIB, MIB)), Some(size(q, MIB))],
            q
        ));
        assert!(!may_disarm(&[Some(size(4 * MIB, MIB)), None], q));
    }

    #[test]
    fn sizes_read_like_etcdctl() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(20480), "20.0 KiB");
        assert_eq!(human_size(3 * 1024 * 1024 + 1024 * 512), "3.5 MiB");
    }
}
