//! `zone-etcd status`: the running cluster's member table, from this node's client
//! certificate: each member's ID, URLs, role, leader, raft index, database size (file and
//! in use), health, TLS handshake time and etcd version, asked of every member at once,
//! with the cluster's version, the active alarms, and the known defects of the etcd
//! releases it runs.
//!
//! Healthy means the member completes a TLS handshake with the zone's certificates,
//! answers its status without errors and, for a voter, serves a linearizable read (which
//! needs a leader and a quorum). An active alarm (NOSPACE, CORRUPT) is not a member's ill
//! health: the members still answer, lead and read; the cluster refuses writes, and
//! `status` says so apart, with the cause and the fix. The exit status is non-zero when
//! quorum is lost, any member is unhealthy or an alarm is active, for scripts and monitors.

mod quotas;
pub(crate) mod records;
mod rows;
mod table;

use std::path::Path;

use zone_io::Error;

use rows::{AlarmRow, ClusterStatus, MemberRow};
use zone_etcd_kit::cluster_api::{self, hex_id, EndpointReport};
use zone_model::cluster::ClusterMember;
use zone_node::maintenance::alarms;
use zone_node::node::Node;
use zone_node::revocation::summary;

pub fn run(config: &Path, json: bool) -> Result<(), Error> {
    let node = Node::load(config)?;
    let zone_node::reach::Cluster {
        runtime,
        creds,
        view,
    } = zone_node::reach::ask_cluster(&node)?;
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
    // Without a leader no linearizable read goes through: the zone's records are read
    // from the first member's copy that answers (what a flapping zone needs most: the
    // links' figures and the timeouts that fit them), and status says so.
    let serializable = status.leader.is_none();
    if serializable && !answering.is_empty() {
        status.warnings.push(
            "no leader: the CRL and the members' links and disks below are one member's copy, possibly behind".into(),
        );
    }
    // One client for every record below (balanced over the members that answered): each
    // read its own client made three connections, 32 in all for one `status`.
    let reader = if answering.is_empty() {
        None
    } else {
        runtime
            .block_on(cluster_api::connect_many(
                &answering,
                &creds,
                cluster_api::REQUEST_TIMEOUT,
            ))
            .ok()
    };
    match records::zone_crl(&node, &runtime, reader.as_ref(), serializable) {
        Ok(crl) => status.crl = crl,
        Err(why) => status.crl_unread = Some(why),
    }
    // A member that left keeps its powers until the owner revokes it (issue 68).
    if let (None, Some(reader)) = (&status.crl_unread, &reader) {
        let left = runtime.block_on(records::read_left(reader));
        let in_cluster: Vec<String> = view.members.iter().map(|m| m.name.clone()).collect();
        let revoked = status
            .crl
            .as_ref()
            .map(|c| c.revoked.clone())
            .unwrap_or_default();
        for (name, record) in zone_model::left::unrevoked(&left, &in_cluster, &revoked) {
            status.warnings.push(format!(
                "{name} left the cluster ({}) but is not revoked: its node CA{} still make certificates the zone accepts; if it left for good, on the owner's machine: zone-etcd revoke --ca CA_DIR --node {name} --config {}",
                record.at,
                if node.identities.is_some() { " and signer" } else { "" },
                config.display()
            ));
        }
    }
    if let (Ok(roots), Some(reader)) = (
        zone_model::config::trust::trusted_roots(&node.zone_ca_pem),
        &reader,
    ) {
        status.access = runtime.block_on(zone_node::policy::standing::read(&node, &roots, reader));
    }
    quotas::fill(
        &mut status,
        match &reader {
            Some(reader) => {
                runtime.block_on(zone_node::quota_records::read_quotas(reader, serializable))
            }
            None => Err("no member answered".into()),
        },
    );
    let releases = match &reader {
        Some(reader) => runtime.block_on(zone_agent::recorded::read_all(reader)),
        None => None,
    };
    for (member, record) in releases.into_iter().flatten() {
        if let Some(row) = status.members.iter_mut().find(|m| m.name == member) {
            row.zone_etcd = Some(record);
        }
    }
    let links = zone_model::links::with_own(
        match &reader {
            Some(reader) => runtime.block_on(records::read_links(reader, serializable)),
            None => Vec::new(),
        },
        zone_agent::links::kept(&node.state_dir),
    );
    for record in links {
        if let Some(row) = status.members.iter_mut().find(|m| m.name == record.member) {
            row.links = Some(record);
        }
    }
    let measured: Vec<zone_model::links::Links> = status
        .members
        .iter()
        .filter_map(|m| m.links.clone())
        .collect();
    if let Some(warning) = zone_model::links::below(
        &measured,
        node.settings.heartbeat_ms(),
        node.settings.election_ms(),
    ) {
        status.warnings.push(warning);
    }
    status.warnings.extend(zone_model::disk_minute::slow(
        measured
            .iter()
            .filter_map(|l| Some((l.member.as_str(), l.disk.as_ref()?))),
    ));
    if let Some(mixed) = zone_model::release::mixed(&recorded(&status)) {
        let runs: Vec<String> = mixed
            .iter()
            .map(|(build, members)| format!("{build} on {}", members.join(", ")))
            .collect();
        status.warnings.push(format!(
            "the members run different zone-etcd releases: {}: finish moving them, one member at a time (docs/src/upgrade.md)",
            runs.join("; ")
        ));
    }
    if let Some((target, turn, waits)) =
        runtime.block_on(zone_node::rollout::standing(&answering, &creds))
    {
        status.etcd_target = target.map(|t| t.to);
        status.etcd_moving = turn.map(|t| format!("{} -> {}", t.member, t.to));
        status.etcd_waiting = rows::waiting(&status.members, waits);
    }
    if let Some((problem, fix)) = status.crl.as_ref().and_then(summary::overdue) {
        status.warnings.push(format!("{problem}: {fix}"));
    }
    let quota = zone_node::maintenance::reclaim::quota_bytes(&node);
    status.writes_refused_because = writes_refused_because(&status, quota);
    status.writes_refused = status.writes_refused_because.is_some();
    let verdict = verdict(&status, config);
    status.fix = verdict.as_ref().map(|(_, fix)| fix.clone());
    if json {
        let text = serde_json::to_string_pretty(&status)
            .map_err(|e| Error::new(format!("cannot write the output: {e}")))?;
        println!("{text}");
    } else {
        print!("{}", table::table(&status));
    }
    match verdict {
        None => Ok(()),
        Some((problem, fix)) => Err(Error::new(problem).fix(fix)),
    }
}

/// The members' recorded zone-etcd releases, by name.
fn recorded(status: &ClusterStatus) -> Vec<(String, zone_model::release::Record)> {
    status
        .members
        .iter()
        .filter_map(|m| Some((m.name.clone(), m.zone_etcd.clone()?)))
        .collect()
}

/// Why writes are refused, if they are: each active alarm with its cause, and a lost
/// quorum.
fn writes_refused_because(status: &ClusterStatus, quota: i64) -> Option<String> {
    let mut reasons: Vec<String> = status
        .alarms
        .iter()
        .map(|a| alarms::why_writes_refused(&a.alarm, &a.member, quota))
        .collect();
    if !status.quorum {
        reasons.push("no quorum: no voting member serves a linearizable read".into());
    }
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

/// What is wrong with the cluster and its fix; `None` when it is sound.
fn verdict(status: &ClusterStatus, config: &Path) -> Option<(String, String)> {
    let unhealthy: Vec<&str> = status
        .members
        .iter()
        .filter(|m| !m.healthy)
        .map(|m| m.name.as_str())
        .collect();
    let refused = status.writes_refused_because.as_deref().unwrap_or_default();
    if status.quorum && unhealthy.is_empty() {
        if status.alarms.is_empty() {
            return None;
        }
        let kinds: Vec<&str> = status.alarms.iter().map(|a| a.alarm.as_str()).collect();
        return Some((
            format!("active alarm, writes are refused: {refused}"),
            alarms::fix(&kinds, config),
        ));
    }
    let mut problem = if status.quorum {
        format!("unhealthy members: {}", unhealthy.join(", "))
    } else {
        format!(
            "quorum lost: {} of {} voting members answering, none serves a quorum read (unhealthy: {})",
            status.answering_voters,
            status.voters,
            unhealthy.join(", ")
        )
    };
    if !status.alarms.is_empty() {
        problem += &format!("; active alarm, writes are refused: {refused}");
    }
    Some((problem, "start the stopped members (zone-etcd launch on each), or remove dead ones (zone-etcd leave --node NAME)".into()))
}

fn summarise(
    node: &Node,
    view: &zone_model::cluster::ClusterView,
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
    let storage_version = reports
        .iter()
        .filter_map(|r| r.versions.as_ref())
        .find_map(|v| v.storage.clone());
    let downgrade = reports
        .iter()
        .filter_map(|r| r.status.as_ref().ok())
        .find_map(|s| {
            s.downgrade_to
                .as_deref()
                .and_then(zone_etcd_kit::etcd::Version::parse)
        });
    let next_step = cluster_version
        .as_deref()
        .and_then(zone_etcd_kit::etcd::Version::parse)
        .and_then(|cluster| {
            let running: Vec<(String, zone_etcd_kit::etcd::Version)> = members
                .iter()
                .filter_map(|m| {
                    Some((
                        m.name.clone(),
                        zone_etcd_kit::etcd::Version::parse(m.version.as_deref()?)?,
                    ))
                })
                .collect();
            zone_etcd_kit::etcd::path::next_step(cluster, &running, downgrade)
        });
    let warnings = members
        .iter()
        .filter_map(|m| {
            let version = zone_etcd_kit::etcd::Version::parse(m.version.as_deref()?)?;
            let profile = zone_etcd_kit::etcd::version::profile(version).ok()?;
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
                && view
                    .by_peer_url(&zone_model::cluster::peer_url(m))
                    .is_none()
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
        storage_version,
        next_step,
        warnings,
        members,
        not_joined,
        ..ClusterStatus::default()
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
        zone_etcd: None,
        links: None,
        handshake_ms: mine
            .iter()
            .find_map(|r| r.handshake.as_ref().ok())
            .map(|d| (d.as_secs_f64() * 1000.0 * 100.0).round() / 100.0),
        problem,
    }
}
