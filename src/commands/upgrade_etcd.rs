//! `zone-etcd upgrade-etcd --to VERSION`: the owner's one action that moves the whole
//! zone to another etcd release, and `--cancel`.
//!
//! It records the target at [`zone_node::rollout::TARGET_KEY`] in the zone's etcd; each
//! member's keeper then moves its member there one step at a time, one member at a time,
//! only while every member is healthy ([`zone_node::rollout`]). A target one minor version
//! below the cluster's goes through etcd's downgrade, enabled here first (every member must
//! run the cluster's minor version and answer). `--cancel` removes the target (members
//! already moved stay) and calls off a downgrade under way.
//!
//! Refused in one line, exit 78, nothing written: a release the launcher does not run
//! (older than 3.4, newer than it knows), more than one minor version below the cluster's.

use std::path::Path;

use zone_io::Error;

use zone_etcd_kit::cluster_api::{self, Downgrade};
use zone_etcd_kit::etcd::Version;
use zone_node::node::Node;
use zone_node::rollout::{self, Target, TARGET_KEY};

pub fn run(config: &Path, to: Option<&str>, cancel: bool) -> Result<(), Error> {
    let node = Node::load(config)?;
    let cluster = zone_node::reach::ask_cluster(&node)?;
    let endpoint = cluster.view.answered_by.clone();
    let creds = cluster.creds.clone();
    if cancel {
        cluster
            .runtime
            .block_on(async {
                let client = cluster_api::connect(&endpoint, &creds).await?;
                cluster_api::ask(
                    &client,
                    |mut c| async move { c.delete(TARGET_KEY, None).await },
                )
                .await
                .map_err(String::from)
            })
            .map_err(|e| Error::new(format!("could not remove the target: {e}")))?;
        let downgrade =
            cluster
                .runtime
                .block_on(cluster_api::downgrade(&endpoint, &creds, Downgrade::Cancel));
        let also = match downgrade {
            Ok(_) => "; etcd's downgrade under way called off",
            Err(_) => "",
        };
        println!(
            "zone-etcd: the zone's etcd release is no longer set: no member moves any more (members already moved stay on their release){also}"
        );
        return Ok(());
    }
    let Some(to) = to else {
        return Err(Error::new("missing")
            .field("--to")
            .fix("give the etcd release the zone runs, e.g. --to 3.6.15, or --cancel"));
    };
    let target = Version::parse(to)
        .filter(|_| to.split('.').count() == 3)
        .ok_or_else(|| {
            Error::new(format!("{to:?} is not an etcd release"))
                .field("--to")
                .fix("give a release such as 3.6.15 (zone-etcd status shows each member's)")
                .permanent()
        })?;
    let newest = zone_etcd_kit::etcd::version::NEWEST_KNOWN;
    let known = if target.series() > newest {
        Err(format!(
            "newer than etcd {}.{}, the newest zone-etcd knows the flags of",
            newest.0, newest.1
        ))
    } else {
        zone_etcd_kit::etcd::version::profile(target).map(|_| ())
    };
    known.map_err(|why| {
        Error::new(format!("etcd {target}: {why}"))
            .field("--to")
            .fix(format!(
                "give a release from {} to {}.{}",
                zone_etcd_kit::etcd::version::OLDEST_SUPPORTED,
                newest.0,
                newest.1
            ))
            .permanent()
    })?;
    let versions = cluster_api::versions(&endpoint, &creds)
        .map_err(|e| Error::new(format!("cannot ask {endpoint} the cluster's version: {e}")))?;
    let cluster_version = Version::parse(&versions.cluster);
    let mut said = String::new();
    if let Some(cluster_version) = cluster_version {
        if target.series() < cluster_version.series() {
            let (minor, was) = zone_node::rollout::downgrade::enable(&cluster, target)?;
            said = format!(" (etcd's downgrade to {minor} enabled; the cluster version was {was})");
        }
    }
    let record = Target {
        to: target.to_string(),
        set_at: rollout::now(),
        by: node.name.clone(),
    };
    let value = serde_json::to_string(&record)
        .map_err(|e| Error::new(format!("cannot write the target: {e}")))?;
    cluster
        .runtime
        .block_on(async {
            let client = cluster_api::connect(&endpoint, &creds).await?;
            let value = value.as_str();
            cluster_api::ask(&client, |mut c| async move {
                c.put(TARGET_KEY, value, None).await
            })
            .await
            .map_err(String::from)
        })
        .map_err(|e| {
            Error::new(format!("could not record the target at {endpoint}: {e}"))
                .fix("run the same command again")
        })?;
    println!(
        "zone-etcd: the zone's etcd release is now {target}{said}: each member moves there by itself, one step and one member at a time, while every member is healthy; zone-etcd status shows the way"
    );
    let here =
        zone_etcd_kit::etcd::shelf::releases(node.etcd_bin.as_deref(), &node.state_dir, config);
    if node.member().is_some() && !here.iter().any(|s| s.release() == Some(target)) {
        let have: Vec<&str> = here.iter().map(|s| s.version.as_str()).collect();
        eprintln!(
            "zone-etcd: warning: this machine has no etcd {target} (it has {}): its member waits until one is installed beside the bundled etcd (etcd-{target}/etcd) or the package that carries it",
            have.join(", ")
        );
    }
    Ok(())
}
