use std::sync::Arc;

use super::*;
use crate::destination::counting::Counting;
use crate::destination::file::DirTarget;
use crate::test_zone::fixture;

const SESSION: &str = "ab12cd34";

/// A directory target holding the first `n` links of `chain` (and no head), counted.
fn target_with(dir: &std::path::Path, chain: &[Stored], n: usize) -> Counting {
    let target = DirTarget::new("file:///test-target", dir);
    for stored in &chain[..n] {
        target.put(&stored.name, &stored.bytes).unwrap();
    }
    Counting::new(Arc::new(target))
}

fn put_head(target: &Counting, manifest: &Stored, next_session: &str) {
    target
        .put(NAME, &record(Some(&manifest.bytes), next_session))
        .unwrap();
}

fn fallback_reason(head: Head) -> String {
    match head {
        Head::Listed(why) => why,
        Head::Fresh(f) => panic!("trusted the head {}", f.stored.name),
    }
}

#[test]
fn a_fresh_head_is_the_last_link_in_five_requests() {
    let zone = fixture();
    let chain = zone.signed_chain(40);
    let dir = tempfile::tempdir().unwrap();
    let target = target_with(dir.path(), &chain, 40);
    put_head(&target, &chain[39], SESSION);
    target.take();
    let Head::Fresh(fresh) = read(&target, "example.zone", &zone.roots()).unwrap() else {
        panic!("the head was not trusted");
    };
    assert_eq!(fresh.link.link.seq, 40);
    assert_eq!(fresh.stored.name, chain[39].name);
    assert_eq!(fresh.stored.sha256, chain[39].sha256);
    assert_eq!(fresh.next_session, SESSION);
    let counts = target.take();
    assert_eq!((counts.get, counts.list), (5, 0), "{counts:?}");
    // Announcing another session: its three names are asked for too.
    put_head(&target, &chain[39], "ef56ab78");
    target.take();
    assert!(matches!(
        read(&target, "example.zone", &zone.roots()).unwrap(),
        Head::Fresh(_)
    ));
    assert_eq!(target.take().requests(), 8);
}

#[test]
fn a_missing_stale_or_forged_head_is_never_trusted() {
    let zone = fixture();
    // Links 1-10 by one writer, 11-12 by the next.
    let chain = zone.signed_chain_with(12, |seq| if seq <= 10 { SESSION } else { "ef56ab78" });
    let dir = tempfile::tempdir().unwrap();
    let target = target_with(dir.path(), &chain, 10);
    let roots = zone.roots();
    let check = |target: &Counting, expect: &str| {
        let why = fallback_reason(read(target, "example.zone", &roots).unwrap());
        assert!(why.starts_with("file:///test-target: head: "), "{why}");
        assert!(why.contains(expect), "{why}");
    };
    check(&target, "no head record");
    // Stale: a writer killed between link 10's manifest and its head.
    put_head(&target, &chain[8], SESSION);
    check(&target, "stale: it copies chain/000000000009-ab12cd34-delta.json, but the target holds chain/000000000010-ab12cd34-delta.json");
    // The next writer announced itself, wrote link 11 and was killed before the head.
    target.put(&chain[10].name, &chain[10].bytes).unwrap();
    put_head(&target, &chain[9], "ef56ab78");
    check(
        &target,
        "but the target holds chain/000000000011-ef56ab78-delta.json",
    );
    // Ahead of the chain: a link signed but never stored on this target.
    put_head(&target, &chain[11], "ef56ab78");
    check(&target, "which the target does not hold");
    // The right name with other bytes.
    let mut changed = chain[10].bytes.clone();
    let at = changed.len() / 2;
    changed[at] ^= 1;
    target
        .put(NAME, &record(Some(&changed), "ef56ab78"))
        .unwrap();
    let why = fallback_reason(read(&target, "example.zone", &roots).unwrap());
    assert!(
        why.contains("does not verify") || why.contains("not a manifest"),
        "{why}"
    );
    // Signed by another zone's member.
    let theirs =
        crate::test_zone::zone_with_root(zone_pki::Authority::new_root("other.zone").unwrap());
    put_head(&target, &theirs.signed_chain(11)[10], "ef56ab78");
    check(&target, "does not verify");
    // The zone's own head, verified against another CA.
    put_head(&target, &chain[10], "ef56ab78");
    let why = fallback_reason(read(&target, "example.zone", &theirs.roots()).unwrap());
    assert!(why.contains("does not verify"), "{why}");
    // Not a head record: a bare manifest, garbage, a session that is no name, none yet.
    target.put(NAME, &chain[10].bytes).unwrap();
    check(&target, "not a zone-etcd-head/1 record");
    target.put(NAME, b"{}").unwrap();
    check(&target, "not a zone-etcd-head/1 record");
    target
        .put(NAME, &record(Some(&chain[10].bytes), "../x"))
        .unwrap();
    check(&target, "not a zone-etcd-head/1 record");
    target.put(NAME, &record(None, "ef56ab78")).unwrap();
    check(&target, "names no link yet");
    // And the same head, whole, is trusted again.
    put_head(&target, &chain[10], "ef56ab78");
    assert!(matches!(
        read(&target, "example.zone", &roots).unwrap(),
        Head::Fresh(_)
    ));
}
