use super::*;
use crate::chain::{check_links, testing};

const ZONE: &str = "example.zone";

/// Links of (kind, first, last, time of first, time of last), in chain order; an index in
/// `skip_before` leaves a hole (retention) before that link.
fn build(specs: &[(Kind, i64, i64, i64, i64)], skip_before: &[usize]) -> Vec<Verified> {
    let mut out: Vec<Verified> = Vec::new();
    let mut seq = 0;
    for (i, &(kind, first, last, t0, t1)) in specs.iter().enumerate() {
        seq += if skip_before.contains(&i) { 2 } else { 1 };
        let next_delta = match kind {
            Kind::Full => out
                .last()
                .filter(|_| !skip_before.contains(&i))
                .map_or(last + 1, |p| p.link.next_delta),
            _ => last + 1,
        };
        let v = testing::verified(testing::Spec {
            seq,
            kind,
            revisions: (first, last),
            times: (t0, t1),
            next_delta,
            cluster: "c1",
            prev: out.last(),
        });
        out.push(v);
    }
    check_links(ZONE, &out).unwrap();
    out
}

/// full@10 (t 1000), deltas 11-20 (t 1100-2000), 21-30 (t 2100-3000), heartbeat to t 4000,
/// full@30 (t 4100), delta 31-40 (t 4200-5000).
fn chain() -> Vec<Verified> {
    build(
        &[
            (Kind::Full, 10, 10, 1000, 1000),
            (Kind::Delta, 11, 20, 1100, 2000),
            (Kind::Delta, 21, 30, 2100, 3000),
            (Kind::Delta, 31, 30, 4000, 4000),
            (Kind::Full, 30, 30, 4100, 4100),
            (Kind::Delta, 31, 40, 4200, 5000),
        ],
        &[],
    )
}

#[test]
fn a_point_is_reached_from_the_newest_full_before_it() {
    let links = chain();
    let all = stretches(&links);
    assert_eq!(all.len(), 2);
    assert_eq!((all[0].last_revision, all[0].last_time_ms), (40, 5000));
    let s = reach(&all, &links, Point::Revision(25)).unwrap();
    assert_eq!(s.full.link.last_revision, 10);
    let names: Vec<i64> = s
        .deltas_to(Point::Revision(25))
        .iter()
        .map(|v| v.link.first_revision)
        .collect();
    assert_eq!(names, [11, 21]);
    let s = reach(&all, &links, Point::Revision(35)).unwrap();
    assert_eq!(s.full.link.last_revision, 30);
    // A time inside the heartbeat's quiet stretch: from the first full (the second was
    // taken later).
    let s = reach(&all, &links, Point::Time(3500)).unwrap();
    assert_eq!(s.full.link.last_revision, 10);
    assert_eq!(s.deltas_to(Point::Time(3500)).len(), 2);
    let s = reach(&all, &links, Point::Time(4150)).unwrap();
    assert_eq!(s.full.link.last_revision, 30);
    // Nothing to replay (a heartbeat at most).
    assert!(s
        .deltas_to(Point::Time(4150))
        .iter()
        .all(|v| v.link.last_revision <= 30));
    // The ends are reached.
    assert!(reach(&all, &links, Point::Revision(10)).is_ok());
    assert!(reach(&all, &links, Point::Revision(40)).is_ok());
    assert!(reach(&all, &links, Point::Time(5000)).is_ok());
}

#[test]
fn points_outside_are_refused_naming_the_nearest() {
    let links = chain();
    let all = stretches(&links);
    let p = reach(&all, &links, Point::Revision(9)).unwrap_err();
    assert!(p.contains("before the oldest restore point"), "{p}");
    assert!(
        p.contains("the oldest point that can be reached is revision 10"),
        "{p}"
    );
    let p = reach(&all, &links, Point::Revision(41)).unwrap_err();
    assert!(p.contains("after the newest point"), "{p}");
    assert!(p.contains("revision 40"), "{p}");
    let p = reach(&all, &links, Point::Time(5001)).unwrap_err();
    assert!(p.contains("after the newest point"), "{p}");
    let p = reach(&all, &links, Point::Time(999)).unwrap_err();
    assert!(p.contains("before the oldest"), "{p}");
}

#[test]
fn a_gap_is_never_crossed() {
    let links = build(
        &[
            (Kind::Full, 10, 10, 1000, 1000),
            (Kind::Delta, 11, 20, 1100, 2000),
            (Kind::Gap, 21, 30, 3000, 3000),
            (Kind::Full, 35, 35, 3500, 3500),
            (Kind::Delta, 31, 40, 3600, 4000),
        ],
        &[],
    );
    let all = stretches(&links);
    assert_eq!(all[0].last_revision, 20);
    assert!(all[0].gap.is_some());
    let p = reach(&all, &links, Point::Revision(25)).unwrap_err();
    assert!(p.contains("inside a gap: revisions 21..30"), "{p}");
    assert!(
        p.contains("revision 20") && p.contains("revision 35"),
        "names both sides: {p}"
    );
    let p = reach(&all, &links, Point::Time(2500)).unwrap_err();
    assert!(p.contains("inside a gap"), "{p}");
    // After the gap, from the full that closes it.
    let s = reach(&all, &links, Point::Revision(38)).unwrap();
    assert_eq!(s.full.link.last_revision, 35);
    // The revisions of the gap before the full are not reachable from it.
    assert!(reach(&all, &links, Point::Revision(33)).is_err());
}

#[test]
fn thinned_fulls_are_points_of_their_own() {
    // Retention kept an old full alone, then the recent part whole.
    let links = build(
        &[
            (Kind::Full, 5, 5, 500, 500),
            (Kind::Delta, 21, 30, 2100, 3000),
            (Kind::Full, 25, 25, 3100, 3100),
            (Kind::Delta, 31, 40, 3200, 4000),
        ],
        &[1],
    );
    let all = stretches(&links);
    assert!(reach(&all, &links, Point::Revision(5)).is_ok());
    let p = reach(&all, &links, Point::Revision(20)).unwrap_err();
    assert!(
        p.contains("between two restore points that retention kept"),
        "{p}"
    );
    assert!(p.contains("revision 5") && p.contains("revision 25"), "{p}");
    let s = reach(&all, &links, Point::Revision(40)).unwrap();
    assert_eq!(s.full.link.last_revision, 25);
    assert_eq!(s.deltas_to(Point::Revision(40)).len(), 2);
}
