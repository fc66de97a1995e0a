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

use zone_etcd_kit::cluster_api::{self, hex_id};
use zone_etcd_kit::wal;
use zone_model::config::check_dns_name;
use zone_node::member_removal;
use zone_node::membership;
use zone_node::node::Node;

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
    let cluster = zone_node::reach::ask_cluster(&node)?;
    let Some(member) = member_removal::find(&cluster.view, &node, &target) else {
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
    member_removal::remove(&cluster, &member, &target, force, config)?;
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
