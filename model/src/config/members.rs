//! The member list: validation of the `[[etcd]]` entries of a zone file, a node config or a
//! zone document, into [`Member`]s. Everything that would make an unbootable or unsafe
//! cluster is refused here, with the entry and key at fault (`etcd #2 peer_port`).

use std::collections::HashMap;

use zone_io::Error;
use zone_pki::profile::peer_name;
use zone_pki::Host;

use super::member::{
    Member, Protocol, RawMember, DEFAULT_CLIENT_PORT, DEFAULT_PEER_PORT, TUNNEL_HOST,
};
use super::text::check_dns_name;

/// Validates a member list (from a zone file, a node config or a nameservice document):
/// non-empty; DNS node names, unique, none a parent domain of another or of the zone's
/// reserved peer name; protocol https or cyfs; ports 1–65535; no address:port used twice;
/// a cyfs member's ports used by no other member (every node's gateway binds them on
/// loopback).
pub fn validate_members(zone: &str, raw: &[RawMember]) -> Result<Vec<Member>, Error> {
    if raw.is_empty() {
        return Err(Error::new("the etcd member list is empty")
            .field("etcd")
            .fix(
            "add at least one [[etcd]] entry with node_name, address, peer_port and client_port",
        ));
    }
    let mut members = Vec::with_capacity(raw.len());
    for (index, entry) in raw.iter().enumerate() {
        members.push(validate_member(index + 1, entry)?);
    }
    check_tunnel_ports(&members)?;
    let mut seen_names: HashMap<&str, usize> = HashMap::new();
    let mut seen_endpoints: HashMap<(Host, u16), (usize, &'static str)> = HashMap::new();
    for (index, member) in members.iter().enumerate() {
        let at = format!("etcd #{}", index + 1);
        if let Some(first) = seen_names.insert(&member.node_name, index + 1) {
            return Err(Error::new(format!(
                "node name {:?} is used by etcd #{first} already",
                member.node_name
            ))
            .field(format!("{at} node_name"))
            .fix("give every member its own node name"));
        }
        check_name_is_not_reserved(zone, &member.node_name)
            .map_err(|e| e.field(format!("{at} node_name")))?;
        for (port, what) in [
            (member.peer_port, "peer_port"),
            (member.client_port, "client_port"),
        ] {
            if let Some((first, first_what)) =
                seen_endpoints.insert((member.host(), port), (index + 1, what))
            {
                return Err(Error::new(format!(
                    "{}:{port} is already used by etcd #{first} {first_what}",
                    member.host()
                ))
                .field(format!("{at} {what}"))
                .fix("give every member its own address, or different ports"));
            }
        }
    }
    for (index, a) in members.iter().enumerate() {
        let index = index + 1;
        for b in &members {
            if is_parent_domain(&a.node_name, &b.node_name) {
                return Err(Error::new(format!(
                    "node name {:?} is a parent domain of {:?}: its node CA could issue certificates for that node",
                    a.node_name, b.node_name
                ))
                .field(format!("etcd #{index} node_name"))
                .fix("name nodes as siblings, e.g. node1.example.zone and node2.example.zone"));
            }
        }
    }
    check_metrics_ports(&members)?;
    Ok(members)
}

/// A cyfs member is reached at its ports on `127.0.0.1` of every node, where the node's
/// gateway (or, on its own node, its etcd) listens: no other member may use its peer or
/// client port, in any role (peer, client or metrics port), or one node would need two
/// listeners on one loopback port.
fn check_tunnel_ports(members: &[Member]) -> Result<(), Error> {
    let ports = |m: &Member| {
        [
            (m.peer_port, "peer_port"),
            (m.client_port, "client_port"),
            (m.metrics_port(), "metrics port (peer_port + 1)"),
        ]
    };
    for (index, cyfs) in members.iter().enumerate() {
        if cyfs.protocol != Protocol::Cyfs {
            continue;
        }
        for (port, what) in ports(cyfs).into_iter().take(2) {
            for (other_index, other) in members.iter().enumerate() {
                if other_index == index {
                    continue;
                }
                let Some((_, other_what)) = ports(other).into_iter().find(|(p, _)| *p == port)
                else {
                    continue;
                };
                let (both, fix) = match other.protocol {
                    Protocol::Cyfs => (
                        "both are cyfs members, and every node reaches each cyfs member at its own ports on 127.0.0.1",
                        "give each cyfs member its own peer_port and client_port, e.g. 2380/2379 for one and 2480/2479 for the next",
                    ),
                    Protocol::Https => (
                        "every node's gateway listens on a cyfs member's ports on 127.0.0.1, where that member's etcd listens too",
                        "give the cyfs member ports no other member uses, e.g. peer_port = 2480 and client_port = 2479",
                    ),
                };
                return Err(Error::new(format!(
                    "port {port} is the {what} of cyfs member {} (etcd #{}) and the {other_what} of {} (etcd #{}): {both}",
                    cyfs.node_name,
                    index + 1,
                    other.node_name,
                    other_index + 1
                ))
                .field(format!("etcd #{} {what}", index + 1))
                .fix(fix));
            }
        }
    }
    Ok(())
}

/// Each member's metrics port (peer port + 1, on loopback) must exist and be free: not its
/// own client port (which also listens on loopback), and not a port of another member on
/// the same loopback address.
fn check_metrics_ports(members: &[Member]) -> Result<(), Error> {
    for (index, member) in members.iter().enumerate() {
        let at = format!("etcd #{} peer_port", index + 1);
        let metrics = member.metrics_port();
        let fix = "leave the port after each peer port free for its metrics (e.g. peer_port = 2380, client_port = 2379: metrics on 2381)";
        if member.peer_port == u16::MAX {
            return Err(Error::new(
                "65535 leaves no port for the member's metrics (peer_port + 1)",
            )
            .field(at)
            .fix(fix));
        }
        let loopback = |m: &Member| match m.host() {
            Host::Ip(ip) if ip.is_loopback() => Some(ip),
            _ => None,
        };
        let clash = members.iter().enumerate().find(|(other_index, other)| {
            if *other_index == index {
                return other.client_port == metrics;
            }
            loopback(member).is_some()
                && loopback(member) == loopback(other)
                && [other.client_port, other.peer_port, other.metrics_port()].contains(&metrics)
        });
        if let Some((other, _)) = clash {
            return Err(Error::new(format!(
                "port {metrics} (peer_port + 1) is this member's metrics port, but etcd #{} uses it already",
                other + 1
            ))
            .field(at)
            .fix(fix));
        }
    }
    Ok(())
}

/// Refuses the zone's reserved peer name, and any name that is a parent domain of it.
pub fn check_name_is_not_reserved(zone: &str, node_name: &str) -> Result<(), Error> {
    let reserved = peer_name(zone);
    if node_name == reserved || is_parent_domain(node_name, &reserved) {
        return Err(Error::new(format!(
            "node name {node_name:?} is (or contains) {reserved:?}, the name reserved for the zone's peer certificates"
        ))
        .fix(format!("name the node inside the zone, e.g. node1.{zone}")));
    }
    Ok(())
}

/// True when `child` is a strict subdomain of `parent` (X.509 name constraints permit it).
pub fn is_parent_domain(parent: &str, child: &str) -> bool {
    child.len() > parent.len()
        && child.ends_with(parent)
        && child[..child.len() - parent.len()].ends_with('.')
}

fn validate_member(number: usize, raw: &RawMember) -> Result<Member, Error> {
    let at = format!("etcd #{number}");
    let node_name = raw.node_name.clone().ok_or_else(|| {
        Error::new("missing")
            .field(format!("{at} node_name"))
            .fix("add node_name = \"<node>.<zone>\"")
    })?;
    check_dns_name(&node_name).map_err(|p| {
        Error::new(p)
            .field(format!("{at} node_name"))
            .fix("use the node's DNS name, e.g. node1.example.zone")
    })?;
    let protocol = match raw.protocol.as_deref().unwrap_or("https") {
        "https" => Protocol::Https,
        "cyfs" => Protocol::Cyfs,
        other => {
            return Err(Error::new(format!("unknown protocol {other:?}"))
                .field(format!("{at} protocol"))
                .fix("use protocol = \"https\" (reached at its address) or \"cyfs\" (reached only through the zone gateway's tunnels)"))
        }
    };
    let address = match raw.address.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => {
            let text = text.trim_start_matches('[').trim_end_matches(']');
            let host = Host::parse(text);
            if let Host::Dns(name) = &host {
                check_dns_name(name).map_err(|p| {
                    Error::new(format!("not an IP address, and {p}"))
                        .field(format!("{at} address"))
                        .fix("write an IP address (10.0.1.10, fd00::10) or a DNS name, or leave it empty to use node_name")
                })?;
            }
            Some(host)
        }
    };
    let port = |value: Option<i64>, default: u16, what: &str| -> Result<u16, Error> {
        match value {
            None => Ok(default),
            Some(p) => u16::try_from(p).ok().filter(|p| *p != 0).ok_or_else(|| {
                Error::new(format!("port {p} is outside 1-65535"))
                    .field(format!("{at} {what}"))
                    .fix(format!(
                        "use a port from 1 to 65535 (etcd's default is {default})"
                    ))
            }),
        }
    };
    let address = match (protocol, address) {
        (Protocol::Cyfs, Some(host)) if host != Host::Ip(TUNNEL_HOST) => {
            return Err(Error::new(format!(
                "a cyfs member is reached only through the zone gateway, at {TUNNEL_HOST} on every node; the address {host} would not be used"
            ))
            .field(format!("{at} address"))
            .fix("leave address empty for a cyfs member (or make it an https member reached at that address)"))
        }
        (Protocol::Cyfs, _) => None,
        (Protocol::Https, address) => address,
    };
    Ok(Member {
        protocol,
        peer_port: port(raw.peer_port, DEFAULT_PEER_PORT, "peer_port")?,
        client_port: port(raw.client_port, DEFAULT_CLIENT_PORT, "client_port")?,
        node_name,
        address,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(name: &str, address: &str, peer: i64, client: i64) -> RawMember {
        RawMember {
            node_name: Some(name.into()),
            protocol: Some("https".into()),
            address: Some(address.into()),
            peer_port: Some(peer),
            client_port: Some(client),
        }
    }

    fn refuse(list: &[RawMember]) -> String {
        validate_members("example.zone", list)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_good_list_passes_in_order() {
        let members = validate_members(
            "example.zone",
            &[
                raw("node2.example.zone", "10.0.0.2", 2380, 2379),
                raw("node1.example.zone", "", 2380, 2379),
            ],
        )
        .unwrap();
        assert_eq!(members[0].node_name, "node2.example.zone");
        assert_eq!(members[1].address, None);
        assert_eq!(members[1].host(), Host::Dns("node1.example.zone".into()));
    }

    fn cyfs(name: &str, peer: i64, client: i64) -> RawMember {
        RawMember {
            protocol: Some("cyfs".into()),
            ..raw(name, "", peer, client)
        }
    }

    #[test]
    fn cyfs_members_are_reached_on_loopback_at_ports_of_their_own() {
        let members = validate_members(
            "example.zone",
            &[
                raw("server.example.zone", "203.0.113.7", 2380, 2379),
                cyfs("home1.example.zone", 2480, 2479),
                cyfs("home2.example.zone", 2580, 2579),
            ],
        )
        .unwrap();
        assert_eq!(members[1].protocol, Protocol::Cyfs);
        assert_eq!(members[1].address, None);
        assert_eq!(members[1].host(), Host::Ip(TUNNEL_HOST));
        assert_eq!(members[0].host(), Host::parse("203.0.113.7"));
        // An address that is loopback already says nothing new.
        let mut loopback = cyfs("home1.example.zone", 2480, 2479);
        loopback.address = Some("127.0.0.1".into());
        validate_members("example.zone", &[loopback]).unwrap();

        let two = refuse(&[
            raw("server.example.zone", "203.0.113.7", 2380, 2379),
            cyfs("home1.example.zone", 2480, 2479),
            cyfs("home2.example.zone", 2480, 2579),
        ]);
        assert!(
            two.starts_with("etcd #2 peer_port: port 2480 is the peer_port of cyfs member home1.example.zone (etcd #2) and the peer_port of home2.example.zone (etcd #3): both are cyfs members"),
            "{two}"
        );
        assert!(two.contains("(fix: give each cyfs member its own peer_port and client_port"));
        // An https member on another machine still may not take a cyfs member's port:
        // every node's gateway listens there on loopback.
        let https = refuse(&[
            raw("server.example.zone", "203.0.113.7", 2380, 2479),
            cyfs("home1.example.zone", 2480, 2479),
        ]);
        assert!(
            https.starts_with("etcd #2 client_port: port 2479 is the client_port of cyfs member home1.example.zone (etcd #2) and the client_port of server.example.zone (etcd #1): every node's gateway"),
            "{https}"
        );
        let metrics = refuse(&[
            raw("server.example.zone", "203.0.113.7", 2380, 2379),
            cyfs("home1.example.zone", 2381, 2479),
        ]);
        assert!(
            metrics.contains("the metrics port (peer_port + 1) of server.example.zone"),
            "{metrics}"
        );
    }

    #[test]
    fn each_bad_list_is_refused_with_its_field() {
        let a = raw("a.example.zone", "10.0.0.1", 2380, 2379);
        assert!(refuse(&[]).contains("etcd: the etcd member list is empty"));
        assert!(refuse(&[a.clone(), a.clone()]).contains("etcd #2 node_name"));
        assert!(refuse(&[raw("a.example.zone", "10.0.0.1", 0, 2379)])
            .contains("etcd #1 peer_port: port 0 is outside 1-65535"));
        assert!(refuse(&[raw("a.example.zone", "10.0.0.1", 2380, 70000)])
            .contains("client_port: port 70000"));
        let clash = refuse(&[a.clone(), raw("b.example.zone", "10.0.0.1", 2380, 2479)]);
        assert!(
            clash.contains("10.0.0.1:2380 is already used by etcd #1 peer_port"),
            "{clash}"
        );
        assert!(refuse(&[raw("a.example.zone", "10.0.0.1", 2379, 2379)]).contains("already used"));
        let metrics = refuse(&[raw("a.example.zone", "10.0.0.1", 2380, 2381)]);
        assert!(
            metrics.contains(
                "etcd #1 peer_port: port 2381 (peer_port + 1) is this member's metrics port"
            ),
            "{metrics}"
        );
        assert!(refuse(&[raw("a.example.zone", "10.0.0.1", 65535, 2379)]).contains("no port"));
        let shared = refuse(&[
            raw("a.example.zone", "127.0.0.1", 2380, 2379),
            raw("b.example.zone", "127.0.0.1", 2480, 2381),
        ]);
        assert!(shared.contains("etcd #2 uses it already"), "{shared}");
        // Members on other machines each have their own loopback.
        validate_members(
            "example.zone",
            &[
                raw("a.example.zone", "10.0.0.1", 2380, 2379),
                raw("b.example.zone", "10.0.0.2", 2381, 2379),
            ],
        )
        .unwrap();
        let cyfs = RawMember {
            protocol: Some("cyfs".into()),
            ..a.clone()
        };
        assert!(refuse(&[cyfs]).contains(
            "etcd #1 address: a cyfs member is reached only through the zone gateway, at 127.0.0.1 on every node; the address 10.0.0.1 would not be used (fix: leave address empty"
        ));
        let ftp = RawMember {
            protocol: Some("ftp".into()),
            ..a.clone()
        };
        assert!(refuse(&[ftp]).contains("unknown protocol \"ftp\""));
        assert!(refuse(&[raw("Node_1", "", 2380, 2379)]).contains("node_name"));
        assert!(refuse(&[raw("etcd-peer.example.zone", "", 2380, 2379)]).contains("reserved"));
        assert!(refuse(&[raw("example.zone", "", 2380, 2379)]).contains("reserved"));
        let parent = refuse(&[
            raw("b.a.example.zone", "10.0.0.2", 2380, 2379),
            raw("a.example.zone", "10.0.0.1", 2380, 2379),
        ]);
        assert!(parent.contains("parent domain"), "{parent}");
    }

    #[test]
    fn ipv6_addresses_may_come_bracketed() {
        let m = validate_members("z", &[raw("n.z", "[fd00::1]", 2380, 2379)]).unwrap();
        assert_eq!(m[0].address, Some(Host::Ip("fd00::1".parse().unwrap())));
    }

    #[test]
    fn parent_domains() {
        assert!(is_parent_domain("a.b", "x.a.b"));
        assert!(!is_parent_domain("a.b", "xa.b"));
        assert!(!is_parent_domain("a.b", "a.b"));
    }
}
