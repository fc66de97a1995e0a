//! What `backup status` reports and when it fails. Pure: the command gathers the facts
//! (the election's leader, each target's manifests, the last drill) and prints.
//!
//! A zone's backups are in trouble (exit 1) when a target's newest delta is older than
//! [`MAX_LAG_MS`] (or a target cannot be read, or holds no chain), a gap is open, or the
//! last drill failed.

use serde::Serialize;

use super::chain::{Kind, Verified};

/// The most a target's newest delta may lag before `status` fails: the guide's alert.
pub const MAX_LAG_MS: i64 = 120_000;

/// One link as reported: where and when.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Point {
    pub revision: i64,
    pub time_ms: i64,
    pub age_seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetReport {
    pub url: String,
    /// Why it could not be read, if so.
    pub error: Option<String>,
    pub links: usize,
    pub newest_full: Option<Point>,
    pub newest_delta: Option<Point>,
    /// The oldest point a restore can reach (the oldest kept full snapshot).
    pub window_start: Option<Point>,
    /// Gaps (first, last revision) recorded in the kept chain, and whether one is open.
    pub gaps: Vec<(i64, i64)>,
    pub open_gap: bool,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Drill {
    pub ok: bool,
    pub time_ms: i64,
    pub node: String,
    pub summary: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub zone: String,
    /// The node that writes the chain now (`None`: no writer, or the cluster is down).
    pub active_node: Option<String>,
    pub active_session: Option<String>,
    pub targets: Vec<TargetReport>,
    pub last_drill: Option<Drill>,
    pub problems: Vec<String>,
}

/// The facts of one target: its manifests' names (kinds from the names) and the few links
/// read (the newest full, the newest delta, the oldest full, the gaps).
pub struct TargetFacts<'a> {
    pub url: &'a str,
    pub error: Option<String>,
    pub links: usize,
    pub read: &'a [Verified],
}

fn point(v: &Verified, now_ms: i64) -> Point {
    Point {
        revision: v.link.last_revision,
        time_ms: v.link.last_time_ms,
        age_seconds: (now_ms - v.link.last_time_ms).max(0) as f64 / 1000.0,
    }
}

pub fn target_report(facts: &TargetFacts<'_>, now_ms: i64) -> TargetReport {
    let newest = |kind: Kind| facts.read.iter().rev().find(|v| v.link.kind == kind);
    let newest_full = newest(Kind::Full);
    let gaps: Vec<(i64, i64)> = facts
        .read
        .iter()
        .filter(|v| v.link.kind == Kind::Gap)
        .map(|v| (v.link.first_revision, v.link.last_revision))
        .collect();
    let open_gap = facts
        .read
        .iter()
        .any(|v| v.link.kind == Kind::Gap && newest_full.is_none_or(|f| f.link.seq < v.link.seq));
    TargetReport {
        url: facts.url.to_string(),
        error: facts.error.clone(),
        links: facts.links,
        newest_full: newest_full.map(|v| point(v, now_ms)),
        newest_delta: newest(Kind::Delta).map(|v| point(v, now_ms)),
        window_start: facts
            .read
            .iter()
            .find(|v| v.link.kind == Kind::Full)
            .map(|v| point(v, now_ms)),
        gaps,
        open_gap,
    }
}

/// What makes `status` fail, one line each.
pub fn problems(targets: &[TargetReport], drill: Option<&Drill>, now_ms: i64) -> Vec<String> {
    let mut out = Vec::new();
    for t in targets {
        if let Some(e) = &t.error {
            out.push(format!("{}: cannot be read: {e}", t.url));
            continue;
        }
        match &t.newest_delta {
            None => out.push(format!("{}: holds no delta yet", t.url)),
            Some(p) if now_ms - p.time_ms > MAX_LAG_MS => out.push(format!(
                "{}: the newest delta is {:.0} s old (revision {}): the backup lags by more than {} s",
                t.url,
                p.age_seconds,
                p.revision,
                MAX_LAG_MS / 1000
            )),
            Some(_) => {}
        }
        if t.newest_full.is_none() {
            out.push(format!("{}: holds no full snapshot", t.url));
        }
        if t.open_gap {
            out.push(format!(
                "{}: a gap is open (revisions {}): no full snapshot after it yet",
                t.url,
                t.gaps
                    .iter()
                    .map(|(a, b)| format!("{a}..{b}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    if let Some(d) = drill.filter(|d| !d.ok) {
        out.push(format!(
            "the last drill (on {}) failed: {}",
            d.node, d.summary
        ));
    }
    out
}
