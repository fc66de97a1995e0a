//! How a command reaches the node's running cluster: the node's leaves ready to use, its
//! client credentials, the other members' client URLs, the first answer of any member,
//! and the one line when none answered. (What the zone's clients may do once there is the
//! access policy: `[access]`, [`crate::policy`], the keeper's `agent/access/`.)
//!
//! Invariants: a client certificate is used only after the node CA was checked to cover
//! the node's identity (as `env` does); `[external]` leaves are validated, never issued;
//! the node CA's leaves are issued only when missing or due (and then logged); "no member
//! answered" is one error naming every endpoint's reason, the config and the fix.

use std::path::Path;
use std::sync::Arc;

use zone_io::Error;
use zone_pki::LeafKind;

use crate::leaves::{self, Outcome};
use crate::node::Node;
use zone_etcd_kit::cluster_api::Credentials;
use zone_model::leaf_paths::LeafPaths;

/// The node's leaves, ready to use: `[external]` ones validated for `external_kinds`,
/// else the node CA's set reused, or issued when missing or due.
pub fn current_leaves(node: &Node, external_kinds: &[LeafKind]) -> Result<LeafPaths, Error> {
    if let Some(paths) = &node.external {
        crate::inspection::validate_external(node, paths, external_kinds)?;
        return Ok(paths.clone());
    }
    let (paths, outcome) = leaves::ensure(node, &node.identity())?;
    if let Outcome::Issued { reason } = outcome {
        tracing::info!("issued new certificates ({reason})");
    }
    Ok(paths)
}

/// What `join`, `leave` and `status` talk to the cluster with: the node's client
/// certificate, after the same checks as `env`.
pub fn client_credentials(node: &Node) -> Result<Arc<Credentials>, Error> {
    node.check_node_ca_covers(&node.identity())
        .map_err(|e| e.file(&node.path))?;
    Credentials::load(&current_leaves(node, &[LeafKind::Client])?)
}

/// The running cluster as the first of the zone's members to answer lists it, with what
/// `leave` and `status` ask it more with.
pub struct Cluster {
    pub runtime: tokio::runtime::Runtime,
    pub creds: Arc<Credentials>,
    pub view: zone_model::cluster::ClusterView,
}

/// Asks every member of the node's list at once, with the node's client certificate.
pub fn ask_cluster(node: &Node) -> Result<Cluster, Error> {
    ask_cluster_with(node, client_credentials(node)?)
}

/// What the owner's commands that hold the CA directory (`zone publish`) talk to the
/// cluster with: in a zone whose client port trusts the client roots alone (least
/// privilege), etcd's `root`, issued in memory by `ca_dir`'s client CA as `ca admin`
/// issues it (never written; the key ends with the command), so the owner publishes
/// with any node.toml of the zone: a member not started yet, whose etcd user the
/// publish itself makes, or a node that is not a member. Elsewhere (every client root,
/// or a CA directory without a client CA) the node's own client certificate.
pub fn owner_credentials(ca_dir: &Path, node: &Node) -> Result<Arc<Credentials>, Error> {
    use crate::identities::ca::{ClientRoot, CLIENT_CA_CERT, CLIENT_CA_KEY};
    let has_client_ca = ca_dir.join(CLIENT_CA_CERT).exists() && ca_dir.join(CLIENT_CA_KEY).exists();
    if !(node.access.enforce && has_client_ca) {
        return client_credentials(node);
    }
    let client_root = ClientRoot::of(ca_dir, &node.zone)?;
    let issued = client_root
        .authority
        .issue_identity("root", &node.zone)
        .map_err(|e| e.file(ca_dir))?;
    Ok(Arc::new(Credentials::from_pem(
        &node.zone_ca_pem,
        &issued.chain_pem,
        &issued.key_pem,
    )))
}

/// [`ask_cluster`] with `creds`.
pub fn ask_cluster_with(node: &Node, creds: Arc<Credentials>) -> Result<Cluster, Error> {
    let runtime = zone_etcd_kit::cluster_api::runtime()?;
    let endpoints = zone_model::cluster::client_endpoints(&node.members);
    let view = runtime
        .block_on(zone_etcd_kit::cluster_api::view(&endpoints, &creds))
        .map_err(|failures| unreachable(&failures, &node.path))?;
    Ok(Cluster {
        runtime,
        creds,
        view,
    })
}

/// The one line for "no member answered", with each endpoint's reason.
pub fn unreachable(failures: &[(String, String)], config: &Path) -> Error {
    let reasons: Vec<String> = failures.iter().map(|(e, r)| format!("{e}: {r}")).collect();
    Error::new(format!(
        "no member of the zone's cluster answered ({})",
        if reasons.is_empty() {
            "the member list names no other member".to_string()
        } else {
            reasons.join("; ")
        }
    ))
    .file(config)
    .field("etcd")
    .fix("start the members (zone-etcd launch) or check the member list and the network")
}
