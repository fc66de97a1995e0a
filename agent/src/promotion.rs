//! The duty of the learner promoter (`zone-etcd promote-learner`, a process of its own
//! that `join` and `launch` start beside a learner): promotes this node's learner to a
//! voting member once its log has caught up with the leader's.
//!
//! It ends when the member is a voter, when the member was removed (an error: `join`
//! again), or when the etcd it watches exits.

use std::sync::Arc;
use std::time::Duration;

use zone_io::Error;

use super::duty::{self, Duty, Ended, Round, Watched};
use zone_etcd_kit::cluster_api::{self, hex_id, Credentials, Kind};
use zone_node::node::Node;

/// Between two promotion attempts: etcd accepts one once the learner's log is within 10%
/// of the leader's, which takes from milliseconds to minutes with the data's size.
const RETRY_EVERY: Duration = Duration::from_millis(500);

struct Promote {
    name: String,
    id: u64,
    others: Vec<String>,
    creds: Arc<Credentials>,
    /// Why it cannot be done (the member was removed), once known.
    failed: Option<Error>,
}

impl Duty for Promote {
    fn name(&self) -> String {
        format!("not promoted yet ({})", hex_id(self.id))
    }

    fn pause(&self) -> Duration {
        RETRY_EVERY
    }

    async fn round(&mut self) -> Result<Round, String> {
        let (name, id) = (&self.name, hex_id(self.id));
        match cluster_api::promote(&self.others, &self.creds, self.id).await {
            Ok(()) => Ok(Round::Done(Some(format!(
                "promoted {name} (member {id}) to a voting member"
            )))),
            Err(e) if e.kind() == Kind::NotALearner => Ok(Round::Done(Some(format!(
                "{name} (member {id}) is already a voter"
            )))),
            Err(e) if e.kind() == Kind::MemberNotFound => {
                self.failed = Some(
                    Error::new(format!(
                        "member {id} was removed before it could be promoted"
                    ))
                    .fix("run zone-etcd join again"),
                );
                Ok(Round::Done(None))
            }
            // "not in sync with leader" until the log catches up: said once.
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Promotes member `id` of `node` once it can, while the etcd of `watch_pid` runs.
pub fn run(node: &Node, id: u64, watch_pid: u32) -> Result<(), Error> {
    let mut promote = Promote {
        name: node.name.clone(),
        id,
        others: node.other_members(),
        creds: Credentials::load(&node.leaf_paths())?,
        failed: None,
    };
    let runtime = cluster_api::runtime()?;
    match runtime.block_on(duty::keep(&mut promote, Watched(watch_pid))) {
        Ended::Done => promote.failed.map_or(Ok(()), Err),
        Ended::EtcdExited => {
            tracing::info!(
                "etcd (pid {watch_pid}) has exited; stopped waiting to promote {}",
                hex_id(id)
            );
            Ok(())
        }
    }
}
