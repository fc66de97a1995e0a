//! `zone-etcd gateway`: print the tunnel configuration this node's zone gateway needs
//! for the zone's cyfs members ([`zone_model::tunnels`]). The check that the gateway listens
//! where this node's etcd will dial its cyfs peers is [`zone_node::preflight::gateway`].
//!
//! Invariant: printing writes nothing but standard output; a reader that stops early is
//! not an error.

use std::io::Write;
use std::path::Path;

use zone_io::Error;

use zone_model::tunnels;
use zone_node::nameservice::CachePolicy;
use zone_node::node::Node;

/// How `gateway` prints the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
