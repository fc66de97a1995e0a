//! What `zone-etcd maintain` does to a running cluster, decided from what its members
//! report (this file: pure, unit-tested), the calls that carry it out ([`reclaim`], also
//! the owner's room-making under NOSPACE) and their report ([`report`]), and what an
//! active alarm means ([`alarms`], which `status` words the same way).
//!
//! Invariants:
//! - a member is defragmented only when that gives back much space or, while a NOSPACE
//!   alarm is armed, when it is at or near its quota; members are defragmented one at a
//!   time (a defragmenting member answers nothing meanwhile);
//! - nothing is defragmented while a voter is down, unless forced: the member being
//!   defragmented would be a second voter missing, and could cost the quorum;
//! - while NOSPACE is armed, a member is judged only from figures taken after the
//!   compaction has been applied on it (each member compacts on its own, some time after
//!   the leader): one whose compaction did not finish is not defragmented, and is named;
//! - a NOSPACE alarm is disarmed only once every member's database file is under
//!   [`FULL_PERCENT`] of its quota, so writes are not accepted only to fill it at once;
//!   when it stays armed, each member that keeps it is named with the reason
//!   ([`Blocker`]): its live data fills the quota, or it could not be handled.

pub mod alarms;
pub mod reclaim;
pub mod report;

/// A database file with less free space than this is left alone: rewriting it gains little.
pub const MIN_FREE_BYTES: i64 = 1 << 20;

/// A file at this share of the quota or more is near it: worth defragmenting for any
/// megabyte it gives back, and, under NOSPACE, whatever it holds.
pub const NEAR_QUOTA_PERCENT: i64 = 80;

/// A file at this share of the quota or more is still full: NOSPACE stays armed (etcd
/// refuses a write that would not fit under the quota, so the alarm would come back at
/// once).
pub const FULL_PERCENT: i64 = 90;

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

/// Whether `bytes` is at least `percent` of `quota`.
fn at_least(bytes: i64, percent: i64, quota: i64) -> bool {
    i128::from(bytes) * 100 >= i128::from(quota) * i128::from(percent)
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
/// and either half of the file free, the file near the quota, or a NOSPACE alarm active
/// (then every byte given back counts); and, while NOSPACE is armed, any file near the
/// quota (the figures may lag the compaction by a commit: defragmenting costs seconds,
/// leaving a member full costs the zone its writes).
pub fn needs_defrag(size: DbSize, quota: i64, nospace: bool) -> bool {
    let free = size.free();
    let near = at_least(size.file, NEAR_QUOTA_PERCENT, quota);
    (free >= MIN_FREE_BYTES && (nospace || free * 2 >= size.file || near)) || (nospace && near)
}

/// Where the history's compaction stands on one member, before it is judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compaction {
    /// No compaction was asked (no NOSPACE alarm).
    NotAsked,
    /// The member has applied it and finished deleting the old revisions.
    Applied,
    /// It could not be confirmed there, with the reason.
    NotConfirmed(String),
}

/// What to do with one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Defragment,
    /// Left alone, with the reason.
    Skip(&'static str),
    /// Not handled, with the reason.
    Fail(String),
}

/// Decides about one member from its figures (taken after its compaction when one was
/// asked).
pub fn step(size: Option<DbSize>, compaction: &Compaction, quota: i64, nospace: bool) -> Step {
    let Some(size) = size else {
        return Step::Fail("not answering".into());
    };
    if let Compaction::NotConfirmed(reason) = compaction {
        return Step::Fail(format!(
            "its compaction could not be confirmed ({reason}), so its figures may be stale and it was not defragmented"
        ));
    }
    if needs_defrag(size, quota, nospace) {
        Step::Defragment
    } else {
        Step::Skip("little to gain")
    }
}

/// One member after maintenance: its figures then (`None`: it did not answer) and why it
/// was not handled, if it was not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct After {
    pub name: String,
    pub size: Option<DbSize>,
    pub failure: Option<String>,
}

/// Why a member keeps the NOSPACE alarm armed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocker {
    /// Its live data alone fills the quota: no defragmentation helps.
    LiveData {
        member: String,
        in_use: i64,
        quota: i64,
    },
    /// It could not be reached or handled, with the reason.
    NotHandled { member: String, reason: String },
    /// Its file is still full of free pages (it was not defragmented).
    FreePages { member: String, free: i64 },
}

impl std::fmt::Display for Blocker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Blocker::LiveData {
                member,
                in_use,
                quota,
            } => write!(
                f,
                "{member}: its live data ({}) fills {}% of quota_backend_bytes ({})",
                human_size(*in_use),
                i128::from(*in_use) * 100 / i128::from((*quota).max(1)),
                human_size(*quota)
            ),
            Blocker::NotHandled { member, reason } => write!(f, "{member}: {reason}"),
            Blocker::FreePages { member, free } => write!(
                f,
                "{member}: {} of free pages not given back",
                human_size(*free)
            ),
        }
    }
}

/// The members that keep NOSPACE armed, each with its reason; none means it may be
/// disarmed.
pub fn blockers(after: &[After], quota: i64) -> Vec<Blocker> {
    after
        .iter()
        .filter_map(|m| {
            let member = m.name.clone();
            let Some(size) = m.size else {
                let reason = m.failure.clone().unwrap_or_else(|| "not answering".into());
                return Some(Blocker::NotHandled { member, reason });
            };
            if !at_least(size.file, FULL_PERCENT, quota) {
                return None;
            }
            Some(if at_least(size.in_use, FULL_PERCENT, quota) {
                Blocker::LiveData {
                    member,
                    in_use: size.in_use,
                    quota,
                }
            } else if let Some(reason) = m.failure.clone() {
                Blocker::NotHandled { member, reason }
            } else {
                Blocker::FreePages {
                    member,
                    free: size.free(),
                }
            })
        })
        .collect()
}

/// What fixes the blockers, most needed first.
pub fn advice(blockers: &[Blocker]) -> String {
    let mut fixes = Vec::new();
    if blockers
        .iter()
        .any(|b| matches!(b, Blocker::LiveData { .. }))
    {
        fixes.push("the data itself is too big: raise quota_backend_bytes in the zone's [settings] and restart the members one at a time, or delete keys (etcdctl del is accepted under NOSPACE), then run maintain again".to_string());
    }
    let unhandled: Vec<&str> = blockers
        .iter()
        .filter_map(|b| match b {
            Blocker::NotHandled { member, .. } => Some(member.as_str()),
            _ => None,
        })
        .collect();
    if !unhandled.is_empty() {
        fixes.push(format!(
            "bring {} back (zone-etcd launch; zone-etcd status names what is wrong) and run maintain again",
            unhandled.join(", ")
        ));
    }
    if blockers
        .iter()
        .any(|b| matches!(b, Blocker::FreePages { .. }))
    {
        fixes.push("run maintain again".to_string());
    }
    fixes.join("; ")
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
mod tests;
