//! `zone-etcd launch`: load the bundle, make sure valid leaves are current, derive the
//! cluster, and replace this process with etcd (same PID, so a supervisor's signals and
//! `Type=notify` reach etcd directly).

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use zone_pki::{Error, LeafKind};

use crate::cluster::{self, ClusterState};
use crate::config::node::Node;
use crate::etcd::{self, EtcdPlan};
use crate::inspection;
use crate::leaves::{self, LeafPaths, Outcome};
use crate::nameservice::CachePolicy;

/// How `--dry-run` prints etcd's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DryRunFormat {
    /// The binary, then one `--flag=value` argument per line.
    Args,
    /// `ETCD_*=value` lines for a systemd EnvironmentFile (the binary in a comment).
    Env,
}

pub fn run(config: &Path, dry_run: bool, format: DryRunFormat) -> Result<(), Error> {
    let policy = if dry_run {
        CachePolicy::ReadOnly
    } else {
        CachePolicy::Update
    };
    let node = Node::load_with(config, policy)?;
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
    let tls = match &node.external {
        Some(paths) => paths.clone(),
        None => LeafPaths::for_state_dir(&node.state_dir),
    };
    let plan = EtcdPlan {
        zone: &node.zone,
        member,
        members: &node.members,
        token: cluster::cluster_token(&node.zone, &node.members, &node.zone_ca_info.fingerprint()),
        state: cluster_state(&node.data_dir),
        data_dir: &node.data_dir,
        tls: &tls,
    };
    if dry_run {
        match format {
            DryRunFormat::Args => {
                println!("{}", binary.display());
                for arg in etcd::args(&plan) {
                    println!("{arg}");
                }
            }
            DryRunFormat::Env => {
                println!(
                    "# etcd settings for member {} of zone {}; run {} with no arguments",
                    member.node_name,
                    node.zone,
                    binary.display()
                );
                for line in etcd::env_lines(&plan) {
                    println!("{line}");
                }
            }
        }
        return Ok(());
    }
    let args = etcd::args(&plan);
    if node.external.is_some() {
        inspection::validate_external(&node, &tls, &[LeafKind::Server, LeafKind::Peer])
            .map_err(|e| e.file(config))?;
    } else if let (_, Outcome::Issued { reason }) = leaves::ensure(&node, &identity)? {
        tracing::info!("issued new server, peer and client certificates ({reason})");
    }
    tracing::info!(
        "exec {} as member {} of zone {} (members from {})",
        binary.display(),
        member.node_name,
        node.zone,
        node.members_source
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
