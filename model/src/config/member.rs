//! One etcd member of a zone: as written in a zone file or node.toml ([`RawMember`]) and
//! validated ([`Member`]), how the other nodes reach it ([`Protocol`]), and its ports.
//!
//! Invariants: a [`Member`] exists only through the member list's validation
//! ([`super::members::validate_members`]), which keeps names, addresses and ports valid
//! and unique; a cyfs member has no address (it is reached at [`TUNNEL_HOST`]); a member
//! written back ([`RawMember::from`]) reads back the same, and carries no key that holds
//! its default (protocol https, the default ports, no address): a key a later release adds,
//! left to its default, so never reaches an older release. Pure.

use serde::{Deserialize, Serialize};
use zone_pki::Host;

pub const DEFAULT_PEER_PORT: u16 = 2380;
pub const DEFAULT_CLIENT_PORT: u16 = 2379;

/// How the other nodes reach a member (the zone file's `protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// At its address (or node name), directly.
    #[default]
    Https,
    /// Only through the zone gateway's tunnels: every node reaches it at its own ports on
    /// `127.0.0.1`, where its gateway listens and carries the connection to the member's
    /// node (`zone-etcd gateway` writes that configuration). Member validation keeps
    /// those ports unique in the zone.
    Cyfs,
}

impl Protocol {
    /// As written in a zone file.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Https => "https",
            Protocol::Cyfs => "cyfs",
        }
    }
}

/// Where every node reaches a cyfs member: its gateway's listener on loopback.
pub const TUNNEL_HOST: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

/// One etcd member of the zone, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub node_name: String,
    /// `None` when the zone file leaves it empty: the node name is used (always `None`
    /// for a cyfs member, reached at [`TUNNEL_HOST`]).
    pub address: Option<Host>,
    pub peer_port: u16,
    pub client_port: u16,
    pub protocol: Protocol,
}

/// Whether any member of the list is reached through the gateway's tunnels: then peer
/// connections may arrive from `127.0.0.1`, and every peer certificate must say so.
pub fn has_tunnels(members: &[Member]) -> bool {
    members.iter().any(|m| m.protocol == Protocol::Cyfs)
}

impl Member {
    /// The port of its metrics listener on loopback (see `cluster::metrics_url`): the peer
    /// port + 1; the member list's validation keeps it free and within 1-65535.
    pub fn metrics_port(&self) -> u16 {
        self.peer_port.saturating_add(1)
    }

    /// The port of its identity endpoint (see `cluster::signer_url`): the peer port + 2,
    /// where a member's signer answers the zone's nodes (the app's `identities::endpoint`
    /// refuses to bind it when it falls on another of the member's ports).
    pub fn signer_port(&self) -> u16 {
        self.peer_port.saturating_add(2)
    }

    /// Where peers and clients reach this member: its address, else its node name; a cyfs
    /// member at [`TUNNEL_HOST`].
    pub fn host(&self) -> Host {
        if self.protocol == Protocol::Cyfs {
            return Host::Ip(TUNNEL_HOST);
        }
        self.address
            .clone()
            .unwrap_or_else(|| Host::Dns(self.node_name.clone()))
    }
}

/// One `[[etcd]]` entry as written; also how node.toml stores the member list. A key it
/// does not have is ignored by its readers and named in a warning (`super::ignored`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct RawMember {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_port: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_port: Option<i64>,
}

impl From<&Member> for RawMember {
    /// The entry as node.toml and the zone document carry it: what the member's
    /// validation would default left out.
    fn from(m: &Member) -> Self {
        let unless = |value: u16, default: u16| (value != default).then_some(value.into());
        RawMember {
            node_name: Some(m.node_name.clone()),
            protocol: (m.protocol != Protocol::default()).then(|| m.protocol.as_str().into()),
            address: m.address.as_ref().map(Host::to_string),
            peer_port: unless(m.peer_port, DEFAULT_PEER_PORT),
            client_port: unless(m.client_port, DEFAULT_CLIENT_PORT),
        }
    }
}
