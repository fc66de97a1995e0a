use std::os::unix::fs::PermissionsExt;

use time::Duration;
use zone_pki::{Authority, LeafKind};

use super::*;
use zone_model::config::node::NodeCa;

use crate::test_zone::{fixture, zone_with_root, Fixture, NODE, ZONE};

impl Fixture {
    fn verify(&self, envelope: &[u8]) -> Result<Verified, String> {
        verify(envelope, ZONE, &self.roots(), signed_at)
    }

    /// A certificate the node CA issues with any parameters.
    fn issue(&self, params: rcgen::CertificateParams) -> zone_pki::Issued {
        let node_ca = self.node.node_ca().unwrap();
        node_ca.authority.issue(params).unwrap()
    }

    /// A signer made from the node CA with any parameters, outside the files.
    fn signer_with(&self, params: rcgen::CertificateParams) -> Signer {
        let issued = self.issue(params);
        Signer::from_pem(&issued.chain_pem, &issued.key_pem).unwrap()
    }

    fn serial(&self) -> String {
        let (cert, _) = signer_paths(&self.node.state_dir);
        CertInfo::parse_pem(&fs::read_to_string(cert).unwrap())
            .unwrap()
            .serial_hex
    }
}

/// The manifests' own signing time: `{"signed_at":"<RFC 3339>"}`.
fn signed_at(body: &[u8]) -> Option<OffsetDateTime> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    OffsetDateTime::parse(value.get("signed_at")?.as_str()?, &Rfc3339).ok()
}

fn body_at(t: OffsetDateTime) -> Vec<u8> {
    format!(
        "{{\"signed_at\":\"{}\",\"objects\":[\"full-1\"]}}",
        rfc3339(t)
    )
    .into_bytes()
}

fn now_body() -> Vec<u8> {
    body_at(OffsetDateTime::now_utc())
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_signed_body_round_trips_and_the_signer_is_kept_privately_and_reused() {
    let zone = fixture();
    let signer = Signer::for_node(&zone.node.signing()).unwrap();
    let (cert, key) = signer_paths(&zone.node.state_dir);
    assert_eq!(mode(cert.parent().unwrap()), 0o700);
    assert_eq!(mode(&key), 0o600);
    assert_eq!(
        parse_cert_chain(&fs::read_to_string(&cert).unwrap())
            .unwrap()
            .len(),
        2
    );
    let first = zone.serial();
    let body = now_body();
    let envelope = signer.sign(&body).unwrap();
    let value: serde_json::Value = serde_json::from_slice(&envelope).unwrap();
    assert_eq!(value["format"], FORMAT);
    assert_eq!(value["body"].as_str().unwrap().as_bytes(), body.as_slice());
    assert!(value["chain"][0]
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN CERTIFICATE-----\n"));
    assert_eq!(value.as_object().unwrap().len(), 4);
    let verified = zone.verify(&envelope).unwrap();
    assert_eq!(
        verified,
        Verified {
            body,
            node: NODE.into()
        }
    );

    Signer::for_node(&zone.node.signing()).unwrap();
    assert_eq!(zone.serial(), first, "a valid signer is reused");
    assert!(signer.sign(&[0xff, 0xfe]).is_err(), "a body must be UTF-8");
}

#[test]
fn a_changed_body_or_signature_is_refused() {
    let zone = fixture();
    let signer = Signer::for_node(&zone.node.signing()).unwrap();
    let envelope = signer.sign(&now_body()).unwrap();
    let mut value: serde_json::Value = serde_json::from_slice(&envelope).unwrap();

    let mut changed = value.clone();
    changed["body"] = value["body"]
        .as_str()
        .unwrap()
        .replace("full-1", "full-2")
        .into();
    let err = zone
        .verify(&serde_json::to_vec(&changed).unwrap())
        .unwrap_err();
    assert!(err.starts_with("signature does not match"), "{err}");

    let mut signature = b64().decode(value["signature"].as_str().unwrap()).unwrap();
    let last = signature.len() - 1;
    signature[last] ^= 0x01;
    value["signature"] = b64().encode(signature).into();
    let err = zone
        .verify(&serde_json::to_vec(&value).unwrap())
        .unwrap_err();
    assert!(err.starts_with("signature does not match"), "{err}");
    assert!(!err.contains('\n'));
}

#[test]
fn a_chain_from_another_zones_ca_is_refused() {
    let ours = fixture();
    // Same zone name, same node name: only the root differs.
    let theirs = fixture();
    let envelope = Signer::for_node(&theirs.node.signing())
        .unwrap()
        .sign(&now_body())
        .unwrap();
    let err = ours.verify(&envelope).unwrap_err();
    assert!(
        err.starts_with("signed by a CA that is not this zone's"),
        "{err}"
    );
    // Our node CA, with their signer as its leaf: the leaf is not ours.
    let mut value: serde_json::Value = serde_json::from_slice(&envelope).unwrap();
    value["chain"][1] = pem(ours.node.node_ca().unwrap().info.der()).into();
    let err = ours
        .verify(&serde_json::to_vec(&value).unwrap())
        .unwrap_err();
    assert!(err.contains("was not issued by node CA"), "{err}");
    // A zone verifying for another zone name.
    let envelope = Signer::for_node(&ours.node.signing())
        .unwrap()
        .sign(&now_body())
        .unwrap();
    let err = verify(&envelope, "other.zone", &ours.roots(), signed_at).unwrap_err();
    assert!(err.contains("is not a node of zone"), "{err}");
}

#[test]
fn a_tls_leaf_cannot_sign() {
    let zone = fixture();
    let identity = zone.node.identity();
    for kind in LeafKind::ALL {
        let issued = zone
            .node
            .node_ca()
            .unwrap()
            .authority
            .issue_leaf(kind, &identity, None)
            .unwrap();
        let tls = Signer::from_pem(&issued.chain_pem, &issued.key_pem).unwrap();
        let err = zone.verify(&tls.sign(&now_body()).unwrap()).unwrap_err();
        assert!(err.contains("is not a backup signer"), "{kind:?}: {err}");
    }
}

#[test]
fn a_renewed_signer_still_verifies_old_envelopes() {
    let mut zone = fixture();
    let old = Signer::for_node(&zone.node.signing()).unwrap();
    let envelope = old.sign(&now_body()).unwrap();
    let first = zone.serial();

    // A new node CA (the owner re-activated the node): the signer no longer chains to it.
    let identity = zone.node.identity();
    let authority = zone.root.issue_node_ca(&identity).unwrap();
    let info = CertInfo::parse(authority.cert_der()).unwrap();
    zone.node.node_ca = Some(NodeCa { authority, info });
    let renewed = Signer::for_node(&zone.node.signing()).unwrap();
    assert_ne!(zone.serial(), first, "renewed for the new node CA");
    assert!(
        zone.verify(&envelope).is_ok(),
        "the old envelope still verifies"
    );
    assert_eq!(
        zone.verify(&renewed.sign(&now_body()).unwrap())
            .unwrap()
            .node,
        NODE
    );

    // Past two thirds of its life: renewed too.
    let (cert, key) = signer_paths(&zone.node.state_dir);
    let aged = OffsetDateTime::now_utc() - Duration::days(61);
    let params = zone_pki::profile::backup_signer(&identity, aged).unwrap();
    let issued = zone.issue(params);
    fs::write(&cert, &issued.chain_pem).unwrap();
    fs::write(&key, &issued.key_pem).unwrap();
    let second = zone.serial();
    Signer::for_node(&zone.node.signing()).unwrap();
    assert_ne!(zone.serial(), second, "renewed past 2/3 of its life");

    // A key others can read is reported, not silently replaced.
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    let err = Signer::for_node(&zone.node.signing())
        .unwrap_err()
        .to_string();
    assert!(err.contains("chmod 600"), "{err}");
}

#[test]
fn validity_is_judged_at_the_signing_time_not_now() {
    let now = OffsetDateTime::now_utc();
    // A zone made a year ago, a node CA made 200 days ago, and a signer it issued 100 days ago: expired 10 days ago.
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let root = zone_pki::profile::root_ca(ZONE, now - Duration::days(365))
        .self_signed(&key)
        .unwrap();
    let mut zone = zone_with_root(Authority::from_pem(&root.pem(), &key.serialize_pem()).unwrap());
    let identity = zone.node.identity();
    let params = zone_pki::profile::node_ca(&identity, now - Duration::days(200)).unwrap();
    let issued = zone.root.issue(params).unwrap();
    let authority = Authority::from_pem(&issued.chain_pem, &issued.key_pem).unwrap();
    let info = CertInfo::parse(authority.cert_der()).unwrap();
    zone.node.node_ca = Some(NodeCa { authority, info });
    let params = zone_pki::profile::backup_signer(&identity, now - Duration::days(100)).unwrap();
    let expired = zone.signer_with(params);
    assert!(expired.certificate().not_after < now, "expired now");

    // Signed, by the body's own time, while it was valid: accepted.
    let envelope = expired.sign(&body_at(now - Duration::days(50))).unwrap();
    assert_eq!(zone.verify(&envelope).unwrap().node, NODE);

    // Signing times outside a certificate's validity are refused.
    let err = zone
        .verify(&expired.sign(&now_body()).unwrap())
        .unwrap_err();
    assert!(err.starts_with("the signer certificate"), "{err}");
    assert!(err.contains("was not valid at the signing time"), "{err}");
    let before = body_at(now - Duration::days(150));
    let err = zone.verify(&expired.sign(&before).unwrap()).unwrap_err();
    assert!(err.contains("was not valid at the signing time"), "{err}");
    let before_ca = body_at(now - Duration::days(300));
    let err = zone.verify(&expired.sign(&before_ca).unwrap()).unwrap_err();
    assert!(err.contains("was not valid at the signing time"), "{err}");
    let err = zone.verify(&expired.sign(b"{}").unwrap()).unwrap_err();
    assert!(err.contains("no signing time"), "{err}");
}
