//! The etcd command line.
//!
//! [`args`] is pure: the same node, members, paths and etcd release give the same argv on
//! every run, which `launch --dry-run` prints and tests read back. Both ports use mutual
//! TLS. The peer port trusts the zone roots alone and additionally demands the zone's peer
//! name in the client certificate, which only peer leaves carry; the client port trusts
//! the zone roots too, or in a zone with `[access]` its own trust file ([`ClientPort`]:
//! the client root alone once the policy is enforced, beside the zone roots while a zone
//! moves over).

use std::path::{Path, PathBuf};

use zone_pki::profile::peer_name;
use zone_pki::LeafKind;

use zone_model::cluster::{self, ClusterState};
use zone_model::config::zone::{Member, Protocol};
use zone_model::leaf_paths::LeafPaths;
use zone_model::settings::Settings;

use super::version::{Profile, TlsFloor};

/// Where the client side of a member's set is, through `current`: what etcd is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientPort {
    pub trust: PathBuf,
    /// `--client-cert-file` and `--client-key-file`, under `enforce` only.
    pub identity: Option<(PathBuf, PathBuf)>,
}

/// The CRL file of each port.
#[derive(Debug, Clone, Copy)]
pub struct Crls<'a> {
    /// `--client-crl-file`: without the node CAs' serials once the client port trusts the
    /// client root alone (no client chain holds a node CA then).
    pub client: &'a Path,
    /// `--peer-crl-file`: every serial the zone revoked.
    pub peer: &'a Path,
}

/// The oldest TLS version etcd accepts, on both ports, where the etcd release has the flag
/// ([`TlsFloor::Tls13Only`]). TLS 1.3 only is the strictest
/// setting etcd has: every TLS 1.3 suite is ephemeral (EC)DHE with an AEAD cipher, and
/// etcd's flag takes no lower bound above it. Every client of the zone speaks 1.3 (etcd's
/// peers, etcdctl and Go clients, rustls). etcd refuses `--cipher-suites` together with
/// it: TLS 1.3 suites are fixed by Go, all strong.
pub const TLS_MIN_VERSION: &str = "TLS1.3";

/// Everything etcd's command line is made of.
pub struct EtcdPlan<'a> {
    pub zone: &'a str,
    pub member: &'a Member,
    /// The node's `listen_address`: where it listens when that is not the address the
    /// zone file gives (behind NAT).
    pub listen: Option<std::net::IpAddr>,
    /// `--initial-cluster`: the zone's members for a bootstrap ([`cluster::initial_cluster`]),
    /// or the running cluster's list for a join ([`cluster::joining_initial_cluster`]).
    pub initial_cluster: String,
    pub token: String,
    pub state: ClusterState,
    pub data_dir: &'a Path,
    pub tls: &'a LeafPaths,
    /// The etcd release that will run this argv ([`super::version::profile`]).
    pub etcd: &'a Profile,
    /// The zone's settings (timing, quota, compaction), defaults included.
    pub settings: &'a Settings,
    /// The zone's CRLs as this node keeps them (the app's `revocation::store`): etcd
    /// rereads them on every new connection. `None` only for a `--dry-run` of a node that
    /// never launched (etcd refuses every connection when its CRL file is missing, so an
    /// argv for one must not name it).
    pub crl: Option<Crls<'a>>,
    /// Whether the zone has members reached through the gateway's tunnels
    /// ([`zone_model::config::zone::has_tunnels`]).
    pub tunneled: bool,
    /// The client port's own trust and identity in a zone with `[access]`
    /// (the app's `identities::tls::client_port`); `None`: the client port trusts `tls.ca()`.
    pub client_port: Option<ClientPort>,
}

/// The etcd argv after the binary, one `--flag=value` per argument.
pub fn args(plan: &EtcdPlan<'_>) -> Vec<String> {
    settings(plan)
        .into_iter()
        .map(|(flag, value)| format!("--{flag}={value}"))
        .collect()
}

/// The same settings as etcd's environment variables (`--data-dir` is `ETCD_DATA_DIR`),
/// as `NAME=value` lines for a systemd `EnvironmentFile`: values with characters outside
/// a plain set are double-quoted, with `\` and `"` escaped.
pub fn env_lines(plan: &EtcdPlan<'_>) -> Vec<String> {
    settings(plan)
        .into_iter()
        .map(|(flag, value)| {
            let name = format!("ETCD_{}", flag.replace('-', "_").to_uppercase());
            let plain = value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.,:/=@%+-[]".contains(c));
            if plain {
                format!("{name}={value}")
            } else {
                format!(
                    "{name}=\"{}\"",
                    value.replace('\\', "\\\\").replace('"', "\\\"")
                )
            }
        })
        .collect()
}

/// etcd's settings as (flag, value) pairs, in a fixed order.
fn settings(plan: &EtcdPlan<'_>) -> Vec<(&'static str, String)> {
    let path = |p: PathBuf| p.display().to_string();
    let tls = plan.tls;
    let tls_floor = match &plan.etcd.tls {
        // TLS 1.3 only: forward secrecy and AEAD on every connection (see TLS_MIN_VERSION).
        TlsFloor::Tls13Only => ("tls-min-version", TLS_MIN_VERSION.to_string()),
        // An etcd without --tls-min-version: TLS 1.2 limited to ECDHE-ECDSA + AEAD.
        TlsFloor::CipherSuites(suites) => ("cipher-suites", suites.join(",")),
    };
    let mut settings = vec![
        ("name", plan.member.node_name.clone()),
        ("data-dir", plan.data_dir.display().to_string()),
        (
            "listen-client-urls",
            cluster::listen_client_urls(plan.member, plan.listen).join(","),
        ),
        ("advertise-client-urls", cluster::client_url(plan.member)),
        (
            "listen-peer-urls",
            cluster::listen_peer_urls(plan.member, plan.listen).join(","),
        ),
        (
            "initial-advertise-peer-urls",
            cluster::peer_url(plan.member),
        ),
        ("initial-cluster", plan.initial_cluster.clone()),
        ("initial-cluster-token", plan.token.clone()),
        ("initial-cluster-state", plan.state.as_str().to_string()),
        // Client port: only certificates from the zone.
        ("client-cert-auth", "true".into()),
        (
            "trusted-ca-file",
            match &plan.client_port {
                Some(port) => path(port.trust.clone()),
                None => path(tls.ca()),
            },
        ),
        ("cert-file", path(tls.cert(LeafKind::Server))),
        ("key-file", path(tls.key(LeafKind::Server))),
        // Peer port: only the zone's peer certificates.
        ("peer-client-cert-auth", "true".into()),
        ("peer-trusted-ca-file", path(tls.ca())),
        ("peer-cert-file", path(tls.cert(LeafKind::Peer))),
        ("peer-key-file", path(tls.key(LeafKind::Peer))),
        ("peer-cert-allowed-hostname", peer_name(plan.zone)),
        tls_floor,
        // Metrics without a client certificate, on loopback only.
        ("listen-metrics-urls", cluster::metrics_url(plan.member)),
    ];
    // Before serving, and after each compaction where the release can, compare this
    // member's data with its peers' (a mismatch raises the CORRUPT alarm).
    settings.extend(plan.etcd.corrupt_check.flags());
    // Both ports refuse every certificate chain with a node CA the zone revoked. (Never
    // --listen-client-http-urls: etcd before 3.5.32 skips the CRL on the gRPC listener
    // when it is set, GHSA-3wh4-j44w-pg92; HTTP is served on the client port itself.)
    // etcd's HTTP gateway dials its own client port: once the port trusts the client root
    // alone, the gateway needs an identity of its own (etcd 3.5 and later).
    if let Some((cert, key)) = plan.client_port.as_ref().and_then(|p| p.identity.clone()) {
        settings.push(("client-cert-file", path(cert)));
        settings.push(("client-key-file", path(key)));
    }
    if let Some(crl) = plan.crl {
        settings.push(("client-crl-file", crl.client.display().to_string()));
        settings.push(("peer-crl-file", crl.peer.display().to_string()));
    }
    if plan.tunneled && plan.member.protocol == Protocol::Https {
        // A cyfs member dials this one from wherever its home network is (a shared
        // carrier-grade NAT address, not one its certificate could name), so the peer
        // port cannot also demand that the dialling peer's certificate name the address
        // its connection comes from. What admits a peer is unchanged: a certificate
        // chained to the zone root bearing the zone's peer name, which only a member's
        // node CA can issue. (A cyfs member keeps the check: everything reaches it from
        // 127.0.0.1, which every peer certificate of such a zone carries.)
        settings.push((plan.etcd.peer_skip_san_check, "true".into()));
    }
    settings.extend(plan.settings.flags());
    settings
}
