//! The etcd a start would exec: found, identified by the version table, and admitted by
//! the running cluster's version.
//!
//! Invariants: an etcd the launcher does not support is refused before anything is
//! written (the version cache is written only with [`Remember::Yes`]); its known defects
//! are logged as warnings, never refusals; an etcd the running cluster's version would
//! stop (older, or a minor version skipped) is refused with exit 78; a member or cluster
//! that does not tell its versions is no refusal (etcd itself still checks).

use std::path::{Path, PathBuf};

use zone_pki::Error;

use crate::cluster_api::Credentials;
use crate::config::node::Node;
use crate::etcd::{self, version, Profile, Remember, Version};

/// The etcd this node runs and what the launcher makes of it (the version table); its
/// known defects are logged as warnings. Refused before anything is written when it is not
/// an etcd the launcher supports.
pub fn local_etcd(
    node: &Node,
    config: &Path,
    remember: Remember,
) -> Result<(PathBuf, Profile), Error> {
    let binary = etcd::find_binary(node.etcd_bin.as_deref(), config)?;
    let profile = etcd::identify(&binary, &node.state_dir, remember, config)?;
    for warning in &profile.warnings {
        tracing::warn!("{warning}");
    }
    Ok((binary, profile))
}

/// Refuses to start this node's etcd in the cluster that `endpoint` serves when etcd would
/// stop it: older than the cluster's version, or a minor version skipped. A member that
/// does not tell its versions (or a cluster that has not decided one yet) is no refusal:
/// etcd itself still checks.
pub fn check_upgrade(
    profile: &Profile,
    endpoint: &str,
    creds: &Credentials,
    config: &Path,
) -> Result<(), Error> {
    let versions = match crate::cluster_api::versions(endpoint, creds) {
        Ok(versions) => versions,
        Err(reason) => {
            tracing::warn!(
                "not checking etcd's version against the cluster's: {endpoint}: {reason}"
            );
            return Ok(());
        }
    };
    let Some(cluster) = Version::parse(&versions.cluster) else {
        return Ok(());
    };
    match version::upgrade_refusal(profile.version, cluster) {
        None => Ok(()),
        Some((problem, fix)) => Err(Error::new(format!(
            "{problem}; the cluster's version is {} (asked at {endpoint})",
            versions.cluster
        ))
        .file(config)
        .field("etcd_bin")
        .fix(fix)
        .permanent()),
    }
}
