//! A node's local config (`node.toml`) and the bundle it points to.
//!
//! Written by `activate`/`bootstrap`; mirrors the seed's local JSON (`name`, `ca`, `cert`,
//! `key`, `etcd`), which is accepted too, with the PEM inline. Paths are relative to the
//! config file. Loading checks the whole chain of trust before anything uses it: the node
//! certificate is a CA signed by the zone CA, its key matches and is private, and its name
//! constraints cover the node's name and address. A config without a member list gets one
//! from the zone's nameservice (see [`crate::nameservice`]), verified against that zone CA.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zone_pki::profile::peer_name;
use zone_pki::{Authority, CertInfo, Error, Host, NodeIdentity};

use super::text::{check_dns_name, parse, read_config};
use super::trust::{external_paths, load_node_ca, locate};
pub use super::trust::{inline_pem, read_pem_field, trusted_roots};
use super::zone::{validate_members, Member, RawMember};
use crate::backup::settings::BackupSettings;
use crate::leaves::LeafPaths;
use crate::nameservice::{self, CachePolicy, Lookup, Source, DEFAULT_NAMESERVICE};
use crate::settings::Settings;

/// node.toml as written.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NodeFile {
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    pub ca: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
    /// Where launch keeps leaves and etcd's data; default `state` beside the config.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_dir: Option<String>,
    /// etcd's data directory; default `<state_dir>/data`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<String>,
    /// The etcd binary; default: `etcd` beside zone-etcd, then `PATH`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etcd_bin: Option<String>,
    /// Where this member listens, when not on the address the zone file gives: an address
    /// of this machine (its LAN address behind a router's port forward), or `0.0.0.0` /
    /// `::`. Peers and clients still dial the zone file's address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen_address: Option<String>,
    /// Base URL of the zone's nameservice, asked for the member list when `etcd` is absent;
    /// default [`DEFAULT_NAMESERVICE`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nameservice: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etcd: Option<Vec<RawMember>>,
    /// The zone's `[settings]`, copied with the member list (a node that follows the
    /// nameservice takes them from the signed document instead).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settings: Option<serde_json::Value>,
    /// The zone's `[backup]`, copied with the member list likewise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<serde_json::Value>,
    /// Leaves made by the operator's own PKI instead of the node CA.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalFiles>,
}

impl NodeFile {
    /// Parses a node config's text; `path` names it in errors (and picks the format).
    pub fn parse(path: &Path, text: &str) -> Result<NodeFile, Error> {
        parse(path, text)
    }

    /// The node's name and zone, checked as DNS names. Without `zone` (the seed's JSON),
    /// the zone is the node name minus its first label.
    pub fn names(&self) -> Result<(String, String), Error> {
        let name = required(&self.name, "name", "add name = \"<node>.<zone>\"")?;
        check_dns_name(&name)
            .map_err(|p| Error::new(p).field("name").fix("use the node's DNS name"))?;
        let zone = match &self.zone {
            Some(zone) => zone.clone(),
            None => name
                .split_once('.')
                .map(|(_, z)| z.to_string())
                .ok_or_else(|| {
                    Error::new("missing, and the node name has no zone part")
                        .field("zone")
                        .fix("add zone = \"<zone>\"")
                })?,
        };
        check_dns_name(&zone)
            .map_err(|p| Error::new(p).field("zone").fix("use the zone's DNS name"))?;
        Ok((name, zone))
    }
}

/// `[external]`: leaf certificates (chain PEM) and keys made elsewhere, chaining to `ca`.
/// A member needs server and peer; `env` needs client. Paths are relative to the config.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalFiles {
    pub server_cert: Option<String>,
    pub server_key: Option<String>,
    pub peer_cert: Option<String>,
    pub peer_key: Option<String>,
    pub client_cert: Option<String>,
    pub client_key: Option<String>,
}

/// A node CA with its key, and what its certificate says.
pub struct NodeCa {
    pub authority: Authority,
    pub info: CertInfo,
}

/// A loaded, verified node: its identity, its CA, and the zone's members.
pub struct Node {
    pub name: String,
    pub zone: String,
    /// The zone root certificates the node trusts (PEM): one, or two while the owner
    /// rotates the zone CA. etcd is given them as its trusted CA file.
    pub zone_ca_pem: String,
    /// The root among them that signed this node's CA.
    pub zone_ca_info: CertInfo,
    /// The node's own CA; `None` only when every leaf is external.
    pub node_ca: Option<NodeCa>,
    /// `[external]` leaves: made by the operator's PKI, validated, never rewritten.
    pub external: Option<LeafPaths>,
    pub members: Vec<Member>,
    /// Where `members` came from: node.toml, the nameservice, or its cached document.
    pub members_source: Source,
    /// The zone's etcd settings, from where the members came from.
    pub settings: Settings,
    /// The zone's backup policy and targets, from where the members came from.
    pub backup: BackupSettings,
    pub state_dir: PathBuf,
    pub data_dir: PathBuf,
    pub etcd_bin: Option<PathBuf>,
    /// `listen_address`, checked to be an IP address (that it is this machine's is
    /// checked where etcd is started: see [`Node::check_listen_address`]).
    pub listen_address: Option<std::net::IpAddr>,
}

impl Node {
    /// Loads and verifies the node; a member list from the nameservice is cached.
    pub fn load(path: &Path) -> Result<Node, Error> {
        Node::load_with(path, CachePolicy::Update)
    }

    /// Like [`Node::load`]; with [`CachePolicy::ReadOnly`] nothing is written (dry runs).
    pub fn load_with(path: &Path, policy: CachePolicy) -> Result<Node, Error> {
        let text = read_config(path)?;
        let file: NodeFile = parse(path, &text)?;
        Node::from_file(path, file, policy).map_err(|e| e.file(path))
    }

    fn from_file(path: &Path, file: NodeFile, policy: CachePolicy) -> Result<Node, Error> {
        let base = base_dir(path);
        let (name, zone) = file.names()?;

        let ca_field = required(
            &file.ca,
            "ca",
            "add ca = \"pki/ca.crt\" (the zone root certificate)",
        )?;
        let (zone_ca_pem, ca_file) = read_pem_field(&base, &ca_field, "ca")?;
        let trusted_roots =
            trusted_roots(&zone_ca_pem).map_err(|e| locate(e, ca_file.as_deref(), "ca"))?;

        // With external leaves the operator's PKI may have no node CA at all.
        let (node_ca, zone_ca_info) = match (&file.external, &file.cert, &file.key) {
            (Some(_), None, None) => (None, trusted_roots[0].clone()),
            _ => {
                let (node_ca, root) = load_node_ca(path, &base, &file, &trusted_roots, &name)?;
                (Some(node_ca), root)
            }
        };
        let external = match &file.external {
            Some(files) => Some(external_paths(&base, files, ca_file.as_deref())?),
            None => None,
        };

        let state_dir = state_dir(path, &file);
        let nameservice = file.nameservice.as_deref().unwrap_or(DEFAULT_NAMESERVICE);
        nameservice::check_url(nameservice).map_err(|p| {
            Error::new(p).field("nameservice").fix(
                "write the nameservice's base URL, e.g. nameservice = \"http://127.0.0.1:3456\"",
            )
        })?;
        let (members, members_source, settings, backup) = match &file.etcd {
            Some(list) => (
                validate_members(&zone, list)?,
                Source::LocalConfig,
                match &file.settings {
                    Some(table) => Settings::parse(table, "settings")?,
                    None => Settings::default(),
                },
                match &file.backup {
                    Some(table) => BackupSettings::parse(table, "backup")?,
                    None => BackupSettings::default(),
                },
            ),
            None if file.backup.is_some() => {
                return Err(Error::new(
                    "a node without a member list takes the zone's backup settings from the signed zone document",
                )
                .field("backup")
                .fix("remove [backup] here and set it in the zone file's [backup] (then zone-etcd zone sign), or add the [[etcd]] member list too"))
            }
            None if file.settings.is_some() => {
                return Err(Error::new(
                    "a node without a member list takes the zone's settings from the signed zone document",
                )
                .field("settings")
                .fix("remove [settings] here and set them in the zone file's [settings] (then zone-etcd zone sign), or add the [[etcd]] member list too"))
            }
            None => {
                let lookup = Lookup {
                    zone: &zone,
                    trusted_roots: &trusted_roots,
                    nameservice,
                    state_dir: &state_dir,
                };
                let (doc, source) = nameservice::zone_document(&lookup, policy)?;
                (doc.members, source, doc.settings, doc.backup)
            }
        };
        let data_dir = match &file.data_dir {
            Some(dir) => base.join(dir),
            None => state_dir.join("data"),
        };
        let listen_address = match file.listen_address.as_deref().map(str::trim) {
            None => None,
            Some(text) => Some(
                text.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .map_err(|_| {
                        Error::new(format!("{text:?} is not an IP address"))
                            .field("listen_address")
                            .fix("write an address of this machine (e.g. its LAN address 192.168.1.20), or 0.0.0.0 to listen on all")
                    })?,
            ),
        };
        Ok(Node {
            listen_address,
            etcd_bin: file.etcd_bin.as_ref().map(|b| base.join(b)),
            name,
            zone,
            zone_ca_pem,
            zone_ca_info,
            node_ca,
            external,
            members,
            members_source,
            settings,
            backup,
            state_dir,
            data_dir,
        })
    }

    /// The node CA, for commands that issue leaves.
    pub fn node_ca(&self) -> Result<&NodeCa, Error> {
        self.node_ca.as_ref().ok_or_else(|| {
            Error::new(format!(
                "{} has no node CA: its certificates are external ([external] in the node config)",
                self.name
            ))
            .field("external")
            .fix("renew external certificates with the PKI that made them")
        })
    }

    /// Where this node's leaves are: its `[external]` files, or the state directory's
    /// current set.
    pub fn leaf_paths(&self) -> LeafPaths {
        self.external
            .clone()
            .unwrap_or_else(|| LeafPaths::for_state_dir(&self.state_dir))
    }

    /// Refuses to start etcd where it could not listen (it would die with "bind: cannot
    /// assign requested address"): a `listen_address` must be one of this machine's
    /// addresses or unspecified (`0.0.0.0`, `::`); without one, the member's own IP address
    /// from the zone file must be this machine's (behind a router it is not: the fix names
    /// `listen_address`). A cyfs member listens only on loopback, where its gateway
    /// delivers: it takes no `listen_address`.
    pub fn check_listen_address(&self) -> Result<(), Error> {
        if let (Some(ip), Some(member)) = (self.listen_address, self.member()) {
            if member.protocol == crate::config::zone::Protocol::Cyfs {
                return Err(Error::new(format!(
                    "{} is a cyfs member: it listens only on 127.0.0.1, where its gateway delivers its peers' and clients' connections, never on {ip}",
                    self.name
                ))
                .field("listen_address")
                .fix("remove listen_address from this node's node.toml"));
            }
        }
        let (ip, from_zone) = match (self.listen_address, self.member().map(Member::host)) {
            (Some(ip), _) => (ip, false),
            (None, Some(Host::Ip(ip))) => (ip, true),
            _ => return Ok(()),
        };
        if ip.is_unspecified() || (ip.is_loopback() && ip.is_ipv4()) {
            return Ok(());
        }
        let mut own: Vec<std::net::IpAddr> = nix::ifaddrs::getifaddrs()
            .map_err(|e| Error::new(format!("cannot list this machine's addresses: {e}")))?
            .filter_map(|a| {
                let address = a.address?;
                address
                    .as_sockaddr_in()
                    .map(|v4| std::net::IpAddr::V4(v4.ip()))
                    .or_else(|| {
                        address
                            .as_sockaddr_in6()
                            .map(|v6| std::net::IpAddr::V6(v6.ip()))
                    })
            })
            .collect();
        if own.contains(&ip) {
            return Ok(());
        }
        own.sort();
        own.dedup();
        let listed: Vec<String> = own.iter().map(ToString::to_string).collect();
        let error = if from_zone {
            Error::new(format!(
                "the zone file gives {} the address {ip}, which this machine does not have (it has {}): etcd could not listen there",
                self.name,
                listed.join(", ")
            ))
            .field("listen_address")
            .fix("behind a router that forwards the ports to this machine, set listen_address = \"<this machine's LAN address>\" here (README: members behind NAT); otherwise correct the address in the zone file")
        } else {
            Error::new(format!(
                "{ip} is not an address of this machine (it has {})",
                listed.join(", ")
            ))
            .field("listen_address")
            .fix("set it to one of those (behind a router: this machine's LAN address), or to 0.0.0.0")
        };
        Err(error)
    }

    /// This node's entry in the member list, if the owner made it an etcd member.
    pub fn member(&self) -> Option<&Member> {
        self.members.iter().find(|m| m.node_name == self.name)
    }

    /// The identity leaves are issued for.
    pub fn identity(&self) -> NodeIdentity {
        let member = self.member();
        NodeIdentity {
            zone: self.zone.clone(),
            node_name: self.name.clone(),
            address: member.and_then(|m| m.address.clone()),
            member: member.is_some(),
            tunneled: crate::config::zone::has_tunnels(&self.members),
        }
    }

    /// Checks that the node CA may issue what this node needs now: its address, and the
    /// peer name if it is a member. The zone file may have changed since activation.
    pub fn check_node_ca_covers(&self, identity: &NodeIdentity) -> Result<(), Error> {
        let Some(node_ca) = &self.node_ca else {
            return Ok(()); // external leaves are checked on their own
        };
        let permits = |host: &Host| match host {
            Host::Dns(name) => node_ca.info.permitted.iter().any(|p| p == name),
            Host::Ip(ip) => {
                let prefix = if ip.is_ipv4() { 32 } else { 128 };
                node_ca.info.permitted.contains(&format!("{ip}/{prefix}"))
            }
        };
        // The peer name first: a node activated as a client needs a new bundle anyway.
        let mut needed = Vec::new();
        if identity.member {
            needed.push(Host::Dns(peer_name(&self.zone)));
        }
        needed.push(identity.host());
        for host in needed {
            if !permits(&host) {
                let why = match &host {
                    Host::Dns(n) if *n == peer_name(&self.zone) => {
                        "was activated when it was not an etcd member, so it cannot issue peer certificates".to_string()
                    }
                    _ => format!("does not permit {host} (the address changed since activation)"),
                };
                return Err(Error::new(format!("the node certificate of {} {why}", self.name))
                    .field("cert")
                    .fix("re-activate the node with the current zone file (zone-etcd activate) and copy the new bundle"));
            }
        }
        Ok(())
    }
}

/// The directory paths in a node config are relative to, made absolute so the etcd
/// command line does not depend on the working directory.
pub fn base_dir(config: &Path) -> PathBuf {
    std::path::absolute(config)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default()
}

/// The state directory a node config names (default `state` beside it).
pub fn state_dir(config: &Path, file: &NodeFile) -> PathBuf {
    base_dir(config).join(file.state_dir.as_deref().unwrap_or("state"))
}

pub(super) fn required(value: &Option<String>, field: &str, fix: &str) -> Result<String, Error> {
    match value {
        Some(v) if !v.trim().is_empty() => Ok(v.clone()),
        _ => Err(Error::new("missing").field(field).fix(fix)),
    }
}
