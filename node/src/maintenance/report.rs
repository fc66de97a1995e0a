//! `maintain`'s report: one line per member (sizes before and after, what was done), the
//! alarms before and after, and what keeps NOSPACE armed; the same as JSON.

use serde::Serialize;

use crate::maintenance;

/// One member's line of the report (also the JSON output).
#[derive(Debug, Serialize)]
pub(super) struct MemberReport {
    pub(super) name: String,
    pub(super) id: String,
    pub(super) size_before: Option<i64>,
    pub(super) in_use_before: Option<i64>,
    pub(super) size_after: Option<i64>,
    /// `defragmented`, `skipped: ...` or `failed: ...`.
    pub(super) action: String,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub(super) zone: String,
    pub(super) quota_bytes: i64,
    /// The revision the history was compacted to (only when NOSPACE was active).
    pub(super) compacted_to: Option<i64>,
    pub(super) members: Vec<MemberReport>,
    pub(super) alarms_before: Vec<String>,
    pub(super) alarms_after: Vec<String>,
    /// Why NOSPACE could not be disarmed: each member that keeps it, with the reason.
    pub(super) nospace_kept_by: Vec<String>,
}

pub fn render(report: &Report) -> String {
    let size = |v: Option<i64>| v.map_or("-".to_string(), maintenance::human_size);
    let mut out = format!(
        "zone {}, quota {}\n",
        report.zone,
        size(Some(report.quota_bytes))
    );
    if !report.alarms_before.is_empty() {
        out += &format!("alarms before: {}\n", report.alarms_before.join(", "));
    }
    if let Some(revision) = report.compacted_to {
        out += &format!("compacted the history up to revision {revision}\n");
    }
    for m in &report.members {
        out += &format!(
            "{}: {} (in use {}) -> {}: {}\n",
            m.name,
            size(m.size_before),
            size(m.in_use_before),
            size(m.size_after),
            m.action
        );
    }
    out += &if report.alarms_after.is_empty() {
        "alarms: none\n".to_string()
    } else {
        format!("alarms: {}\n", report.alarms_after.join(", "))
    };
    for blocker in &report.nospace_kept_by {
        out += &format!("NOSPACE kept armed by {blocker}\n");
    }
    out
}
