//! `zone-etcd launch`: load the bundle, run the checks before a start
//! ([`zone_node::preflight`]: leaves current, revocations, the etcd binary, and over existing
//! data whether it still belongs to the running cluster, over an empty data directory
//! the first-start rules), derive the cluster, and replace this process with etcd (same
//! PID, so a supervisor's signals and `Type=notify` reach etcd directly).
//!
//! Invariants: `--dry-run` writes nothing and starts nothing; a refusal comes before
//! etcd starts, in the order [`zone_node::preflight`] documents.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use zone_io::Error;

use zone_etcd_kit::etcd::{self, EtcdPlan};
use zone_model::cluster::{self, ClusterState};
use zone_node::nameservice::CachePolicy;
use zone_node::node::Node;
use zone_node::preflight::{self, Ready, Start};

/// How `--dry-run` prints etcd's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    let start = if dry_run {
        Start::DryRun
    } else {
        Start::Launch
    };
    let Ready {
        binary,
        release,
        local,
        ..
    } = preflight::check(&node, start)?;
    let tls = node.leaf_paths();
    let token = cluster::cluster_token(&node.zone, &node.members, &node.zone_ca_info.fingerprint());
    let crl = zone_node::identities::tls::crl_files(&node);
    let plan = |release, settings| EtcdPlan {
        zone: &node.zone,
        member,
        initial_cluster: cluster::initial_cluster(&node.members),
        token: token.clone(),
        // `existing` once the data directory holds a member: etcd then restarts from its
        // own log and ignores the initial cluster.
        state: if local.is_some() {
            ClusterState::Existing
        } else {
            ClusterState::New
        },
        data_dir: &node.data_dir,
        tls: &tls,
        etcd: release,
        settings,
        listen: node.listen_address,
        tunneled: zone_model::config::zone::has_tunnels(&node.members),
        crl: crl.existing(),
        client_port: zone_node::identities::tls::client_port(&node, &node.state_dir),
    };
    if dry_run {
        let settings = preflight::etcd::settings_for(&node, release.version, local.is_some())?;
        let plan = plan(&release, &settings);
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
    let has_data = local.is_some();
    let started = preflight::before_exec(&node, member, &tls, local, &release, &token)?;
    let (binary, release) = started.instead.unwrap_or((binary, release));
    zone_node::identities::tls::runs_on(&node, release.version).map_err(|e| e.file(config))?;
    let settings = preflight::etcd::settings_for(&node, release.version, has_data)?;
    let args = etcd::args(&plan(&release, &settings));
    zone_agent::start(config, started.learner)?;
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
