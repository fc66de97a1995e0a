//! The request module's tests: requests made, read back and answered by a real root.

use super::*;
use crate::{Authority, Host, NodeIdentity};

fn node(name: &str, member: bool) -> NodeIdentity {
    NodeIdentity {
        zone: "example.zone".into(),
        node_name: name.into(),
        address: Some(Host::parse("10.0.0.1")),
        member,
        tunneled: false,
    }
}

/// The request's DER with one byte of its signature changed.
fn with_flipped_signature_byte(csr_pem: &str) -> Vec<u8> {
    let mut der = CertificateSigningRequestDer::from_pem_slice(csr_pem.as_bytes())
        .unwrap()
        .as_ref()
        .to_vec();
    // The signature is the last BIT STRING: its last byte is inside the ECDSA s value.
    let last = der.len() - 1;
    der[last] ^= 0x01;
    der
}

#[test]
fn a_new_request_verifies_and_names_its_node_and_key() {
    let new = new_request("node1.example.zone").unwrap();
    assert!(new
        .csr_pem
        .starts_with("-----BEGIN CERTIFICATE REQUEST-----"));
    assert!(!format!("{new:?}").contains(new.key_pem()), "Debug redacts");
    let request = NodeRequest::from_pem(&new.csr_pem).unwrap();
    assert_eq!(request.node_name(), "node1.example.zone");
    let key = crate::key::parse_key(new.key_pem()).unwrap();
    assert!(request.key_matches(&key));
    let other =
        crate::key::parse_key(new_request("node1.example.zone").unwrap().key_pem()).unwrap();
    assert!(!request.key_matches(&other));
    assert_eq!(request.key_fingerprint_hex().len(), 64);
    // The request does not carry the key.
    assert!(!new.csr_pem.contains(&new.key_pem()[40..80]));
}

#[test]
fn a_request_with_a_flipped_signature_byte_is_refused() {
    let new = new_request("node1.example.zone").unwrap();
    let good = CertificateSigningRequestDer::from_pem_slice(new.csr_pem.as_bytes()).unwrap();
    NodeRequest::from_der(good.as_ref()).unwrap();
    let bad = with_flipped_signature_byte(&new.csr_pem);
    let err = NodeRequest::from_der(&bad).unwrap_err();
    assert!(err.problem().contains("signature does not verify"), "{err}");
    assert!(NodeRequest::from_pem("not a request").is_err());
    assert!(NodeRequest::from_der(b"\x30\x03\x02\x01\x00").is_err());
}

#[test]
fn a_request_not_p256_is_refused() {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, "node1.example.zone");
    let pem = params.serialize_request(&key).unwrap().pem().unwrap();
    let err = NodeRequest::from_pem(&pem).unwrap_err();
    assert!(err.problem().contains("P-256"), "{err}");
}

#[test]
fn the_node_ca_of_a_request_has_the_profile_and_ignores_what_the_request_asks() {
    let root = Authority::new_root("example.zone").unwrap();
    // A request asking for much more: a SAN of another node, an unconstrained CA.
    let key = new_key().unwrap();
    let mut params = CertificateParams::new(vec!["node2.example.zone".into()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "node1.example.zone");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let pem = params.serialize_request(&key).unwrap().pem().unwrap();
    let request = NodeRequest::from_pem(&pem).unwrap();

    let identity = node("node1.example.zone", true);
    let chain = root.issue_node_ca_for(&identity, &request).unwrap();
    let issued = CertInfo::parse_pem(&chain).unwrap();
    let reference = CertInfo::parse(root.issue_node_ca(&identity).unwrap().cert_der()).unwrap();
    assert_eq!(issued.subject_cn, "node1.example.zone");
    assert!(
        issued.public_key_matches(&key),
        "certifies the request's key"
    );
    assert!(issued.sans.is_empty(), "no SAN from the request");
    assert_eq!(issued.path_len, Some(0));
    // The same profile as a node CA issued with a fresh key.
    assert_eq!(issued.permitted, reference.permitted);
    assert_eq!(issued.is_ca, reference.is_ca);
    assert_eq!(issued.key_cert_sign, reference.key_cert_sign);
    assert_eq!(issued.issuer_cn, reference.issuer_cn);
    assert_eq!(
        issued.name_constraints_critical,
        reference.name_constraints_critical
    );
    assert_eq!(
        (issued.not_after - issued.not_before).whole_days(),
        (reference.not_after - reference.not_before).whole_days()
    );
    assert!(issued.is_signed_by(&CertInfo::parse(root.cert_der()).unwrap()));
    // And an Authority of it with the node's key issues leaves.
    let node_ca = Authority::with_key(&chain, key).unwrap();
    node_ca
        .issue_leaf(crate::LeafKind::Server, &identity, None)
        .unwrap();

    let err = root
        .issue_node_ca_for(&node("node2.example.zone", true), &request)
        .unwrap_err();
    assert!(err.problem().contains("node2.example.zone"), "{err}");
}

#[test]
fn an_answer_is_checked_against_its_request() {
    let root = Authority::new_root("example.zone").unwrap();
    let trust = root.chain_pem().to_string();
    let ask = |name: &str| NodeRequest::from_pem(&new_request(name).unwrap().csr_pem).unwrap();
    let mine = ask("node1.example.zone");
    let answer = root
        .issue_node_ca_for(&node("node1.example.zone", false), &mine)
        .unwrap();
    let (info, signer) = check_answer(&mine, &answer, &trust).unwrap();
    assert_eq!(info.subject_cn, "node1.example.zone");
    assert!(signer.is_self_issued());

    // Another request for the same node: another key.
    let again = ask("node1.example.zone");
    let err = check_answer(&again, &answer, &trust).unwrap_err();
    assert!(err.problem().contains("another key"), "{err}");

    // A request of another node.
    let theirs = ask("node2.example.zone");
    let err = check_answer(&theirs, &answer, &trust).unwrap_err();
    assert!(err.problem().contains("another node"), "{err}");
    assert!(err.problem().contains("node2.example.zone"), "{err}");

    // Signed by another root than the one sent along.
    let other_root = Authority::new_root("example.zone").unwrap();
    let err = check_answer(&mine, &answer, other_root.chain_pem()).unwrap_err();
    assert!(err.problem().contains("not signed"), "{err}");
    // During a CA rotation ca.crt holds both roots: either may have signed.
    let both = format!("{}{}", other_root.chain_pem(), root.chain_pem());
    check_answer(&mine, &answer, &both).unwrap();
}
