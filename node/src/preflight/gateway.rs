//! Before etcd starts in a zone with cyfs members: the zone gateway listens where this
//! node's etcd will dial its cyfs peers ([`zone_model::tunnels`]).
//!
//! Invariant: a member whose zone has cyfs members does not start etcd while a peer
//! endpoint it needs has no listener at all (etcd would retry it forever, silently);
//! the check writes nothing, so the refusal leaves the node as it was.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use zone_io::Error;

use crate::node::Node;
use zone_model::tunnels::{self, Plan};

/// How long a probe of one loopback endpoint may take: a listener answers at once.
const PROBE: Duration = Duration::from_millis(500);

/// Refuses to start etcd when a peer endpoint this member dials through the gateway has
/// no listener (connection refused): no gateway runs, or it lacks this zone's stacks.
pub fn require_listeners(node: &Node) -> Result<(), Error> {
    let config = &node.path;
    let plan: Plan = tunnels::plan(&node.zone, &node.members, &node.name);
    let missing: Vec<String> = tunnels::needed_peer_endpoints(&plan)
        .into_iter()
        .filter(|forward| {
            let Ok(address) = forward.bind.parse::<SocketAddr>() else {
                return true;
            };
            matches!(
                TcpStream::connect_timeout(&address, PROBE),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
            )
        })
        .map(|forward| {
            format!(
                "{} (cyfs member {}'s peer port)",
                forward.bind, forward.node
            )
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::new(format!(
        "nothing listens on {}: this node reaches the zone's cyfs members only through its gateway, and etcd would retry there forever",
        missing.join(", ")
    ))
    .file(config)
    .field("etcd")
    .fix(format!(
        "start the zone gateway with the stacks `zone-etcd gateway --config {}` prints (guide: NAT and cyfs), then launch again",
        config.display()
    )))
}
