//! `zone-etcd launch`: load the bundle, make sure valid leaves are current, derive the
//! cluster, and replace this process with etcd (same PID, so a supervisor's signals and
//! `Type=notify` reach etcd directly). Over existing data it first checks, briefly, that
//! the data still belongs to the running cluster (see [`crate::membership`]); over an
//! empty data directory it starts a new member only at the zone's first start or as a
//! late member of it ([`fresh`], the rules in [`crate::first_start`]).

mod fresh;
mod others;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use zone_pki::{Error, LeafKind};

use crate::cluster::{self, ClusterState};
use crate::cluster_api::{self, Credentials};
use crate::config::node::Node;
use crate::etcd::{self, EtcdPlan};
use crate::first_start::record;
use crate::leaves::LeafPaths;
use crate::membership::{self, Conflict};
use crate::nameservice::CachePolicy;
use crate::wal::{self, LocalMember};

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
    node.check_listen_address().map_err(|e| e.file(config))?;
    if !dry_run {
        super::gateway::require_listeners(&node, config)?;
    }
    let remember = if dry_run {
        etcd::Remember::No
    } else {
        etcd::Remember::Yes
    };
    let (binary, release) = super::local_etcd(&node, config, remember)?;
    let tls = node.leaf_paths();
    let local = wal::local_member(&node.data_dir)?;
    let token = cluster::cluster_token(&node.zone, &node.members, &node.zone_ca_info.fingerprint());
    if !dry_run {
        super::current_leaves(&node, &[LeafKind::Server, LeafKind::Peer])
            .map_err(|e| e.file(config))?;
        crate::revocation::before_start(&node, config)?;
    }
    let crl = crate::revocation::store::crl_path(&node.state_dir);
    let plan = EtcdPlan {
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
        etcd: &release,
        settings: &node.settings,
        listen: node.listen_address,
        tunneled: crate::config::zone::has_tunnels(&node.members),
        crl: crl.exists().then_some(crl.as_path()),
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
    let learner = match local {
        None => {
            fresh::may_start(&node, member, &tls, &token, config)?;
            None
        }
        Some(local) => {
            let learner = check_restart(&node, member, &tls, local, &release, config)?;
            check_replay(&node, &release, config)?;
            record::remember(&node.state_dir, local)?;
            learner
        }
    };
    remember_peer_url(&node, &cluster::peer_url(member))?;
    if let Some(id) = learner {
        super::promote_learner::spawn(config, id)?;
    }
    crate::revocation::keeper::spawn(config)?;
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

/// Refuses an etcd that cannot replay this member's log (3.7 over entries 3.5 wrote; see
/// [`etcd::path::replay_refusal`]). The log is read only for etcd 3.7 and later.
fn check_replay(node: &Node, release: &etcd::Profile, config: &Path) -> Result<(), Error> {
    if release.version.series() < (3, 7) {
        return Ok(());
    }
    let last_v2 = wal::entries_before_3_6(&node.data_dir)?;
    match etcd::path::replay_refusal(release.version, last_v2) {
        None => Ok(()),
        Some((problem, fix)) => Err(Error::new(problem)
            .file(config)
            .field("etcd_bin")
            .fix(fix)
            .permanent()),
    }
}

/// The longest a restart waits for another member to say whether its data still belongs;
/// it stops sooner when none can answer before this member starts ([`others`]).
const RESTART_CHECK: Duration = Duration::from_secs(1);

/// Before etcd starts over existing data: asks the other members, briefly, whether the
/// data still belongs to the running cluster. Returns the member ID when it is still a
/// learner (to promote). An etcd the running cluster's version does not admit is refused
/// (see [`super::check_upgrade`]). Nobody answering is not an error: the whole zone may be
/// restarting, and etcd itself refuses peers of another cluster.
fn check_restart(
    node: &Node,
    member: &crate::config::zone::Member,
    tls: &LeafPaths,
    local: LocalMember,
    release: &etcd::Profile,
    config: &Path,
) -> Result<Option<u64>, Error> {
    let clients = super::other_members(node);
    if clients.is_empty() {
        return Ok(None);
    }
    let creds = match Credentials::load(tls) {
        Ok(creds) => creds,
        Err(e) => {
            tracing::warn!("not checking the data directory against the cluster: {e}");
            return Ok(None);
        }
    };
    // Peer ports say at once whether a member waits for a quorum (see [`others`]).
    let peer_creds = Credentials::load_peer(tls).ok();
    let peers: Vec<String> = node
        .members
        .iter()
        .filter(|m| m.node_name != node.name)
        .map(cluster::peer_url)
        .collect();
    let answer = cluster_api::runtime()?.block_on(async {
        tokio::time::timeout(
            RESTART_CHECK,
            others::view_or_nobody(&clients, &peers, &creds, peer_creds, local, RESTART_CHECK),
        )
        .await
    });
    let peer_url = cluster::peer_url(member);
    let Ok(Some(view)) = answer else {
        if let Some(last) = last_peer_url(node).filter(|last| *last != peer_url) {
            return Err(Error::new(format!(
                "this member moved (peer URL {last} -> {peer_url}), but no other member answered: the cluster must learn the new URL first, and that needs a quorum"
            ))
            .file(config)
            .fix("start the other members (zone-etcd launch on them), then launch here again"));
        }
        tracing::info!(
            "no other member answered (none within {RESTART_CHECK:?}, or none can before this one starts); starting member {} from its data",
            cluster_api::hex_id(local.member_id)
        );
        return Ok(None);
    };
    match membership::restart_standing(local, &view) {
        Ok(m) => {
            super::check_upgrade(release, &view, &node.name, &creds, config)?;
            let old = membership::moved(&view, m.id, &peer_url)
                .map_err(|c| c.into_error(&node.name, &node.data_dir, &view.answered_by))?;
            if let Some(old) = old {
                let runtime = cluster_api::runtime()?;
                runtime
                    .block_on(cluster_api::update_peer_urls(
                        &view.client_urls(),
                        &creds,
                        m.id,
                        vec![peer_url.clone()],
                    ))
                    .map_err(|reason| {
                        Error::new(format!(
                            "this member moved (peer URL {} -> {peer_url}), and the cluster could not record it: {reason}",
                            old.join(",")
                        ))
                        .file(config)
                        .fix("a quorum of the other members must answer: start them, then launch here again")
                    })?;
                tracing::info!(
                    "member {} moved: peer URL {} -> {peer_url}, recorded by the cluster",
                    node.name,
                    old.join(",")
                );
            }
            Ok(m.learner.then_some(m.id))
        }
        Err(Conflict::Removed { local }) => {
            let moved = membership::move_aside(&node.data_dir, local.member_id)?;
            Err(Error::new(format!(
                "member {} was removed from the cluster (asked at {}); its data directory was moved to {}",
                cluster_api::hex_id(local.member_id),
                view.answered_by,
                moved.unwrap_or_default().display()
            ))
            .file(&node.data_dir)
            .fix("run zone-etcd join to become a member again")
            .permanent())
        }
        // This node restored a snapshot on purpose: the cluster that answered is the one
        // the restore replaced (etcd refuses its peers: they never merge).
        Err(Conflict::OtherCluster { local, running })
            if super::restore::restored_record(&node.state_dir, local.cluster_id).is_some() =>
        {
            tracing::warn!(
                "{} still runs cluster {}, which this node's restore replaced with {}; starting the restored member",
                view.answered_by,
                cluster_api::hex_id(running),
                cluster_api::hex_id(local.cluster_id)
            );
            Ok(None)
        }
        Err(conflict) => Err(conflict.into_error(&node.name, &node.data_dir, &view.answered_by)),
    }
}

/// Where the peer URL of the last launch is kept: a launch that finds another one (the
/// member moved) must have the cluster record the new one, which needs a quorum.
const PEER_URL_FILE: &str = "peer-url";

fn last_peer_url(node: &Node) -> Option<String> {
    zone_io::read_text(&node.state_dir.join(PEER_URL_FILE))
        .ok()
        .map(|t| t.trim().to_string())
}

/// Records the peer URL this launch starts etcd with (written only when it changed, so a
/// launch over an unchanged member writes nothing).
fn remember_peer_url(node: &Node, peer_url: &str) -> Result<(), Error> {
    if last_peer_url(node).as_deref() == Some(peer_url) {
        return Ok(());
    }
    // Under the state lock: its holders remove temporary files they find in the state
    // directory (left by killed writes), which would include this one.
    let _lock = crate::state::lock(&node.state_dir)?;
    zone_io::write_atomic(
        &node.state_dir.join(PEER_URL_FILE),
        format!("{peer_url}\n").as_bytes(),
        zone_io::PUBLIC_MODE,
    )
}
