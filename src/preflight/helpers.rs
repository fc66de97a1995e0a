//! The helpers `launch` and `join` start beside etcd, just before they exec it: the
//! learner promoter (`zone-etcd promote-learner`, while the member is a learner) and the
//! keeper (`zone-etcd keep-revocations`, always), one process that keeps the member's CRL
//! current ([`crate::revocation::keeper`]) and moves it to the zone's etcd release
//! ([`crate::rollout::keeper`]).
//!
//! Invariants: each helper is detached ([`crate::detached`]) and watches this process's
//! PID, which etcd keeps by exec, so it ends when that etcd exits; the config path it is
//! given is absolute (a helper does not share this process's working directory for
//! long); a helper that does not start is an error before etcd starts.

use std::path::Path;

use zone_pki::Error;

use crate::cluster_api::hex_id;

/// Starts the promoter for `learner` (when this member is one), then the keeper.
pub fn start(config: &Path, learner: Option<u64>) -> Result<(), Error> {
    if let Some(id) = learner {
        spawn_promoter(config, id)?;
    }
    crate::revocation::keeper::spawn(config)
}

/// Starts the promoter for member `id`, watching this process (which is about to become
/// etcd by exec). Returns once it runs detached.
pub fn spawn_promoter(config: &Path, id: u64) -> Result<(), Error> {
    let config = std::path::absolute(config).map_err(|e| Error::io("resolve", config, &e))?;
    crate::detached::spawn_detached(
        &promoter_args(&config, id, std::process::id()),
        "learner promoter",
    )?;
    tracing::info!(
        "member {} is a learner: it is promoted to a voter once it has caught up",
        hex_id(id)
    );
    Ok(())
}

/// The promoter's command line (without the executable).
fn promoter_args(config: &Path, id: u64, watch_pid: u32) -> Vec<String> {
    vec![
        "promote-learner".into(),
        "--config".into(),
        config.display().to_string(),
        "--member-id".into(),
        hex_id(id),
        "--watch-pid".into(),
        watch_pid.to_string(),
    ]
}

/// The keeper's process: its duties at once (the access policy's too, in a zone with
/// `[access]`: [`crate::policy::keeper`]) until the watched etcd exits. One that
/// cannot start is logged; the other goes on.
pub fn keep(config: &Path, watch_pid: u32) -> Result<(), Error> {
    use crate::config::node::Node;
    use crate::nameservice::CachePolicy;
    let load = || Node::load_with(config, CachePolicy::ReadOnly);
    let revocations = crate::revocation::keeper::new(load()?, watch_pid)?;
    let mover =
        crate::rollout::keeper::Mover::new(load()?, config, watch_pid).unwrap_or_else(|e| {
            tracing::warn!("not following the zone's etcd release: {e}");
            None
        });
    let access = crate::policy::keeper::AccessKeeper::new(load()?, watch_pid).unwrap_or_else(|e| {
        tracing::warn!("not keeping the zone's access policy: {e}");
        None
    });
    let runtime = crate::cluster_api::runtime()?;
    runtime.block_on(async {
        let revocations = async {
            if let Some(keeper) = &revocations {
                keeper.keep().await;
            }
        };
        let moves = async {
            if let Some(mover) = &mover {
                mover.keep().await;
            }
        };
        let policy = async {
            if let Some(keeper) = &access {
                keeper.keep().await;
            }
        };
        tokio::join!(revocations, moves, policy);
    });
    Ok(())
}
