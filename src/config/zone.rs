//! The zone file: the zone's name and its etcd members.
//!
//! Accepted forms: TOML (`name` + `[[etcd]]` + optional `[settings]`), or the seed's
//! nameservice JSON document (`name` + `extend.etcd` + optional `extend.settings`), or JSON
//! with a top-level `etcd` and `settings`. Validation refuses everything that would make an
//! unbootable or unsafe cluster: see [`validate_members`] and [`Settings::parse`].

use std::path::Path;

use serde::{Deserialize, Serialize};
use zone_pki::{Error, Host};

pub use super::members::{check_name_is_not_reserved, is_parent_domain, validate_members};
use super::{check_dns_name, parse, read_config};
use crate::backup::settings::BackupSettings;
use crate::settings::Settings;

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

/// A validated zone: its name, its nameservice addresses and its members in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    pub name: String,
    /// Where the zone's nameservice is reached (seeds/000); carried into the signed
    /// document, not used by the launcher itself.
    pub addr_info: Vec<AddrInfo>,
    pub members: Vec<Member>,
    /// `[settings]`: the zone's etcd timing, quota and compaction.
    pub settings: Settings,
    /// `[backup]`: where and how often the zone's data is backed up.
    pub backup: BackupSettings,
}

/// One `[[addr_info]]` entry: an address of the zone's nameservice.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AddrInfo {
    pub protocol: String,
    pub address: String,
    pub port: u16,
}

impl Zone {
    /// Reads and validates a zone file.
    pub fn load(path: &Path) -> Result<Zone, Error> {
        Zone::parse(path, &read_config(path)?)
    }

    /// Parses and validates a zone file's text; `path` names it in errors (and picks the
    /// format by its extension). No I/O: the fuzz targets call this.
    pub fn parse(path: &Path, text: &str) -> Result<Zone, Error> {
        let raw: RawZone = parse(path, text)?;
        Zone::from_raw(raw).map_err(|e| e.file(path))
    }

    fn from_raw(raw: RawZone) -> Result<Zone, Error> {
        let name = raw.name.ok_or_else(|| {
            Error::new("missing")
                .field("name")
                .fix("add name = \"<zone>\", e.g. name = \"example.zone\"")
        })?;
        check_dns_name(&name)
            .map_err(|p| Error::new(p).field("name").fix("use the zone's DNS name"))?;
        let (extend_etcd, extend_settings, extend_backup) = match raw.extend {
            Some(extend) => (extend.etcd, extend.settings, extend.backup),
            None => (None, None, None),
        };
        let raw_members = match (raw.etcd, extend_etcd) {
            (Some(list), _) | (None, Some(list)) => list,
            (None, None) => Vec::new(),
        };
        let members = validate_members(&name, &raw_members)?;
        let settings = match (raw.settings, extend_settings) {
            (Some(table), _) => Settings::parse(&table, "settings")?,
            (None, Some(table)) => Settings::parse(&table, "extend.settings")?,
            (None, None) => Settings::default(),
        };
        let backup = match (raw.backup, extend_backup) {
            (Some(table), _) => BackupSettings::parse(&table, "backup")?,
            (None, Some(table)) => BackupSettings::parse(&table, "extend.backup")?,
            (None, None) => BackupSettings::default(),
        };
        Ok(Zone {
            name,
            addr_info: raw.addr_info.unwrap_or_default(),
            members,
            settings,
            backup,
        })
    }

    pub fn member(&self, node_name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.node_name == node_name)
    }
}

/// The zone file as written, before validation. The other top-level keys of the seed's
/// JSON (`type`, `api_version`, `signed_at`, `sign`) are accepted and ignored: a zone file
/// is the owner's own input, trusted without a signature. Any other key is refused, so a
/// misspelt `[setings]` is not silently ignored.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawZone {
    #[serde(rename = "type")]
    _kind: Option<serde::de::IgnoredAny>,
    #[serde(rename = "api_version")]
    _api_version: Option<serde::de::IgnoredAny>,
    #[serde(rename = "signed_at")]
    _signed_at: Option<serde::de::IgnoredAny>,
    #[serde(rename = "sign")]
    _sign: Option<serde::de::IgnoredAny>,
    name: Option<String>,
    addr_info: Option<Vec<AddrInfo>>,
    etcd: Option<Vec<RawMember>>,
    settings: Option<serde_json::Value>,
    backup: Option<serde_json::Value>,
    extend: Option<RawExtend>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExtend {
    etcd: Option<Vec<RawMember>>,
    settings: Option<serde_json::Value>,
    backup: Option<serde_json::Value>,
}

/// One `[[etcd]]` entry as written; also how node.toml stores the member list.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RawMember {
    #[serde(default)]
    pub node_name: Option<String>,
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub peer_port: Option<i64>,
    #[serde(default)]
    pub client_port: Option<i64>,
}

impl From<&Member> for RawMember {
    fn from(m: &Member) -> Self {
        RawMember {
            node_name: Some(m.node_name.clone()),
            protocol: Some(m.protocol.as_str().into()),
            address: Some(m.address.as_ref().map(Host::to_string).unwrap_or_default()),
            peer_port: Some(m.peer_port.into()),
            client_port: Some(m.client_port.into()),
        }
    }
}
