//! The node as commands see it: its node.toml ([`NodeConfig`], read without the network)
//! and the zone view resolved from it in one explicit step ([`Node::resolve`]): the
//! members, settings, backup policy and access policy from node.toml's own tables or
//! else from the zone's signed document (the nameservice, or its cache), and the node's
//! identities. The loaded node carries the path of its node.toml ([`Node::path`]), so a
//! function given the node names the file in its errors without being given it again.
//!
//! Invariant: [`Node::resolve`] is the one place a node's loading asks the network;
//! every error names node.toml.

use std::path::{Path, PathBuf};

use zone_io::Error;
use zone_pki::profile::peer_name;
use zone_pki::{CertInfo, Host, NodeIdentity};

use crate::nameservice::{self, CachePolicy, Lookup, Source};
use zone_model::backup::settings::BackupSettings;
use zone_model::config::node::{NodeCa, NodeConfig};
use zone_model::config::zone::{validate_members, Member};
use zone_model::leaf_paths::LeafPaths;
use zone_model::policy::Policy;
use zone_model::settings::Settings;

/// A loaded, verified node: its identity, its CA, and the zone's members.
pub struct Node {
    /// The node.toml it was loaded from: what its errors name.
    pub path: PathBuf,
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
    /// The zone's access policy (`[access]`), from where the members came from.
    pub access: Policy,
    /// The client CA and, on a member, its signer (a zone with `[access]`).
    pub identities: Option<zone_model::config::identities::Identities>,
    pub state_dir: PathBuf,
    pub data_dir: PathBuf,
    pub etcd_bin: Option<PathBuf>,
    /// `listen_address`, checked to be an IP address (that it is this machine's is
    /// checked where etcd is started: see [`Node::check_listen_address`]).
    pub listen_address: Option<std::net::IpAddr>,
}

impl Node {
    /// The client URLs of the zone's members other than this node: where to reach the
    /// running cluster from a node that may not be serving yet.
    pub fn other_members(&self) -> Vec<String> {
        self.members
            .iter()
            .filter(|m| m.node_name != self.name)
            .map(zone_model::cluster::client_url)
            .collect()
    }

    /// The other members' peer URLs, in the order of [`Node::other_members`].
    pub fn other_peers(&self) -> Vec<String> {
        self.members
            .iter()
            .filter(|m| m.node_name != self.name)
            .map(zone_model::cluster::peer_url)
            .collect()
    }

    /// Loads and verifies the node; a member list from the nameservice is cached.
    pub fn load(path: &Path) -> Result<Node, Error> {
        Node::load_with(path, CachePolicy::Update)
    }

    /// Like [`Node::load`]; with [`CachePolicy::ReadOnly`] nothing is written (dry runs).
    /// A key of node.toml this release does not know is said in a warning.
    pub fn load_with(path: &Path, policy: CachePolicy) -> Result<Node, Error> {
        let config = NodeConfig::load_reporting(path, crate::unknown_keys::warn)?;
        Node::resolve(config, policy)
    }

    /// Resolves the zone view of a node.toml already read: node.toml's own member list
    /// and tables, or the zone's signed document; then the node's identities.
    pub fn resolve(config: NodeConfig, policy: CachePolicy) -> Result<Node, Error> {
        let path = config.path.clone();
        Node::view(config, policy).map_err(|e| e.file(path))
    }

    fn view(config: NodeConfig, policy: CachePolicy) -> Result<Node, Error> {
        let file = &config.file;
        let zone = &config.zone;
        let (members, members_source, settings, backup, access) = match &file.etcd {
            Some(list) => {
                let members = validate_members(zone, list)?;
                let names: Vec<String> = members.iter().map(|m| m.node_name.clone()).collect();
                (
                    members,
                    Source::LocalConfig,
                    match &file.settings {
                        Some(table) => Settings::parse(table, "settings")?,
                        None => Settings::default(),
                    },
                    match &file.backup {
                        Some(table) => BackupSettings::parse(table, "backup")?,
                        None => BackupSettings::default(),
                    },
                    match &file.access {
                        Some(table) => Policy::parse(table, "access", zone, &names)?,
                        None => Policy::default(),
                    },
                )
            }
            None if file.access.is_some() => {
                return Err(Error::new(
                    "a node without a member list takes the zone's access policy from the signed zone document",
                )
                .field("access")
                .fix("remove [access] here and set it in the zone file's [access] (then zone-etcd zone sign), or add the [[etcd]] member list too"))
            }
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
                    zone,
                    trusted_roots: &config.trusted_roots,
                    nameservice: &config.nameservice,
                    state_dir: &config.state_dir,
                };
                let (doc, source) = nameservice::zone_document(&lookup, policy)?;
                (doc.members, source, doc.settings, doc.backup, doc.access)
            }
        };
        let identities = zone_model::config::identities::load(&config.base, file, zone)?;
        Ok(Node {
            path: config.path,
            identities,
            listen_address: config.listen_address,
            etcd_bin: config.etcd_bin,
            name: config.name,
            zone: config.zone,
            zone_ca_pem: config.zone_ca_pem,
            zone_ca_info: config.zone_ca_info,
            node_ca: config.node_ca,
            external: config.external,
            members,
            members_source,
            settings,
            backup,
            access,
            state_dir: config.state_dir,
            data_dir: config.data_dir,
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
            if member.protocol == zone_model::config::zone::Protocol::Cyfs {
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
            .fix("behind a router that forwards the ports to this machine, set listen_address = \"<this machine's LAN address>\" here (guide: NAT and cyfs); otherwise correct the address in the zone file")
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
            tunneled: zone_model::config::zone::has_tunnels(&self.members),
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
