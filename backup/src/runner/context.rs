//! What every term of `backup run` needs, loaded and checked once before the first
//! campaign: the node ([`RunNode`], which the app makes from node.toml), its targets, the
//! recipients, its client credentials, etcdutl, the trusted roots, the local chain and the
//! state the writer and shippers share.
//!
//! Invariants: every problem found here is one the operator fixes (a zone without a
//! backup target, a bad recipient, a target that does not open), reported before the
//! node campaigns; the local member comes first among the endpoints (it answers fastest
//! and is the one this node vouches for).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use zone_io::Error;
use zone_pki::CertInfo;

use super::{retain, ship, writer};
use crate::crypto;
use crate::destination::{self, Target};
use crate::local::LocalChain;
use crate::signing::Signer;
use zone_etcd_kit::cluster_api::Credentials;
use zone_model::backup::settings::BackupSettings;
use zone_model::config::zone::Member;

/// What `backup run` takes of the node it runs on: the node.toml it was loaded from, its
/// names, state directory, `[backup]` table, members, the zone CA it trusts and
/// node.toml's `etcd_bin`, plus how to get its client credentials and its backup signer
/// (the app's rules for both).
pub struct RunNode {
    /// The node.toml the node was loaded from: what errors name, and where relative
    /// target paths start.
    pub path: PathBuf,
    pub name: String,
    pub zone: String,
    pub state_dir: PathBuf,
    pub backup: BackupSettings,
    pub members: Vec<Member>,
    /// The zone's root CA certificates (PEM) the node trusts.
    pub zone_ca_pem: String,
    pub etcd_bin: Option<PathBuf>,
    /// The node's client certificate for its members, asked once, after the targets and
    /// recipients are checked.
    pub credentials: Box<dyn FnOnce() -> Result<Arc<Credentials>, Error>>,
    /// The node's backup signer, loaded, or issued or renewed as needed: asked before the
    /// first campaign and at every term (it outlives a term).
    pub signer: Box<dyn Fn() -> Result<Signer, Error> + Send + Sync>,
}

/// Everything a term needs, loaded and checked before the first campaign.
pub struct Context {
    signer: Box<dyn Fn() -> Result<Signer, Error> + Send + Sync>,
    pub node_name: String,
    pub zone: String,
    pub session: String,
    pub settings: BackupSettings,
    pub endpoints: Vec<String>,
    pub creds: Arc<Credentials>,
    pub etcdutl: PathBuf,
    pub local: Arc<LocalChain>,
    pub recipients: Vec<age::x25519::Recipient>,
    pub roots: Vec<CertInfo>,
    pub targets: Vec<Arc<dyn Target>>,
    pub guard: Arc<writer::LeaseGuard>,
    pub bell: Arc<ship::Bell>,
    /// The writer's retention orders, for the shippers.
    pub orders: Arc<retain::Orders>,
}

impl Context {
    /// The node's signer, issued or renewed as needed (it outlives a term).
    pub fn signer(&self) -> Result<Signer, Error> {
        (self.signer)()
    }
}

/// Loads and checks everything a term needs for `node`; every problem here is one the
/// operator fixes.
pub fn prepare(node: RunNode) -> Result<Context, Error> {
    let config = &node.path;
    if !node.backup.enabled() {
        return Err(Error::new("the zone has no backup target")
            .file(config)
            .field("backup.target")
            .fix("add [backup] with recipients and a [[backup.target]] to the zone file, then copy it to the nodes (or sign the zone document again)"));
    }
    let base = config.parent().unwrap_or(Path::new(".")).to_path_buf();
    let targets = node
        .backup
        .targets
        .iter()
        .map(|spec| destination::open(spec, &base).map(Arc::from))
        .collect::<Result<Vec<Arc<dyn Target>>, _>>()
        .map_err(|e| e.file(config))?;
    let recipients =
        crypto::parse_recipients(&node.backup.recipients).map_err(|e| e.file(config))?;
    let creds = (node.credentials)()?;
    let etcdutl = zone_etcd_kit::etcd::etcdutl::etcdutl(node.etcd_bin.as_deref(), config)?;
    let roots = zone_model::config::trusted_roots(&node.zone_ca_pem)?;
    let local = Arc::new(LocalChain::open(&node.state_dir)?);
    (node.signer)()?;
    // The local member first: it answers fastest and is the one this node vouches for.
    let mut members: Vec<_> = node.members.iter().collect();
    members.sort_by_key(|m| m.node_name != node.name);
    let endpoints = members
        .iter()
        .map(|m| zone_model::cluster::client_url(m))
        .collect();
    Ok(Context {
        node_name: node.name,
        zone: node.zone,
        session: writer::new_session(),
        settings: node.backup,
        endpoints,
        creds,
        etcdutl,
        local,
        recipients,
        roots,
        targets,
        guard: Arc::new(writer::LeaseGuard::default()),
        bell: Arc::new(ship::Bell::default()),
        orders: Arc::new(retain::Orders::default()),
        signer: node.signer,
    })
}
