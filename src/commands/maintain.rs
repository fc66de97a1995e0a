//! `zone-etcd maintain`: keeps the zone's databases from filling up. For each member, one
//! at a time, it defragments the database file when that gives back much space (sizes
//! before and after are reported); then it lists the alarms and disarms NOSPACE once every
//! member is under its quota again. When a NOSPACE alarm is active it first compacts the
//! history up to the current revision: the history is what filled the database.
//!
//! It refuses while a voter is down (a defragmenting member answers nothing, so it would be
//! a second voter missing) unless `--force`. The decisions are in [`crate::maintenance`].

use std::path::Path;

use serde::Serialize;
use zone_pki::Error;

use crate::cluster_api::{self, hex_id, Alarm, ClusterMember, Credentials, EndpointReport};
use crate::config::node::Node;
use crate::maintenance::{self, DbSize, MemberState};

/// One member's line of the report (also the JSON output).
#[derive(Debug, Serialize)]
struct MemberReport {
    name: String,
    id: String,
    size_before: Option<i64>,
    in_use_before: Option<i64>,
    size_after: Option<i64>,
    /// `defragmented`, `skipped: ...` or `failed: ...`.
    action: String,
}

#[derive(Debug, Serialize)]
struct Report {
    zone: String,
    quota_bytes: i64,
    /// The revision the history was compacted to (only when NOSPACE was active).
    compacted_to: Option<i64>,
    members: Vec<MemberReport>,
    alarms_before: Vec<String>,
    alarms_after: Vec<String>,
}

pub fn run(config: &Path, json: bool, force: bool) -> Result<(), Error> {
    let node = Node::load(config)?;
    let quota = quota_bytes(&node);
    let super::Cluster {
        runtime,
        creds,
        view,
    } = super::ask_cluster(&node, config)?;
    let reports = runtime.block_on(probe(&view.members, &creds));
    let states: Vec<MemberState> = view.members.iter().map(|m| state(m, &reports)).collect();
    if let Some(down) = maintenance::refusal(&states) {
        if !force {
            return Err(Error::new(format!(
                "voting member{} {} not answering: defragmenting another member now could cost the quorum, so nothing was done",
                if down.len() == 1 { "" } else { "s" },
                down.join(", ")
            ))
            .file(config)
            .fix("bring it back (zone-etcd launch on it) and run maintain again, or pass --force to defragment the others anyway"));
        }
        tracing::warn!("--force: maintaining while {} is down", down.join(", "));
    }
    let answering: Vec<String> = reports
        .iter()
        .filter(|r| r.status.is_ok())
        .map(|r| r.endpoint.clone())
        .collect();
    let alarms_before = runtime.block_on(first_alarms(&answering, &creds));
    let nospace = alarms_before.iter().any(|a| a.kind == "NOSPACE");

    // The history filled the database: compact it away before giving the space back.
    let mut compacted_to = None;
    if nospace {
        let revision = reports
            .iter()
            .filter_map(|r| r.status.as_ref().ok())
            .map(|s| s.revision)
            .max()
            .unwrap_or(0);
        if revision > 0 {
            let done = runtime.block_on(async {
                let mut last = Err("no member answered".to_string());
                for endpoint in &answering {
                    last = cluster_api::compact(endpoint, &creds, revision).await;
                    if last.is_ok() {
                        break;
                    }
                }
                last
            });
            match done {
                Ok(()) => compacted_to = Some(revision),
                Err(reason) => tracing::warn!("compaction to revision {revision} failed: {reason}"),
            }
        }
    }

    // One member at a time; the leader last, so the cluster keeps its leader longest.
    let sizes_now = runtime.block_on(probe(&view.members, &creds));
    let leader = sizes_now
        .iter()
        .filter_map(|r| r.status.as_ref().ok())
        .map(|s| s.leader)
        .find(|&id| id != 0);
    let mut order: Vec<&ClusterMember> = view.members.iter().collect();
    order.sort_by_key(|m| Some(m.id) == leader);
    let mut members = Vec::new();
    for member in order {
        let before = state(member, &sizes_now).size;
        let mut report = MemberReport {
            name: display_name(member),
            id: hex_id(member.id),
            size_before: before.map(|s| s.file),
            in_use_before: before.map(|s| s.in_use),
            size_after: before.map(|s| s.file),
            action: String::new(),
        };
        report.action = match (before, member.client_urls.first()) {
            (None, _) | (_, None) => "failed: not answering".into(),
            (Some(size), Some(endpoint)) if maintenance::needs_defrag(size, quota, nospace) => {
                match runtime.block_on(cluster_api::defragment(endpoint, &creds)) {
                    Ok(()) => {
                        let after = runtime.block_on(probe(std::slice::from_ref(member), &creds));
                        report.size_after = state(member, &after).size.map(|s| s.file);
                        "defragmented".into()
                    }
                    Err(reason) => format!("failed: {reason}"),
                }
            }
            (Some(_), Some(_)) => "skipped: little to gain".into(),
        };
        members.push(report);
    }

    // NOSPACE is disarmed once every member is under its quota again.
    if nospace {
        let after = runtime.block_on(probe(&view.members, &creds));
        let sizes: Vec<Option<DbSize>> =
            view.members.iter().map(|m| state(m, &after).size).collect();
        if maintenance::may_disarm(&sizes, quota) {
            runtime.block_on(async {
                for alarm in alarms_before.iter().filter(|a| a.kind == "NOSPACE") {
                    for endpoint in &answering {
                        if cluster_api::disarm(endpoint, &creds, alarm).await.is_ok() {
                            break;
                        }
                    }
                }
            });
        }
    }
    let alarms_after = runtime.block_on(first_alarms(&answering, &creds));
    let name_of = |a: &Alarm| {
        let member = view
            .by_id(a.member_id)
            .map_or_else(|| hex_id(a.member_id), display_name);
        format!("{} on {member}", a.kind)
    };
    let report = Report {
        zone: node.zone.clone(),
        quota_bytes: quota,
        compacted_to,
        members,
        alarms_before: alarms_before.iter().map(name_of).collect(),
        alarms_after: alarms_after.iter().map(name_of).collect(),
    };
    if json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| Error::new(format!("cannot write the output: {e}")))?;
        println!("{text}");
    } else {
        print!("{}", render(&report));
    }
    let failed: Vec<String> = report
        .members
        .iter()
        .filter(|m| m.action.starts_with("failed"))
        .map(|m| format!("{} ({})", m.name, m.action))
        .collect();
    if !report.alarms_after.is_empty() {
        return Err(Error::new(format!(
            "alarms still active: {}",
            report.alarms_after.join(", ")
        ))
        .fix(if nospace {
            "a member is still at its quota: delete data or raise quota_backend_bytes in the zone's [settings], then run maintain again"
        } else {
            "a CORRUPT alarm needs the member's data replaced: see the README (snapshots and recovery)"
        }));
    }
    if !failed.is_empty() {
        return Err(
            Error::new(format!("members not maintained: {}", failed.join(", ")))
                .fix("bring them back (zone-etcd launch) and run maintain again"),
        );
    }
    Ok(())
}

/// The status of every member's first client URL (not the quorum read: a NOSPACE cluster
/// still serves reads).
async fn probe(
    members: &[ClusterMember],
    creds: &std::sync::Arc<Credentials>,
) -> Vec<EndpointReport> {
    let endpoints = members
        .iter()
        .filter_map(|m| m.client_urls.first().map(|u| (u.clone(), false)))
        .collect();
    cluster_api::probe_all(endpoints, creds).await
}

async fn first_alarms(endpoints: &[String], creds: &Credentials) -> Vec<Alarm> {
    for endpoint in endpoints {
        if let Ok(alarms) = cluster_api::alarms(endpoint, creds).await {
            return alarms;
        }
    }
    Vec::new()
}

fn state(member: &ClusterMember, reports: &[EndpointReport]) -> MemberState {
    let size = member
        .client_urls
        .first()
        .and_then(|url| reports.iter().find(|r| &r.endpoint == url))
        .and_then(|r| r.status.as_ref().ok())
        .map(|s| DbSize {
            file: s.db_size,
            in_use: s.db_size_in_use,
        });
    MemberState {
        name: display_name(member),
        voter: !member.learner,
        size,
    }
}

/// The members' backend quota: the zone's `quota_backend_bytes`, else the default every
/// member runs with (both are in each member's argv).
pub(super) fn quota_bytes(node: &Node) -> i64 {
    i64::try_from(node.settings.quota_bytes()).unwrap_or(i64::MAX)
}

fn display_name(member: &ClusterMember) -> String {
    if member.name.is_empty() {
        hex_id(member.id)
    } else {
        member.name.clone()
    }
}

fn render(report: &Report) -> String {
    let size = |v: Option<i64>| v.map_or("-".to_string(), crate::maintenance::human_size);
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
    out
}
