//! zone-agent, the agent: the processes `launch` and `join` start beside etcd, just
//! before they exec it, and the duties they keep, each behind one [`duty::Duty`] trait and run by one loop
//! ([`duty::keep`]: rounds, pauses, lines said once, the end when etcd exits).
//!
//! - the keeper (`zone-etcd keep-revocations`, always), one process with every duty of
//!   the member at once: the CRL kept current ([`revocations`]), the member moved to the
//!   zone's etcd release ([`release`]), the auth store kept to the access policy
//!   ([`access`]) with each tenant held to its quota by the leader's keeper ([`quota`]),
//!   and the identity endpoint served ([`endpoint`]), in a zone with
//!   identities, the zone-etcd release it runs recorded in the zone ([`recorded`]), and
//!   its round trips to its peers measured each minute and recorded ([`links`]);
//! - the learner promoter (`zone-etcd promote-learner`, while the member is a learner),
//!   a process of its own ([`promotion`]).
//!
//! Its layer (`tests/module_circles/layers.rs` holds it to this): above `zone-node` and
//! the crates below it, below the app (`zone-etcd`), which it never imports, nor the
//! command line (clap): the app's `keep-revocations` and `promote-learner` parse the
//! flags and call [`keep`] and [`promotion`]; `launch` and `join` call [`start`]. What the
//! keepers share with the commands (the node, the policy, revocation, rollout,
//! identities) is `zone-node`'s.
//!
//! Invariants: each process is detached ([`zone_node::detached`]) and watches this
//! process's PID, which etcd keeps by exec, so it ends when that etcd exits; the config
//! path it is given is absolute (a helper does not share this process's working
//! directory for long); a helper that does not start is an error before etcd starts; a
//! duty that cannot start is logged and the others go on.

#![forbid(unsafe_code)]

pub mod access;
pub mod duty;
pub mod endpoint;
pub mod link;
pub mod links;
pub mod promotion;
pub mod quota;
pub mod recorded;
pub mod release;
pub mod revocations;

use std::path::Path;

use zone_io::Error;

use duty::Watched;
use zone_etcd_kit::cluster_api::hex_id;

/// Starts the promoter for `learner` (when this member is one), then the keeper.
pub fn start(config: &Path, learner: Option<u64>) -> Result<(), Error> {
    if let Some(id) = learner {
        spawn_promoter(config, id)?;
    }
    spawn_keeper(config)
}

/// Starts the keeper for this node, watching this process (about to become etcd).
pub fn spawn_keeper(config: &Path) -> Result<(), Error> {
    let config = std::path::absolute(config).map_err(|e| Error::io("resolve", config, &e))?;
    zone_node::detached::spawn_detached(
        &keeper_args(&config, std::process::id()),
        "revocation keeper",
    )
}

fn keeper_args(config: &Path, watch_pid: u32) -> Vec<String> {
    vec![
        "keep-revocations".into(),
        "--config".into(),
        config.display().to_string(),
        "--watch-pid".into(),
        watch_pid.to_string(),
    ]
}

/// Starts the promoter for member `id`, watching this process (which is about to become
/// etcd by exec). Returns once it runs detached.
pub fn spawn_promoter(config: &Path, id: u64) -> Result<(), Error> {
    let config = std::path::absolute(config).map_err(|e| Error::io("resolve", config, &e))?;
    zone_node::detached::spawn_detached(
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

/// The keeper's process: its duties at once until the watched etcd exits.
pub fn keep(config: &Path, watch_pid: u32) -> Result<(), Error> {
    use zone_node::nameservice::CachePolicy;
    use zone_node::node::Node;
    let load = || Node::load_with(config, CachePolicy::ReadOnly);
    let etcd = Watched(watch_pid);
    let users_gone = revocations::UsersGone::default();
    let first = load()?;
    // One connection to this member's etcd for every duty; a node without a member has
    // none to keep.
    let Some(link) = link::Link::of(&first)? else {
        return Ok(());
    };
    let with_access = first.access.present || first.identities.is_some();
    let gone = with_access.then(|| users_gone.clone());
    let member = first.member().map(|m| {
        (
            m.node_name.clone(),
            zone_node::preflight::level::Trust::of(&first),
        )
    });
    let first_member_metrics = first.member().map(|m| {
        (
            m.node_name.clone(),
            first.state_dir.clone(),
            zone_model::cluster::metrics_url(m),
        )
    });
    let revocations = revocations::new(first, link.clone(), watch_pid, gone)?;
    let mover = release::Mover::new(load()?, link.clone(), watch_pid).unwrap_or_else(|e| {
        tracing::warn!("not following the zone's etcd release: {e}");
        None
    });
    let measurer = first_member_metrics
        .map(|(m, state, url)| links::Measurer::new(link.clone(), m, state, url));
    let recorder = member.map(|(m, trust)| recorded::Recorder::new(link.clone(), m, trust));
    let endpoint = endpoint::Serve::new(load()?);
    let slot = endpoint.as_ref().map(endpoint::Serve::slot);
    let quotas = quota::Slot::default();
    let first_node = load()?;
    let decider = quota::Decider::new(&first_node, link.clone(), quotas.clone());
    let access = access::AccessKeeper::new(first_node, link, slot, users_gone, quotas)
        .unwrap_or_else(|e| {
            tracing::warn!("not keeping the zone's access policy: {e}");
            None
        });
    // Quotas are held only where a policy is kept.
    let decider = decider.filter(|_| access.is_some());
    let runtime = zone_etcd_kit::cluster_api::runtime()?;
    runtime.block_on(async {
        tokio::join!(
            keep_some(revocations, etcd),
            keep_some(mover, etcd),
            keep_some(endpoint, etcd),
            keep_some(access, etcd),
            keep_some(decider, etcd),
            keep_some(recorder, etcd),
            keep_some(measurer, etcd),
        );
    });
    Ok(())
}

/// Keeps `duty` when there is one.
async fn keep_some<D: duty::Duty>(duty: Option<D>, etcd: Watched) {
    if let Some(mut duty) = duty {
        duty::keep(&mut duty, etcd).await;
    }
}
