//! `status`'s table: one row per member, then what is wrong, the alarms, the quorum and,
//! while an alarm is active, why writes are refused and the fix.

use super::rows::{AlarmRow, ClusterStatus};
use zone_node::maintenance::human_size;

pub(super) fn table(status: &ClusterStatus) -> String {
    let header = [
        "NAME",
        "ID",
        "ROLE",
        "LEADER",
        "HEALTH",
        "RAFT INDEX",
        "DB SIZE (IN USE)",
        "VERSION",
        "ZONE-ETCD",
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
            m.zone_etcd
                .as_ref()
                .map_or("-".into(), zone_model::release::Record::short),
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
        .and_then(zone_etcd_kit::etcd::Version::parse)
        .is_some_and(zone_etcd_kit::etcd::version::cluster_version_decided);
    let mut out = format!(
        "zone {}, cluster {}, cluster version {}{}{}\n",
        status.zone,
        status.cluster_id,
        status.cluster_version.as_deref().unwrap_or("unknown"),
        if decided {
            ""
        } else {
            " (not decided: etcd sets it once every member has been seen)"
        },
        status
            .storage_version
            .as_deref()
            .map(|v| format!(", storage version {v}"))
            .unwrap_or_default()
    );
    if let Some(target) = &status.etcd_target {
        let moving = status
            .etcd_moving
            .as_deref()
            .map(|m| format!("; moving now: {m}"))
            .unwrap_or_default();
        out.push_str(&format!(
            "release: the zone runs toward etcd {target} (zone-etcd upgrade-etcd){moving}\n"
        ));
    }
    for w in &status.etcd_waiting {
        out.push_str(&format!(
            "waiting: {} moves to etcd {} once {}\n",
            w.member, w.to, w.waits_for
        ));
    }
    if let Some(step) = &status.next_step {
        out.push_str(&format!("next: {step}\n"));
    }
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
    for m in &status.members {
        let Some(links) = m.links.as_ref() else {
            continue;
        };
        if !links.peers.is_empty() {
            out.push_str(&format!(
                "links of {} (round trip p50/p99 over the minute to {}): {}\n",
                m.name,
                links.at,
                links.peers_line()
            ));
        }
        if let Some(disk) = &links.disk {
            out.push_str(&format!(
                "disk of {} (etcd's own figures for its last minute with writes, recorded at {}): {}\n",
                m.name,
                links.at,
                disk.line()
            ));
        }
    }
    for name in &status.not_joined {
        out.push_str(&format!(
            "{name}: in the zone's member list but not in the cluster (run zone-etcd join on it, or take it out of the zone file)\n"
        ));
    }
    if !status.alarms.is_empty() {
        out.push_str(&format!("alarms: {}\n", alarm_list(&status.alarms)));
    }
    for warning in &status.warnings {
        out.push_str(&format!("warning: {warning}\n"));
    }
    match &status.crl_unread {
        Some(why) => out.push_str(&format!(
            "CRL: unknown (the zone's revocations were not read: {why})"
        )),
        None => out.push_str(&zone_node::revocation::summary::line(status.crl.as_ref())),
    }
    out.push('\n');
    if let Some(access) = &status.access {
        out.push_str(&zone_node::policy::standing::line(access));
        out.push('\n');
    }
    out.push_str(&super::quotas::section(status));
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
    // An alarm is news: say what it stops and what clears it.
    if !status.alarms.is_empty() {
        if let Some(why) = &status.writes_refused_because {
            out.push_str(&format!("writes are refused: {why}\n"));
        }
        if let Some(fix) = &status.fix {
            out.push_str(&format!("fix: {fix}\n"));
        }
    }
    out
}

fn alarm_list(alarms: &[AlarmRow]) -> String {
    alarms
        .iter()
        .map(|a| format!("{} on {}", a.alarm, a.member))
        .collect::<Vec<_>>()
        .join(", ")
}
