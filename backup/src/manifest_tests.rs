//! Manifests a later release wrote (issue 50, item 4): fields it added are read past,
//! and nothing of the chain is worked out from a link serialised again, so the stored
//! bytes, their hashes and the links after them stay as written; a newer format of the
//! link, the envelope or the head is refused in one line naming both formats.

use serde_json::Value;

use super::*;
use crate::chain::{check_links, Link};
use crate::destination::file::DirTarget;
use crate::destination::Target;
use crate::head::{self, Head};
use crate::local::Stored;
use crate::signing::Signer;
use crate::test_zone::{fixture, Fixture, ZONE};

const SESSION: &str = "ab12cd34";

fn now_ms() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp() * 1000
}

/// `stored` with its body changed by `change` and signed again by the zone's member, then
/// its envelope changed by `envelope` (outside the signature): what a later release of
/// zone-etcd might write for the same link.
fn rewritten(
    zone: &Fixture,
    before: &Stored,
    change: impl FnOnce(&mut Value),
    envelope: impl FnOnce(&mut Value),
) -> Stored {
    let outer: Value = serde_json::from_slice(&before.bytes).unwrap();
    let mut body: Value = serde_json::from_str(outer["body"].as_str().unwrap()).unwrap();
    change(&mut body);
    let signer = Signer::for_node(&zone.node.signing()).unwrap();
    let signed = signer.sign(body.to_string().as_bytes()).unwrap();
    let mut outer: Value = serde_json::from_slice(&signed).unwrap();
    envelope(&mut outer);
    stored(&before.name, serde_json::to_vec(&outer).unwrap())
}

/// The link a stored manifest holds, as this release wrote it.
fn plain_link(stored: &Stored) -> Link {
    body_unverified(&stored.bytes).unwrap()
}

#[test]
fn a_later_releases_added_fields_are_read_past_and_its_bytes_stay_the_chains() {
    let zone = fixture();
    let roots = zone.roots();
    let first = zone.signed_link(1, SESSION, None, now_ms());
    let added = rewritten(
        &zone,
        &first,
        |body| body["compression_level"] = 3.into(),
        |envelope| envelope["countersigned_by"] = "node2.example.zone".into(),
    );
    assert_ne!(added.sha256, first.sha256);
    // Read for what this release knows: the same link, the hash of the bytes as stored.
    let v1 = verify(&added, ZONE, &roots).unwrap();
    assert_eq!(v1.link, plain_link(&first));
    assert_eq!(v1.sha256, added.sha256);
    assert_eq!(body_unverified(&added.bytes).unwrap(), plain_link(&first));
    // The next link follows the stored bytes (as the writer adopts them), and the chain
    // holds.
    let second = zone.signed_link(2, SESSION, Some(&added), now_ms());
    let v2 = verify(&second, ZONE, &roots).unwrap();
    assert_eq!(v2.link.prev.as_deref(), Some(added.sha256.as_str()));
    check_links(ZONE, &[v1.clone(), v2.clone()]).unwrap();
    // As a new writer finds it on a target: listed, verified, its head trusted (the head
    // record itself with an added field), the bytes untouched.
    let dir = tempfile::tempdir().unwrap();
    let target = DirTarget::new("file:///test-target", dir.path());
    for s in [&added, &second] {
        target.put(&s.name, &s.bytes).unwrap();
    }
    let (links, _) = crate::verify::target_links(&target, Some(ZONE), &roots).unwrap();
    assert_eq!(links, [v1, v2]);
    let mut record: Value =
        serde_json::from_slice(&head::record(Some(&second.bytes), SESSION)).unwrap();
    record["written_by"] = "0.2.0".into();
    target
        .put(head::NAME, &serde_json::to_vec(&record).unwrap())
        .unwrap();
    match head::read(&target, ZONE, &roots).unwrap() {
        Head::Fresh(fresh) => assert_eq!(fresh.stored.bytes, second.bytes),
        Head::Listed(why) => panic!("the head was not used: {why}"),
    }
    // The first link as the head: its bytes, as stored, are what the writer goes on from.
    let record = head::record(Some(&added.bytes), SESSION);
    target.put(head::NAME, &record).unwrap();
    std::fs::remove_file(dir.path().join(&second.name)).unwrap();
    match head::read(&target, ZONE, &roots).unwrap() {
        Head::Fresh(fresh) => {
            assert_eq!(fresh.stored.bytes, added.bytes);
            assert_eq!(fresh.stored.sha256, added.sha256);
        }
        Head::Listed(why) => panic!("the head was not used: {why}"),
    }
}

#[test]
fn a_newer_format_of_a_link_an_envelope_or_a_head_is_refused_naming_both() {
    let zone = fixture();
    let roots = zone.roots();
    let first = zone.signed_link(1, SESSION, None, now_ms());
    // A link of a later format whose fields this release could not read.
    let newer = rewritten(
        &zone,
        &first,
        |body| {
            body["format"] = "zone-etcd-backup/2".into();
            body["seq"] = "000000000001".into();
        },
        |_| {},
    );
    let err = verify(&newer, ZONE, &roots).unwrap_err();
    assert!(
        err.starts_with("its signed body's format \"zone-etcd-backup/2\" is not one zone-etcd ")
            && err.contains("(it reads \"zone-etcd-backup/1\")")
            && err.contains("read it with that release or a later one"),
        "{err}"
    );
    let err = body_unverified(&newer.bytes).unwrap_err();
    assert!(err.contains("\"zone-etcd-backup/2\""), "{err}");
    // An envelope of a later format.
    let envelope = rewritten(
        &zone,
        &first,
        |_| {},
        |envelope| {
            envelope["format"] = "zone-etcd-signed/2".into();
            envelope["chain"] = Value::Null;
        },
    );
    let err = verify(&envelope, ZONE, &roots).unwrap_err();
    assert!(
        err.starts_with("the envelope's format \"zone-etcd-signed/2\" is not one zone-etcd ")
            && err.contains("(it reads \"zone-etcd-signed/1\")"),
        "{err}"
    );
    // A head of a later format: not used (the chain is listed instead), saying why.
    let dir = tempfile::tempdir().unwrap();
    let target = DirTarget::new("file:///test-target", dir.path());
    target.put(&first.name, &first.bytes).unwrap();
    let record = br#"{"format":"zone-etcd-head/2","last":[]}"#;
    target.put(head::NAME, record).unwrap();
    match head::read(&target, ZONE, &roots).unwrap() {
        Head::Listed(why) => assert!(
            why.contains("head: format \"zone-etcd-head/2\" is not one zone-etcd ")
                && why.contains("(it reads \"zone-etcd-head/1\")"),
            "{why}"
        ),
        Head::Fresh(_) => panic!("a head of a newer format was used"),
    }
}
