//! What the backup family (`zone-backup`) takes of a node, made from the app's loaded
//! [`Node`]: the signer's node (identity, node CA, state directory), `backup run`'s node
//! (names, `[backup]`, members, the zone CA, and the app's client credentials and signer),
//! and the node whose own chain `undo` reads (with the etcd binary launch would choose).
//!
//! Invariant: thin, no rule of its own: every check is zone-backup's or the app's
//! (`reach`, `preflight`), made in the order they made it before backup was a crate.

use std::path::Path;
use std::sync::Arc;

use zone_backup::pitr::{self, ChainNode, Origin, PrefixHistory};
use zone_backup::runner::context::RunNode;
use zone_backup::signing::{Signer, SignerNode};
use zone_etcd_kit::etcd::Remember;
use zone_io::Error;

use crate::node::Node;

/// The node's backup signer, loaded, or issued or renewed from its node CA as needed
/// (refused for a node whose certificates are external: it has no node CA).
pub fn signer(node: &Node) -> Result<Signer, Error> {
    Signer::for_node(&SignerNode {
        node_ca: node.node_ca()?,
        identity: node.identity(),
        state_dir: &node.state_dir,
    })
}

/// `backup run` for the node `config` loads: never returns while it works.
pub fn run(config: &Path) -> Result<(), Error> {
    let node = Arc::new(Node::load(config)?);
    let credentials = {
        let node = node.clone();
        Box::new(move || crate::reach::client_credentials(&node))
    };
    let run_node = RunNode {
        path: node.path.clone(),
        name: node.name.clone(),
        zone: node.zone.clone(),
        state_dir: node.state_dir.clone(),
        backup: node.backup.clone(),
        members: node.members.clone(),
        zone_ca_pem: node.zone_ca_pem.clone(),
        etcd_bin: node.etcd_bin.clone(),
        credentials,
        signer: Box::new(move || signer(&node)),
    };
    zone_backup::runner::run(run_node)
}

/// From the chain of `origin` (the node's own, or a target): the last revision received
/// at or before `time_ms`.
pub fn revision_at(node: &Node, origin: &Origin<'_>, time_ms: i64) -> Result<i64, Error> {
    let etcd = || chosen_etcd(node);
    pitr::revision_at(&chain_node(node, &etcd), origin, time_ms)
}

/// From the chain of `origin`: the keys under `prefix` at `revision` and their changes
/// after it (see [`pitr::prefix_history`]).
pub fn prefix_history(
    node: &Node,
    origin: &Origin<'_>,
    prefix: &[u8],
    revision: i64,
) -> Result<PrefixHistory, Error> {
    let etcd = || chosen_etcd(node);
    pitr::prefix_history(&chain_node(node, &etcd), origin, prefix, revision)
}

/// The etcd binary the node's launch would choose, without its warnings or remembering.
fn chosen_etcd(node: &Node) -> Result<std::path::PathBuf, Error> {
    crate::preflight::etcd::chosen_etcd(node, Remember::No).map(|(etcd, _)| etcd)
}

fn chain_node<'a>(
    node: &'a Node,
    etcd: &'a (dyn Fn() -> Result<std::path::PathBuf, Error> + Sync),
) -> ChainNode<'a> {
    ChainNode {
        path: &node.path,
        name: &node.name,
        zone: &node.zone,
        state_dir: &node.state_dir,
        zone_ca_pem: &node.zone_ca_pem,
        etcd_bin: node.etcd_bin.as_deref(),
        etcd,
    }
}
