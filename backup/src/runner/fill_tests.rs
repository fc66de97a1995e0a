use super::*;
use crate::destination::counting::Counting;
use crate::destination::file::DirTarget;
use crate::head;
use crate::manifest::body_unverified;
use crate::test_zone::{fixture, OBJECT, ZONE};

/// A directory target holding `links` (their manifests and objects) and a head at the last.
pub(in crate::runner) fn target_with(
    url: &str,
    dir: &std::path::Path,
    links: &[Stored],
) -> Arc<Counting> {
    let target = DirTarget::new(url, dir);
    for stored in links {
        let link = body_unverified(&stored.bytes).unwrap();
        if let Some(object) = &link.object {
            target.put(object, OBJECT).unwrap();
        }
        target.put(&stored.name, &stored.bytes).unwrap();
    }
    if let Some(last) = links.last() {
        target
            .put(head::NAME, &head::record(Some(&last.bytes), "ab12cd34"))
            .unwrap();
    }
    Arc::new(Counting::new(Arc::new(target)))
}

fn prev_of(stored: &Stored) -> String {
    body_unverified(&stored.bytes).unwrap().prev.unwrap()
}

#[test]
fn the_prefix_covers_the_hole_and_little_else() {
    assert_eq!(common_prefix(24, 29), "chain/00000000002");
    assert_eq!(common_prefix(24, 24), "chain/000000000024");
    assert_eq!(common_prefix(98, 103), "chain/000000000");
    assert_eq!(common_prefix(1, 999_999_999_999), "chain/");
}

/// The hole 6..=9 under link 10, found on the other target with one listing, in chain order.
#[test]
fn a_hole_is_found_on_another_target_by_the_hashes_of_the_links_after_it() {
    let zone = fixture();
    let chain = zone.signed_chain(10);
    let dir = tempfile::tempdir().unwrap();
    let other = target_with("file:///other", dir.path(), &chain);
    other.take();
    let others: Vec<Arc<dyn Target>> = vec![other.clone()];
    let roots = zone.roots();
    let found = find(&others, (6, 10), &prev_of(&chain[9]), (ZONE, &roots)).unwrap();
    assert_eq!(found.lost, None);
    let names: Vec<&str> = found.links.iter().map(|(s, _)| s.name.as_str()).collect();
    let expected: Vec<&str> = chain[5..9].iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, expected);
    let counts = other.take();
    assert_eq!((counts.list, counts.get), (1, 4), "{counts:?}");
}

/// Beside link 8 the other target holds a late link 8 of another writer (a fork): the one
/// link 9 names is copied. Without the hash (any link of that number) the late one could be.
#[test]
fn a_late_link_beside_the_hole_is_never_taken_for_it() {
    let zone = fixture();
    let chain = zone.signed_chain(10);
    let late = zone.signed_link(8, "aa000000", Some(&chain[6]), 1);
    let dir = tempfile::tempdir().unwrap();
    let other = target_with("file:///other", dir.path(), &chain);
    other.put(&late.name, &late.bytes).unwrap();
    assert!(late.name < chain[7].name, "the late link is listed first");
    let others: Vec<Arc<dyn Target>> = vec![other];
    let roots = zone.roots();
    let found = find(&others, (6, 10), &prev_of(&chain[9]), (ZONE, &roots)).unwrap();
    let names: Vec<&str> = found.links.iter().map(|(s, _)| s.name.as_str()).collect();
    assert!(names.contains(&chain[7].name.as_str()), "{names:?}");
    assert!(!names.contains(&late.name.as_str()), "{names:?}");
}

/// Link 7 is nowhere: 8 and 9 are found, 7 is the hole that stays; and the second target
/// (asked when the first lacks a link) gives what the first lacks.
#[test]
fn a_link_no_target_holds_is_the_hole_that_stays() {
    let zone = fixture();
    let chain = zone.signed_chain(10);
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let first = target_with("file:///first", dirs[0].path(), &chain[..6]);
    let second = target_with("file:///second", dirs[1].path(), &chain[7..]);
    let others: Vec<Arc<dyn Target>> = vec![first.clone(), second];
    let roots = zone.roots();
    let found = find(&others, (5, 10), &prev_of(&chain[9]), (ZONE, &roots)).unwrap();
    assert_eq!(found.lost, Some(7));
    let seqs: Vec<u64> = found.links.iter().map(|(_, l)| l.seq).collect();
    assert_eq!(seqs, vec![8, 9]);
    // Link 6 of the first target is not taken: it is below the link no one holds.
    assert!(found.links.iter().all(|(s, _)| s.name != chain[5].name));
}

/// No other target answers: an error (the links wait), never "lost for good".
#[test]
fn a_hole_is_not_called_lost_while_no_other_target_answers() {
    let zone = fixture();
    let chain = zone.signed_chain(10);
    let dir = tempfile::tempdir().unwrap();
    let gone = dir.path().join("unmounted");
    let others: Vec<Arc<dyn Target>> = vec![Arc::new(DirTarget::new("file:///unmounted", &gone))];
    let roots = zone.roots();
    let err = find(&others, (6, 10), &prev_of(&chain[9]), (ZONE, &roots)).unwrap_err();
    assert!(err.contains("do not answer"), "{err}");
}

/// A manifest of another zone's CA under the wanted hash cannot be, but one that does not
/// verify is never copied: the hole's links are checked as every link is.
#[test]
fn a_link_that_does_not_verify_is_not_copied() {
    let zone = fixture();
    let chain = zone.signed_chain(10);
    let dir = tempfile::tempdir().unwrap();
    let other = target_with("file:///other", dir.path(), &chain);
    let others: Vec<Arc<dyn Target>> = vec![other];
    let stranger = fixture();
    let err = find(
        &others,
        (6, 10),
        &prev_of(&chain[9]),
        (ZONE, &stranger.roots()),
    )
    .unwrap_err();
    assert!(err.contains(&chain[8].name), "{err}");
}
