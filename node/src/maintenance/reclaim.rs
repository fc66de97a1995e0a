//! One maintenance of the running zone, the calls [`crate::maintenance`] decides: the work
//! of `zone-etcd maintain` ([`reclaim`]), and the owner's room-making when a write of theirs
//! meets NOSPACE ([`make_room`], [`with_room`]: `revoke`, `zone publish`).
//!
//! It keeps the zone's databases from filling up. For each member, one
//! at a time, it defragments the database file when that gives back much space (sizes
//! before and after are reported); then it lists the alarms and disarms NOSPACE once every
//! member has room under its quota again.
//!
//! When a NOSPACE alarm is active it first compacts the history up to the current revision
//! (the history is what filled the database), and waits until each member has applied that
//! compaction before reading its figures: a member reports its old size in use until then,
//! and would be skipped as "little to gain" with the alarm left armed. It then defragments
//! every member at or near its quota and disarms the alarm in the same run; when it cannot,
//! it names each member that keeps it armed and why (its live data fills the quota, or it
//! could not be reached or defragmented).
//!
//! It refuses while a voter is down (a defragmenting member answers nothing, so it would be
//! a second voter missing) unless `--force`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use zone_io::Error;

use super::report::{MemberReport, Report};
use crate::maintenance::{self, alarms, After, Compaction, DbSize, MemberState, Step};
use crate::node::Node;
use zone_etcd_kit::cluster_api::{self, hex_id, Alarm, Credentials, EndpointReport};
use zone_model::cluster::ClusterMember;

/// For the owner's emergencies (`revoke`, `zone publish`) whose write the zone refused:
/// when NOSPACE is armed, frees the space as `maintain` does (compacts the history,
/// defragments, disarms) and says so in one line. `Ok(true)` when it disarmed NOSPACE (the
/// write may go again), `Ok(false)` when none was armed (the refusal was something else);
/// an error naming why when NOSPACE stays (live data fills the quota), with its fix.
pub fn make_room(config: &Path) -> Result<bool, Error> {
    let node = Node::load(config)?;
    let done = reclaim(&node, false, true)?;
    if !done.nospace_before {
        return Ok(false);
    }
    let compacted = done
        .report
        .compacted_to
        .map(|r| format!(" to revision {r}"))
        .unwrap_or_default();
    done.verdict(config)?;
    println!(
        "zone-etcd: the zone's databases were full (NOSPACE): compacted{compacted} and defragmented; NOSPACE disarmed"
    );
    Ok(true)
}

/// Runs `attempt` (an owner's write: a revocation, a policy); when the zone refused it and
/// NOSPACE was armed, makes room ([`make_room`]) and runs it once more. When room cannot
/// be made, the error says both what was refused and why the alarm stays, with its fix.
pub fn with_room<T>(
    config: &Path,
    mut attempt: impl FnMut() -> Result<T, Error>,
) -> Result<T, Error> {
    let refused = match attempt() {
        Ok(done) => return Ok(done),
        Err(refused) => refused,
    };
    match make_room(config) {
        Ok(true) => attempt(),
        Ok(false) => Err(refused),
        Err(stays) => {
            let mut error =
                Error::new(format!("{}; {}", refused.problem(), stays.problem())).file(config);
            if let Some(fix) = stays.fix_text() {
                error = error.fix(fix);
            }
            Err(error)
        }
    }
}

/// What one maintenance did, for its report and its verdict.
pub struct Done {
    pub report: Report,
    nospace_before: bool,
    alarms_after: Vec<Alarm>,
    kept_by: Vec<maintenance::Blocker>,
    disarm_failure: Option<String>,
    view: zone_model::cluster::ClusterView,
}

/// Maintains the zone of `node` (see the module's doc); `only_nospace`: nothing at all
/// unless NOSPACE is armed.
pub fn reclaim(node: &Node, force: bool, only_nospace: bool) -> Result<Done, Error> {
    let quota = quota_bytes(node);
    let crate::reach::Cluster {
        runtime,
        creds,
        view,
    } = crate::reach::ask_cluster(node)?;
    let reports = runtime.block_on(probe(&view.members, &creds));
    let states: Vec<MemberState> = view.members.iter().map(|m| state(m, &reports)).collect();
    if let Some(down) = maintenance::refusal(&states) {
        if !force {
            return Err(Error::new(format!(
                "voting member{} {} not answering: defragmenting another member now could cost the quorum, so nothing was done",
                if down.len() == 1 { "" } else { "s" },
                down.join(", ")
            ))
            .file(&node.path)
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
    if only_nospace && !nospace {
        let name_of = |a: &Alarm| format!("{} on {}", a.kind, alarm_member(&view, a));
        return Ok(Done {
            report: Report {
                zone: node.zone.clone(),
                quota_bytes: quota,
                compacted_to: None,
                members: Vec::new(),
                alarms_before: alarms_before.iter().map(name_of).collect(),
                alarms_after: alarms_before.iter().map(name_of).collect(),
                nospace_kept_by: Vec::new(),
            },
            nospace_before: false,
            alarms_after: alarms_before,
            kept_by: Vec::new(),
            disarm_failure: None,
            view,
        });
    }

    // The history filled the database: compact it away, everywhere, before judging.
    let (compacted_to, compaction) = if nospace {
        let revision = reports
            .iter()
            .filter_map(|r| r.status.as_ref().ok())
            .map(|s| s.revision)
            .max()
            .unwrap_or(0);
        runtime.block_on(compact_everywhere(
            &view.members,
            &answering,
            &creds,
            revision,
        ))
    } else {
        (None, HashMap::new())
    };

    // Figures taken now show the compaction on every member that confirmed it. One member
    // at a time; the leader last, so the cluster keeps its leader longest.
    let sizes_now = runtime.block_on(probe(&view.members, &creds));
    let leader = sizes_now
        .iter()
        .filter_map(|r| r.status.as_ref().ok())
        .map(|s| s.leader)
        .find(|&id| id != 0);
    let mut order: Vec<&ClusterMember> = view.members.iter().collect();
    order.sort_by_key(|m| Some(m.id) == leader);
    let mut members = Vec::new();
    let mut failures: HashMap<u64, String> = HashMap::new();
    for member in order {
        let before = state(member, &sizes_now).size;
        let asked = compaction.get(&member.id).unwrap_or(&Compaction::NotAsked);
        let step = maintenance::step(before, asked, quota, nospace);
        let (report, failure) = carry_out(&runtime, &creds, member, before, step);
        if let Some(reason) = failure {
            failures.insert(member.id, reason);
        }
        members.push(report);
    }

    // NOSPACE is disarmed once every member has room under its quota again.
    let mut kept_by = Vec::new();
    let mut disarm_failure = None;
    if nospace {
        let after = runtime.block_on(probe(&view.members, &creds));
        let after: Vec<After> = view
            .members
            .iter()
            .map(|m| After {
                name: display_name(m),
                size: state(m, &after).size,
                failure: failures.get(&m.id).cloned(),
            })
            .collect();
        kept_by = maintenance::blockers(&after, quota);
        if kept_by.is_empty() {
            disarm_failure = runtime.block_on(disarm_nospace(&answering, &creds));
        }
    }
    let alarms_after = runtime.block_on(first_alarms(&answering, &creds));
    let name_of = |a: &Alarm| format!("{} on {}", a.kind, alarm_member(&view, a));
    let report = Report {
        zone: node.zone.clone(),
        quota_bytes: quota,
        compacted_to,
        members,
        alarms_before: alarms_before.iter().map(name_of).collect(),
        alarms_after: alarms_after.iter().map(name_of).collect(),
        nospace_kept_by: kept_by.iter().map(ToString::to_string).collect(),
    };
    Ok(Done {
        report,
        nospace_before: nospace,
        alarms_after,
        kept_by,
        disarm_failure,
        view,
    })
}

impl Done {
    /// The error when writes are still refused or a member was not maintained.
    pub fn verdict(self, config: &Path) -> Result<(), Error> {
        let Done {
            report,
            alarms_after,
            kept_by,
            disarm_failure,
            view,
            ..
        } = self;
        let quota = report.quota_bytes;
        let name_of = |a: &Alarm| format!("{} on {}", a.kind, alarm_member(&view, a));
        if alarms_after.iter().any(|a| a.kind == "NOSPACE") {
            let (why, fix) = if !kept_by.is_empty() {
                (
                    report.nospace_kept_by.join("; "),
                    maintenance::advice(&kept_by),
                )
            } else if let Some(reason) = disarm_failure {
                (
                    format!("disarming it failed: {reason}"),
                    "run maintain again".into(),
                )
            } else {
                (
                    "it was raised again after it was disarmed (a write that did not fit)".into(),
                    "run maintain again; if it keeps coming back, raise quota_backend_bytes".into(),
                )
            };
            let others: Vec<String> = alarms_after
                .iter()
                .filter(|a| a.kind != "NOSPACE")
                .map(name_of)
                .collect();
            let also = if others.is_empty() {
                String::new()
            } else {
                format!(" (also active: {})", others.join(", "))
            };
            return Err(Error::new(format!(
                "NOSPACE is still armed, writes are refused: {why}{also}"
            ))
            .fix(fix));
        }
        if !alarms_after.is_empty() {
            let kinds: Vec<&str> = alarms_after.iter().map(|a| a.kind.as_str()).collect();
            return Err(Error::new(format!(
                "alarms still active, writes are refused: {}",
                alarms_after
                    .iter()
                    .map(|a| alarms::why_writes_refused(&a.kind, &alarm_member(&view, a), quota))
                    .collect::<Vec<_>>()
                    .join("; ")
            ))
            .fix(alarms::fix(&kinds, config)));
        }
        let failed: Vec<String> = report
            .members
            .iter()
            .filter(|m| m.action.starts_with("failed"))
            .map(|m| format!("{} ({})", m.name, m.action))
            .collect();
        if !failed.is_empty() {
            return Err(
                Error::new(format!("members not maintained: {}", failed.join(", ")))
                    .fix("bring them back (zone-etcd launch) and run maintain again"),
            );
        }
        Ok(())
    }
}

/// Carries out the step decided for one member: its report line and, when it was not
/// handled, why.
fn carry_out(
    runtime: &tokio::runtime::Runtime,
    creds: &Arc<Credentials>,
    member: &ClusterMember,
    before: Option<DbSize>,
    step: Step,
) -> (MemberReport, Option<String>) {
    let mut report = MemberReport {
        name: display_name(member),
        id: hex_id(member.id),
        size_before: before.map(|s| s.file),
        in_use_before: before.map(|s| s.in_use),
        size_after: before.map(|s| s.file),
        action: String::new(),
    };
    let done = match (step, member.client_urls.first()) {
        (Step::Defragment, Some(endpoint)) => {
            match runtime.block_on(cluster_api::defragment(endpoint, creds)) {
                Ok(()) => {
                    let after = runtime.block_on(probe(std::slice::from_ref(member), creds));
                    report.size_after = state(member, &after).size.map(|s| s.file);
                    Ok("defragmented".to_string())
                }
                Err(reason) => Err(format!("defragmentation failed: {reason}")),
            }
        }
        (Step::Defragment, None) => Err("not answering".to_string()),
        (Step::Skip(reason), _) => Ok(format!("skipped: {reason}")),
        (Step::Fail(reason), _) => Err(reason),
    };
    match done {
        Ok(action) => {
            report.action = action;
            (report, None)
        }
        Err(reason) => {
            report.action = format!("failed: {reason}");
            (report, Some(reason))
        }
    }
}

/// Compacts the history up to `revision` through the first member that takes it, then asks
/// every member in turn to confirm it has applied that compaction (see
/// [`cluster_api::compact`]). Returns the revision compacted to, and where each member (by
/// ID) stands.
async fn compact_everywhere(
    members: &[ClusterMember],
    answering: &[String],
    creds: &Credentials,
    revision: i64,
) -> (Option<i64>, HashMap<u64, Compaction>) {
    let mut done = Err("no member reported a revision".to_string());
    if revision > 0 {
        done = Err("no member answered".to_string());
        for endpoint in answering {
            done = cluster_api::compact(endpoint, creds, revision).await;
            if done.is_ok() {
                break;
            }
        }
    }
    let mut states = HashMap::new();
    if let Err(reason) = done {
        let reason = format!("the compaction to revision {revision} failed: {reason}");
        tracing::warn!("{reason}");
        for member in members {
            states.insert(member.id, Compaction::NotConfirmed(reason.clone()));
        }
        return (None, states);
    }
    for member in members {
        let state = match member.client_urls.first() {
            None => Compaction::NotConfirmed("no client URL".into()),
            Some(endpoint) if !answering.contains(endpoint) => {
                Compaction::NotConfirmed("not answering".into())
            }
            Some(endpoint) => match cluster_api::compact(endpoint, creds, revision).await {
                Ok(()) => Compaction::Applied,
                Err(reason) => Compaction::NotConfirmed(reason),
            },
        };
        states.insert(member.id, state);
    }
    (Some(revision), states)
}

/// Disarms every NOSPACE alarm of `alarms`; the first failure, if any.
async fn disarm_nospace(answering: &[String], creds: &Credentials) -> Option<String> {
    // Each member raises its own NOSPACE alarm when a write reaches it over its quota, so a
    // client still writing while this runs arms more alarms than were listed at the start
    // (a member defragmented last refuses, and names itself, until then). Every member now
    // has room, so the alarms armed now are all disarmed, listed afresh until none is left;
    // a few passes cover a raise that was on its way when the list was read.
    for _ in 0..3 {
        let armed: Vec<Alarm> = first_alarms(answering, creds)
            .await
            .into_iter()
            .filter(|a| a.kind == "NOSPACE")
            .collect();
        if armed.is_empty() {
            return None;
        }
        for alarm in &armed {
            let mut last = Err("no member answered".to_string());
            for endpoint in answering {
                last = cluster_api::disarm(endpoint, creds, alarm).await;
                if last.is_ok() {
                    break;
                }
            }
            if let Err(reason) = last {
                return Some(reason);
            }
        }
    }
    None
}

/// The status of every member's first client URL (not the quorum read: a NOSPACE cluster
/// still serves reads).
async fn probe(members: &[ClusterMember], creds: &Arc<Credentials>) -> Vec<EndpointReport> {
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
pub fn quota_bytes(node: &Node) -> i64 {
    i64::try_from(node.settings.quota_bytes()).unwrap_or(i64::MAX)
}

fn display_name(member: &ClusterMember) -> String {
    if member.name.is_empty() {
        hex_id(member.id)
    } else {
        member.name.clone()
    }
}

fn alarm_member(view: &zone_model::cluster::ClusterView, alarm: &Alarm) -> String {
    view.by_id(alarm.member_id)
        .map_or_else(|| hex_id(alarm.member_id), display_name)
}
