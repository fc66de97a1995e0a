//! The certificate profile of docs/src/reference/trust-model.md (its table), read back with
//! x509-parser directly (not through zone-pki's own inspection code), so a mistake in one
//! cannot hide one in the other.

use std::net::IpAddr;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::*;
use zone_pki::profile::leaf_sans;
use zone_pki::{Authority, Host, LeafKind, NodeIdentity};

fn ders(pem: &str) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .map(|c| c.unwrap())
        .collect()
}

fn node(address: Option<&str>, member: bool) -> NodeIdentity {
    NodeIdentity {
        zone: "example.zone".into(),
        node_name: "node1.example.zone".into(),
        address: address.map(Host::parse),
        member,
        tunneled: false,
    }
}

fn days(cert: &X509Certificate<'_>) -> i64 {
    (cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp()) / 86_400
}

fn cn(cert: &X509Certificate<'_>) -> String {
    cert.subject()
        .iter_common_name()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
}

/// SANs as strings: DNS names and IP addresses.
fn sans(cert: &X509Certificate<'_>) -> Vec<String> {
    let Some(ext) = cert.subject_alternative_name().unwrap() else {
        return Vec::new();
    };
    ext.value
        .general_names
        .iter()
        .map(|name| match name {
            GeneralName::DNSName(d) => d.to_string(),
            GeneralName::IPAddress(b) if b.len() == 4 => {
                IpAddr::from(<[u8; 4]>::try_from(*b).unwrap()).to_string()
            }
            GeneralName::IPAddress(b) => {
                IpAddr::from(<[u8; 16]>::try_from(*b).unwrap()).to_string()
            }
            other => panic!("unexpected SAN {other:?}"),
        })
        .collect()
}

/// Permitted name-constraint subtrees as strings (IP as addr/mask bytes hex).
fn permitted(cert: &X509Certificate<'_>) -> (bool, Vec<String>) {
    let ext = cert
        .name_constraints()
        .unwrap()
        .expect("name constraints present");
    let list = ext
        .value
        .permitted_subtrees
        .as_ref()
        .unwrap()
        .iter()
        .map(|s| match &s.base {
            GeneralName::DNSName(d) => d.to_string(),
            GeneralName::IPAddress(b) => {
                let (addr, mask) = b.split_at(b.len() / 2);
                let ip = match addr.len() {
                    4 => IpAddr::from(<[u8; 4]>::try_from(addr).unwrap()),
                    _ => IpAddr::from(<[u8; 16]>::try_from(addr).unwrap()),
                };
                format!("{ip}/{}", mask.iter().map(|m| m.count_ones()).sum::<u32>())
            }
            other => panic!("unexpected subtree {other:?}"),
        })
        .collect();
    assert!(ext.value.excluded_subtrees.is_none());
    (ext.critical, list)
}

#[test]
fn root_ca() {
    let root = Authority::new_root("example.zone").unwrap();
    let der = ders(root.chain_pem());
    assert_eq!(der.len(), 1);
    let (_, cert) = X509Certificate::from_der(&der[0]).unwrap();
    assert_eq!(cn(&cert), "example.zone root CA");
    assert_eq!(
        cert.subject().as_raw(),
        cert.issuer().as_raw(),
        "self-issued"
    );
    cert.verify_signature(None).expect("self-signed");
    let basic = cert.basic_constraints().unwrap().unwrap();
    assert!(basic.critical && basic.value.ca && basic.value.path_len_constraint.is_none());
    let usage = cert.key_usage().unwrap().unwrap().value;
    assert!(usage.key_cert_sign() && usage.crl_sign() && !usage.digital_signature());
    assert!(cert.extended_key_usage().unwrap().is_none());
    assert!(
        (3649..=3651).contains(&days(&cert)),
        "10 years: {}",
        days(&cert)
    );
    assert_eq!(
        cert.public_key().algorithm.algorithm.to_id_string(),
        "1.2.840.10045.2.1",
        "ECDSA"
    );
    assert_eq!(
        cert.signature_algorithm.algorithm.to_id_string(),
        "1.2.840.10045.4.3.2",
        "ecdsa-with-SHA256"
    );
    assert!(
        root.key_pem().starts_with("-----BEGIN PRIVATE KEY-----"),
        "PKCS#8"
    );
}

#[test]
fn node_ca_is_pathlen_zero_and_name_constrained_to_its_node() {
    let root = Authority::new_root("example.zone").unwrap();
    let root_der = ders(root.chain_pem());
    let (_, root_cert) = X509Certificate::from_der(&root_der[0]).unwrap();

    let member = root.issue_node_ca(&node(Some("10.0.1.10"), true)).unwrap();
    let der = ders(member.chain_pem());
    assert_eq!(
        der.len(),
        1,
        "a node CA file holds the node CA only; the root is in ca.crt"
    );
    let (_, cert) = X509Certificate::from_der(&der[0]).unwrap();
    assert_eq!(cn(&cert), "node1.example.zone");
    cert.verify_signature(Some(root_cert.public_key()))
        .expect("signed by the root");
    let basic = cert.basic_constraints().unwrap().unwrap().value;
    assert!(basic.ca);
    assert_eq!(basic.path_len_constraint, Some(0));
    assert!(
        (1824..=1826).contains(&days(&cert)),
        "5 years: {}",
        days(&cert)
    );
    let (critical, names) = permitted(&cert);
    assert!(critical, "name constraints must be critical");
    assert_eq!(
        names,
        [
            "node1.example.zone",
            "10.0.1.10/32",
            "localhost",
            "127.0.0.1/32",
            "::1/128",
            "etcd-peer.example.zone"
        ]
    );

    // Not a member: no peer name. No address: the node name only.
    let client_only = root.issue_node_ca(&node(None, false)).unwrap();
    let cert_der = ders(client_only.chain_pem());
    let (_, cert) = X509Certificate::from_der(&cert_der[0]).unwrap();
    assert_eq!(
        permitted(&cert).1,
        ["node1.example.zone", "localhost", "127.0.0.1/32", "::1/128"]
    );
    // IPv6 address: a /128 subtree.
    let v6 = root.issue_node_ca(&node(Some("fd00::10"), true)).unwrap();
    let cert_der = ders(v6.chain_pem());
    let (_, cert) = X509Certificate::from_der(&cert_der[0]).unwrap();
    assert!(permitted(&cert).1.contains(&"fd00::10/128".to_string()));
}

#[test]
fn leaves_have_the_profile_sans_ekus_and_chain() {
    let root = Authority::new_root("example.zone").unwrap();
    let identity = node(Some("10.0.1.10"), true);
    let node_ca = root.issue_node_ca(&identity).unwrap();
    let node_der = ders(node_ca.chain_pem());
    let (_, node_cert) = X509Certificate::from_der(&node_der[0]).unwrap();

    let cases = [
        (
            LeafKind::Server,
            vec![
                "node1.example.zone",
                "10.0.1.10",
                "localhost",
                "127.0.0.1",
                "::1",
            ],
            true,
        ),
        (
            LeafKind::Peer,
            vec!["node1.example.zone", "10.0.1.10", "etcd-peer.example.zone"],
            true,
        ),
        (LeafKind::Client, vec!["node1.example.zone"], false),
    ];
    for (kind, want_sans, server_auth) in cases {
        let issued = node_ca.issue_leaf(kind, &identity, None).unwrap();
        assert!(
            issued.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"),
            "PKCS#8"
        );
        let chain = ders(&issued.chain_pem);
        assert_eq!(chain.len(), 2, "{kind:?}: leaf then node CA");
        assert_eq!(chain[1], node_der[0]);
        let (_, leaf) = X509Certificate::from_der(&chain[0]).unwrap();
        leaf.verify_signature(Some(node_cert.public_key()))
            .expect("signed by the node CA");
        assert_eq!(cn(&leaf), "node1.example.zone");
        assert_eq!(sans(&leaf), want_sans, "{kind:?} SANs");
        let eku = leaf.extended_key_usage().unwrap().unwrap().value;
        assert_eq!(
            (eku.server_auth, eku.client_auth),
            (server_auth, true),
            "{kind:?} EKU"
        );
        let usage = leaf.key_usage().unwrap().unwrap().value;
        assert!(usage.digital_signature() && !usage.key_cert_sign());
        assert!(!leaf.basic_constraints().unwrap().unwrap().value.ca);
        assert!((89..=91).contains(&days(&leaf)), "90 days: {}", days(&leaf));
        assert!(
            leaf.validity().not_before.timestamp()
                < std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs() as i64
        );
    }
    // A service client: its own CN, still bound to the node by its SAN.
    let service = node_ca
        .issue_leaf(LeafKind::Client, &identity, Some("nameservice"))
        .unwrap();
    let leaf_der = ders(&service.chain_pem);
    let (_, leaf) = X509Certificate::from_der(&leaf_der[0]).unwrap();
    assert_eq!(cn(&leaf), "nameservice");
}

#[test]
fn addresses_become_the_right_san_kind() {
    let root = Authority::new_root("example.zone").unwrap();
    // Loopback members are dialled from 127.0.0.1, so their peer cert names it.
    let local = node(Some("127.0.0.2"), true);
    let peer = root
        .issue_node_ca(&local)
        .unwrap()
        .issue_leaf(LeafKind::Peer, &local, None)
        .unwrap();
    let leaf_der = ders(&peer.chain_pem);
    let (_, leaf) = X509Certificate::from_der(&leaf_der[0]).unwrap();
    assert_eq!(
        sans(&leaf),
        [
            "node1.example.zone",
            "127.0.0.2",
            "127.0.0.1",
            "etcd-peer.example.zone"
        ]
    );
    // IPv6: an IP SAN.
    let v6 = node(Some("fd00::10"), true);
    let server = root
        .issue_node_ca(&v6)
        .unwrap()
        .issue_leaf(LeafKind::Server, &v6, None)
        .unwrap();
    let leaf_der = ders(&server.chain_pem);
    let (_, leaf) = X509Certificate::from_der(&leaf_der[0]).unwrap();
    let ext = leaf.subject_alternative_name().unwrap().unwrap();
    assert!(ext
        .value
        .general_names
        .iter()
        .any(|n| matches!(n, GeneralName::IPAddress(b) if b.len() == 16 && b[0] == 0xfd)));
    // No address: the node name as DNS SAN, no IP but loopback.
    let named = node(None, true);
    let server = root
        .issue_node_ca(&named)
        .unwrap()
        .issue_leaf(LeafKind::Server, &named, None)
        .unwrap();
    let leaf_der = ders(&server.chain_pem);
    let (_, leaf) = X509Certificate::from_der(&leaf_der[0]).unwrap();
    assert_eq!(
        sans(&leaf),
        ["node1.example.zone", "localhost", "127.0.0.1", "::1"]
    );
}

#[test]
fn serials_are_random_and_positive() {
    let root = Authority::new_root("example.zone").unwrap();
    let identity = node(None, false);
    let node_ca = root.issue_node_ca(&identity).unwrap();
    let a = node_ca
        .issue_leaf(LeafKind::Client, &identity, None)
        .unwrap();
    let b = node_ca
        .issue_leaf(LeafKind::Client, &identity, None)
        .unwrap();
    let serial = |pem: &str| {
        X509Certificate::from_der(&ders(pem)[0])
            .unwrap()
            .1
            .raw_serial()
            .to_vec()
    };
    assert_ne!(serial(&a.chain_pem), serial(&b.chain_pem));
    assert_eq!(serial(&a.chain_pem).len(), 20);
    assert!(serial(&a.chain_pem)[0] < 0x80);
}

#[test]
fn loading_refuses_a_key_of_another_certificate_and_non_ca_certificates() {
    let root = Authority::new_root("example.zone").unwrap();
    let other = Authority::new_root("example.zone").unwrap();
    let err = Authority::from_pem(root.chain_pem(), &other.key_pem())
        .err()
        .unwrap();
    assert!(err.to_string().contains("does not match"), "{err}");
    let identity = node(None, false);
    let leaf = root
        .issue_node_ca(&identity)
        .unwrap()
        .issue_leaf(LeafKind::Client, &identity, None)
        .unwrap();
    let err = Authority::from_pem(&leaf.chain_pem, &leaf.key_pem)
        .err()
        .unwrap();
    assert!(err.to_string().contains("not a CA certificate"), "{err}");
}

#[test]
fn the_backup_signer_signs_only_and_tls_leaves_never_sign_code() {
    let root = Authority::new_root("example.zone").unwrap();
    let identity = node(Some("10.0.1.10"), true);
    let node_ca = root.issue_node_ca(&identity).unwrap();
    let params = zone_pki::profile::backup_signer(&identity, ::time::OffsetDateTime::now_utc());
    let issued = node_ca.issue(params.unwrap()).unwrap();
    let chain = ders(&issued.chain_pem);
    assert_eq!(chain.len(), 2, "leaf then node CA");
    let (_, leaf) = X509Certificate::from_der(&chain[0]).unwrap();
    assert_eq!(cn(&leaf), "node1.example.zone");
    assert_eq!(sans(&leaf), ["node1.example.zone"]);
    let eku = leaf.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.code_signing && !eku.server_auth && !eku.client_auth && !eku.any);
    let usage = leaf.key_usage().unwrap().unwrap().value;
    assert!(usage.digital_signature() && !usage.key_cert_sign() && !usage.key_encipherment());
    assert!(!leaf.basic_constraints().unwrap().unwrap().value.ca);
    assert!((89..=91).contains(&days(&leaf)));
    for kind in LeafKind::ALL {
        let tls = node_ca.issue_leaf(kind, &identity, None).unwrap();
        let der = ders(&tls.chain_pem);
        let (_, leaf) = X509Certificate::from_der(&der[0]).unwrap();
        let eku = leaf.extended_key_usage().unwrap().unwrap().value;
        assert!(!eku.code_signing, "{kind:?} must not be a signer");
    }
}

#[test]
fn a_zone_with_tunnels_puts_loopback_in_peer_leaves() {
    let plain = node(Some("203.0.113.7"), true);
    let tunneled = NodeIdentity {
        tunneled: true,
        ..plain.clone()
    };
    let loopback = Host::parse("127.0.0.1");
    assert!(!leaf_sans(LeafKind::Peer, &plain).contains(&loopback));
    assert!(leaf_sans(LeafKind::Peer, &tunneled).contains(&loopback));
    // Only the peer leaf changes: the client leaf still names its node alone.
    assert_eq!(
        leaf_sans(LeafKind::Client, &tunneled),
        leaf_sans(LeafKind::Client, &plain)
    );
    // And the node CA permits it, so the leaf can be issued.
    let root = Authority::new_root("example.zone").unwrap();
    let node_ca = root.issue_node_ca(&tunneled).unwrap();
    node_ca.issue_leaf(LeafKind::Peer, &tunneled, None).unwrap();
}
