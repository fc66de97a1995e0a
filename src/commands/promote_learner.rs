//! `zone-etcd promote-learner` (internal; `join` and `launch` start it:
//! [`zone_agent`]): promotes this
//! node's learner to a voting member once its log has caught up with the leader's.
//!
//! The duty itself is [`zone_agent::promotion`].

use std::path::Path;

use zone_io::Error;

use zone_node::nameservice::CachePolicy;
use zone_node::node::Node;

pub fn run(config: &Path, member_id: &str, watch_pid: u32) -> Result<(), Error> {
    let id = u64::from_str_radix(member_id, 16).map_err(|_| {
        Error::new(format!("{member_id:?} is not a member ID"))
            .field("--member-id")
            .fix("give the member's ID in hex, as etcdctl member list prints it")
    })?;
    let node = Node::load_with(config, CachePolicy::ReadOnly)?;
    zone_agent::promotion::run(&node, id, watch_pid)
}
