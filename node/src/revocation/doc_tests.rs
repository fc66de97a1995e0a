//! The revocations document's unit tests: formats 1 and 2, their signatures, the offer.

use super::*;
use time::OffsetDateTime;

fn doc(root: &Authority, number: u64, nodes: &[(&str, Vec<u8>)]) -> Revocations {
    let now = OffsetDateTime::now_utc();
    let listed: Vec<Listed> = nodes
        .iter()
        .map(|(n, s)| Listed {
            node: n.to_string(),
            entry: RevokedCa {
                serial: s.clone(),
                revoked_at: now,
            },
            kind: Kind::Client,
        })
        .collect();
    Revocations::issue(root, number, &listed, now, 1).unwrap()
}

fn roots(root: &Authority) -> Vec<CertInfo> {
    vec![CertInfo::parse(root.cert_der()).unwrap()]
}

#[test]
fn a_document_round_trips_and_verifies_against_its_root_only() {
    let root = Authority::new_root("example.zone").unwrap();
    let other = Authority::new_root("example.zone").unwrap();
    let d = doc(&root, 3, &[("laptop.example.zone", vec![0x11, 0x22])]);
    let back = Revocations::parse(&d.to_json()).unwrap();
    assert_eq!(back, d);
    assert!(back.verify(&roots(&root)).is_ok());
    let err = back.verify(&roots(&other)).unwrap_err().to_string();
    assert!(err.contains("not signed by the zone root"), "{err}");
    assert_eq!(back.node_names(), vec!["laptop.example.zone".to_string()]);
}

/// What a later release adds beside the fields this one knows is read past, kept, and
/// never makes the document another: its revocations take effect here all the same.
#[test]
fn a_later_releases_added_fields_are_read_past_and_kept() {
    let root = Authority::new_root("example.zone").unwrap();
    let d = doc(&root, 3, &[("laptop.example.zone", vec![0x11, 0x22])]);
    let mut value: serde_json::Value = serde_json::from_str(&d.to_json()).unwrap();
    value["services"] = serde_json::json!([{"service": "svc:web", "serial": "abcd"}]);
    value["level"] = 2.into();
    let later = Revocations::parse(&value.to_string()).unwrap();
    assert!(later.verify(&roots(&root)).is_ok());
    assert_eq!(later, d);
    assert_eq!(offer(Some(&d), &later).unwrap(), Offer::Same);
    let kept: serde_json::Value = serde_json::from_str(&later.to_json()).unwrap();
    assert_eq!(kept["services"], value["services"]);
    assert_eq!(kept["level"], 2);
    // A field this release knows, changed, still fails the signature.
    value["nodes"][0]["node"] = "desk.example.zone".into();
    let changed = Revocations::parse(&value.to_string()).unwrap();
    assert!(changed.verify(&roots(&root)).is_err());
}

#[test]
fn renamed_or_unnamed_serials_are_refused() {
    let root = Authority::new_root("example.zone").unwrap();
    let d = doc(&root, 3, &[("laptop.example.zone", vec![0x11, 0x22])]);
    let mut renamed = d.clone();
    renamed.nodes[0].node = "desk.example.zone".into();
    assert!(renamed
        .verify(&roots(&root))
        .unwrap_err()
        .to_string()
        .contains("names of CRL number 3 are not signed"));
    // Names signed but not matching the CRL's serials.
    let crl = d.crl.clone();
    let wrong = Revocations::sign(
        &root,
        crl,
        vec![RevokedNode {
            node: "laptop.example.zone".into(),
            serial: vec![0x33],
            kind: None,
        }],
    )
    .unwrap();
    assert!(wrong
        .verify(&roots(&root))
        .unwrap_err()
        .to_string()
        .contains("do not match its serials"));
}

#[test]
fn only_a_higher_number_replaces_the_one_in_force() {
    let root = Authority::new_root("example.zone").unwrap();
    let two = doc(&root, 2, &[("a.example.zone", vec![1])]);
    let three = doc(
        &root,
        3,
        &[("a.example.zone", vec![1]), ("b.example.zone", vec![2])],
    );
    let other_three = doc(&root, 3, &[("a.example.zone", vec![1])]);
    assert_eq!(offer(None, &two).unwrap(), Offer::Install);
    assert_eq!(offer(Some(&two), &three).unwrap(), Offer::Install);
    assert_eq!(offer(Some(&three), &three).unwrap(), Offer::Same);
    let older = offer(Some(&three), &two).unwrap_err().to_string();
    assert!(
        older.contains("CRL number 2 is older than number 3"),
        "{older}"
    );
    let same = offer(Some(&three), &other_three).unwrap_err().to_string();
    assert!(same.contains("another CRL with number 3"), "{same}");
}

/// A node CA of `name` from `root`, as read back (`revoke`'s tests have their own:
/// a test helper does not cross crates).
fn node_ca(root: &Authority, name: &str) -> CertInfo {
    let ca = root
        .issue_node_ca(&zone_pki::NodeIdentity {
            zone: "example.zone".into(),
            node_name: name.into(),
            address: None,
            member: false,
            tunneled: false,
        })
        .unwrap();
    CertInfo::parse(ca.cert_der()).unwrap()
}

/// A format-2 document of the laptop: its node CA (no client chain holds it) and a branch.
fn two(root: &Authority, number: u64) -> (Revocations, Vec<u8>, Vec<u8>) {
    let now = OffsetDateTime::now_utc();
    let laptop = node_ca(root, "laptop.example.zone");
    let kind = Kind::of(&laptop, &roots(root));
    assert_eq!(kind, Kind::NodeCa);
    let (ca, branch) = (laptop.serial().to_vec(), vec![0x5e, 0xed]);
    let listed = |serial: &Vec<u8>, kind: Kind| Listed {
        node: "laptop.example.zone".into(),
        entry: RevokedCa {
            serial: serial.clone(),
            revoked_at: now,
        },
        kind,
    };
    let listed = [listed(&ca, kind), listed(&branch, Kind::Client)];
    let doc = Revocations::issue(root, number, &listed, now, FORMAT_KINDS).unwrap();
    (doc, ca, branch)
}

/// Format 2: both CRLs list the branch, only the whole one the node CA; read back, the
/// same; format 1's fields and signature still verify alone (what 0.2.0 reads).
#[test]
fn a_format_2_document_keeps_node_cas_off_the_client_crl_and_reads_as_format_1_too() {
    let root = Authority::new_root("example.zone").unwrap();
    let (doc, ca, branch) = two(&root, 7);
    assert_eq!(doc.format(), 2);
    assert!(doc.crl.revokes(&ca) && doc.crl.revokes(&branch));
    assert!(doc.client_crl().revokes(&branch) && !doc.client_crl().revokes(&ca));
    assert_eq!(doc.client_crl().number, 7);
    let json = doc.to_json();
    let back = Revocations::parse(&json).unwrap();
    assert_eq!(back, doc);
    assert_eq!(back.to_json(), json);
    assert!(back.verify(&roots(&root)).is_ok());
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["format"], 2);
    assert_eq!(value["nodes"][0]["kind"], "node-ca");
    assert_eq!(value["nodes"][1]["kind"], "client");
    // A reader of format 1 (0.2.0 reads leniently): the fields it knows verify alone.
    let mut one = value.clone();
    for field in ["format", "client_crl", "signature_v2"] {
        one.as_object_mut().unwrap().remove(field);
    }
    for n in one["nodes"].as_array_mut().unwrap() {
        n.as_object_mut().unwrap().remove("kind");
    }
    let one = Revocations::parse(&one.to_string()).unwrap();
    assert_eq!(one.format(), 1);
    assert!(one.verify(&roots(&root)).is_ok());
    assert!(
        one.client_crl().revokes(&ca),
        "format 1: the whole CRL on both ports"
    );
    // A format-1 document of this release carries none of format 2's fields.
    let plain = doc_text(&root);
    for field in ["format", "client_crl", "signature_v2", "kind"] {
        assert!(!plain.contains(&format!("\"{field}\"")), "{field}: {plain}");
    }
}

fn doc_text(root: &Authority) -> String {
    doc(root, 3, &[("laptop.example.zone", vec![0x11, 0x22])]).to_json()
}

/// Every way to make the client CRL list less than the signed kinds say is refused: a
/// kind turned into a node CA's, a client CRL of another document, the kinds' signature
/// dropped, a format-2 document without its client CRL.
#[test]
fn a_changed_kind_or_client_crl_is_refused() {
    let root = Authority::new_root("example.zone").unwrap();
    let (doc, _, _) = two(&root, 7);
    let value: serde_json::Value = serde_json::from_str(&doc.to_json()).unwrap();
    let refused = |change: &dyn Fn(&mut serde_json::Value)| -> String {
        let mut v = value.clone();
        change(&mut v);
        match Revocations::parse(&v.to_string()) {
            Err(e) => e.to_string(),
            Ok(d) => d.verify(&roots(&root)).unwrap_err().to_string(),
        }
    };
    let err = refused(&|v| v["nodes"][1]["kind"] = "node-ca".into());
    assert!(
        err.contains("the kinds of CRL number 7 are not signed"),
        "{err}"
    );
    // The client CRL of a document that lists nothing (signed by the root, number 7).
    let (other, _, _) = two(&root, 7);
    let empty = Revocations::issue(&root, 7, &[], OffsetDateTime::now_utc(), FORMAT_KINDS)
        .unwrap()
        .client_crl()
        .pem();
    let err = refused(&|v| v["client_crl"] = empty.clone().into());
    assert!(
        err.contains("the kinds of CRL number 7 are not signed"),
        "{err}"
    );
    let other_pem = other.client_crl().pem();
    let err = refused(&|v| v["client_crl"] = other_pem.clone().into());
    assert!(err.contains("not signed"), "{err}");
    let err = refused(&|v| {
        v.as_object_mut().unwrap().remove("signature_v2");
    });
    assert!(err.contains("without its signature_v2"), "{err}");
    let err = refused(&|v| {
        v.as_object_mut().unwrap().remove("client_crl");
    });
    assert!(err.contains("without its client_crl"), "{err}");
    // Another root's client CRL.
    let stranger = Authority::new_root("example.zone").unwrap();
    let (foreign, _, _) = two(&stranger, 7);
    let foreign = foreign.client_crl().pem();
    let err = refused(&|v| v["client_crl"] = foreign.clone().into());
    assert!(
        err.contains("the client CRL of CRL number 7 is not signed"),
        "{err}"
    );
    // A kind a later release wrote: read, kept, and on the client port.
    assert!(Kind::parse("peer").on_client_port());
}

/// The note that the zone had no revocations (`store::note_none`): its text is a format
/// later releases read (golden); a node with it knows the zone's revocations; installing
/// a document removes it, so a copy lost after the zone revoked is never taken for none;
/// and it is never written beside a document in force.
#[test]
fn the_note_of_no_revocations_is_known_until_a_document_is_installed() {
    use crate::revocation::store;
    let root = Authority::new_root("example.zone").unwrap();
    let roots = roots(&root);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    assert!(!store::knows(state, &roots), "an empty state knows nothing");
    store::note_none(state, &roots, "2026-11-29T07:00:00Z").unwrap();
    assert_eq!(
        std::fs::read_to_string(state.join(store::NONE_FILE)).unwrap(),
        "{\"format\":1,\"read_at\":\"2026-11-29T07:00:00Z\"}\n"
    );
    assert!(store::knows(state, &roots));
    let d = doc(&root, 1, &[("laptop.example.zone", vec![0x11, 0x22])]);
    store::install(state, &roots, &d).unwrap();
    assert!(
        !state.join(store::NONE_FILE).exists(),
        "the note outlived a document"
    );
    assert!(store::knows(state, &roots));
    store::note_none(state, &roots, "2026-11-29T07:01:00Z").unwrap();
    assert!(
        !state.join(store::NONE_FILE).exists(),
        "noted none beside a document in force"
    );
    // The copy lost: nothing known, as for a new joiner.
    std::fs::remove_file(state.join(store::DOC_FILE)).unwrap();
    assert!(!store::knows(state, &roots));
}
