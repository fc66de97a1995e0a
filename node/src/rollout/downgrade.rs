//! etcd's downgrade of the running cluster enabled, one minor version down (etcd 3.6 and
//! later): validated by etcd, then enabled (`downgrade --to`, and `upgrade-etcd --to` an
//! older minor). Refused, with nothing changed, when the cluster cannot take it now.

use zone_io::Error;

use crate::reach::Cluster;
use zone_etcd_kit::cluster_api::{self, Downgrade};
use zone_etcd_kit::etcd::Version;

/// Validates, then enables etcd's downgrade of the cluster to `to`'s minor version:
/// (the minor version, the cluster version etcd answered). Refused (exit 78) when the
/// cluster cannot take it now.
pub fn enable(cluster: &Cluster, to: Version) -> Result<(String, String), Error> {
    let endpoint = cluster.view.answered_by.clone();
    let creds = &cluster.creds;
    let target = to;
    let versions = cluster_api::versions(&endpoint, creds)
        .map_err(|e| Error::new(format!("cannot ask {endpoint} the cluster's version: {e}")))?;
    let cluster_version = Version::parse(&versions.cluster).ok_or_else(|| {
        Error::new(format!(
            "the cluster has not decided its version yet ({})",
            versions.cluster
        ))
        .fix("wait until zone-etcd status shows a cluster version, then ask again")
    })?;
    let members = cluster_api::member_releases(&cluster.view.members, creds);
    let target = zone_etcd_kit::etcd::path::downgrade_target(cluster_version, &members, target)
        .map_err(|(problem, fix)| Error::new(problem).field("--to").fix(fix).permanent())?;
    let step = |step: Downgrade| {
        cluster
            .runtime
            .block_on(cluster_api::downgrade(&endpoint, creds, step))
    };
    step(Downgrade::Validate(target.clone())).map_err(|e| {
        Error::new(format!("etcd refused a downgrade to {target}: {e}"))
            .field("--to")
            .fix("see etcd's reason; nothing was changed")
            .permanent()
    })?;
    let answer = step(Downgrade::Enable(target.clone())).map_err(|e| {
        Error::new(format!(
            "etcd did not enable the downgrade to {target}: {e}"
        ))
        .fix("run the same command again; zone-etcd status shows the cluster version")
    })?;
    Ok((target, answer))
}
