//! Which points a chain can reach, and the links that reach one. Pure (the links come
//! verified and checked by [`crate::chain::check_links`]), so every rule is
//! unit-tested.
//!
//! A *stretch* starts at a full snapshot and goes on through the deltas of its part of
//! the chain (consecutive links of one etcd cluster) until a gap, the end of that part, or
//! the chain's newest link. It reaches every revision from the full snapshot's to its last
//! delta's, and every time from when the snapshot was taken to its last delta's last
//! time (a heartbeat delta extends the time without revisions). Retention leaves old full
//! snapshots alone: each is a stretch of one point.
//!
//! Invariants:
//! - a point is reached from the newest full snapshot at or before it whose stretch holds
//!   it (the least to replay), never across a gap or a pruned link;
//! - a point no stretch holds is refused with the nearest points that can be reached on
//!   either side, and why it cannot: before the oldest restore point, after the newest,
//!   inside a gap, or between restore points that retention thinned.

use super::point::{format_time, Point};
use crate::chain::{Kind, Verified};

/// What one full snapshot reaches.
#[derive(Debug)]
pub struct Stretch<'a> {
    pub full: &'a Verified,
    /// The delta links replayed after the full, in chain order (the first may start
    /// before the full's revision: those revisions are skipped).
    pub deltas: Vec<&'a Verified>,
    pub last_revision: i64,
    pub last_time_ms: i64,
    /// The gap that ends it, if one does.
    pub gap: Option<&'a Verified>,
}

impl Stretch<'_> {
    fn start_revision(&self) -> i64 {
        self.full.link.last_revision
    }

    fn start_time_ms(&self) -> i64 {
        self.full.link.first_time_ms
    }

    fn holds(&self, point: Point) -> bool {
        match point {
            Point::Revision(r) => (self.start_revision()..=self.last_revision).contains(&r),
            Point::Time(t) => (self.start_time_ms()..=self.last_time_ms).contains(&t),
        }
    }

    /// The deltas to replay to reach `point`: for a revision, those up to it; for a time,
    /// those whose revisions may have been received by then.
    pub fn deltas_to(&self, point: Point) -> Vec<&Verified> {
        self.deltas
            .iter()
            .copied()
            .filter(|v| match point {
                Point::Revision(r) => v.link.first_revision <= r,
                Point::Time(t) => v.link.first_time_ms <= t,
            })
            .collect()
    }
}

/// Every stretch of `links` (checked, in chain order), oldest full first.
pub fn stretches(links: &[Verified]) -> Vec<Stretch<'_>> {
    // The parts of the chain: runs of consecutive links of one cluster.
    let mut parts: Vec<&[Verified]> = Vec::new();
    let mut start = 0;
    for i in 1..=links.len() {
        let ends = i == links.len()
            || links[i].link.seq != links[i - 1].link.seq + 1
            || links[i].link.cluster_id != links[i - 1].link.cluster_id;
        if ends {
            parts.push(&links[start..i]);
            start = i;
        }
    }
    let mut out = Vec::new();
    for part in parts {
        for full in part.iter().filter(|v| v.link.kind == Kind::Full) {
            out.push(stretch(full, part));
        }
    }
    out
}

fn stretch<'a>(full: &'a Verified, part: &'a [Verified]) -> Stretch<'a> {
    let mut s = Stretch {
        full,
        deltas: Vec::new(),
        last_revision: full.link.last_revision,
        last_time_ms: full.link.first_time_ms,
        gap: None,
    };
    // Delta links follow each other in chain order (check_links); those that end before
    // the full's revision hold nothing it needs.
    for v in part.iter().filter(|v| v.link.kind != Kind::Full) {
        let l = &v.link;
        if l.last_revision < s.last_revision || l.first_revision > s.last_revision + 1 {
            continue;
        }
        if l.kind == Kind::Gap {
            if l.last_revision > s.last_revision {
                s.gap = Some(v);
                break;
            }
            continue;
        }
        if l.last_revision > full.link.last_revision || l.first_revision > l.last_revision {
            s.deltas.push(v);
        }
        s.last_revision = s.last_revision.max(l.last_revision);
        s.last_time_ms = s.last_time_ms.max(l.last_time_ms);
    }
    s
}

/// The stretch that reaches `point`: the newest full snapshot at or before it whose
/// stretch holds it; else why not, naming the nearest points that can be reached.
pub fn reach<'a, 'b>(
    stretches: &'b [Stretch<'a>],
    links: &[Verified],
    point: Point,
) -> Result<&'b Stretch<'a>, String> {
    if let Some(s) = stretches.iter().rev().find(|s| s.holds(point)) {
        return Ok(s);
    }
    Err(refusal(stretches, links, point))
}

fn refusal(stretches: &[Stretch<'_>], links: &[Verified], point: Point) -> String {
    let what = match point {
        Point::Revision(r) => format!("revision {r}"),
        Point::Time(t) => format_time(t),
    };
    if stretches.is_empty() {
        return format!("{what} cannot be reached: the chain holds no full snapshot");
    }
    // Where a point lies on the axis the point is given on.
    let (at, on) = match point {
        Point::Revision(r) => (r, 1),
        Point::Time(t) => (t, 0),
    };
    let axis = |(t, r): (i64, i64)| if on == 1 { r } else { t };
    // The nearest point reached before, with the stretch that reaches it, and after.
    let before = stretches
        .iter()
        .map(|s| (s, (s.last_time_ms, s.last_revision)))
        .filter(|&(_, p)| axis(p) < at)
        .max_by_key(|&(_, p)| axis(p));
    let after = stretches
        .iter()
        .map(|s| (s.start_time_ms(), s.start_revision()))
        .filter(|&p| axis(p) > at)
        .min_by_key(|&p| axis(p));
    let gap = match point {
        Point::Revision(r) => links.iter().find(|v| {
            v.link.kind == Kind::Gap && (v.link.first_revision..=v.link.last_revision).contains(&r)
        }),
        Point::Time(_) => before.and_then(|(s, _)| s.gap),
    };
    let why = match (before, after, gap) {
        (_, _, Some(g)) => format!(
            "is inside a gap: revisions {}..{} were compacted before the backup saw them ({})",
            g.link.first_revision, g.link.last_revision, g.name
        ),
        (None, _, _) => "is before the oldest restore point the chain keeps".to_string(),
        (_, None, _) => "is after the newest point the chain holds (backup run ships the newest changes every delta_every)".to_string(),
        _ => "is between two restore points that retention kept (only full snapshots are kept there)".to_string(),
    };
    let name = |(t, r): (i64, i64)| format!("revision {r} ({})", format_time(t));
    let nearest = match (before.map(|(_, p)| p), after) {
        (Some(b), Some(a)) => format!(
            "the nearest points that can be reached are {} and {}",
            name(b),
            name(a)
        ),
        (Some(b), None) => format!("the newest point that can be reached is {}", name(b)),
        (None, Some(a)) => format!("the oldest point that can be reached is {}", name(a)),
        (None, None) => "no point can be reached".to_string(),
    };
    format!("{what} {why}: {nearest}")
}

#[cfg(test)]
#[path = "reach_tests.rs"]
mod tests;
