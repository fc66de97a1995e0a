use super::*;

const ZONE: &str = "example.zone";

/// A well-formed chain: full at 10, deltas 11-20 and 21-30, a heartbeat, full at 25,
/// delta 31-40.
fn chain() -> Vec<Verified> {
    let specs = [
        (Kind::Full, 10, 10),
        (Kind::Delta, 11, 20),
        (Kind::Delta, 21, 30),
        (Kind::Delta, 31, 30),
        (Kind::Full, 25, 25),
        (Kind::Delta, 31, 40),
    ];
    build(&specs)
}

fn build(specs: &[(Kind, i64, i64)]) -> Vec<Verified> {
    let mut out: Vec<Verified> = Vec::new();
    for (i, (kind, first, last)) in specs.iter().copied().enumerate() {
        let seq = i as u64 + 1;
        let next_delta = match kind {
            Kind::Full => out.last().map_or(last + 1, |p| p.link.next_delta),
            _ => last + 1,
        };
        let v = testing::verified(testing::Spec {
            seq,
            kind,
            revisions: (first, last),
            times: (1000 * seq as i64, 1000 * seq as i64),
            next_delta,
            cluster: "c1",
            prev: out.last(),
        });
        out.push(v);
    }
    out
}

fn problem(links: &[Verified]) -> String {
    check_links(ZONE, links).unwrap_err().to_string()
}

#[test]
fn a_well_formed_chain_passes_and_restores_from_its_newest_full() {
    let links = chain();
    check_links(ZONE, &links).unwrap();
    // Older links pruned: the delta that holds revisions 26-30 must stay.
    check_links(ZONE, &links[2..]).unwrap();
    let p = check_links(ZONE, &links[4..]).unwrap_err().to_string();
    assert!(p.contains("revisions 26..30 are missing"), "{p}");
    let mut bad = chain();
    bad[4].link.next_delta = 26;
    assert!(check_links(ZONE, &bad)
        .unwrap_err()
        .problem
        .contains("says the next delta starts at revision 26"));
    let plan = newest_restorable(&links).unwrap();
    assert_eq!(plan.full.link.last_revision, 25);
    let deltas: Vec<_> = plan.deltas.iter().map(|v| v.link.first_revision).collect();
    assert_eq!(deltas, vec![21, 31, 31]);
    assert!(open_gaps(&links).is_empty());
    assert_eq!(manifest_seq(&links[2].name), Some(3));
    assert_eq!(manifest_seq("chain/12-x-full.json"), None);
    assert_eq!(manifest_seq("chain/000000000003-x.json"), None);
    assert_eq!(
        parse_manifest_name("chain/000000000003-x-gap.json"),
        Some((3, Kind::Gap))
    );
    assert_eq!(manifest_seq("full/000000000001-x.json"), None);
}

#[test]
fn a_removed_link_is_named() {
    let mut links = chain();
    links.remove(2);
    let p = problem(&links);
    assert!(
        p.starts_with("chain/000000000004-ab12cd34-delta.json"),
        "{p}"
    );
    assert!(p.contains("link 3 is missing"), "{p}");
}

#[test]
fn a_replaced_link_breaks_the_hash_chain() {
    let mut links = chain();
    links[2].sha256 = "forged".into();
    let p = problem(&links);
    assert!(
        p.contains("000000000004") && p.contains("replaced or removed"),
        "{p}"
    );
}

#[test]
fn an_older_full_under_the_newest_name_is_refused() {
    let mut links = chain();
    let older = links[0].link.clone();
    links[4].link = Link { seq: 5, ..older };
    let p = problem(&links);
    assert!(
        p.contains("000000000005") && p.contains("names object"),
        "{p}"
    );
    // The same body stored under the newer link's name.
    let mut links = chain();
    links[4].link = links[0].link.clone();
    let p = problem(&links);
    assert!(p.contains("another link's name"), "{p}");
}

#[test]
fn a_revision_hole_between_deltas_is_named() {
    let links = build(&[
        (Kind::Full, 10, 10),
        (Kind::Delta, 11, 20),
        (Kind::Delta, 22, 30),
    ]);
    let p = problem(&links);
    assert!(
        p.contains("starts at revision 22") && p.contains("ended at 20"),
        "{p}"
    );
    let links = build(&[(Kind::Full, 10, 10), (Kind::Delta, 12, 20)]);
    assert!(problem(&links).contains("starts at revision 12"));
    let mut links = build(&[(Kind::Full, 10, 10), (Kind::Delta, 11, 20)]);
    links[1].link.next_delta = 20;
    assert!(problem(&links).contains("says the next delta starts at 20"));
}

#[test]
fn a_gap_is_recorded_and_open_until_a_full_follows() {
    let mut specs = vec![
        (Kind::Full, 10, 10),
        (Kind::Delta, 11, 20),
        (Kind::Gap, 21, 99),
    ];
    let links = build(&specs);
    check_links(ZONE, &links).unwrap();
    assert_eq!(open_gaps(&links), vec![(21, 99)]);
    specs.push((Kind::Full, 120, 120));
    specs.push((Kind::Delta, 100, 130));
    let links = build(&specs);
    check_links(ZONE, &links).unwrap();
    assert!(open_gaps(&links).is_empty());
}

#[test]
fn other_zones_and_clusters_are_refused() {
    let links = chain();
    assert!(check_links("other.zone", &links)
        .unwrap_err()
        .problem
        .contains("belongs to zone"));
    let mut links = chain();
    links[3].link.cluster_id = "c2".into();
    assert!(problem(&links).contains("etcd cluster c2"));
    // A restored zone goes on from a full snapshot of its new cluster.
    let mut links = chain();
    for l in &mut links[4..] {
        l.link.cluster_id = "c2".into();
    }
    links[4].link.next_delta = 26;
    links[5].link.first_revision = 26;
    links[5].link.object = Some(delta_name(6, "ab12cd34", 26, 40));
    check_links(ZONE, &links).unwrap();
}

/// Full at 10, delta 11-20, full at 20, deltas 21-30 and 31-40, a full at 35 linked after
/// them (so it needs 31-40), delta 41-50.
fn thinned() -> Vec<Verified> {
    build(&[
        (Kind::Full, 10, 10),
        (Kind::Delta, 11, 20),
        (Kind::Full, 20, 20),
        (Kind::Delta, 21, 30),
        (Kind::Delta, 31, 40),
        (Kind::Full, 35, 35),
        (Kind::Delta, 41, 50),
    ])
}

fn pick(links: &[Verified], seqs: &[u64]) -> Vec<Verified> {
    links
        .iter()
        .filter(|v| seqs.contains(&v.link.seq))
        .cloned()
        .collect()
}

#[test]
fn old_full_snapshots_kept_alone_before_the_recent_part() {
    let links = thinned();
    check_links(ZONE, &links).unwrap();
    // Retention: old fulls alone, then the recent part from the first delta the full at 35
    // needs (31-40), or from a full snapshot.
    check_links(ZONE, &pick(&links, &[1, 3, 5, 6, 7])).unwrap();
    check_links(ZONE, &pick(&links, &[1, 5, 6, 7])).unwrap();
    check_links(ZONE, &pick(&links, &[1, 3, 4, 5, 6, 7])).unwrap();
    check_links(ZONE, &pick(&links, &[1, 3])).unwrap();
    // Without the delta it needs, the newest full does not restore to the head.
    let p = check_links(ZONE, &pick(&links, &[1, 3, 6, 7])).unwrap_err();
    assert!(
        p.object.contains("000000000006") && p.problem.contains("revisions 36..40 are missing"),
        "{p}"
    );
}

#[test]
fn a_link_removed_from_the_recent_part_is_still_named() {
    let links = thinned();
    // (Links 2 and 4 removed is what retention does, [1, 3, 5, 6, 7] above: removing all
    // of a chain's deltas older than some point cannot be told from retention.)
    let p = problem(&pick(&links, &[1, 2, 3, 5, 6, 7]));
    assert!(
        p.starts_with("chain/000000000005") && p.contains("link 4 is missing"),
        "{p}"
    );
    let p = problem(&pick(&links, &[1, 3, 4, 6, 7]));
    assert!(p.contains("link 5 is missing"), "{p}");
    // A delta no full snapshot after it needs, after a skip.
    let p = problem(&pick(&links, &[1, 4, 5, 6, 7]));
    assert!(
        p.starts_with("chain/000000000004") && p.contains("link 2 is missing"),
        "{p}"
    );
    // Deltas before a skip: the run removed after them is named, even when it ends at a
    // delta a full needs.
    let p = problem(&pick(&links, &[1, 2, 5, 6, 7]));
    assert!(p.contains("link 3 is missing"), "{p}");
    // The newest full removed.
    let p = problem(&pick(&links, &[1, 3, 4, 5, 7]));
    assert!(p.contains("link 6 is missing"), "{p}");
    // The delta after a full snapshot removed: the one after it is needed by no full.
    let links = build(&[
        (Kind::Full, 10, 10),
        (Kind::Delta, 11, 20),
        (Kind::Full, 20, 20),
        (Kind::Delta, 21, 30),
        (Kind::Delta, 31, 40),
        (Kind::Full, 40, 40),
    ]);
    let p = problem(&pick(&links, &[1, 3, 5, 6]));
    assert!(
        p.starts_with("chain/000000000005") && p.contains("link 4 is missing"),
        "{p}"
    );
    // Two links under one number.
    let mut twice = pick(&links, &[1, 3, 4]);
    twice.insert(2, twice[1].clone());
    assert!(problem(&twice).contains("link 4 is missing"));
}
