//! Retention: which links of a chain are kept. Pure (the I/O is in `crate::prune`), so
//! every rule is unit-tested.
//!
//! The policy (issue 22): the point-in-time window (`window`, default 7 days), then full
//! snapshots only, thinned: within `keep_hourly` of now the newest of each clock hour
//! (UTC), within `keep_daily` the newest of each day, within `keep_weekly` the newest of
//! each ISO week (the tiers are independent and their union is kept, as restic's
//! `--keep-within-*`); everything else is dropped.
//!
//! Invariants of a [`plan`]:
//! - the window: the newest full snapshot taken at or before the window's start (the
//!   anchor) is kept, with every link from the first one it needs to the head: a point in
//!   the window is restored from the anchor and the deltas after it. A full's revision may
//!   be behind the delta log when it was linked (deltas were cut while it was taken), so
//!   the first link it needs can be a delta before it: the first delta or gap of its
//!   cluster whose last revision is after the full's. With no anchor (a young chain),
//!   everything is kept;
//! - beyond the window only full snapshots are kept, alone: a restore point needs no delta;
//! - the head (the writer goes on from it) and the newest full snapshot are always kept,
//!   so a chain with a full snapshot keeps one;
//! - what is kept passes `chain::check_links` when the links given did (old fulls alone,
//!   then the recent part whole: the shape its rules for skipped sequence numbers accept);
//! - a link not known well enough (a full or a gap without its manifest's body) keeps
//!   everything: the plan never drops what it cannot place. A delta may be known by its
//!   name alone (a target's links written by an earlier writer): where the anchor's needs
//!   cannot be told, the anchor's previous full snapshot is kept with everything after it.

use std::collections::BTreeMap;
use std::time::Duration;

use super::chain::{parse_manifest_name, Kind, Link, Verified};
use zone_model::backup::settings::BackupSettings;

/// The retention settings of `[backup]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub window: Duration,
    pub keep_hourly: Duration,
    pub keep_daily: Duration,
    pub keep_weekly: Duration,
}

impl Policy {
    pub fn of(settings: &BackupSettings) -> Policy {
        Policy {
            window: settings.window(),
            keep_hourly: settings.keep_hourly(),
            keep_daily: settings.keep_daily(),
            keep_weekly: settings.keep_weekly(),
        }
    }
}

/// What a manifest says, as far as retention needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    pub cluster_id: String,
    pub first_revision: i64,
    pub last_revision: i64,
    pub next_delta: i64,
    pub last_time_ms: i64,
    pub object: Option<String>,
}

/// One link as the planner sees it: its manifest's name, and its body when read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub name: String,
    pub seq: u64,
    pub kind: Kind,
    pub body: Option<Body>,
}

impl Summary {
    pub fn of(name: &str, link: &Link) -> Summary {
        Summary {
            name: name.to_string(),
            seq: link.seq,
            kind: link.kind,
            body: Some(Body {
                cluster_id: link.cluster_id.clone(),
                first_revision: link.first_revision,
                last_revision: link.last_revision,
                next_delta: link.next_delta,
                last_time_ms: link.last_time_ms,
                object: link.object.clone(),
            }),
        }
    }

    pub fn of_verified(v: &Verified) -> Summary {
        Summary::of(&v.name, &v.link)
    }

    /// A link known by its manifest's name alone (`None` for another name).
    pub fn named(name: &str) -> Option<Summary> {
        let (seq, kind) = parse_manifest_name(name)?;
        Some(Summary {
            name: name.to_string(),
            seq,
            kind,
            body: None,
        })
    }
}

/// A dropped link's object.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Object {
    /// A gap: no object.
    None,
    Named(String),
    /// A delta known by its name alone: its manifest names the object.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Dropped {
    pub manifest: String,
    pub object: Object,
}

/// The manifests kept and the links dropped, both in chain order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub keep: Vec<String>,
    pub drop: Vec<Dropped>,
}

impl Plan {
    /// What to delete, in order: each dropped link's manifest, then its object (so a
    /// manifest never names a missing object), oldest link first. A delta whose object is
    /// [`Object::Unknown`] is listed by its manifest alone.
    pub fn deletions(&self) -> Vec<&str> {
        let mut names = Vec::with_capacity(self.drop.len() * 2);
        for d in &self.drop {
            names.push(d.manifest.as_str());
            if let Object::Named(object) = &d.object {
                names.push(object.as_str());
            }
        }
        names
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Which of `links` (in chain order) to keep at `now_ms` under `policy`.
pub fn plan<L: std::borrow::Borrow<Summary>>(links: &[L], policy: &Policy, now_ms: i64) -> Plan {
    let links: Vec<&Summary> = links.iter().map(|l| l.borrow()).collect();
    let Some(keep) = kept(&links, policy, now_ms) else {
        return Plan {
            keep: links.iter().map(|s| s.name.clone()).collect(),
            drop: Vec::new(),
        };
    };
    let mut plan = Plan::default();
    for (s, keep) in links.iter().zip(keep) {
        if keep {
            plan.keep.push(s.name.clone());
        } else {
            let object = match (&s.body, s.kind) {
                (_, Kind::Gap) => Object::None,
                (Some(b), _) => b.object.clone().map_or(Object::None, Object::Named),
                (None, _) => Object::Unknown,
            };
            plan.drop.push(Dropped {
                manifest: s.name.clone(),
                object,
            });
        }
    }
    plan
}

/// A tier's bucket of a time (Unix ms): its hour, day or ISO week.
type Bucket = fn(i64) -> i64;

/// Whether each link is kept; `None`: keep everything (a full or gap not known).
fn kept(links: &[&Summary], policy: &Policy, now_ms: i64) -> Option<Vec<bool>> {
    let n = links.len();
    let mut fulls = Vec::new();
    for (i, s) in links.iter().enumerate() {
        match (&s.body, s.kind) {
            (None, Kind::Full | Kind::Gap) => return None,
            (Some(b), Kind::Full) => fulls.push((i, b)),
            _ => {}
        }
    }
    let window_start = now_ms.saturating_sub(ms(policy.window));
    let anchor = fulls
        .iter()
        .rev()
        .find(|(_, b)| b.last_time_ms <= window_start);
    let start = anchor.map_or(0, |&(a, _)| needs_from(links, a));
    let mut keep: Vec<bool> = (0..n).map(|i| i >= start).collect();
    let tiers: [(Duration, Bucket); 3] = [
        (policy.keep_hourly, |t| t.div_euclid(3_600_000)),
        (policy.keep_daily, |t| t.div_euclid(86_400_000)),
        (policy.keep_weekly, iso_week),
    ];
    for (within, bucket) in tiers {
        let mut newest: BTreeMap<i64, usize> = BTreeMap::new();
        for &(i, b) in &fulls {
            if now_ms.saturating_sub(b.last_time_ms) <= ms(within) {
                newest.insert(bucket(b.last_time_ms), i);
            }
        }
        for i in newest.into_values() {
            keep[i] = true;
        }
    }
    if let Some(&(i, _)) = fulls.last() {
        keep[i] = true;
    }
    if let Some(last) = keep.last_mut() {
        *last = true;
    }
    Some(keep)
}

/// The first link full snapshot `a` needs: itself when its deltas follow it, else the
/// first delta (or gap) of its cluster holding a revision after it. Where a delta before
/// it is known by name alone, the full snapshot before that delta (the whole cluster's
/// start when there is none).
fn needs_from(links: &[&Summary], a: usize) -> usize {
    let Some(full) = &links[a].body else {
        return 0;
    };
    if full.next_delta <= full.last_revision + 1 {
        return a;
    }
    let mut start = a;
    for i in (0..a).rev() {
        match (&links[i].body, links[i].kind) {
            (Some(b), _) if b.cluster_id != full.cluster_id => return start,
            (Some(_), Kind::Full) => {}
            (Some(b), _) if b.last_revision > full.last_revision => start = i,
            (Some(_), _) => return start,
            (None, _) => {
                return (0..i)
                    .rev()
                    .find(|&j| {
                        links[j].kind == Kind::Full
                            && links[j]
                                .body
                                .as_ref()
                                .is_some_and(|b| b.cluster_id == full.cluster_id)
                    })
                    .unwrap_or(0)
            }
        }
    }
    start
}

/// The ISO week (year * 100 + week) of a Unix time in ms (UTC).
fn iso_week(t: i64) -> i64 {
    let secs = t.div_euclid(1000);
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(at) => {
            let (year, week, _) = at.to_iso_week_date();
            i64::from(year) * 100 + i64::from(week)
        }
        // Out of the calendar's range: a week of its own, by count.
        Err(_) => secs.div_euclid(7 * 86_400),
    }
}

#[cfg(test)]
#[path = "retention_tests.rs"]
mod tests;
