//! `zone-etcd promote-learner` (internal; `join` and `launch` start it:
//! [`crate::agent`]): promotes this
//! node's learner to a voting member once its log has caught up with the leader's.
//!
//! It runs beside etcd, detached (forked twice, so
//! it is not etcd's child: etcd never reaps children it did not start). It ends when the
//! member is a voter, when the member was removed, or when the etcd it watches exits.

use std::path::Path;
use std::time::Duration;

use zone_io::Error;

use crate::nameservice::CachePolicy;
use crate::node::Node;
use zone_etcd_kit::cluster_api::{self, hex_id, Credentials, Kind};

/// Between two promotion attempts: etcd accepts one once the learner's log is within 10%
/// of the leader's, which takes from milliseconds to minutes with the data's size.
const RETRY_EVERY: Duration = Duration::from_millis(500);

pub fn run(config: &Path, member_id: &str, watch_pid: u32) -> Result<(), Error> {
    let id = u64::from_str_radix(member_id, 16).map_err(|_| {
        Error::new(format!("{member_id:?} is not a member ID"))
            .field("--member-id")
            .fix("give the member's ID in hex, as etcdctl member list prints it")
    })?;
    let node = Node::load_with(config, CachePolicy::ReadOnly)?;
    let creds = Credentials::load(&node.leaf_paths())?;
    let others = node.other_members();
    let runtime = cluster_api::runtime()?;
    let mut attempts = 0u32;
    loop {
        if !crate::detached::running(watch_pid) {
            tracing::info!(
                "etcd (pid {watch_pid}) has exited; stopped waiting to promote {}",
                hex_id(id)
            );
            return Ok(());
        }
        attempts += 1;
        match runtime.block_on(cluster_api::promote(&others, &creds, id)) {
            Ok(()) => {
                tracing::info!(
                    "promoted {} (member {}) to a voting member",
                    node.name,
                    hex_id(id)
                );
                return Ok(());
            }
            Err(reason) if reason.kind() == Kind::NotALearner => {
                tracing::info!("{} (member {}) is already a voter", node.name, hex_id(id));
                return Ok(());
            }
            Err(reason) if reason.kind() == Kind::MemberNotFound => {
                return Err(Error::new(format!(
                    "member {} was removed before it could be promoted",
                    hex_id(id)
                ))
                .fix("run zone-etcd join again"));
            }
            Err(reason) => {
                // "not in sync with leader" until the log catches up; say so now and then.
                if attempts % 20 == 1 {
                    tracing::info!("not promoted yet (attempt {attempts}): {reason}");
                }
            }
        }
        std::thread::sleep(RETRY_EVERY);
    }
}
