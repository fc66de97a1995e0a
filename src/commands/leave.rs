//! `zone-etcd leave`: remove a member from the running cluster (this node's by default),
//! then move the removed member's data directory aside, so that it can never start again
//! with stale data.
//!
//! It refuses to remove the last member, and to remove a voter when the voters left would
//! not have a healthy quorum (unless `--force`): a removal that loses quorum cannot be
//! undone without rebuilding the cluster from a snapshot. A node removed from elsewhere
//! (`--node`) has its data moved aside by its own next `launch`.

use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::{Duration, Instant};

use zone_io::Error;

use crate::membership;
use crate::node::Node;
use zone_etcd_kit::cluster_api::{self, hex_id};
use zone_etcd_kit::wal;
use zone_model::cluster::{ClusterMember, ClusterView};
use zone_model::config::check_dns_name;

/// How long to wait for this node's etcd to stop after its own removal (etcd stops by
/// itself once it applies it) before its data directory is moved anyway.
const STOP_WAIT: Duration = Duration::from_secs(15);

pub fn run(config: &Path, target: Option<&str>, force: bool) -> Result<(), Error> {
    let node = Node::load(config)?;
    let target = target.unwrap_or(&node.name).to_string();
    check_dns_name(&target).map_err(|p| {
        Error::new(format!("node name {p}"))
            .field("--node")
            .fix("give the member's node name, e.g. node2.example.zone")
    })?;
    let cluster = crate::access::ask_cluster(&node)?;
    let Some(member) = find(&cluster.view, &node, &target) else {
        let names: Vec<String> = cluster
            .view
            .members
            .iter()
            .map(|m| {
                if m.started() {
                    m.name.clone()
                } else {
                    hex_id(m.id)
                }
            })
            .collect();
        return Err(Error::new(format!(
            "{target} is not a member of the running cluster (members: {})",
            names.join(", ")
        ))
        .field("--node")
        .fix("give one of the members' names (see zone-etcd status)"));
    };
    remove(&cluster, &member, &target, force, config)?;
    // What it takes with it: nothing yet. Its node CA (and, with [access], its signer)
    // still make certificates the zone accepts, and in a zone of least privilege its own
    // identity is root while the published zone document lists it.
    println!(
        "zone-etcd: {target} keeps its powers until the owner revokes it: its node CA{} still make certificates the zone accepts{}. If it left for good, on the owner's machine: zone-etcd revoke --ca CA_DIR --node {target} --config NODE_FILE{} (zone-etcd status warns until then)",
        if node.identities.is_some() { " and its signer" } else { "" },
        if node.access.enforce { ", and its own is etcd's root while the published zone document lists it" } else { "" },
        if node.access.enforce { ", then take it out of the zone file and publish it (zone-etcd zone publish --ca CA_DIR --zone ZONE_FILE --config NODE_FILE)" } else { "" },
    );

    if target != node.name {
        println!(
            "zone-etcd: its etcd stops by itself; its next `zone-etcd launch` moves its data aside and refuses to start (run `zone-etcd join` there to come back)"
        );
        return Ok(());
    }
    let own = wal::local_member(&node.data_dir).ok().flatten();
    if own.is_some_and(|local| local.member_id != member.id) {
        // The data belongs to another member (not the one removed): leave it be.
        return Ok(());
    }
    if let Some(url) = member.client_urls.first() {
        if !wait_until_closed(url, STOP_WAIT) {
            tracing::warn!(
                "etcd still serves {url} after {STOP_WAIT:?}; moving its data aside anyway"
            );
        }
    }
    if let Some(moved) = membership::move_aside(&node.data_dir, member.id)? {
        println!(
            "zone-etcd: moved its data directory to {} (kept, never used again)",
            moved.display()
        );
    }
    Ok(())
}

/// The running cluster's member for node `target`: by name, or (a member that never
/// started has no name yet) by the peer URL the zone file gives it.
pub fn find(view: &ClusterView, node: &Node, target: &str) -> Option<ClusterMember> {
    let by_url = node
        .members
        .iter()
        .find(|m| m.node_name == target)
        .and_then(|m| view.by_peer_url(&zone_model::cluster::peer_url(m)));
    view.by_name(target).or(by_url).cloned()
}

/// Removes `member` (node `target`) from the cluster, unless the voters left would not
/// have a healthy quorum (then only with `force`) or it is the last member.
pub fn remove(
    cluster: &crate::access::Cluster,
    member: &ClusterMember,
    target: &str,
    force: bool,
    config: &Path,
) -> Result<(), Error> {
    let crate::access::Cluster {
        runtime,
        creds,
        view,
    } = cluster;
    let voters: Vec<(String, bool)> = view
        .members
        .iter()
        .filter(|m| !m.learner)
        .flat_map(|m| m.client_urls.iter().map(|u| (u.clone(), true)))
        .collect();
    let reports = runtime.block_on(cluster_api::probe_all(voters, creds));
    let healthy: Vec<u64> = view
        .members
        .iter()
        .filter(|m| cluster_api::member_problem(m, &reports).is_none())
        .map(|m| m.id)
        .collect();
    if let Some(refusal) = membership::leave_refusal(view, member.id, &healthy) {
        if force && view.members.len() > 1 {
            tracing::warn!("removing {target} anyway (--force): {refusal}");
        } else {
            return Err(Error::new(format!("not removing {target}: {refusal}"))
                .field("--node")
                .fix(if view.members.len() > 1 {
                    "bring the unhealthy members back first (see zone-etcd status), or pass --force to remove it anyway"
                } else {
                    "stop its etcd instead; a zone needs at least one member"
                }));
        }
    }

    // Ask the members that stay, so the answer does not depend on the one leaving.
    let mut stay: Vec<String> = view
        .members
        .iter()
        .filter(|m| m.id != member.id)
        .flat_map(|m| m.client_urls.iter().cloned())
        .collect();
    stay.extend(member.client_urls.iter().cloned());
    runtime
        .block_on(cluster_api::remove(&stay, creds, member.id))
        .map_err(|reason| {
            Error::new(format!("the cluster refused to remove {target}: {reason}"))
                .file(config)
                .fix("see zone-etcd status; a cluster without quorum cannot change its members")
        })?;
    forget(cluster, &stay, member, target);
    let left = view
        .members
        .iter()
        .filter(|m| !m.learner && m.id != member.id)
        .count();
    println!(
        "zone-etcd: removed {target} (member {}) from the cluster; {left} voting members remain",
        hex_id(member.id)
    );
    Ok(())
}

/// Deletes what the removed member's keeper kept in the zone about it: its release record,
/// its move's wait and its links, so `status` and the release alerts no longer count it;
/// records that it left ([`zone_model::left::PREFIX`]), so `status` warns until the
/// owner revokes it. Tried again
/// for up to [`FORGET_WITHIN`]: removing the leader starts an election, and the first
/// tries right after it find no leader. Best effort (the removal stands either way): a
/// failure is a warning, and its next `join` puts the record again.
/// How long `leave` tries to delete the removed member's records.
const FORGET_WITHIN: Duration = Duration::from_secs(15);

fn forget(
    cluster: &crate::access::Cluster,
    endpoints: &[String],
    member: &ClusterMember,
    target: &str,
) {
    let keys = [
        format!("{}{target}", zone_model::release::PREFIX),
        format!("{}{target}", crate::rollout::WAITING_PREFIX),
        format!("{}{target}", zone_model::links::PREFIX),
    ];
    let stay: Vec<String> = endpoints
        .iter()
        .filter(|e| !member.client_urls.contains(e))
        .cloned()
        .collect();
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let left = zone_model::left::Left::at(&now).render();
    let left_key = format!("{}{target}", zone_model::left::PREFIX);
    let delete_all = || async {
        let client =
            cluster_api::connect_many(&stay, &cluster.creds, cluster_api::CALL_DEADLINE).await?;
        for key in &keys {
            let key = key.as_str();
            cluster_api::ask(&client, |mut c| async move { c.delete(key, None).await }).await?;
        }
        let (key, value) = (left_key.as_str(), left.as_str());
        cluster_api::ask(
            &client,
            |mut c| async move { c.put(key, value, None).await },
        )
        .await?;
        Ok::<(), String>(())
    };
    let done = cluster.runtime.block_on(async {
        let deadline = Instant::now() + FORGET_WITHIN;
        loop {
            match delete_all().await {
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                done => break done,
            }
        }
    });
    if let Err(problem) = done {
        tracing::warn!("{target} left, but its release record stays in the zone: {problem}");
    }
}

/// Waits until nothing accepts connections at `url`'s address (etcd has stopped).
fn wait_until_closed(url: &str, limit: Duration) -> bool {
    let addr = cluster_api::host_port(url)
        .and_then(|(host, port)| (host.as_str(), port).to_socket_addrs().ok())
        .and_then(|mut a| a.next());
    let Some(addr) = addr else {
        return true;
    };
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}
