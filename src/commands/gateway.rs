//! `zone-etcd gateway`: print the tunnel configuration this node's zone gateway needs
//! for the zone's cyfs members ([`crate::tunnels`]); and, for `launch` and `join`, the
//! check that the gateway listens where this node's etcd will dial its cyfs peers.
//!
//! Invariant: a member whose zone has cyfs members does not start etcd while a peer
//! endpoint it needs has no listener at all (etcd would retry it forever, silently);
//! the check writes nothing, so the refusal leaves the node as it was.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use zone_pki::Error;

use crate::config::node::Node;
use crate::nameservice::CachePolicy;
use crate::tunnels::{self, Plan};

/// How `gateway` prints the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// cyfs-gateway's YAML stack configuration.
    CyfsGateway,
    /// The plan as JSON.
    Json,
}

pub fn run(config: &Path, format: Format) -> Result<(), Error> {
    let node = Node::load_with(config, CachePolicy::ReadOnly)?;
    let plan = tunnels::plan(&node.zone, &node.members, &node.name);
    let text = match format {
        Format::CyfsGateway => tunnels::cyfs_gateway_yaml(&plan, &config.display().to_string()),
        Format::Json => {
            serde_json::to_string_pretty(&plan)
                .map_err(|e| Error::new(format!("cannot write the plan as JSON: {e}")))?
                + "\n"
        }
    };
    // A reader that stops early (`| head`) is not an error.
    match std::io::stdout().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Error::new(format!("cannot write to standard output: {e}")))
        }
        _ => Ok(()),
    }
}

/// How long a probe of one loopback endpoint may take: a listener answers at once.
const PROBE: Duration = Duration::from_millis(500);

/// Refuses to start etcd when a peer endpoint this member dials through the gateway has
/// no listener (connection refused): no gateway runs, or it lacks this zone's stacks.
pub fn require_listeners(node: &Node, config: &Path) -> Result<(), Error> {
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
        "start the zone gateway with the stacks `zone-etcd gateway --config {}` prints (README: members at home behind NAT, with cyfs), then launch again",
        config.display()
    )))
}
