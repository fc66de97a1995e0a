//! Signatures made with a CA key verify against its certificate, and only there.

use zone_pki::{Authority, CertInfo};

#[test]
fn a_signature_verifies_with_its_ca_and_fails_otherwise() {
    let root = Authority::new_root("example.zone").unwrap();
    let other = Authority::new_root("example.zone").unwrap();
    let info = CertInfo::parse(root.cert_der()).unwrap();
    let other_info = CertInfo::parse(other.cert_der()).unwrap();
    let signature = root.sign(b"the member list").unwrap();
    assert!(info.verifies(b"the member list", &signature));
    assert!(!info.verifies(b"the member list!", &signature));
    assert!(!other_info.verifies(b"the member list", &signature));
    assert!(!info.verifies(b"the member list", b"not a signature"));
    assert_eq!(info.fingerprint_hex().len(), 64);
    assert_ne!(info.fingerprint_hex(), other_info.fingerprint_hex());
}

#[test]
fn name_constraints_permit_own_names_and_subdomains_only() {
    use zone_pki::{Host, NodeIdentity};
    let root = Authority::new_root("example.zone").unwrap();
    let node = NodeIdentity {
        zone: "example.zone".into(),
        node_name: "node1.example.zone".into(),
        address: Some(Host::parse("10.0.0.1")),
        member: true,
        tunneled: false,
    };
    let ca = CertInfo::parse(root.issue_node_ca(&node).unwrap().cert_der()).unwrap();
    for ok in [
        "node1.example.zone",
        "a.node1.example.zone",
        "10.0.0.1",
        "127.0.0.1",
        "::1",
        "localhost",
        "etcd-peer.example.zone",
    ] {
        assert!(ca.permits(&Host::parse(ok)), "{ok}");
    }
    for bad in [
        "node2.example.zone",
        "xnode1.example.zone",
        "10.0.0.2",
        "::2",
        "example.zone",
    ] {
        assert!(!ca.permits(&Host::parse(bad)), "{bad}");
    }
    assert!(CertInfo::parse(root.cert_der())
        .unwrap()
        .permits(&Host::parse("anything")));
}
