//! `zone-etcd downgrade`: take the running cluster one minor version down through etcd's
//! downgrade API (etcd 3.6 and later), or call a downgrade off.
//!
//! `--to 3.6` on a 3.7 cluster: every member must answer and run 3.7 (no move under way);
//! etcd validates the target, then enables it, and the cluster version drops to 3.6 at
//! once. From then on a member may restart on etcd 3.6 (`launch` admits it: it is no
//! older than the cluster), one at a time; etcd ends the downgrade by itself once every
//! member runs 3.6. `--cancel` calls it off while members still run 3.7. Nothing is
//! written on this node.

use std::path::Path;

use zone_io::Error;

use zone_etcd_kit::cluster_api::{self, Downgrade};
use zone_etcd_kit::etcd::Version;
use zone_node::node::Node;

pub fn run(config: &Path, to: Option<&str>, cancel: bool) -> Result<(), Error> {
    let node = Node::load(config)?;
    let cluster = zone_node::reach::ask_cluster(&node)?;
    let endpoint = cluster.view.answered_by.clone();
    let creds = &cluster.creds;
    if cancel {
        let answer = cluster
            .runtime
            .block_on(cluster_api::downgrade(&endpoint, creds, Downgrade::Cancel))
            .map_err(|e| {
                Error::new(format!("etcd did not call the downgrade off: {e}"))
                    .fix("see zone-etcd status: a downgrade that has finished cannot be called off")
            })?;
        println!("zone-etcd: downgrade called off (cluster version {answer})");
        return Ok(());
    }
    let Some(to) = to else {
        return Err(Error::new("missing")
            .field("--to")
            .fix("give the minor version to go to, e.g. --to 3.6, or --cancel"));
    };
    let target = Version::parse(to).ok_or_else(|| {
        Error::new(format!("{to:?} is not an etcd version"))
            .field("--to")
            .fix("give a minor version such as 3.6")
    })?;
    let (target, answer) = zone_node::rollout::downgrade::enable(&cluster, target)?;
    println!(
        "zone-etcd: downgrade to {target} enabled (cluster version was {answer}): restart each member on etcd {target}, one at a time, each healthy before the next; etcd ends the downgrade once every member runs {target}"
    );
    Ok(())
}
