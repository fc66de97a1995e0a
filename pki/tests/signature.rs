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
