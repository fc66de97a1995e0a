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

use zone_io::Error;

use zone_etcd_kit::cluster_api::hex_id;

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
    use crate::nameservice::CachePolicy;
    use crate::node::Node;
    let load = || Node::load_with(config, CachePolicy::ReadOnly);
    let users_gone = crate::revocation::keeper::UsersGone::default();
    let first = load()?;
    let with_access = first.access.present || first.identities.is_some();
    let revocations =
        crate::revocation::keeper::new(first, watch_pid, with_access.then(|| users_gone.clone()))?;
    let mover =
        crate::rollout::keeper::Mover::new(load()?, config, watch_pid).unwrap_or_else(|e| {
            tracing::warn!("not following the zone's etcd release: {e}");
            None
        });
    let endpoint = identity_endpoint(load()?, watch_pid);
    let access = crate::policy::keeper::AccessKeeper::new(load()?, watch_pid, endpoint, users_gone)
        .unwrap_or_else(|e| {
            tracing::warn!("not keeping the zone's access policy: {e}");
            None
        });
    let runtime = zone_etcd_kit::cluster_api::runtime()?;
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

/// Starts the member's identity endpoint ([`crate::identities::endpoint`]) when it runs
/// one: bound as soon as its port is free (the keeper of a member restarted a moment ago
/// may still hold it for a second), until the watched etcd exits. The slot holds its
/// handle once it serves.
fn identity_endpoint(
    node: crate::node::Node,
    watch_pid: u32,
) -> Option<crate::identities::endpoint::Slot> {
    use crate::identities::endpoint::Endpoint;
    if !Endpoint::wanted(&node) {
        return None;
    }
    let slot = crate::identities::endpoint::Slot::default();
    let filled = slot.clone();
    std::thread::spawn(move || {
        let mut said = String::new();
        while crate::detached::running(watch_pid) {
            match Endpoint::bind(&node) {
                Ok(endpoint) => {
                    tracing::info!("identity endpoint on {:?}", endpoint.local_addrs());
                    filled.fill(endpoint.spawn());
                    return;
                }
                Err(e) => {
                    let reason = e.to_string();
                    if reason != said {
                        tracing::warn!("identity endpoint not serving yet: {reason}");
                        said = reason;
                    }
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
    });
    Some(slot)
}
