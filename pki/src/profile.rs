//! The certificate profile of a zone: what each certificate says, as pure functions.
//!
//! Nothing here touches keys, clocks or disks; [`crate::authority`] signs what these
//! functions describe. The invariants the rest of the system relies on:
//! - a node CA is `pathlen:0` and its name constraints permit only that node's own names
//!   (node name, address, loopback), plus the zone's peer name when the owner made the
//!   node an etcd member: Go's x509, and so etcd, then refuses any certificate a node CA
//!   issues for another node's name;
//! - every peer certificate carries the zone's peer name as a DNS SAN, and a client leaf
//!   only its node's own name (so the node CA's name constraints bind it to its node), so
//!   etcd's `--peer-cert-allowed-hostname` lets peers in and keeps clients (and nodes that
//!   are not members) out of the peer port; the identities of the client root's chains
//!   (`crate::client`) carry no SAN at all.

use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, KeyUsagePurpose, NameConstraints, SanType,
};
use time::{Duration, OffsetDateTime};
use zone_io::{Error, Result};

/// Default lifetimes, from the design's profile table.
pub const ROOT_CA_DAYS: i64 = 3650;
pub const NODE_CA_DAYS: i64 = 5 * 365;
pub const LEAF_DAYS: i64 = 90;
/// The client root (see [`crate::client`]) lives as long as the zone root.
pub const CLIENT_CA_DAYS: i64 = ROOT_CA_DAYS;
/// A member's signer lives as long as a node CA.
pub const SIGNER_DAYS: i64 = NODE_CA_DAYS;

/// Certificates start a little in the past so a peer whose clock lags still accepts them.
const CLOCK_SKEW: Duration = Duration::minutes(5);

/// The DNS name every peer certificate of `zone` carries, and that etcd's peer port demands.
///
/// Zone validation reserves it: no node may be named so, nor be a parent domain of it
/// (a node CA may issue certificates for subdomains of its node name).
pub fn peer_name(zone: &str) -> String {
    format!("etcd-peer.{zone}")
}

/// Where a node can be reached: an IP address or a DNS name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    Ip(IpAddr),
    Dns(String),
}

impl Host {
    /// Reads a host as written in a zone file: an IP address (v6 without brackets) or a name.
    pub fn parse(text: &str) -> Host {
        match text.parse::<IpAddr>() {
            Ok(ip) => Host::Ip(ip),
            Err(_) => Host::Dns(text.to_string()),
        }
    }

    /// The host as it goes into a URL: IPv6 in brackets.
    pub fn url_host(&self) -> String {
        match self {
            Host::Ip(IpAddr::V6(ip)) => format!("[{ip}]"),
            Host::Ip(ip) => ip.to_string(),
            Host::Dns(name) => name.clone(),
        }
    }

    pub fn is_loopback(&self) -> bool {
        match self {
            Host::Ip(ip) => ip.is_loopback(),
            Host::Dns(name) => name == "localhost",
        }
    }
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Host::Ip(ip) => write!(f, "{ip}"),
            Host::Dns(name) => f.write_str(name),
        }
    }
}

/// Who a node is, as far as its certificates are concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeIdentity {
    pub zone: String,
    pub node_name: String,
    /// Where the node is reached; `None` means by its node name.
    pub address: Option<Host>,
    /// Whether the owner made this node an etcd member (its CA may then issue peer certs).
    pub member: bool,
    /// Whether some member of the zone is reached through the zone gateway's loopback
    /// tunnels: peers then dial `127.0.0.1` and connections arrive from it, so the peer
    /// leaf carries `127.0.0.1` too (loopback names are always within the node CA's
    /// constraints).
    pub tunneled: bool,
}

impl NodeIdentity {
    /// The address peers and clients use: the given address, else the node name.
    pub fn host(&self) -> Host {
        self.address
            .clone()
            .unwrap_or_else(|| Host::Dns(self.node_name.clone()))
    }

    /// The node's own names: node name and address, without duplicates.
    fn own_names(&self) -> Vec<Host> {
        let mut names = vec![Host::Dns(self.node_name.clone())];
        if let Some(address) = &self.address {
            push_unique(&mut names, address.clone());
        }
        names
    }
}

fn push_unique<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if !list.contains(&item) {
        list.push(item);
    }
}

/// The loopback names every node may use for its local clients.
fn loopback_names() -> [Host; 3] {
    [
        Host::Dns("localhost".into()),
        Host::Ip(IpAddr::from([127, 0, 0, 1])),
        Host::Ip("::1".parse().expect("::1 is an IPv6 address")),
    ]
}

/// The three leaves a node issues itself from its node CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LeafKind {
    Server,
    Peer,
    Client,
}

impl LeafKind {
    pub const ALL: [LeafKind; 3] = [LeafKind::Server, LeafKind::Peer, LeafKind::Client];

    /// The file stem of this leaf in a node's state directory.
    pub fn file_stem(self) -> &'static str {
        match self {
            LeafKind::Server => "server",
            LeafKind::Peer => "peer",
            LeafKind::Client => "client",
        }
    }
}

/// The zone root CA.
pub fn root_ca(zone: &str, now: OffsetDateTime) -> CertificateParams {
    let mut params = base(format!("{zone} root CA"), zone, now, ROOT_CA_DAYS);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

/// A node's own CA: `pathlen:0`, name-constrained to the node's names.
pub fn node_ca(node: &NodeIdentity, now: OffsetDateTime) -> Result<CertificateParams> {
    let mut params = base(node.node_name.clone(), &node.zone, now, NODE_CA_DAYS);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let mut permitted: Vec<GeneralSubtree> = Vec::new();
    let mut hosts = node.own_names();
    hosts.extend(loopback_names());
    if node.member {
        hosts.push(Host::Dns(peer_name(&node.zone)));
    }
    for host in hosts {
        let subtree = match host {
            Host::Ip(ip) => {
                let prefix = if ip.is_ipv4() { 32 } else { 128 };
                GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(ip, prefix))
            }
            Host::Dns(name) => GeneralSubtree::DnsName(name),
        };
        push_unique(&mut permitted, subtree);
    }
    params.name_constraints = Some(NameConstraints {
        permitted_subtrees: permitted,
        excluded_subtrees: Vec::new(),
    });
    Ok(params)
}

/// A leaf the node CA issues: server, peer or client. `client_name` is the client CN
/// (a service name); `None` means the node name.
pub fn leaf(
    kind: LeafKind,
    node: &NodeIdentity,
    client_name: Option<&str>,
    now: OffsetDateTime,
) -> Result<CertificateParams> {
    let cn = match kind {
        LeafKind::Client => client_name.unwrap_or(&node.node_name).to_string(),
        LeafKind::Server | LeafKind::Peer => node.node_name.clone(),
    };
    let mut params = base(cn, &node.zone, now, LEAF_DAYS);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    let hosts = leaf_sans(kind, node);
    params.subject_alt_names = hosts.into_iter().map(san).collect::<Result<Vec<_>>>()?;
    params.extended_key_usages = match kind {
        // etcd's gRPC gateway dials its own client port with the server certificate, and
        // members dial each other with the peer certificate: both need clientAuth too.
        LeafKind::Server | LeafKind::Peer => vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
        LeafKind::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
    };
    Ok(params)
}

/// The backup signer a node issues itself: it signs the manifests of the zone's backups
/// and nothing else. CN and only SAN the node name, so the node CA's name constraints bind
/// it to its node; keyUsage digitalSignature; EKU codeSigning alone, so no TLS endpoint
/// accepts it (no serverAuth/clientAuth) and a manifest verifier that demands codeSigning
/// refuses every TLS leaf.
pub fn backup_signer(node: &NodeIdentity, now: OffsetDateTime) -> Result<CertificateParams> {
    let mut params = base(node.node_name.clone(), &node.zone, now, LEAF_DAYS);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    params.subject_alt_names = vec![san(Host::Dns(node.node_name.clone()))?];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
    Ok(params)
}

/// The subject alternative names of a leaf: what launch compares against to decide whether
/// a leaf still fits the node (an address change renews it).
pub fn leaf_sans(kind: LeafKind, node: &NodeIdentity) -> Vec<Host> {
    let mut hosts = match kind {
        // A client's SAN is only there so the node CA's name constraints bind it to its
        // node: a node cannot mint a client certificate bearing another node's name.
        LeafKind::Client => return vec![Host::Dns(node.node_name.clone())],
        LeafKind::Server | LeafKind::Peer => node.own_names(),
    };
    match kind {
        LeafKind::Server => {
            for host in loopback_names() {
                push_unique(&mut hosts, host);
            }
        }
        LeafKind::Peer => {
            // Linux dials a 127.0.0.x peer from 127.0.0.1, and etcd checks a peer's SANs
            // against the address its connection came from.
            // Through the zone gateway's tunnels a peer is dialled at 127.0.0.1 and its
            // connections arrive from there.
            if node.tunneled || matches!(node.host(), Host::Ip(IpAddr::V4(ip)) if ip.is_loopback())
            {
                push_unique(&mut hosts, Host::Ip(IpAddr::from([127, 0, 0, 1])));
            }
            hosts.push(Host::Dns(peer_name(&node.zone)));
        }
        LeafKind::Client => {}
    }
    hosts
}

fn san(host: Host) -> Result<SanType> {
    Ok(match host {
        Host::Ip(ip) => SanType::IpAddress(ip),
        Host::Dns(name) => SanType::DnsName(name.clone().try_into().map_err(|_| {
            Error::new(format!(
                "{name:?} is not a valid DNS name for a certificate"
            ))
        })?),
    })
}

pub(crate) fn base(
    common_name: String,
    zone: &str,
    now: OffsetDateTime,
    days: i64,
) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, zone);
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.not_before = now - CLOCK_SKEW;
    params.not_after = now + Duration::days(days);
    params
}
