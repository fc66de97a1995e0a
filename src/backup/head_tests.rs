use std::sync::Arc;

use super::*;
use crate::backup::target::counting::Counting;
use crate::backup::target::file::DirTarget;
use crate::backup::test_zone::{fixture, Fixture};

/// A directory target holding the first `n` links of `chain` (and no head), counted.
fn target_with(dir: &std::path::Path, chain: &[Stored], n: usize) -> Counting {
    let target = DirTarget::new("file:///test-target", dir);
    for stored in &chain[..n] {
        target.put(&stored.name, &stored.bytes).unwrap();
    }
    Counting::new(Arc::new(target))
}

fn fallback_reason(head: Head) -> String {
    match head {
        Head::Listed(why) => why,
        Head::Fresh(f) => panic!("trusted the head {}", f.1.name),
    }
}

#[test]
fn a_fresh_head_is_the_last_link_in_three_requests() {
    let zone = fixture();
    let chain = zone.signed_chain(40);
    let dir = tempfile::tempdir().unwrap();
    let target = target_with(dir.path(), &chain, 40);
    target.put(NAME, &chain[39].bytes).unwrap();
    target.take();
    let Head::Fresh(fresh) = read(&target, "example.zone", &zone.roots()).unwrap() else {
        panic!("the head was not trusted");
    };
    assert_eq!(fresh.1.link.seq, 40);
    assert_eq!(fresh.0.name, chain[39].name);
    assert_eq!(fresh.0.sha256, chain[39].sha256);
    let counts = target.take();
    assert_eq!(
        (counts.get, counts.list, counts.listed),
        (2, 1, 0),
        "{counts:?}"
    );
    assert_eq!(counts.requests(), 3);
}

#[test]
fn a_missing_stale_or_forged_head_is_never_trusted() {
    let zone: Fixture = fixture();
    let chain = zone.signed_chain(12);
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
    target.put(NAME, &chain[8].bytes).unwrap();
    check(&target, "stale: it copies chain/000000000009-ab12cd34-delta.json, but the target holds chain/000000000010-");
    // Ahead of the chain: a link signed but never stored on this target.
    target.put(NAME, &chain[11].bytes).unwrap();
    check(&target, "which the target does not hold");
    // The right name with other bytes (signed again: another signature, same body).
    let mut changed = chain[9].bytes.clone();
    let at = changed.len() / 2;
    changed[at] ^= 1;
    target.put(NAME, &changed).unwrap();
    let why = fallback_reason(read(&target, "example.zone", &roots).unwrap());
    assert!(
        why.contains("does not verify") || why.contains("not a manifest"),
        "{why}"
    );
    // Signed by another zone's member.
    let theirs = crate::backup::test_zone::zone_with_root(
        zone_pki::Authority::new_root("other.zone").unwrap(),
    );
    target.put(NAME, &theirs.signed_chain(10)[9].bytes).unwrap();
    check(&target, "does not verify");
    // Verified by the wrong roots: the zone's own head, another CA.
    target.put(NAME, &chain[9].bytes).unwrap();
    let why = fallback_reason(read(&target, "example.zone", &theirs.roots()).unwrap());
    assert!(why.contains("does not verify"), "{why}");
    // Garbage.
    target.put(NAME, b"{}").unwrap();
    check(&target, "not a manifest");
    // And the same head, whole, is trusted again.
    target.put(NAME, &chain[9].bytes).unwrap();
    assert!(matches!(
        read(&target, "example.zone", &roots).unwrap(),
        Head::Fresh(_)
    ));
}
