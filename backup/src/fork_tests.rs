use super::*;
use crate::chain::{check_links, delta_name, full_name, testing, Kind};

/// The writer before the takeover, and the one after it.
const OLD: &str = "0ld0ld00";
const NEW: &str = "00new000";

/// A link of `session` after `prev` (or the first), signed at `signed_ms`: a delta of ten
/// revisions from where `prev` says the next delta starts, or a full snapshot at
/// `full_at`; named and hashed as a writer of that session would.
fn link(session: &str, prev: Option<&Verified>, signed_ms: i64, full_at: Option<i64>) -> Verified {
    let seq = prev.map_or(1, |p| p.link.seq + 1);
    let start = prev.map_or(1, |p| p.link.next_delta);
    let (kind, revisions, next_delta) = match full_at {
        Some(r) => (
            Kind::Full,
            (r, r),
            if prev.is_some() { start } else { r + 1 },
        ),
        None => (Kind::Delta, (start, start + 9), start + 10),
    };
    let mut v = testing::verified(testing::Spec {
        seq,
        kind,
        revisions,
        times: (signed_ms, signed_ms),
        next_delta,
        cluster: "c1",
        prev,
    });
    v.link.session = session.into();
    v.link.object = Some(match kind {
        Kind::Full => full_name(seq, session, revisions.1),
        _ => delta_name(seq, session, revisions.0, revisions.1),
    });
    v.name = v.link.manifest_name();
    v.sha256 = format!("{session}-{seq}");
    v
}

/// The old writer's chain: a full snapshot and `n - 1` deltas, signed a second apart.
fn old_chain(n: usize) -> Vec<Verified> {
    let mut links = vec![link(OLD, None, 1_000, Some(1))];
    while links.len() < n {
        let t = 1_000 * (links.len() as i64 + 1);
        links.push(link(OLD, links.last(), t, None));
    }
    links
}

/// In chain order, as a target's listing gives them.
fn sorted(mut links: Vec<Verified>) -> Vec<Verified> {
    links.sort_by(|a, b| (a.link.seq, &a.name).cmp(&(b.link.seq, &b.name)));
    links
}

fn names(links: &[Verified]) -> Vec<String> {
    links.iter().map(|v| v.name.clone()).collect()
}

#[test]
fn a_chain_without_a_fork_is_returned_as_it_is() {
    let links = old_chain(5);
    let split = split_late(links.clone());
    assert_eq!(split.chain, links);
    assert!(split.late.is_empty());
}

#[test]
fn a_late_link_at_the_takeover_is_set_apart_and_the_chain_checks() {
    let mut links = old_chain(5);
    // The old writer's link 6, signed under its lease, lands after the new writer's
    // full snapshot 6 and the deltas after it.
    let late = link(OLD, links.last(), 6_000, None);
    let full = link(NEW, links.last(), 20_000, Some(70));
    let d7 = link(NEW, Some(&full), 21_000, None);
    let d8 = link(NEW, Some(&d7), 22_000, None);
    links.extend([late.clone(), full, d7, d8]);
    let links = sorted(links);
    assert!(
        check_links("example.zone", &links).is_err(),
        "two links 6 must not check as a chain"
    );
    let split = split_late(links.clone());
    assert_eq!(names(&split.late), [late.name]);
    assert_eq!(split.chain.len(), 8);
    check_links("example.zone", &split.chain).unwrap();
}

#[test]
fn a_late_branch_longer_than_the_new_writers_is_still_the_dead_end() {
    // The old writer's 6, 7 and 8 were all held by the store; the new writer linked only
    // its full snapshot 6 so far, signed after them.
    let mut links = old_chain(5);
    let l6 = link(OLD, links.last(), 6_000, None);
    let l7 = link(OLD, Some(&l6), 7_000, None);
    let l8 = link(OLD, Some(&l7), 8_000, None);
    let full = link(NEW, links.last(), 20_000, Some(70));
    links.extend([l6.clone(), l7.clone(), l8.clone(), full.clone()]);
    let split = split_late(sorted(links));
    assert_eq!(names(&split.late), [l6.name, l7.name, l8.name]);
    assert_eq!(split.chain.last().map(|v| &v.name), Some(&full.name));
    check_links("example.zone", &split.chain).unwrap();
}

#[test]
fn two_links_of_one_session_under_one_number_stay_for_the_check_to_refuse() {
    let mut links = old_chain(5);
    let a = link(OLD, links.last(), 6_000, None);
    let mut b = link(OLD, links.last(), 6_500, Some(60));
    b.sha256 = "other".into();
    links.extend([a, b]);
    assert_left_for_the_check(links);
}

#[test]
fn a_second_link_whose_prev_names_nothing_listed_stays_for_the_check_to_refuse() {
    // Not a late link: it follows no link the target holds (a replaced or forged chain).
    let mut links = old_chain(5);
    let mut stray = link(NEW, links.last(), 3_000, None);
    stray.link.prev = Some("not-listed".into());
    stray.sha256 = "stray".into();
    let next = link(OLD, links.last(), 6_000, None);
    links.extend([stray, next]);
    assert_left_for_the_check(links);
}

/// No link of `links` is judged late, and the chain check refuses what is left.
fn assert_left_for_the_check(links: Vec<Verified>) {
    let split = split_late(sorted(links));
    assert!(split.late.is_empty(), "{:?}", names(&split.late));
    assert!(check_links("example.zone", &split.chain).is_err());
}

#[test]
fn a_fork_at_a_retention_break_is_resolved_and_one_below_it_is_not() {
    // Links 1 and 2 pruned (retention kept the chain from 3 on): the path from the newest
    // link stops at 3, and a second link 3, whose prev names the pruned link 2, is the
    // late one (retention drops it with the next break, not before).
    let all = old_chain(6);
    let mut other3 = link(NEW, Some(&all[1]), 2_500, None);
    other3.sha256 = "other3".into();
    let mut links: Vec<Verified> = all[2..].to_vec();
    links.push(other3.clone());
    let split = split_late(sorted(links.clone()));
    assert_eq!(names(&split.late), [other3.name]);
    assert_eq!(names(&split.chain), names(&all[2..]));
    check_links("example.zone", &split.chain).unwrap();

    // A second link 2 below the break (its prev, link 1, pruned too) is no late link of
    // this chain: left for the check to refuse.
    let mut other2 = link(NEW, Some(&all[0]), 1_500, None);
    other2.sha256 = "other2".into();
    let mut links: Vec<Verified> = all[2..].to_vec();
    links.push(other2);
    assert_left_for_the_check(links);
}
