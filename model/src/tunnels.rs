//! The zone gateway's tunnels for cyfs members, as pure decisions: which loopback
//! endpoints a node's gateway must listen on, where each one leads, what the node's own
//! end of the tunnels may reach, and who may open a tunnel to it; and that plan written
//! as cyfs-gateway's stack configuration or as JSON.
//!
//! Invariants:
//! - a node forwards exactly the peer and client ports of every *other* cyfs member, each
//!   from `127.0.0.1:<port>` to `rtcp://<that member's node name>/127.0.0.1:<port>`, so
//!   every node reaches a cyfs member at the same endpoint (member validation keeps those
//!   ports unique in the zone);
//! - a node's own end of the tunnels reaches only its own etcd's peer and client ports on
//!   loopback, and only when it is a cyfs member: nothing else on the machine is exposed;
//! - tunnels are admitted only from the zone's devices: each member by its DID, other
//!   nodes of the zone by the zone DID of their owner-signed device document.
//!
//! Devices are named as BuckyOS names them in a zone: the node name is the device's host
//! name, `did:web:<node name>` its DID (the form cyfs-gateway's RTCP URLs and
//! `REQ.source_device_id` carry).

use serde::Serialize;

use crate::config::zone::{Member, Protocol, TUNNEL_HOST};

/// cyfs-gateway's RTCP port (its default), where every node's own tunnel end listens.
pub const RTCP_PORT: u16 = 2980;

/// The cyfs-gateway release whose configuration format [`cyfs_gateway_yaml`] writes.
pub const CYFS_GATEWAY_VERSION: &str = "0.7.0";

/// A DID for a device or zone name.
pub fn did(name: &str) -> String {
    format!("did:web:{name}")
}

/// One loopback listener of this node's gateway, leading to another node's etcd.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Forward {
    /// Where this node's gateway listens (`127.0.0.1:<port>`).
    pub bind: String,
    /// The cyfs member the connection is for.
    pub node: String,
    /// Its device's DID.
    pub device: String,
    /// `peer` or `client`.
    pub port_of: &'static str,
    /// Where the connection goes on that node, through the tunnel.
    pub target: String,
}

/// What one node's gateway does for the zone's etcd.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub zone: String,
    pub node: String,
    pub device: String,
    /// The port of this node's own tunnel end.
    pub rtcp_port: u16,
    pub forwards: Vec<Forward>,
    /// The endpoints on this node that arriving tunnels may reach: its own etcd's peer
    /// and client ports when it is a cyfs member, else none.
    pub serves: Vec<String>,
    /// Devices admitted to open tunnels to this node: every other member's DID.
    pub admits: Vec<String>,
    /// And any device whose owner-signed document puts it in this zone.
    pub admits_zone: String,
    /// Tunnels this node keeps open (host form): a cyfs member keeps one to each https
    /// member, which it can always reach and which cannot reach it behind a NAT.
    pub keep_tunnels: Vec<String>,
}

/// The plan of node `node` in a zone with `members`.
pub fn plan(zone: &str, members: &[Member], node: &str) -> Plan {
    let endpoint = |port: u16| format!("{TUNNEL_HOST}:{port}");
    let mut forwards = Vec::new();
    for member in members
        .iter()
        .filter(|m| m.protocol == Protocol::Cyfs && m.node_name != node)
    {
        for (port, port_of) in [(member.peer_port, "peer"), (member.client_port, "client")] {
            forwards.push(Forward {
                bind: endpoint(port),
                node: member.node_name.clone(),
                device: did(&member.node_name),
                port_of,
                target: endpoint(port),
            });
        }
    }
    let own = members.iter().find(|m| m.node_name == node);
    let is_cyfs = own.is_some_and(|m| m.protocol == Protocol::Cyfs);
    let serves = match own {
        Some(m) if is_cyfs => vec![endpoint(m.peer_port), endpoint(m.client_port)],
        _ => Vec::new(),
    };
    let keep_tunnels = if is_cyfs {
        members
            .iter()
            .filter(|m| m.protocol == Protocol::Https)
            .map(|m| m.node_name.clone())
            .collect()
    } else {
        Vec::new()
    };
    Plan {
        zone: zone.to_string(),
        node: node.to_string(),
        device: did(node),
        rtcp_port: RTCP_PORT,
        forwards,
        serves,
        admits: members
            .iter()
            .filter(|m| m.node_name != node)
            .map(|m| did(&m.node_name))
            .collect(),
        admits_zone: did(zone),
        keep_tunnels,
    }
}

/// The peer endpoints a member's etcd dials through this node's gateway: where `launch`
/// and `join` look for a listener before starting etcd.
pub fn needed_peer_endpoints(plan: &Plan) -> Vec<&Forward> {
    plan.forwards
        .iter()
        .filter(|f| f.port_of == "peer")
        .collect()
}

/// A stack name cyfs-gateway takes: letters, digits and `_`.
fn stack_id(parts: &[&str]) -> String {
    parts
        .join("_")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// A one-block hook point, indented for a stack at two spaces.
fn hook(key: &str, block_name: &str, lines: &[String]) -> String {
    let mut out = format!(
        "    {key}:\n      main:\n        priority: 1\n        blocks:\n          {block_name}:\n            priority: 1\n            block: |\n"
    );
    for line in lines {
        out.push_str(&format!("              {line}\n"));
    }
    out
}

/// The plan as cyfs-gateway's stack configuration (YAML), to include from the
/// gateway's main configuration. Only names and ports are interpolated, all validated
/// DNS names and numbers, so nothing needs quoting beyond what is written.
pub fn cyfs_gateway_yaml(plan: &Plan, config: &str) -> String {
    let mut out = format!(
        "# cyfs-gateway {CYFS_GATEWAY_VERSION} stacks for {node}, a node of zone {zone}: the tunnels of\n\
         # the zone's cyfs etcd members. Generated by `zone-etcd gateway --config {config}`;\n\
         # generate it again whenever the zone's members change. Include it from the\n\
         # gateway's configuration (includes:).\n",
        node = plan.node,
        zone = plan.zone,
    );
    if plan.forwards.is_empty() && plan.serves.is_empty() {
        out.push_str("# No member of this zone is reached through the gateway: nothing to add.\nstacks: {}\n");
        return out;
    }
    out.push_str("stacks:\n");
    for forward in &plan.forwards {
        let id = stack_id(&["zone_etcd", &forward.node, forward.port_of]);
        out.push_str(&format!(
            "  {id}:\n    protocol: tcp\n    bind: {}\n    reuse_address: true\n",
            forward.bind
        ));
        out.push_str(&hook(
            "hook_point",
            "to_member",
            &[format!(
                "forward \"rtcp://{}/{}\";",
                forward.node, forward.target
            )],
        ));
    }
    out.push_str(&format!(
        "  zone_etcd_rtcp:\n    protocol: rtcp\n    bind: 0.0.0.0:{}\n    reuse_address: true\n    identity: {}\n",
        plan.rtcp_port, plan.device
    ));
    if !plan.keep_tunnels.is_empty() {
        out.push_str("    keep_tunnel:\n");
        for tunnel in &plan.keep_tunnels {
            out.push_str(&format!("      - {tunnel}\n"));
        }
    }
    out.push_str(
        "    inbound_admission:\n      anonymous: reject\n      named_min_relation: same_zone\n",
    );
    let mut admit: Vec<String> = plan
        .admits
        .iter()
        .map(|d| format!("eq ${{REQ.source_device_id}} \"{d}\" && return \"ok\";"))
        .collect();
    admit.push(format!(
        "eq ${{REQ.source_zone_did}} \"{}\" && return \"ok\";",
        plan.admits_zone
    ));
    admit.push("reject;".into());
    out.push_str(&hook("on_new_tunnel_hook_point", "zone_devices", &admit));
    let mut serve: Vec<String> = plan
        .serves
        .iter()
        .map(|endpoint| {
            let port = endpoint.rsplit(':').next().unwrap_or_default();
            format!("eq ${{REQ.dest_port}} \"{port}\" && forward \"tcp:///{endpoint}\";")
        })
        .collect();
    serve.push("reject;".into());
    out.push_str(&hook("hook_point", "own_etcd_only", &serve));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::zone::Zone;
    use std::path::Path;

    /// The zone of the guide's NAT and cyfs page: one rented server, two homes behind NAT.
    const ZONE_FILE: &str = include_str!("../../tests/data/gateway/zone.toml");

    fn zone() -> Zone {
        Zone::parse(Path::new("zone.toml"), ZONE_FILE).unwrap()
    }

    #[test]
    fn a_home_forwards_the_other_home_and_serves_only_its_own_etcd() {
        let zone = zone();
        let plan = plan(&zone.name, &zone.members, "home1.example.zone");
        let binds: Vec<_> = plan.forwards.iter().map(|f| f.bind.as_str()).collect();
        assert_eq!(binds, ["127.0.0.1:2580", "127.0.0.1:2579"]);
        assert_eq!(plan.serves, ["127.0.0.1:2480", "127.0.0.1:2479"]);
        assert_eq!(plan.keep_tunnels, ["server.example.zone"]);
        assert_eq!(
            plan.admits,
            ["did:web:server.example.zone", "did:web:home2.example.zone"]
        );
        let needed: Vec<_> = needed_peer_endpoints(&plan)
            .iter()
            .map(|f| f.bind.clone())
            .collect();
        assert_eq!(needed, ["127.0.0.1:2580"]);
    }

    #[test]
    fn the_server_and_a_client_node_forward_both_homes_and_serve_nothing() {
        let zone = zone();
        for node in ["server.example.zone", "laptop.example.zone"] {
            let plan = plan(&zone.name, &zone.members, node);
            assert_eq!(plan.forwards.len(), 4, "{node}");
            assert!(plan.serves.is_empty(), "{node}");
            assert!(plan.keep_tunnels.is_empty(), "{node}");
        }
    }

    #[test]
    fn the_configuration_is_the_expected_one() {
        let zone = zone();
        for (node, expected) in [
            (
                "home1.example.zone",
                include_str!("../../tests/data/gateway/home1.yaml"),
            ),
            (
                "server.example.zone",
                include_str!("../../tests/data/gateway/server.yaml"),
            ),
        ] {
            let plan = plan(&zone.name, &zone.members, node);
            let got = cyfs_gateway_yaml(&plan, "/etc/zone-etcd/node.toml");
            assert_eq!(got, expected, "{node}:\n{got}");
        }
    }

    #[test]
    fn a_zone_without_cyfs_members_needs_nothing() {
        let https = Zone::parse(
            Path::new("zone.toml"),
            "name = \"example.zone\"\n[[etcd]]\nnode_name = \"node1.example.zone\"\naddress = \"10.0.0.1\"\n",
        )
        .unwrap();
        let plan = plan(&https.name, &https.members, "node1.example.zone");
        assert!(plan.forwards.is_empty() && plan.serves.is_empty());
        assert!(cyfs_gateway_yaml(&plan, "node.toml").ends_with("stacks: {}\n"));
    }
}
