//! `zone-etcd status`: the running cluster's member table, from this node's client
//! certificate: each member's ID, URLs, role, leader, raft index, database size (file and
//! in use), health, TLS handshake time and etcd version, asked of every member at once,
//! with the cluster's version, the active alarms, and the known defects of the etcd
//! releases it runs.
//!
//! Healthy means the member completes a TLS handshake with the zone's certificates,
//! answers its status without errors and, for a voter, serves a linearizable read (which
//! needs a leader and a quorum). The exit status is non-zero when quorum is lost or any
//! member is unhealthy, for scripts and monitors.

use std::path::Path;

use serde::Serialize;
use zone_pki::Error;

use crate::cluster_api::{self, hex_id, ClusterMember, EndpointReport};
use crate::config::node::Node;

/// One member's row (also the JSON output).
#[derive(Debug, Serialize)]
struct MemberRow {
    name: String,
    id: String,
    role: &'static str,
    leader: bool,
    healthy: bool,
    peer_urls: Vec<String>,
    client_urls: Vec<String>,
    raft_index: Option<u64>,
    raft_term: Option<u64>,
    db_size: Option<i64>,
    /// What of the database file holds data (the rest is free until a defragmentation).
    db_size_in_use: Option<i64>,
    version: Option<String>,
    handshake_ms: Option<f64>,
    problem: Option<String>,
}

#[derive(Debug, Serialize)]
struct AlarmRow {
    member: String,
    alarm: String,
}

#[derive(Debug, Serialize)]
struct ClusterStatus {
    zone: String,
    cluster_id: String,
    leader: Option<String>,
    voters: usize,
    healthy_voters: usize,
    /// Voters that answered their status, with or without a quorum behind them.
    answering_voters: usize,
    /// Whether a linearizable read went through: a leader with a quorum exists.
    quorum: bool,
    /// How many more voters may fail before quorum is lost (0 when it already is).
    fault_tolerance: usize,
    /// etcd's cluster version (the lowest minor series among the members), as a member
    /// reports it.
    cluster_version: Option<String>,
    /// Known defects of the etcd releases the members run (the launcher's version table).
    warnings: Vec<String>,
    /// The cluster's active alarms (NOSPACE: a database reached its quota and writes are
    /// refused; CORRUPT: the members' data disagree).
    alarms: Vec<AlarmRow>,
    members: Vec<MemberRow>,
    /// Members of the zone's list that the cluster does not know (they still have to join).
    not_joined: Vec<String>,
}

pub fn run(config: &Path, json: bool) -> Result<(), Error> {
    let node = Node::load(config)?;
    let super::Cluster {
        runtime,
        creds,
        view,
    } = super::ask_cluster(&node, config)?;
    let probes: Vec<(String, bool)> = view
        .members
        .iter()
        .flat_map(|m| m.client_urls.iter().map(|u| (u.clone(), !m.learner)))
        .collect();
    let reports = runtime.block_on(cluster_api::probe_all(probes, &creds));
    // Alarms are the cluster's: ask the members that answered, the first that tells wins.
    let answering: Vec<String> = reports
        .iter()
        .filter(|r| r.status.is_ok())
        .map(|r| r.endpoint.clone())
        .collect();
    let alarms = runtime.block_on(async {
        for endpoint in &answering {
            if let Ok(alarms) = cluster_api::alarms(endpoint, &creds).await {
                return alarms;
            }
        }
        Vec::new()
    });
    let mut status = summarise(&node, &view, &reports);
    status.alarms = alarms
        .iter()
        .map(|a| AlarmRow {
            member: view
                .by_id(a.member_id)
                .map_or_else(|| hex_id(a.member_id), |m| m.name.clone()),
            alarm: a.kind.clone(),
        })
        .collect();
    if json {
        let text = serde_json::to_string_pretty(&status)
            .map_err(|e| Error::new(format!("cannot write the output: {e}")))?;
        println!("{text}");
    } else {
        print!("{}", table(&status));
    }
    if status.quorum && status.members.iter().all(|m| m.healthy) {
        return Ok(());
    }
    if status.quorum && !status.alarms.is_empty() && status.members.iter().all(|m| m.healthy) {
        return Err(
            Error::new(format!("active alarms: {}", alarm_list(&status.alarms)))
                .fix(format!("zone-etcd maintain --config {}", config.display())),
        );
    }
    let unhealthy: Vec<&str> = status
        .members
        .iter()
        .filter(|m| !m.healthy)
        .map(|m| m.name.as_str())
        .collect();
    Err(Error::new(if status.quorum {
        format!("unhealthy members: {}", unhealthy.join(", "))
    } else {
        format!(
            "quorum lost: {} of {} voting members answering, none serves a quorum read (unhealthy: {})",
            status.answering_voters,
            status.voters,
            unhealthy.join(", ")
        )
    })
    .fix("start the stopped members (zone-etcd launch on each), or remove dead ones (zone-etcd leave --node NAME)"))
}

fn summarise(
    node: &Node,
    view: &cluster_api::ClusterView,
    reports: &[EndpointReport],
) -> ClusterStatus {
    // Only a member that just served a quorum read knows the leader for sure; one cut off
    // from its peers may still name itself.
    let leader_id = reports
        .iter()
        .filter(|r| r.healthy() && r.quorum_read.is_some())
        .filter_map(|r| r.status.as_ref().ok())
        .map(|s| s.leader)
        .find(|&id| id != 0);
    let quorum = reports
        .iter()
        .any(|r| matches!(r.quorum_read, Some(Ok(()))));
    let members: Vec<MemberRow> = view
        .members
        .iter()
        .map(|m| row(m, reports, leader_id))
        .collect();
    let voters = members.iter().filter(|m| m.role == "voter").count();
    let healthy_voters = members
        .iter()
        .filter(|m| m.role == "voter" && m.healthy)
        .count();
    let answering_voters = members
        .iter()
        .filter(|m| m.role == "voter" && m.raft_index.is_some())
        .count();
    let fault_tolerance = healthy_voters.saturating_sub(voters / 2 + 1);
    let fault_tolerance = if quorum { fault_tolerance } else { 0 };
    let cluster_version = reports
        .iter()
        .filter_map(|r| r.versions.as_ref())
        .map(|v| v.cluster.clone())
        .next();
    let warnings = members
        .iter()
        .filter_map(|m| {
            let version = crate::etcd::Version::parse(m.version.as_deref()?)?;
            let profile = crate::etcd::version::profile(version).ok()?;
            Some(
                profile
                    .warnings
                    .into_iter()
                    .map(|w| format!("{}: {w}", m.name))
                    .collect::<Vec<_>>(),
            )
        })
        .flatten()
        .collect();
    let not_joined = node
        .members
        .iter()
        .filter(|m| {
            view.by_name(&m.node_name).is_none()
                && view.by_peer_url(&crate::cluster::peer_url(m)).is_none()
        })
        .map(|m| m.node_name.clone())
        .collect();
    ClusterStatus {
        zone: node.zone.clone(),
        cluster_id: hex_id(view.cluster_id),
        leader: leader_id
            .and_then(|id| view.by_id(id))
            .map(|m| m.name.clone()),
        voters,
        healthy_voters,
        answering_voters,
        quorum,
        fault_tolerance,
        cluster_version,
        warnings,
        alarms: Vec::new(),
        members,
        not_joined,
    }
}

fn row(m: &ClusterMember, reports: &[EndpointReport], leader: Option<u64>) -> MemberRow {
    let mine: Vec<&EndpointReport> = reports
        .iter()
        .filter(|r| m.client_urls.contains(&r.endpoint))
        .collect();
    let status = mine.iter().find_map(|r| r.status.as_ref().ok());
    let problem = cluster_api::member_problem(m, reports);
    MemberRow {
        name: if m.started() {
            m.name.clone()
        } else {
            "(not started)".into()
        },
        id: hex_id(m.id),
        role: if m.learner { "learner" } else { "voter" },
        leader: leader == Some(m.id),
        healthy: problem.is_none(),
        peer_urls: m.peer_urls.clone(),
        client_urls: m.client_urls.clone(),
        raft_index: status.map(|s| s.raft_index),
        raft_term: status.map(|s| s.raft_term),
        db_size: status.map(|s| s.db_size),
        db_size_in_use: status.map(|s| s.db_size_in_use),
        version: status.map(|s| s.version.clone()),
        handshake_ms: mine
            .iter()
            .find_map(|r| r.handshake.as_ref().ok())
            .map(|d| (d.as_secs_f64() * 1000.0 * 100.0).round() / 100.0),
        problem,
    }
}

fn table(status: &ClusterStatus) -> String {
    let header = [
        "NAME",
        "ID",
        "ROLE",
        "LEADER",
        "HEALTH",
        "RAFT INDEX",
        "DB SIZE (IN USE)",
        "VERSION",
        "TLS",
        "CLIENT URL",
        "PEER URL",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
    for m in &status.members {
        rows.push(vec![
            m.name.clone(),
            m.id.clone(),
            m.role.into(),
            if m.leader { "*".into() } else { String::new() },
            if m.healthy { "ok" } else { "UNHEALTHY" }.into(),
            m.raft_index.map_or("-".into(), |i| i.to_string()),
            match (m.db_size, m.db_size_in_use) {
                (Some(size), Some(used)) => format!("{} ({})", human_size(size), human_size(used)),
                _ => "-".into(),
            },
            m.version.clone().unwrap_or_else(|| "-".into()),
            m.handshake_ms
                .map_or("-".into(), |ms| format!("{ms:.2} ms")),
            m.client_urls.join(","),
            m.peer_urls.join(","),
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let decided = status
        .cluster_version
        .as_deref()
        .and_then(crate::etcd::Version::parse)
        .is_some_and(crate::etcd::version::cluster_version_decided);
    let mut out = format!(
        "zone {}, cluster {}, cluster version {}{}\n",
        status.zone,
        status.cluster_id,
        status.cluster_version.as_deref().unwrap_or("unknown"),
        if decided {
            ""
        } else {
            " (not decided: etcd sets it once every member has been seen)"
        }
    );
    for r in &rows {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    for m in status.members.iter().filter(|m| m.problem.is_some()) {
        out.push_str(&format!(
            "{}: {}\n",
            m.name,
            m.problem.as_deref().unwrap_or_default()
        ));
    }
    for name in &status.not_joined {
        out.push_str(&format!(
            "{name}: in the zone's member list but not in the cluster (run zone-etcd join on it, or take it out of the zone file)\n"
        ));
    }
    if !status.alarms.is_empty() {
        out.push_str(&format!(
            "alarms: {} (writes are refused while NOSPACE is active; zone-etcd maintain clears it)\n",
            alarm_list(&status.alarms)
        ));
    }
    for warning in &status.warnings {
        out.push_str(&format!("warning: {warning}\n"));
    }
    out.push_str(&if status.quorum {
        format!(
            "quorum: yes ({} of {} voters healthy, {} more may fail), leader: {}\n",
            status.healthy_voters,
            status.voters,
            status.fault_tolerance,
            status.leader.as_deref().unwrap_or("none")
        )
    } else {
        format!(
            "quorum: LOST ({} of {} voters answering), leader: none\n",
            status.answering_voters, status.voters
        )
    });
    out
}

fn alarm_list(alarms: &[AlarmRow]) -> String {
    alarms
        .iter()
        .map(|a| format!("{} on {}", a.alarm, a.member))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn human_size(bytes: i64) -> String {
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

    #[test]
    fn sizes_read_like_etcdctl() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(20480), "20.0 KiB");
        assert_eq!(human_size(3 * 1024 * 1024 + 1024 * 512), "3.5 MiB");
    }
}
