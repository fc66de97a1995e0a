//! The etcd a start would exec: found, identified by the version table, and admitted by
//! the running cluster's version.
//!
//! Invariants: an etcd the launcher does not support is refused before anything is
//! written (the version cache is written only with [`Remember::Yes`]); its known defects
//! are logged as warnings, never refusals; an etcd the running cluster's version would
//! stop (older, or a minor version skipped), or a step etcd's guides forbid (the next
//! minor version before every member runs the patch it needs, 3.7 over what 3.5 wrote), is
//! refused with exit 78; a member or cluster that does not tell its versions is no
//! refusal (etcd itself still checks).

use std::path::PathBuf;

use zone_io::Error;

use crate::node::Node;
use zone_etcd_kit::cluster_api::Credentials;
use zone_etcd_kit::etcd::{self, Profile, Remember, Version};

/// The etcd this node runs and what the launcher makes of it (the version table); its
/// known defects are logged as warnings. Refused before anything is written when it is not
/// an etcd the launcher supports.
pub fn local_etcd(node: &Node, remember: Remember) -> Result<(PathBuf, Profile), Error> {
    let (binary, profile) = chosen_etcd(node, remember)?;
    for warning in &profile.warnings {
        tracing::warn!("{warning}");
    }
    Ok((binary, profile))
}

/// [`local_etcd`] without its warnings: the keeper's step, else `etcd_bin`, else the
/// bundle.
pub fn chosen_etcd(node: &Node, remember: Remember) -> Result<(PathBuf, Profile), Error> {
    match stepped(node, remember) {
        Some(chosen) => Ok(chosen),
        None => {
            let binary = etcd::find_binary(node.etcd_bin.as_deref(), &node.path)?;
            let profile = etcd::identify(&binary, &node.state_dir, remember, &node.path)?;
            Ok((binary, profile))
        }
    }
}

/// The release this member's keeper moved it to on the owner's way
/// ([`crate::rollout`]), while its binary still reports it; `None` when there is no step
/// (then `etcd_bin` or the bundle runs).
fn stepped(node: &Node, remember: Remember) -> Option<(PathBuf, Profile)> {
    let step = etcd::shelf::read_step(&node.state_dir)?;
    match etcd::identify(&step.binary, &node.state_dir, remember, &node.path) {
        Ok(profile) if profile.version.to_string() == step.version => Some((step.binary, profile)),
        _ => {
            tracing::warn!(
                "the etcd step to {} ({}) no longer reports it: starting etcd_bin or the bundle",
                step.version,
                step.binary.display()
            );
            None
        }
    }
}

/// Refuses to start this node's etcd in the cluster `view` shows (as `view.answered_by`
/// told it) when etcd would stop it, or when it would take a step etcd's upgrade guides
/// forbid: older than the cluster's version, a minor version skipped, or the next minor
/// version before every other member runs the patch that step needs (each started member
/// is asked its release). A member that does not tell its versions (or a cluster that has
/// not decided one yet) is no refusal: etcd itself still checks.
///
/// The bundled etcd (no `etcd_bin`, no step of the keeper's) that the cluster does not
/// admit yet gives way to the newest release on this machine's shelf that it does admit,
/// returned (and remembered as the step): a zone on 3.5.30 that installs a package whose
/// bundle is 3.6 restarts each member on the package's 3.5.34, and moves on from there by
/// the owner's `upgrade-etcd`.
pub fn check_upgrade(
    node: &Node,
    profile: &Profile,
    view: &zone_model::cluster::ClusterView,
    creds: &Credentials,
) -> Result<Option<(PathBuf, Profile)>, Error> {
    let config = &node.path;
    let endpoint = &view.answered_by;
    let versions = match zone_etcd_kit::cluster_api::versions(endpoint, creds) {
        Ok(versions) => versions,
        Err(reason) => {
            tracing::warn!(
                "not checking etcd's version against the cluster's: {endpoint}: {reason}"
            );
            return Ok(None);
        }
    };
    let Some(cluster) = Version::parse(&versions.cluster) else {
        return Ok(None);
    };
    let mut members: Option<Vec<(String, Version)>> = None;
    let mut others = |binary: Version| -> Vec<(String, Version)> {
        // Only a step up a minor version needs the others' releases.
        if binary.series() <= cluster.series() {
            return Vec::new();
        }
        members
            .get_or_insert_with(|| {
                let others = view
                    .members
                    .iter()
                    .filter(|m| m.started() && m.name != node.name);
                zone_etcd_kit::cluster_api::member_releases(others, creds)
                    .into_iter()
                    .filter_map(|(name, release)| Some((name, release?)))
                    .collect()
            })
            .clone()
    };
    let Some((problem, fix)) =
        etcd::path::upgrade_refusal(profile.version, cluster, &others(profile.version))
    else {
        return Ok(None);
    };
    if node.etcd_bin.is_none() && etcd::shelf::read_step(&node.state_dir).is_none() {
        let shelf = etcd::shelf::releases(None, &node.state_dir, config);
        let admitted = shelf.iter().find(|s| {
            s.release().is_some_and(|v| {
                v != profile.version
                    && etcd::path::upgrade_refusal(v, cluster, &others(v)).is_none()
            })
        });
        if let Some(step) = admitted {
            let release = etcd::identify(&step.binary, &node.state_dir, Remember::Yes, config)?;
            etcd::shelf::write_step(&node.state_dir, step)?;
            tracing::warn!(
                "the bundled etcd {} cannot join this cluster yet ({problem}); starting etcd {} ({}), the step on the way (zone-etcd upgrade-etcd moves the zone on)",
                profile.version,
                step.version,
                step.binary.display()
            );
            return Ok(Some((step.binary.clone(), release)));
        }
    }
    Err(Error::new(format!(
        "{problem}; the cluster's version is {} (asked at {endpoint})",
        versions.cluster
    ))
    .file(config)
    .field("etcd_bin")
    .fix(fix)
    .permanent())
}

/// Refuses an etcd that cannot replay this member's log (3.7 over entries 3.5 wrote; see
/// [`etcd::path::replay_refusal`]). The log is read only for etcd 3.7 and later.
pub fn check_replay(node: &Node, release: &Profile) -> Result<(), Error> {
    match replay_refusal(node, release.version)? {
        None => Ok(()),
        Some((problem, fix)) => Err(Error::new(problem)
            .file(&node.path)
            .field("etcd_bin")
            .fix(fix)
            .permanent()),
    }
}

/// Why etcd `version` could not replay this member's log, with the fix; `None` when it
/// can (the log is read only for etcd 3.7 and later). The keeper asks it before a move.
pub fn replay_refusal(node: &Node, version: Version) -> Result<Option<(String, String)>, Error> {
    if version.series() < (3, 7) {
        return Ok(None);
    }
    let last_v2 = zone_etcd_kit::wal::entries_before_3_6(&node.data_dir)?;
    Ok(etcd::path::replay_refusal(version, last_v2))
}

/// The zone's settings as this member's etcd `version` runs them: etcd 3.6 over a log that
/// still holds, past its last snapshot, entries etcd 3.5 wrote runs with a low
/// `--snapshot-count` until it has taken a snapshot past them, so that 3.7 may replay its
/// log within minutes on a quiet zone (see [`etcd::path::catch_up_snapshot_count`]).
/// `has_data`: the data directory holds a member (a first start has no log to read).
pub fn settings_for(
    node: &Node,
    version: Version,
    has_data: bool,
) -> Result<zone_model::settings::Settings, Error> {
    let mut settings = node.settings.clone();
    if !has_data || version.series() != (3, 6) {
        return Ok(settings);
    }
    let replay = zone_etcd_kit::wal::replay(&node.data_dir)?;
    if let Some(count) =
        etcd::path::catch_up_snapshot_count(version, replay.last_v2, settings.snapshot_count)
    {
        tracing::info!(
            "etcd {version} runs with --snapshot-count={count} (the zone's: {}) until it has taken a snapshot past the entries etcd 3.5 wrote (up to index {}), so that etcd 3.7 can replay this member's log; the start after it runs with the zone's",
            settings
                .snapshot_count
                .map_or("etcd's default".to_string(), |c| c.to_string()),
            replay.last_v2.unwrap_or_default()
        );
        settings.snapshot_count = Some(count);
    }
    Ok(settings)
}
