//! A launch over existing data: before etcd starts, the other members are asked, briefly,
//! whether the data still belongs to the running cluster ([`crate::membership`]), and
//! whether the running cluster's version admits this etcd; a member that moved has the
//! cluster record its new peer URL first.
//!
//! Invariants: nobody answering is not an error (the whole zone may be restarting, and
//! etcd itself refuses peers of another cluster), except for a member that moved, which
//! needs a quorum to record it; a removed member's data is moved aside, never deleted,
//! and the launch refused with exit 78; the peer URL of the last launch is written only
//! when it changed, under the state lock.

use std::time::Duration;

use zone_io::Error;

use crate::membership::{self, Conflict};
use crate::node::Node;
use zone_etcd_kit::cluster_api::others;
use zone_etcd_kit::cluster_api::{self, Credentials};
use zone_etcd_kit::etcd;
use zone_etcd_kit::wal::LocalMember;
use zone_model::cluster;
use zone_model::leaf_paths::LeafPaths;

/// The longest a restart waits for another member to say whether its data still belongs;
/// it stops sooner when none can answer before this member starts ([`others`]).
const RESTART_CHECK: Duration = Duration::from_secs(1);

/// What a restart found: the member ID when it is still a learner (to promote), and the
/// etcd to run instead of the bundled one when the cluster does not admit that one yet
/// (see [`super::etcd::check_upgrade`]).
#[derive(Debug, Default)]
pub struct Restart {
    pub learner: Option<u64>,
    pub instead: Option<(std::path::PathBuf, etcd::Profile)>,
}

/// Before etcd starts over existing data: asks the other members, briefly, whether the
/// data still belongs to the running cluster. Returns the member ID when it is still a
/// learner (to promote). An etcd the running cluster's version does not admit is refused
/// (see [`super::etcd::check_upgrade`]). Nobody answering is not an error: the whole zone may be
/// restarting, and etcd itself refuses peers of another cluster.
pub fn check_restart(
    node: &Node,
    member: &zone_model::config::zone::Member,
    tls: &LeafPaths,
    local: LocalMember,
    release: &etcd::Profile,
) -> Result<Restart, Error> {
    let config = &node.path;
    let clients = node.other_members();
    if clients.is_empty() {
        return Ok(Restart::default());
    }
    let creds = match Credentials::load(tls) {
        Ok(creds) => creds,
        Err(e) => {
            tracing::warn!("not checking the data directory against the cluster: {e}");
            return Ok(Restart::default());
        }
    };
    // Peer ports say at once whether a member waits for a quorum (see [`others`]).
    let peer_creds = Credentials::load_peer(tls).ok();
    let peers = node.other_peers();
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
        return Ok(Restart::default());
    };
    match membership::restart_standing(local, &view) {
        Ok(m) => {
            let instead = super::etcd::check_upgrade(node, release, &view, &creds)?;
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
            Ok(Restart {
                learner: m.learner.then_some(m.id),
                instead,
            })
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
            if crate::restored::restored_record(&node.state_dir, local.cluster_id).is_some() =>
        {
            tracing::warn!(
                "{} still runs cluster {}, which this node's restore replaced with {}; starting the restored member",
                view.answered_by,
                cluster_api::hex_id(running),
                cluster_api::hex_id(local.cluster_id)
            );
            Ok(Restart::default())
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
pub fn remember_peer_url(node: &Node, peer_url: &str) -> Result<(), Error> {
    if last_peer_url(node).as_deref() == Some(peer_url) {
        return Ok(());
    }
    // Under the state lock: its holders remove temporary files they find in the state
    // directory (left by killed writes), which would include this one.
    let _lock = zone_io::state::lock(&node.state_dir)?;
    zone_io::write_atomic(
        &node.state_dir.join(PEER_URL_FILE),
        format!("{peer_url}\n").as_bytes(),
        zone_io::PUBLIC_MODE,
    )
}
