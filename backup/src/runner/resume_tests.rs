use std::sync::Arc;

use super::*;
use crate::destination::counting::Counting;
use crate::destination::file::DirTarget;
use crate::head::{record, NAME};
use crate::test_zone::{fixture, ZONE};

/// A takeover over a long chain reads each target's head, never the listing: five
/// requests a target, whatever the chain's length; without a head (or with one that
/// cannot be trusted) it lists `chain/`, and ends at the same link.
#[test]
fn a_takeover_reads_the_heads_not_the_listing() {
    let zone = fixture();
    let chain = zone.signed_chain(2000);
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let counted: Vec<Arc<Counting>> = dirs
        .iter()
        .enumerate()
        .map(|(i, dir)| {
            let target = DirTarget::new(&format!("file:///target{i}"), dir.path());
            Arc::new(Counting::new(Arc::new(target)))
        })
        .collect();
    // The first target has the whole chain; the second was away for the last 500 links.
    for (target, upto) in counted.iter().zip([2000, 1500]) {
        for stored in &chain[..upto] {
            target.put(&stored.name, &stored.bytes).unwrap();
        }
        target
            .put(NAME, &record(Some(&chain[upto - 1].bytes), "ab12cd34"))
            .unwrap();
        target.take();
    }
    let targets: Vec<Arc<dyn Target>> = counted.iter().map(|c| c.clone() as _).collect();
    let state = tempfile::tempdir().unwrap();
    let local = LocalChain::open(state.path()).unwrap();
    let roots = zone.roots();

    let resumed = resume(&targets, &local, ZONE, &roots).unwrap().unwrap();
    assert_eq!(resumed.link.link.seq, 2000);
    assert_eq!(resumed.stored.sha256, chain[1999].sha256);
    for target in &counted {
        let counts = target.take();
        assert_eq!(
            (counts.get, counts.list),
            (5, 0),
            "{}: {counts:?}",
            target.url()
        );
    }

    // No head on the first target (a chain written before heads): listed, same link.
    counted[0].delete(NAME).unwrap();
    counted[0].take();
    let resumed = resume(&targets, &local, ZONE, &roots).unwrap().unwrap();
    assert_eq!(resumed.link.link.seq, 2000);
    let counts = counted[0].take();
    assert_eq!(counts.listed, 2000, "{counts:?}");
    assert_eq!(counted[1].take().listed, 0);

    // A stale head (an old one put back): never continued from, the listing wins.
    counted[0]
        .put(NAME, &record(Some(&chain[1200].bytes), "ab12cd34"))
        .unwrap();
    let resumed = resume(&targets, &local, ZONE, &roots).unwrap().unwrap();
    assert_eq!(resumed.link.link.seq, 2000);
    assert_eq!(resumed.stored.sha256, chain[1999].sha256);
}

/// A target whose last manifest does not verify is never skipped for another target's
/// older link: the writer stops with the reason (the chain there cannot be continued).
#[test]
fn a_last_link_that_does_not_verify_stops_the_takeover() {
    let zone = fixture();
    let chain = zone.signed_chain(20);
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let targets: Vec<Arc<dyn Target>> = dirs
        .iter()
        .enumerate()
        .map(|(i, dir)| Arc::new(DirTarget::new(&format!("file:///target{i}"), dir.path())) as _)
        .collect();
    for (target, upto) in targets.iter().zip([20, 15]) {
        for stored in &chain[..upto] {
            target.put(&stored.name, &stored.bytes).unwrap();
        }
    }
    let mut forged = chain[19].bytes.clone();
    let at = forged.len() / 2;
    forged[at] ^= 1;
    targets[0].put(&chain[19].name, &forged).unwrap();
    let state = tempfile::tempdir().unwrap();
    let local = LocalChain::open(state.path()).unwrap();
    let Err(e) = resume(&targets, &local, ZONE, &zone.roots()) else {
        panic!("resumed past a manifest that does not verify");
    };
    assert!(e.to_string().contains(&chain[19].name), "{e}");
}

/// A late link beside the next writer's last one, under the same number, with no head
/// to say which is the chain's (a missing one, then a stale one): the listing's tie goes
/// to the link signed last, whatever the names sort as, and never to the late one.
#[test]
fn a_late_link_under_the_newest_number_is_not_continued() {
    let zone = fixture();
    // Links 1-9, then link 10 twice: the killed writer's (session zzzz9999, signed
    // first, landing late) and the next writer's (aaaa1111, signed a second later).
    let chain = zone.signed_chain_with(9, |_| "zzzz9999");
    let late = zone.signed_link(10, "zzzz9999", Some(&chain[8]), 1_800_000_000_000);
    let next = zone.signed_link(10, "aaaa1111", Some(&chain[8]), 1_800_000_001_000);
    assert!(
        late.name > next.name,
        "the late link must sort last by name"
    );
    let dir = tempfile::tempdir().unwrap();
    let target = DirTarget::new("file:///target", dir.path());
    for stored in chain.iter().chain([&late, &next]) {
        target.put(&stored.name, &stored.bytes).unwrap();
    }
    let targets: Vec<Arc<dyn Target>> = vec![Arc::new(target)];
    let state = tempfile::tempdir().unwrap();
    let local = LocalChain::open(state.path()).unwrap();
    let roots = zone.roots();

    let resumed = resume(&targets, &local, ZONE, &roots).unwrap().unwrap();
    assert_eq!(
        resumed.stored.name, next.name,
        "no head: continued the late link"
    );
    assert_eq!(resumed.stored.sha256, next.sha256);

    // A stale head (naming link 5) changes nothing: listed, the same link.
    targets[0]
        .put(NAME, &record(Some(&chain[4].bytes), "zzzz9999"))
        .unwrap();
    let resumed = resume(&targets, &local, ZONE, &roots).unwrap().unwrap();
    assert_eq!(
        resumed.stored.name, next.name,
        "stale head: continued the late link"
    );

    // Signed the other way round, the other link is the chain's: the time decides, not
    // the session's name.
    let dir = tempfile::tempdir().unwrap();
    let target = DirTarget::new("file:///target2", dir.path());
    let late = zone.signed_link(10, "aaaa1111", Some(&chain[8]), 1_800_000_000_000);
    let next = zone.signed_link(10, "zzzz9999", Some(&chain[8]), 1_800_000_001_000);
    for stored in chain.iter().chain([&late, &next]) {
        target.put(&stored.name, &stored.bytes).unwrap();
    }
    let targets: Vec<Arc<dyn Target>> = vec![Arc::new(target)];
    let resumed = resume(&targets, &local, ZONE, &roots).unwrap().unwrap();
    assert_eq!(resumed.stored.name, next.name);
}
