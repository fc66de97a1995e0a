//! Deriving the static cluster from the member list: pure functions, no I/O.
//!
//! Every node computes the same values from the same zone file and zone CA, without
//! talking to anyone. The token binds a cluster to its zone name, member set and CA, so a
//! re-bootstrapped zone (new CA or new members) can never merge with stale members.

use std::net::IpAddr;

use zone_pki::Host;

use crate::config::zone::Member;

/// One member as the cluster lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterMember {
    pub id: u64,
    /// Empty until the member has started once (etcd learns the name from the member).
    pub name: String,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
    pub learner: bool,
}

impl ClusterMember {
    pub fn started(&self) -> bool {
        !self.name.is_empty()
    }

    /// Whether its etcd ever ran: it published its client URLs when it first joined the
    /// others. A member of the static bootstrap is listed with its name from the start, so
    /// [`ClusterMember::started`] alone does not tell.
    pub fn published(&self) -> bool {
        !self.client_urls.is_empty()
    }
}

/// The member list, as one member answered it.
#[derive(Debug, Clone)]
pub struct ClusterView {
    pub cluster_id: u64,
    pub members: Vec<ClusterMember>,
    pub answered_by: String,
}

impl ClusterView {
    pub fn by_name(&self, name: &str) -> Option<&ClusterMember> {
        self.members.iter().find(|m| m.name == name)
    }

    pub fn by_peer_url(&self, url: &str) -> Option<&ClusterMember> {
        self.members
            .iter()
            .find(|m| m.peer_urls.iter().any(|u| u == url))
    }

    pub fn by_id(&self, id: u64) -> Option<&ClusterMember> {
        self.members.iter().find(|m| m.id == id)
    }

    /// The client URLs of every started voter: where to send further requests. A learner
    /// is left out: etcd refuses it writes, linearizable reads, watches and membership
    /// changes ("rpc not supported for learner"), and a client balanced over its URL too
    /// fails the requests that land there (a joiner is one until promoted: minutes for a
    /// large database over a home link).
    pub fn client_urls(&self) -> Vec<String> {
        self.members
            .iter()
            .filter(|m| !m.learner)
            .flat_map(|m| m.client_urls.iter().cloned())
            .collect()
    }
}

/// etcd's `--initial-cluster-state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterState {
    /// A fresh data directory: bootstrap the cluster.
    New,
    /// The data directory already holds a member, or the node joins a running cluster.
    Existing,
}

impl ClusterState {
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterState::New => "new",
            ClusterState::Existing => "existing",
        }
    }
}

pub fn peer_url(member: &Member) -> String {
    format!("https://{}:{}", member.host().url_host(), member.peer_port)
}

pub fn client_url(member: &Member) -> String {
    format!(
        "https://{}:{}",
        member.host().url_host(),
        member.client_port
    )
}

/// `--initial-cluster`: every member as `name=peer-url`, in the zone file's order.
pub fn initial_cluster(members: &[Member]) -> String {
    members
        .iter()
        .map(|m| format!("{}={}", m.node_name, peer_url(m)))
        .collect::<Vec<_>>()
        .join(",")
}

/// `--initial-cluster` for a member joining a running cluster: the members the cluster
/// returned when it added this one, with its own (still unnamed) entry named, as
/// `etcdctl member add` prints it. etcd checks this list against the running cluster's.
pub fn joining_initial_cluster(members: &[ClusterMember], joining_id: u64, name: &str) -> String {
    members
        .iter()
        .flat_map(|m| {
            let name = if m.id == joining_id { name } else { &m.name };
            m.peer_urls.iter().map(move |url| format!("{name}={url}"))
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// `--initial-cluster-token`: `<zone>-` and 16 bytes of SHA-256 over the zone name, the
/// member set (order-insensitive: etcd compares the initial cluster as a set) and the
/// zone CA's fingerprint.
pub fn cluster_token(zone: &str, members: &[Member], zone_ca_fingerprint: &[u8; 32]) -> String {
    format!(
        "{zone}-{}",
        token_hash(zone, members, zone_ca_fingerprint, &[])
    )
}

/// `--initial-cluster-token` of a cluster restored from a snapshot: `<zone>-r-` and 16
/// bytes of SHA-256 over what [`cluster_token`] hashes and the snapshot's SHA-256. Every
/// member that restores the same snapshot derives it alone, so they form one cluster
/// without talking first; it differs from the zone's first token and from a restore of
/// any other snapshot, so no member holding other data can ever merge with them.
pub fn restored_token(
    zone: &str,
    members: &[Member],
    zone_ca_fingerprint: &[u8; 32],
    snapshot_sha256: &str,
) -> String {
    format!(
        "{zone}-r-{}",
        token_hash(
            zone,
            members,
            zone_ca_fingerprint,
            snapshot_sha256.as_bytes()
        )
    )
}

/// The ID etcd gives member `peer_urls` of a static bootstrap with `token` (etcd's
/// `computeMemberID`): the first 8 bytes, big-endian, of SHA-1 over the sorted peer URLs
/// joined, then the token.
pub fn static_member_id(peer_urls: &[String], token: &str) -> u64 {
    let mut urls = peer_urls.to_vec();
    urls.sort();
    let mut bytes = urls.concat().into_bytes();
    bytes.extend_from_slice(token.as_bytes());
    first_u64(ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &bytes).as_ref())
}

/// The cluster ID etcd derives for the zone's static bootstrap with `token` (etcd's
/// `RaftCluster.genID`): SHA-1 over the sorted member IDs, 8 bytes each, big-endian. A
/// running member that reports another one holds a restored or foreign cluster.
pub fn static_cluster_id(members: &[Member], token: &str) -> u64 {
    let mut ids: Vec<u64> = members
        .iter()
        .map(|m| static_member_id(&[peer_url(m)], token))
        .collect();
    ids.sort_unstable();
    let bytes: Vec<u8> = ids.iter().flat_map(|id| id.to_be_bytes()).collect();
    first_u64(ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &bytes).as_ref())
}

fn first_u64(digest: &[u8]) -> u64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

fn token_hash(zone: &str, members: &[Member], ca: &[u8; 32], extra: &[u8]) -> String {
    let mut entries: Vec<String> = members
        .iter()
        .map(|m| format!("{}={}", m.node_name, peer_url(m)))
        .collect();
    entries.sort();
    let mut input = Vec::new();
    let entries = entries.join(",");
    let parts: [&[u8]; 3] = [zone.as_bytes(), entries.as_bytes(), ca];
    for part in parts
        .into_iter()
        .chain((!extra.is_empty()).then_some(extra))
    {
        // Length-prefixed, so no two different inputs serialise alike.
        input.extend_from_slice(&(part.len() as u64).to_be_bytes());
        input.extend_from_slice(part);
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, &input);
    digest.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Where a member listens on one port: the node's `listen_address` when it has one (a
/// member behind NAT listens on its LAN address and advertises the router's), else its
/// IP address; plus 127.0.0.1 for local clients when that address is neither loopback nor
/// unspecified. etcd binds only IPs, so a member known by a DNS name and without
/// `listen_address` listens on all IPv4 addresses.
fn listen_urls(
    member: &Member,
    listen: Option<IpAddr>,
    port: u16,
    with_local: bool,
) -> Vec<String> {
    let ip = match (listen, member.host()) {
        (Some(ip), _) | (None, Host::Ip(ip)) => ip,
        (None, Host::Dns(_)) => return vec![format!("https://0.0.0.0:{port}")],
    };
    let mut urls = vec![format!("https://{}:{port}", Host::Ip(ip).url_host())];
    if with_local && !ip.is_loopback() && !ip.is_unspecified() {
        urls.push(format!("https://127.0.0.1:{port}"));
    }
    urls
}

/// `--listen-client-urls`: the member's address (or `listen`), and loopback for local
/// clients.
pub fn listen_client_urls(member: &Member, listen: Option<IpAddr>) -> Vec<String> {
    listen_urls(member, listen, member.client_port, true)
}

/// `--listen-peer-urls`: the member's address (or `listen`) only: peers are never local.
pub fn listen_peer_urls(member: &Member, listen: Option<IpAddr>) -> Vec<String> {
    listen_urls(member, listen, member.peer_port, false)
}

/// Where a member serves its metrics over plain HTTP: loopback only, so a local Prometheus
/// scrapes them without a client certificate and nothing new listens on a routable
/// address. A loopback member (tests, demos) uses its own address; every other member
/// 127.0.0.1. The port is the peer port + 1 (2381 beside the default 2380, as kubeadm).
pub fn metrics_url(member: &Member) -> String {
    format!(
        "http://{}:{}",
        metrics_host(member).url_host(),
        member.metrics_port()
    )
}

/// The address the metrics listener binds.
pub fn metrics_host(member: &Member) -> Host {
    match member.host() {
        Host::Ip(ip) if ip.is_loopback() => Host::Ip(ip),
        _ => Host::Ip(std::net::Ipv4Addr::LOCALHOST.into()),
    }
}

/// Where the zone's nodes reach a member's identity endpoint (its signer): HTTPS with
/// mutual TLS at its address (else node name), port peer port + 2.
pub fn signer_url(member: &Member) -> String {
    format!(
        "https://{}:{}",
        member.host().url_host(),
        member.signer_port()
    )
}

/// Where a member's identity endpoint listens: like its peer port, its `listen_address`
/// or its IP address (all IPv4 addresses for a member known by a DNS name).
pub fn listen_signer_urls(member: &Member, listen: Option<IpAddr>) -> Vec<String> {
    listen_urls(member, listen, member.signer_port(), false)
}

/// The client endpoints of the whole zone, for etcdctl and services.
pub fn client_endpoints(members: &[Member]) -> Vec<String> {
    members.iter().map(client_url).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::zone::Protocol;

    fn member(name: &str, address: Option<&str>) -> Member {
        Member {
            node_name: name.into(),
            address: address.map(Host::parse),
            peer_port: 2380,
            client_port: 2379,
            protocol: Protocol::Https,
        }
    }

    #[test]
    fn static_ids_are_etcds() {
        // As etcd 3.5.30 reported them for this zone (peer /members, X-Etcd-Cluster-Id).
        let token = "exp.zone-c62cbc54151b09be39aea7d4ed067f7a";
        let members: Vec<Member> = (1..=3)
            .map(|i| member(&format!("node{i}.exp.zone"), Some(&format!("127.0.77.{i}"))))
            .collect();
        assert_eq!(
            static_member_id(&[peer_url(&members[1])], token),
            1739553078903460296
        );
        assert_eq!(
            static_member_id(&[peer_url(&members[2])], token),
            12598240920932805869
        );
        assert_eq!(static_cluster_id(&members, token), 0xe7c0e5fe9c71ba11);
        assert_ne!(static_cluster_id(&members[..2], token), 0xe7c0e5fe9c71ba11);
        assert_ne!(
            static_cluster_id(&members, "exp.zone-other"),
            0xe7c0e5fe9c71ba11
        );
    }

    fn zone3() -> Vec<Member> {
        vec![
            member("node1.example.zone", Some("10.0.1.10")),
            member("node2.example.zone", Some("10.0.1.11")),
            member("node3.example.zone", Some("10.0.1.12")),
        ]
    }

    #[test]
    fn urls_and_initial_cluster_follow_the_file() {
        let members = zone3();
        assert_eq!(peer_url(&members[0]), "https://10.0.1.10:2380");
        assert_eq!(client_url(&members[2]), "https://10.0.1.12:2379");
        assert_eq!(
            initial_cluster(&members),
            "node1.example.zone=https://10.0.1.10:2380,node2.example.zone=https://10.0.1.11:2380,node3.example.zone=https://10.0.1.12:2380"
        );
    }

    #[test]
    fn a_joining_member_names_itself_in_the_clusters_list() {
        let running = |id: u64, name: &str, url: &str| ClusterMember {
            id,
            name: name.into(),
            peer_urls: vec![url.into()],
            client_urls: vec![],
            learner: false,
        };
        let members = [
            running(1, "node1.example.zone", "https://10.0.1.10:2380"),
            running(9, "", "https://10.0.1.13:2380"),
            running(2, "node2.example.zone", "https://10.0.1.11:2380"),
        ];
        assert_eq!(
            joining_initial_cluster(&members, 9, "node4.example.zone"),
            "node1.example.zone=https://10.0.1.10:2380,node4.example.zone=https://10.0.1.13:2380,node2.example.zone=https://10.0.1.11:2380"
        );
    }

    #[test]
    fn requests_go_to_the_started_voters_never_to_a_learner() {
        let member = |id: u64, url: &str, learner: bool| ClusterMember {
            id,
            name: format!("node{id}.example.zone"),
            peer_urls: vec![],
            client_urls: if url.is_empty() {
                vec![]
            } else {
                vec![url.into()]
            },
            learner,
        };
        let view = ClusterView {
            cluster_id: 7,
            members: vec![
                member(1, "https://10.0.1.10:2379", false),
                member(4, "https://10.0.1.13:2379", true),
                member(2, "https://10.0.1.11:2379", false),
                member(5, "", false),
            ],
            answered_by: "https://10.0.1.10:2379".into(),
        };
        assert_eq!(
            view.client_urls(),
            ["https://10.0.1.10:2379", "https://10.0.1.11:2379"]
        );
    }

    #[test]
    fn a_cyfs_member_is_reached_and_listens_only_on_loopback() {
        let home = Member {
            protocol: Protocol::Cyfs,
            peer_port: 2480,
            client_port: 2479,
            ..member("home1.example.zone", None)
        };
        assert_eq!(peer_url(&home), "https://127.0.0.1:2480");
        assert_eq!(client_url(&home), "https://127.0.0.1:2479");
        assert_eq!(listen_peer_urls(&home, None), ["https://127.0.0.1:2480"]);
        assert_eq!(listen_client_urls(&home, None), ["https://127.0.0.1:2479"]);
        let server = member("server.example.zone", Some("203.0.113.7"));
        assert_eq!(
            initial_cluster(&[server.clone(), home.clone()]),
            "server.example.zone=https://203.0.113.7:2380,home1.example.zone=https://127.0.0.1:2480"
        );
        // Making a member cyfs changes the zone's token: it is another cluster.
        let ca = [7u8; 32];
        let https_home = member("home1.example.zone", None);
        assert_ne!(
            cluster_token("example.zone", &[server.clone(), home], &ca),
            cluster_token("example.zone", &[server, https_home], &ca)
        );
    }

    #[test]
    fn ipv6_gets_brackets_and_names_stay_names() {
        let v6 = member("n.z", Some("fd00::10"));
        assert_eq!(peer_url(&v6), "https://[fd00::10]:2380");
        assert_eq!(signer_url(&v6), "https://[fd00::10]:2382");
        assert_eq!(
            listen_client_urls(&v6, None),
            ["https://[fd00::10]:2379", "https://127.0.0.1:2379"]
        );
        let named = member("n.z", None);
        assert_eq!(client_url(&named), "https://n.z:2379");
        assert_eq!(listen_peer_urls(&named, None), ["https://0.0.0.0:2380"]);
        assert_eq!(listen_signer_urls(&named, None), ["https://0.0.0.0:2382"]);
        let local = member("n.z", Some("127.0.0.2"));
        assert_eq!(listen_client_urls(&local, None), ["https://127.0.0.2:2379"]);
    }

    #[test]
    fn listen_address_replaces_the_address_listened_on_not_the_one_advertised() {
        let natted = member("n.z", Some("203.0.113.7"));
        let lan: IpAddr = "192.168.1.20".parse().unwrap();
        assert_eq!(
            listen_peer_urls(&natted, Some(lan)),
            ["https://192.168.1.20:2380"]
        );
        assert_eq!(
            listen_client_urls(&natted, Some(lan)),
            ["https://192.168.1.20:2379", "https://127.0.0.1:2379"]
        );
        assert_eq!(peer_url(&natted), "https://203.0.113.7:2380");
        let all: IpAddr = "0.0.0.0".parse().unwrap();
        assert_eq!(
            listen_client_urls(&natted, Some(all)),
            ["https://0.0.0.0:2379"]
        );
        let named = member("n.z", None);
        assert_eq!(
            listen_peer_urls(&named, Some(lan)),
            ["https://192.168.1.20:2380"]
        );
    }

    #[test]
    fn token_is_the_same_everywhere_and_changes_with_zone_members_or_ca() {
        let ca = [7u8; 32];
        let members = zone3();
        let token = cluster_token("example.zone", &members, &ca);
        assert!(token.starts_with("example.zone-"));
        assert_eq!(token.len(), "example.zone-".len() + 32);
        // Same inputs, any order: same token.
        let mut reordered = members.clone();
        reordered.reverse();
        assert_eq!(cluster_token("example.zone", &reordered, &ca), token);
        // Different zone, member set, member address or CA: different token.
        assert_ne!(cluster_token("other.zone", &members, &ca), token);
        assert_ne!(cluster_token("example.zone", &members[..2], &ca), token);
        let mut moved = members.clone();
        moved[1].address = Some(Host::parse("10.0.1.99"));
        assert_ne!(cluster_token("example.zone", &moved, &ca), token);
        assert_ne!(cluster_token("example.zone", &members, &[8u8; 32]), token);
    }
}

#[cfg(test)]
mod pinned {
    use super::*;
    use crate::config::zone::Protocol;
    use zone_pki::Host;

    fn zone3() -> Vec<Member> {
        ["10.0.1.10", "10.0.1.11", "10.0.1.12"]
            .iter()
            .enumerate()
            .map(|(i, a)| Member {
                node_name: format!("node{}.example.zone", i + 1),
                address: Some(Host::parse(a)),
                peer_port: 2380,
                client_port: 2379,
                protocol: Protocol::Https,
            })
            .collect()
    }

    /// Every value each member derives alone and must derive identically, on every release,
    /// forever: the first start's token and IDs (a member that derived another would start
    /// a second cluster, or `preflight/fresh.rs` would refuse a late member for good), a
    /// restore's token (two members restoring one snapshot on different releases would
    /// fork), the URLs the zone file gives. Pinned as zone-etcd 0.1.0 derives them.
    #[test]
    fn derived_values_are_pinned() {
        let members = zone3();
        let ca = [7u8; 32];
        let token = cluster_token("example.zone", &members, &ca);
        let restored = restored_token("example.zone", &members, &ca, "ab".repeat(32).as_str());
        let ids: Vec<String> = members
            .iter()
            .map(|m| format!("{:016x}", static_member_id(&[peer_url(m)], &token)))
            .collect();
        let cluster = format!("{:016x}", static_cluster_id(&members, &token));
        assert_eq!(token, "example.zone-2405b71df1aa0b986afaa69b51f1651b");
        assert_eq!(restored, "example.zone-r-a56b33f332d1082cc8a82ea210e94191");
        assert_eq!(
            ids,
            ["dacf01aa6c65d372", "dd9ca7664d342d3a", "9df2a66edab2aaeb"]
        );
        assert_eq!(cluster, "79896a7b0052c22e");
        assert_eq!(
            initial_cluster(&members),
            "node1.example.zone=https://10.0.1.10:2380,node2.example.zone=https://10.0.1.11:2380,node3.example.zone=https://10.0.1.12:2380"
        );
        assert_eq!(client_url(&members[0]), "https://10.0.1.10:2379");
        assert_eq!(metrics_url(&members[0]), "http://127.0.0.1:2381");
    }
}
