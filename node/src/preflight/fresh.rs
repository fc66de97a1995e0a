//! A launch over an empty data directory: etcd would start a member with
//! `--initial-cluster-state=new`. It may only when the zone has never run, or when a
//! running member lists this node as not started yet (the rules: [`crate::first_start`]).
//! Otherwise it waits (answering on its peer port, so the others can count it) or is
//! refused, in one line naming what happened and the fix.

use std::time::{Duration, Instant};

use zone_io::Error;

use crate::first_start::beacon::Beacon;
use crate::first_start::{record, Refusal, Rendezvous, Step, Why};
use crate::membership;
use crate::node::Node;
use zone_etcd_kit::cluster_api::peer_port::Answer;
use zone_etcd_kit::cluster_api::{self, hex_id, Credentials};
use zone_model::cluster;
use zone_model::cluster::ClusterView;
use zone_model::config::zone::Member;
use zone_model::leaf_paths::LeafPaths;

/// Between two rounds of questions while waiting.
const ROUND: Duration = Duration::from_millis(100);
/// The most the answers go on after this member decided to start, until every member
/// still waiting has read that this one saw it.
const LINGER: Duration = Duration::from_secs(1);
/// How long one question may take while waiting (a member far away; an etcd that just
/// started holds the TLS handshake until it serves its peers).
const ASK_TIMEOUT: Duration = Duration::from_secs(1);
/// How long one question may take once this member decided to start.
const LINGER_ASK_TIMEOUT: Duration = Duration::from_millis(250);
/// How often the same wait is reported again.
const REPORT_EVERY: Duration = Duration::from_secs(60);

/// Returns once this member may start a new data directory; waits for the others as long
/// as it takes.
pub fn may_start(node: &Node, member: &Member, tls: &LeafPaths, token: &str) -> Result<(), Error> {
    refuse_removed_member(node)?;
    let others: Vec<(String, String)> = node
        .members
        .iter()
        .filter(|m| m.node_name != node.name)
        .map(|m| (m.node_name.clone(), cluster::peer_url(m)))
        .collect();
    let ran_before = record::read(&node.state_dir);
    let mut rendezvous = Rendezvous::new(
        &node.name,
        &cluster::peer_url(member),
        (token, cluster::static_cluster_id(&node.members, token)),
        others.iter().map(|(n, _)| n.clone()),
        ran_before.is_some(),
    );
    let started = Instant::now();
    let creds = if others.is_empty() {
        None
    } else {
        Some(Credentials::load_peer(tls).map_err(|e| e.file(&node.path))?)
    };
    // Answering from the start (unless this member ran before: it never takes part in a
    // first start), so members launched together see each other in their first round.
    let beacon = match &creds {
        Some(_) if ran_before.is_none() => Some(Beacon::start(
            &cluster::listen_peer_urls(member, node.listen_address),
            tls,
            &node.zone,
            rendezvous.waiting(),
        )?),
        _ => None,
    };
    let ask = |peers: &[(String, String)], timeout| match &creds {
        Some(creds) => cluster_api::ask_peers(peers, creds, timeout),
        None => Vec::new(),
    };
    let mut reported: Option<(Vec<String>, Instant)> = None;
    loop {
        let answers = ask(&rendezvous.unsettled(&others), ASK_TIMEOUT);
        let mut step = rendezvous.decide(&answers, None);
        // A member running etcd, and the rendezvous did not decide: what the cluster says,
        // if a member serves clients.
        if !matches!(
            step,
            Step::Start(_) | Step::Refuse(Refusal::LostData { .. })
        ) && answers.iter().any(|(_, a)| matches!(a, Answer::Etcd(_)))
        {
            if let Some(view) = serving_view(node, tls) {
                step = rendezvous.decide(&answers, Some(&view));
            }
        }
        if let Some(beacon) = &beacon {
            beacon.tell(rendezvous.waiting());
        }
        match step {
            Step::Start(Why::FirstStart) => {
                if let Some(beacon) = &beacon {
                    tracing::info!(
                        "every member of zone {} is present with an empty data directory: the zone's first start",
                        node.zone
                    );
                    // Answer until every member still waiting has read that this one saw
                    // it (one whose etcd then never served would leave the others
                    // waiting for its next launch), for at most LINGER. Only those not
                    // known to have read it are asked, briefly: one that does not answer
                    // at once has gone ahead (its etcd starting).
                    let until = Instant::now() + LINGER;
                    while Instant::now() < until {
                        let answers = ask(&rendezvous.unconfirmed(&others), LINGER_ASK_TIMEOUT);
                        let done = rendezvous.may_leave(&answers);
                        beacon.tell(rendezvous.waiting());
                        if done {
                            break;
                        }
                        std::thread::sleep(ROUND);
                    }
                }
                return Ok(());
            }
            Step::Start(Why::LateMember { answered_by }) => {
                tracing::info!(
                    "{answered_by} lists {} as a member that has not started yet: starting it",
                    node.name
                );
                return Ok(());
            }
            Step::Refuse(refusal) => {
                return Err(refusal_error(refusal, node, member, token, ran_before))
            }
            Step::Wait(pending) => {
                let names: Vec<String> = pending.iter().map(|(n, _)| n.clone()).collect();
                let due = reported
                    .as_ref()
                    .is_none_or(|(last, at)| *last != names || at.elapsed() >= REPORT_EVERY);
                // The first round finds members launched at the same instant not yet
                // answering: report from the second on.
                if due && (reported.is_some() || started.elapsed() >= ROUND) {
                    report_wait(&pending);
                    reported = Some((names, Instant::now()));
                }
                std::thread::sleep(ROUND);
            }
        }
    }
}

/// The member list from the first other member that serves etcd's client API (it has a
/// quorum and has applied its log), asked briefly; `None` when none does.
fn serving_view(node: &Node, tls: &LeafPaths) -> Option<ClusterView> {
    let creds = Credentials::load(tls).ok()?;
    let runtime = cluster_api::runtime().ok()?;
    runtime
        .block_on(async {
            tokio::time::timeout(
                ASK_TIMEOUT,
                cluster_api::view(&node.other_members(), &creds),
            )
            .await
        })
        .ok()?
        .ok()
}

fn report_wait(pending: &[(String, String)]) {
    let who: Vec<String> = pending
        .iter()
        .map(|(name, why)| format!("{name} ({why})"))
        .collect();
    tracing::warn!(
        "waiting for the zone's first start: a new cluster starts only once every member is present with an empty data directory; not yet: {}. If the zone ran before, nothing starts here until a member that kept its data answers (guide: Restores, including the house burned down)",
        who.join(", ")
    );
}

/// How to bring back a member that lost its data, by whether the others have a quorum.
const LOST_DATA_FIX: &str = "if the other members have a quorum, run zone-etcd join --replace --config <node.toml> here; if a majority of members lost their data, stop etcd on a member that kept it, run zone-etcd snapshot save --config <its node.toml> --from-data there, then zone-etcd restore --config <node.toml> --from <that file> on every member";

fn refusal_error(
    refusal: Refusal,
    node: &Node,
    member: &Member,
    token: &str,
    ran_before: Option<record::Record>,
) -> Error {
    let (data, config) = (&node.data_dir, &node.path);
    match refusal {
        Refusal::LostData { answered_by, id } => Error::new(format!(
            "{answered_by} runs the zone's etcd and lists {} as started member {}, but this data directory holds no member: it lost its data, and starting it empty would split the zone",
            node.name,
            hex_id(id)
        ))
        .file(data)
        .fix(LOST_DATA_FIX)
        .permanent(),
        Refusal::JoinPending { answered_by, id } => Error::new(format!(
            "{answered_by} lists this node as member {}, added by zone-etcd join and not started yet",
            hex_id(id)
        ))
        .file(config)
        .fix("run zone-etcd join --config <node.toml> (it starts the member the cluster added)")
        .permanent(),
        Refusal::NotAMember { answered_by } => Error::new(format!(
            "the zone's running cluster ({answered_by}) has no member with this node's peer URL {}: it started without this node, or removed it",
            cluster::peer_url(member)
        ))
        .file(config)
        .fix("run zone-etcd join --config <node.toml> to add this node to the running cluster")
        .permanent(),
        Refusal::OtherCluster { answered_by, running } => Error::new(format!(
            "{answered_by} runs etcd cluster {}, not the cluster the zone's first start makes ({}): the zone was restored from a snapshot since, or bootstrapped again",
            hex_id(running),
            hex_id(cluster::static_cluster_id(&node.members, token))
        ))
        .file(data)
        .fix("if the zone was restored, run zone-etcd restore --config <node.toml> --from <the same snapshot> here; if it was bootstrapped again, this bundle is from before: use the new one")
        .permanent(),
        Refusal::RanBefore { waiting, silent } => {
            let record = ran_before.unwrap_or_else(record::Record::unknown);
            let mut others = Vec::new();
            if !silent.is_empty() {
                others.push(format!("{} silent", silent.join(", ")));
            }
            if !waiting.is_empty() {
                others.push(format!(
                    "{} waiting for a first start (empty too)",
                    waiting.join(", ")
                ));
            }
            Error::new(format!(
                "this node ran member {} of cluster {} (recorded in {}), but its data directory holds no member and no etcd member answers{}: it lost its data, and starting it would begin a new, empty zone",
                record.member_id,
                record.cluster_id,
                record::path(&node.state_dir).display(),
                if others.is_empty() { String::new() } else { format!(" ({})", others.join("; ")) }
            ))
            .file(data)
            .fix(format!(
                "start the members that kept their data: then {LOST_DATA_FIX}; to begin an empty zone on purpose, move {} aside on every member",
                record::FILE
            ))
        }
    }
}

/// A node whose member was removed (its data moved aside by `leave` or a restart) must
/// not bootstrap a new cluster from an empty data directory: it joins again instead.
fn refuse_removed_member(node: &Node) -> Result<(), Error> {
    match membership::removed_data(&node.data_dir).last() {
        None => Ok(()),
        Some(removed) => Err(Error::new(format!(
            "this node's member was removed from the cluster (its data is in {}); a new bootstrap here would split the zone",
            removed.display()
        ))
        .file(&node.data_dir)
        .fix("run zone-etcd join to become a member again (or delete the removed data to bootstrap a new zone)")
        .permanent()),
    }
}
