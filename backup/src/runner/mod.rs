//! `backup run`: the long-running service on every member. Exactly one of them writes the
//! chain at a time, chosen through etcd's election API under a lease ([`active`]); it
//! ships its local chain to each target on a thread per target ([`ship`]), so a slow
//! store never holds up the others. A node ships only while it holds the lease: links it
//! wrote but did not ship before losing it are left behind (the next writer goes on from
//! the targets, and this node's stale local chain is moved aside when it writes again).
//!
//! The parts: [`context`] (what a term needs, loaded once), [`batch`] (when a segment
//! is cut, pure), [`writer`] (appending links), [`background`] (a cut's
//! compression, at a lower priority),
//! [`full`] (full snapshots), [`resume`] (where a new term goes on from), [`known`] (what a target holds, for
//! its shipper), [`span`] (the writer's chain's span recorded in etcd), [`fill`] (a lagging target caught up from the others), [`retain`]
//! (retention of the local chain and of each target).

pub mod active;
pub mod background;
pub mod batch;
pub mod context;
pub mod fill;
pub mod full;
pub mod known;
pub mod resume;
pub mod retain;
pub mod ship;
pub mod span;
pub mod writer;

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use zone_io::Error;

use context::{prepare, RunNode};
use zone_etcd_kit::cluster_api;

/// Runs until killed: ships on a thread per target, campaigns, writes while active.
pub fn run(node: RunNode) -> Result<(), Error> {
    let ctx = prepare(node)?;
    let _lock = lock(&ctx.local.root().join("run.lock"))?;
    crate::torn::settle(&ctx.local, &ctx.zone, &ctx.roots)?;
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
            session: ctx.session.clone(),
            orders: ctx.orders.clone(),
            others: ctx
                .targets
                .iter()
                .filter(|other| !Arc::ptr_eq(other, target))
                .cloned()
                .collect(),
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
