//! `backup run`: the long-running service on every member. Exactly one of them writes the
//! chain at a time, chosen through etcd's election API under a lease ([`active`]); it
//! ships its local chain to each target on a thread per target ([`ship`]), so a slow
//! store never holds up the others. A node ships only while it holds the lease: links it
//! wrote but did not ship before losing it are left behind (the next writer goes on from
//! the targets, and this node's stale local chain is moved aside when it writes again).
//!
//! The parts: [`batch`] (when a segment is cut, pure), [`writer`] (appending links),
//! [`full`] (full snapshots), [`resume`] (where a new term goes on from), [`retain`]
//! (retention of the local chain and of each target).

pub mod active;
pub mod batch;
pub mod full;
pub mod resume;
pub mod retain;
pub mod ship;
pub mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use zone_pki::{CertInfo, Error};

use crate::backup::crypto;
use crate::backup::local::LocalChain;
use crate::backup::settings::BackupSettings;
use crate::backup::signing::Signer;
use crate::backup::target::{self, Target};
use crate::cluster_api::{self, Credentials};
use crate::config::node::Node;

/// Everything a term needs, loaded and checked before the first campaign.
pub struct Context {
    pub node: Node,
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
        Signer::for_node(&self.node)
    }
}

/// Loads and checks everything a term needs; every problem here is one the operator fixes.
pub fn prepare(config: &Path) -> Result<Context, Error> {
    let node = Node::load(config)?;
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
        .map(|spec| target::open(spec, &base).map(Arc::from))
        .collect::<Result<Vec<Arc<dyn Target>>, _>>()
        .map_err(|e| e.file(config))?;
    let recipients =
        crypto::parse_recipients(&node.backup.recipients).map_err(|e| e.file(config))?;
    let creds = crate::access::client_credentials(&node, config)?;
    let etcdutl = crate::etcd::etcdutl::etcdutl(&node, config)?;
    let roots = crate::config::trusted_roots(&node.zone_ca_pem)?;
    let local = Arc::new(LocalChain::open(&node.state_dir)?);
    Signer::for_node(&node)?;
    // The local member first: it answers fastest and is the one this node vouches for.
    let mut members: Vec<_> = node.members.iter().collect();
    members.sort_by_key(|m| m.node_name != node.name);
    let endpoints = members
        .iter()
        .map(|m| crate::cluster::client_url(m))
        .collect();
    Ok(Context {
        node_name: node.name.clone(),
        zone: node.zone.clone(),
        session: writer::new_session(),
        settings: node.backup.clone(),
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
        node,
    })
}

/// Runs until killed: ships on a thread per target, campaigns, writes while active.
pub fn run(config: &Path) -> Result<(), Error> {
    let ctx = prepare(config)?;
    let _lock = lock(&ctx.local.root().join("run.lock"))?;
    let stop = Arc::new(AtomicBool::new(false));
    for target in &ctx.targets {
        let shipper = ship::Shipper {
            target: target.clone(),
            local: ctx.local.clone(),
            bell: ctx.bell.clone(),
            guard: ctx.guard.clone(),
            stop: stop.clone(),
            zone: ctx.zone.clone(),
            roots: ctx.roots.clone(),
            orders: ctx.orders.clone(),
        };
        std::thread::Builder::new()
            .name(format!("ship {}", target.url()))
            .spawn(move || shipper.run())
            .map_err(|e| Error::new(format!("cannot start a shipping thread: {e}")))?;
    }
    eprintln!(
        "zone-etcd: backup run on {} (session {}): campaigning to write the chain to {} target(s)",
        ctx.node_name,
        ctx.session,
        ctx.targets.len()
    );
    let runtime = cluster_api::runtime()?;
    runtime.block_on(async {
        loop {
            match cluster_api::connect_many(
                &ctx.endpoints,
                &ctx.creds,
                Duration::from_secs(24 * 3600),
            )
            .await
            {
                Ok(mut client) => match active::term(&ctx, &mut client).await {
                    Ok(()) => eprintln!(
                        "zone-etcd: backup: {} lost its election lease; campaigning again",
                        ctx.node_name
                    ),
                    Err(e) => eprintln!("zone-etcd: backup: {e}"),
                },
                Err(p) => eprintln!("zone-etcd: backup: no member answers ({p}); retrying"),
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    })
}

/// One `backup run` per node: an exclusive lock on `<state>/backup/run.lock`, held until
/// the process ends.
fn lock(path: &Path) -> Result<nix::fcntl::Flock<std::fs::File>, Error> {
    use nix::fcntl::{Flock, FlockArg};
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| Error::io("open", path, &e))?;
    Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|_| {
        Error::new("another `backup run` of this node holds its lock")
            .file(path)
            .fix("run one `backup run` per node (systemctl status zone-etcd-backup)")
    })
}
