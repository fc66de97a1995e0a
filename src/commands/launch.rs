//! `zone-etcd launch`: load the bundle, make sure valid leaves are current, derive the
//! cluster, and replace this process with etcd (same PID, so a supervisor's signals and
//! `Type=notify` reach etcd directly).

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use zone_pki::Error;

use crate::cluster::{self, ClusterState};
use crate::config::node::Node;
use crate::etcd::{self, EtcdPlan};
use crate::leaves::{self, LeafPaths, Outcome};

pub fn run(config: &Path, dry_run: bool) -> Result<(), Error> {
    let node = Node::load(config)?;
    let Some(member) = node.member() else {
        println!(
            "zone-etcd: {} is not an etcd member of zone {}; not starting etcd here",
            node.name, node.zone
        );
        return Ok(());
    };
    let identity = node.identity();
    node.check_node_ca_covers(&identity)
        .map_err(|e| e.file(config))?;
    let binary = etcd::find_binary(node.etcd_bin.as_deref(), config)?;
    let tls = LeafPaths::for_state_dir(&node.state_dir);
    let plan = EtcdPlan {
        zone: &node.zone,
        member,
        members: &node.members,
        token: cluster::cluster_token(&node.zone, &node.members, &node.zone_ca_info.fingerprint()),
        state: cluster_state(&node.data_dir),
        data_dir: &node.data_dir,
        tls: &tls,
    };
    let args = etcd::args(&plan);
    if dry_run {
        println!("{}", binary.display());
        for arg in &args {
            println!("{arg}");
        }
        return Ok(());
    }
    if let (_, Outcome::Issued { reason }) = leaves::ensure(&node, &identity)? {
        tracing::info!("issued new server, peer and client certificates ({reason})");
    }
    tracing::info!(
        "exec {} as member {} of zone {}",
        binary.display(),
        member.node_name,
        node.zone
    );
    let err = Command::new(&binary).args(&args).exec();
    Err(Error::io("exec etcd", &binary, &err))
}

/// `new` for a fresh data directory; `existing` once it holds a member (etcd then
/// ignores the initial cluster and restarts from its own log).
pub fn cluster_state(data_dir: &Path) -> ClusterState {
    if data_dir.join("member").is_dir() {
        ClusterState::Existing
    } else {
        ClusterState::New
    }
}
