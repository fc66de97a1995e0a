//! What every start of etcd on this node checks first, below the commands: `launch` and
//! `join` call [`check`] (then `launch` calls [`before_exec`]), and both start etcd's
//! helpers through `zone_agent::start`. Nothing here imports a command.
//!
//! [`check`], in this order (each refusal one line naming the file or field and the fix;
//! a refusal before the version cache is written writes nothing):
//! 1. the node CA covers this node's identity; the listen address is this machine's;
//! 2. (not for a dry run) the zone gateway listens for the cyfs peers ([`gateway`]);
//!    (`launch`) this member's listen addresses are free and no earlier etcd runs on its
//!    data directory, waiting a bounded time for one that is stopping ([`held`]; `join`
//!    keeps its own refusals of a member that still runs, which name the fix for it);
//! 3. the etcd binary and its version ([`etcd`]);
//! 4. (`launch`, also a dry run) what the data directory holds;
//! 5. (not for a dry run) the leaves are current ([`crate::reach::current_leaves`]), the
//!    zone's format level is one this release reads ([`level`]) and the zone's
//!    revocations are installed ([`crate::revocation::before_start`]).
//!
//! [`before_exec`] (`launch` only): over an empty data directory, the first-start rules
//! ([`fresh`]); over existing data, the restart and upgrade guards ([`restart`]); then
//! the peer URL this launch starts with is remembered.
//!
//! Invariants: the checks run in the order above, every start the same; a refusal a
//! person must cure exits 78 ([`zone_io::Error::permanent`]); nothing here writes
//! before step 3.

pub mod etcd;
pub mod fresh;
pub mod gateway;
pub mod held;
pub mod level;
pub mod procfs;
pub mod restart;

use std::path::PathBuf;

use zone_io::Error;
use zone_pki::LeafKind;

use crate::first_start::record;
use crate::node::Node;
use zone_etcd_kit::etcd::{Profile, Remember};
use zone_etcd_kit::wal::{self, LocalMember};
use zone_model::config::zone::Member;
use zone_model::leaf_paths::LeafPaths;

/// Which start is checked: it decides which checks run and which leaves must be current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// `launch --dry-run`: only what the printed command line needs; nothing written.
    DryRun,
    /// `launch`: the server and peer leaves.
    Launch,
    /// `join`: every leaf (it talks to the cluster as a client before etcd starts).
    Join,
}

/// What the checks found, for the start to go on with.
pub struct Ready {
    /// The etcd binary to exec, and what the version table makes of it.
    pub binary: PathBuf,
    pub release: Profile,
    /// The member the data directory holds (`None`: empty). Read only for a launch: a
    /// join reads it later, under the state lock.
    pub local: Option<LocalMember>,
    /// The node's leaves, current (`None` for a dry run, which makes none).
    pub tls: Option<LeafPaths>,
}

/// The checks before `start` (see the module's order).
pub fn check(node: &Node, start: Start) -> Result<Ready, Error> {
    let config = &node.path;
    node.check_node_ca_covers(&node.identity())
        .map_err(|e| e.file(config))?;
    node.check_listen_address().map_err(|e| e.file(config))?;
    if start != Start::DryRun {
        gateway::require_listeners(node)?;
    }
    if start == Start::Launch {
        if let Some(member) = node.member() {
            held::wait_until_free(node, member)?;
        }
    }
    let remember = if start == Start::DryRun {
        Remember::No
    } else {
        Remember::Yes
    };
    let (binary, release) = etcd::local_etcd(node, remember)?;
    let local = match start {
        Start::Join => None,
        Start::DryRun | Start::Launch => wal::local_member(&node.data_dir)?,
    };
    let kinds: &[LeafKind] = match start {
        Start::DryRun => {
            return Ok(Ready {
                binary,
                release,
                local,
                tls: None,
            })
        }
        Start::Launch => &[LeafKind::Server, LeafKind::Peer],
        Start::Join => &LeafKind::ALL,
    };
    let tls = crate::reach::current_leaves(node, kinds).map_err(|e| e.file(config))?;
    // One round of asking the other members, for the level and the revocations.
    let first_start = start == Start::Launch && local.is_none();
    let asked = crate::revocation::ask_before_start(node, local, first_start);
    level::before_start(node, asked.level.as_deref())?;
    crate::revocation::before_start(node, &asked)?;
    Ok(Ready {
        binary,
        release,
        local,
        tls: Some(tls),
    })
}

/// A launch's last checks before it execs etcd: the first-start rules over an empty data
/// directory ([`fresh`]), the restart and upgrade guards over existing data ([`restart`]),
/// then the peer URL is remembered. Returns the member ID to promote when this member is
/// still a learner, and the etcd to run instead of the bundled one when the cluster does
/// not admit that one yet.
pub fn before_exec(
    node: &Node,
    member: &Member,
    tls: &LeafPaths,
    local: Option<LocalMember>,
    release: &Profile,
    token: &str,
) -> Result<restart::Restart, Error> {
    let started = match local {
        None => {
            fresh::may_start(node, member, tls, token)?;
            restart::Restart::default()
        }
        Some(local) => {
            let started = restart::check_restart(node, member, tls, local, release)?;
            let runs = started.instead.as_ref().map_or(release, |(_, r)| r);
            etcd::check_replay(node, runs)?;
            record::remember(&node.state_dir, local)?;
            started
        }
    };
    restart::remember_peer_url(node, &zone_model::cluster::peer_url(member))?;
    Ok(started)
}
