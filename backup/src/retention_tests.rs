use super::*;
use crate::chain::{check_links, testing};

const ZONE: &str = "example.zone";
/// 2024-01-01T00:00:00Z, a Monday (the first day of ISO week 2024-W01).
const T0: i64 = 1_704_067_200_000;
const MIN: i64 = 60_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 86_400_000;

/// A chain being made, link by link, the way the writer makes it.
struct Chain {
    links: Vec<Verified>,
    next_delta: i64,
    cluster: String,
}

impl Chain {
    fn new() -> Chain {
        Chain {
            links: Vec::new(),
            next_delta: 0,
            cluster: "c1".into(),
        }
    }

    fn last_revision(&self) -> i64 {
        self.next_delta - 1
    }

    fn push(&mut self, kind: Kind, (first, last): (i64, i64), (t0, t1): (i64, i64)) {
        if kind != Kind::Full || self.links.is_empty() {
            self.next_delta = last + 1;
        };
        let v = testing::verified(testing::Spec {
            seq: self.links.len() as u64 + 1,
            kind,
            revisions: (first, last),
            times: (t0, t1),
            next_delta: self.next_delta,
            cluster: &self.cluster,
            prev: self.links.last(),
        });
        self.links.push(v);
    }

    /// A delta of `count` revisions cut at `t` (none: a heartbeat).
    fn delta(&mut self, count: i64, t: i64, every: i64) {
        let first = self.next_delta;
        self.push(Kind::Delta, (first, first + count - 1), (t - every / 2, t));
    }

    fn gap(&mut self, count: i64, t: i64) {
        let first = self.next_delta;
        self.push(Kind::Gap, (first, first + count - 1), (t, t));
    }

    fn full(&mut self, revision: i64, t: i64) {
        self.push(Kind::Full, (revision, revision), (t, t));
    }

    /// A restored zone: a new cluster, whose chain goes on from a full snapshot.
    fn restore(&mut self, cluster: &str, revision: i64, t: i64) {
        self.cluster = cluster.into();
        self.next_delta = revision + 1;
        self.full(revision, t);
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

/// A chain of `ticks` delta segments, one every `every` ms from `T0`, a full snapshot every
/// `full_every` ticks (linked at once, or after one or two more deltas, which then hold
/// revisions after it), now and then a heartbeat, a gap (a full snapshot at once after
/// it) when `odd`, and then also a restored zone's new cluster.
fn synth(seed: u64, ticks: i64, every: i64, full_every: i64, odd: bool) -> Vec<Verified> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut c = Chain::new();
    c.full(100, T0);
    let mut pending: Option<(i64, i64, u64)> = None;
    for tick in 1..=ticks {
        let t = T0 + tick * every;
        if odd && pending.is_none() && rng.next(400) == 0 {
            c.gap(1 + rng.next(20) as i64, t);
            pending = Some((c.last_revision(), t, rng.next(3)));
        } else if odd && pending.is_none() && rng.next(1500) == 0 {
            let revision = c.last_revision() + 1000;
            c.restore(&format!("c{tick}"), revision, t);
        } else {
            c.delta(rng.next(4) as i64, t, every);
        }
        if pending.is_none() && tick % full_every == 0 {
            pending = Some((c.last_revision(), t, rng.next(3)));
        }
        match pending {
            Some((revision, taken, 0)) => {
                c.full(revision, taken);
                pending = None;
            }
            Some((r, taken, lag)) => pending = Some((r, taken, lag - 1)),
            None => {}
        }
    }
    c.links
}

fn policy(window: i64, hourly: i64, daily: i64, weekly: i64) -> Policy {
    let d = |ms: i64| Duration::from_millis(ms as u64);
    Policy {
        window: d(window),
        keep_hourly: d(hourly),
        keep_daily: d(daily),
        keep_weekly: d(weekly),
    }
}

fn default_policy() -> Policy {
    Policy::of(&BackupSettings::default())
}

fn run(links: &[Verified], policy: &Policy, now: i64) -> (Plan, Vec<Verified>) {
    let summaries: Vec<Summary> = links.iter().map(Summary::of_verified).collect();
    let plan = plan(&summaries, policy, now);
    let keep: std::collections::BTreeSet<&String> = plan.keep.iter().collect();
    let kept = links
        .iter()
        .filter(|v| keep.contains(&v.name))
        .cloned()
        .collect();
    (plan, kept)
}

/// The first link a restore from `links[a]` needs (searched by revisions, by brute force).
fn first_needed(links: &[Verified], a: usize) -> usize {
    let f = &links[a].link;
    if f.next_delta <= f.last_revision + 1 {
        return a;
    }
    (0..a)
        .rev()
        .take_while(|&i| links[i].link.cluster_id == f.cluster_id)
        .find(|&i| {
            let l = &links[i].link;
            l.kind != Kind::Full
                && (l.first_revision..=l.last_revision).contains(&(f.last_revision + 1))
        })
        .expect("the full's first revision after it is in a delta before it")
}

/// Where the window's part starts in `kept`: the first link at or after the first one the
/// anchor needs (everything before it is an old full snapshot kept alone).
fn split(kept: &[Verified], links: &[Verified], anchor: usize) -> usize {
    let from = links[first_needed(links, anchor)].link.seq;
    kept.iter().position(|v| v.link.seq >= from).unwrap()
}

/// What every plan must do: a kept list the chain's rules accept, the head and the newest
/// full kept, and every point of the window restorable (the anchor and everything from
/// the first link it needs); a link of the window dropped only when it holds nothing
/// after the anchor. Returns the anchor's index.
fn assert_sound(links: &[Verified], policy: &Policy, now: i64) -> Option<usize> {
    let (plan, kept) = run(links, policy, now);
    check_links(ZONE, &kept).unwrap_or_else(|b| panic!("now {now}: {b}"));
    let keep: std::collections::HashSet<&String> = plan.keep.iter().collect();
    assert_eq!(plan.keep.len() + plan.drop.len(), links.len());
    assert_eq!(kept.last().unwrap().name, links.last().unwrap().name);
    let newest_full = links.iter().rev().find(|v| v.link.kind == Kind::Full);
    assert!(newest_full.is_none_or(|f| keep.contains(&f.name)));
    let window_start = now - policy.window.as_millis() as i64;
    let anchor = links
        .iter()
        .rposition(|v| v.link.kind == Kind::Full && v.link.last_time_ms <= window_start);
    let from = anchor.map_or(0, |a| first_needed(links, a));
    for (i, v) in links.iter().enumerate() {
        let kept = keep.contains(&v.name);
        if i >= from {
            assert!(kept, "now {now}: {} is needed by the window", v.name);
        }
        if v.link.last_time_ms >= window_start && !kept {
            let a = &links[anchor.unwrap()].link;
            assert!(
                v.link.kind != Kind::Full && v.link.last_revision <= a.last_revision,
                "{} is in the window",
                v.name
            );
        }
    }
    anchor
}

#[test]
fn the_default_policy_on_a_90_day_chain() {
    // Deltas every 10 minutes (the shape of 5 s, fewer links), a full snapshot hourly.
    let links = synth(7, 90 * 144, 10 * MIN, 6, false);
    let now = T0 + 90 * DAY;
    let policy = default_policy();
    let anchor = assert_sound(&links, &policy, now).unwrap();
    // The anchor: the full snapshot taken as the window starts (2024-03-24T00:00Z).
    assert_eq!(links[anchor].link.last_time_ms, now - 7 * DAY);
    let (plan, kept) = run(&links, &policy, now);
    let start = split(&kept, &links, anchor);
    // Before the window: full snapshots only, each alone.
    let old: Vec<i64> = kept[..start]
        .iter()
        .map(|v| {
            assert_eq!(v.link.kind, Kind::Full, "{}", v.name);
            v.link.last_time_ms
        })
        .collect();
    // Daily for 30 days: 03-01..03-23, the newest of each day (23:00); weekly for 12
    // weeks: the newest of ISO weeks 1..11 (Sundays 23:00, from 01-07, within 84 days),
    // 03-03, 03-10 and 03-17 being daily already.
    let daily: Vec<i64> = (60..83).map(|d| T0 + d * DAY + 23 * HOUR).collect();
    let weekly: Vec<i64> = (0..8).map(|w| T0 + (6 + 7 * w) * DAY + 23 * HOUR).collect();
    let mut expected: Vec<i64> = weekly.iter().chain(&daily).copied().collect();
    expected.sort();
    assert_eq!(old, expected);
    assert_eq!(old.len(), 31);
    // The window: every link from the anchor's needs on, with no link dropped between.
    let window = &kept[start..];
    assert!(window
        .windows(2)
        .all(|w| w[1].link.seq == w[0].link.seq + 1));
    assert_eq!(
        window[0].link.seq,
        links[first_needed(&links, anchor)].link.seq
    );
    // Hourly full snapshots for 7 days (the last one is linked, or still being taken).
    let hourly_in_window = window.iter().filter(|v| v.link.kind == Kind::Full).count();
    assert!([7 * 24, 7 * 24 + 1].contains(&hourly_in_window));
    let fulls = links.iter().filter(|v| v.link.kind == Kind::Full).count();
    assert!([90 * 24, 90 * 24 + 1].contains(&fulls));
    assert_eq!(kept.len(), 31 + window.len());
    assert_eq!(plan.drop.len(), links.len() - kept.len());
    // Dropped: the fulls of the first days and all deltas before the window.
    assert!(plan.drop.iter().any(|d| d.manifest == links[0].name));
}

#[test]
fn every_plan_keeps_a_chain_the_rules_accept() {
    let policies = [
        default_policy(),
        policy(DAY, 6 * HOUR, 3 * DAY, 8 * DAY),
        policy(30_000, 0, 2 * DAY, 0),
        policy(HOUR, 2 * HOUR, 0, 14 * DAY),
        policy(2 * HOUR, 12 * HOUR, 5 * DAY, 0),
    ];
    for seed in 1..=6 {
        let links = synth(seed, 12 * 144, 10 * MIN, 6, seed % 2 == 0);
        check_links(ZONE, &links).unwrap();
        for p in &policies {
            let mut previous: Option<Plan> = None;
            for step in 0..=8 {
                let now = T0 + step * 37 * HOUR + seed as i64 * 7 * MIN;
                assert_sound(&links, p, now);
                let (plan, kept) = run(&links, p, now);
                if let Some(before) = &previous {
                    // Later plans drop what earlier ones dropped (shared `now` is enough for
                    // a target and the local chain to agree).
                    let dropped: std::collections::HashSet<&Dropped> = plan.drop.iter().collect();
                    for d in &before.drop {
                        assert!(dropped.contains(d), "{} came back", d.manifest);
                    }
                }
                // Planning again from what was kept keeps the same (a target plans from its
                // own, already pruned, listing).
                let (again, _) = run(&kept, p, now);
                assert_eq!(again.keep, plan.keep);
                let (later, _) = run(&kept, p, now + 12 * HOUR);
                let (whole, _) = run(&links, p, now + 12 * HOUR);
                assert_eq!(later.keep, whole.keep, "seed {seed} now {now}");
                previous = Some(plan);
            }
        }
    }
}

#[test]
fn short_windows_on_a_busy_chain() {
    // Deltas every 10 s, a full snapshot every minute, for 90 minutes: a window of 30 s
    // keeps the full snapshot before it and what it needs, and the newest of each clock
    // hour for 2 h: hour 0's (00:59); hour 1's is in the window.
    let links = synth(3, 9 * 60, 10_000, 6, false);
    let now = links.last().unwrap().link.last_time_ms;
    let p = policy(30_000, 2 * HOUR, 0, 0);
    let anchor = assert_sound(&links, &p, now).unwrap();
    let (_, kept) = run(&links, &p, now);
    let start = split(&kept, &links, anchor);
    let old: Vec<i64> = kept[..start].iter().map(|v| v.link.last_time_ms).collect();
    assert_eq!(old, [T0 + 59 * MIN]);
    assert!(kept.len() - start <= 12, "{}", kept.len());
    // Without tiers, the window alone.
    let p = policy(30_000, 0, 0, 0);
    let anchor = assert_sound(&links, &p, now).unwrap();
    let (_, kept) = run(&links, &p, now);
    assert_eq!(split(&kept, &links, anchor), 0);
    assert_eq!(
        kept[0].link.seq,
        links[first_needed(&links, anchor)].link.seq
    );
}

#[test]
fn the_head_and_the_newest_full_are_kept_however_old() {
    // A chain that stopped a year ago: the window and every tier have passed.
    let links = synth(5, 3 * 144, 10 * MIN, 6, false);
    let now = T0 + 400 * DAY;
    let (plan, kept) = run(&links, &default_policy(), now);
    check_links(ZONE, &kept).unwrap();
    let newest_full = links
        .iter()
        .rposition(|v| v.link.kind == Kind::Full)
        .unwrap();
    let from = first_needed(&links, newest_full);
    let names: Vec<&String> = links[from..].iter().map(|v| &v.name).collect();
    assert_eq!(plan.keep.iter().collect::<Vec<_>>(), names);
    // A chain of one full snapshot keeps it.
    let one = &links[..1];
    assert_eq!(
        run(one, &policy(1, 0, 0, 0), now).0.keep,
        vec![one[0].name.clone()]
    );
    assert_eq!(
        super::plan(&Vec::<Summary>::new(), &default_policy(), now),
        Plan::default()
    );
}

#[test]
fn a_gap_in_the_window_is_kept() {
    let mut c = Chain::new();
    c.full(10, T0);
    for i in 1..=6 {
        c.delta(2, T0 + i * MIN, MIN);
    }
    c.full(c.last_revision(), T0 + 7 * MIN);
    c.delta(1, T0 + 8 * MIN, MIN);
    c.gap(30, T0 + 9 * MIN);
    c.full(c.last_revision() + 5, T0 + 10 * MIN);
    c.delta(8, T0 + 11 * MIN, MIN);
    let links = c.links;
    check_links(ZONE, &links).unwrap();
    let now = T0 + 12 * MIN;
    let (_, kept) = run(&links, &policy(4 * MIN, 0, 0, 0), now);
    let kinds: Vec<Kind> = kept.iter().map(|v| v.link.kind).collect();
    assert_eq!(
        kinds,
        [Kind::Full, Kind::Delta, Kind::Gap, Kind::Full, Kind::Delta]
    );
    assert_sound(&links, &policy(4 * MIN, 0, 0, 0), now);
}

#[test]
fn a_full_linked_after_deltas_keeps_the_deltas_it_needs() {
    let mut c = Chain::new();
    c.full(10, T0);
    c.delta(10, T0 + MIN, MIN); // 11..20
                                // Snapshot at 20 taken at 2 min, linked after two deltas: 21..25, 26..30.
    c.delta(5, T0 + 3 * MIN, MIN);
    c.delta(5, T0 + 4 * MIN, MIN);
    c.full(20, T0 + 2 * MIN);
    c.delta(5, T0 + 5 * MIN, MIN);
    let links = c.links;
    check_links(ZONE, &links).unwrap();
    let (plan, kept) = run(&links, &policy(MIN, 0, 0, 0), T0 + 5 * MIN);
    assert_eq!(
        plan.keep,
        links[2..]
            .iter()
            .map(|v| v.name.clone())
            .collect::<Vec<_>>()
    );
    assert_eq!(
        plan.deletions(),
        [
            links[0].name.as_str(),
            links[0].link.object.as_deref().unwrap(),
            &links[1].name,
            links[1].link.object.as_deref().unwrap(),
        ]
    );
    check_links(ZONE, &kept).unwrap();
    // Without the first of them the kept chain is refused: revisions 21..25 are missing.
    let p = check_links(ZONE, &kept[1..]).unwrap_err().problem;
    assert!(p.contains("revisions 21..25 are missing"), "{p}");
}

#[test]
fn deltas_known_by_name_alone() {
    let links = synth(11, 10 * 144, 10 * MIN, 6, false);
    let p = policy(2 * DAY, 12 * HOUR, 5 * DAY, 0);
    // At a time when the anchor needs deltas linked before it.
    let anchor = links
        .iter()
        .find(|v| {
            let l = &v.link;
            l.kind == Kind::Full
                && l.last_time_ms >= T0 + 7 * DAY
                && l.next_delta > l.last_revision + 1
        })
        .unwrap();
    let now = anchor.link.last_time_ms + 2 * DAY;
    let (exact, _) = run(&links, &p, now);
    // A target's deltas by earlier writers: their manifests are not read.
    let summaries: Vec<Summary> = links
        .iter()
        .map(|v| match v.link.kind {
            Kind::Delta => Summary::named(&v.name).unwrap(),
            _ => Summary::of_verified(v),
        })
        .collect();
    let blind = plan(&summaries, &p, now);
    let kept: Vec<Verified> = links
        .iter()
        .filter(|v| blind.keep.contains(&v.name))
        .cloned()
        .collect();
    check_links(ZONE, &kept).unwrap();
    // More is kept (from the full snapshot before the anchor), never less.
    assert!(exact.keep.iter().all(|n| blind.keep.contains(n)));
    assert!(blind.keep.len() > exact.keep.len());
    assert!(blind
        .drop
        .iter()
        .any(|d| d.object == Object::Unknown && !d.manifest.is_empty()));
    assert!(blind.deletions().len() < 2 * blind.drop.len());
    // A full snapshot not read: nothing is dropped.
    let mut summaries = summaries;
    summaries[0] = Summary::named(&links[0].name).unwrap();
    let none = plan(&summaries, &p, now);
    assert!(none.drop.is_empty() && none.keep.len() == links.len());
}

#[test]
fn iso_weeks() {
    assert_eq!(iso_week(T0), 2024 * 100 + 1);
    assert_eq!(iso_week(T0 - 1), 2023 * 100 + 52);
    assert_eq!(iso_week(T0 + 7 * DAY - 1), 2024 * 100 + 1);
    assert_eq!(iso_week(T0 + 7 * DAY), 2024 * 100 + 2);
    // 2021-01-03 (a Sunday) is in 2020-W53.
    assert_eq!(iso_week(1_609_632_000_000), 2020 * 100 + 53);
}

/// A late link (`crate::fork`) beside a takeover's full snapshot, its session's name
/// sorting before the full's and after it: while the window holds the fork the late link
/// is kept or dropped as its place says, and what is kept checks once late links are set
/// apart (as the drills do); once the window has passed the fork, it is gone and what is
/// kept checks as it is. Retention never stalls on it and never keeps it for ever.
#[test]
fn a_late_link_ages_out_with_its_window() {
    for session in ["0ld0ld00", "zzzz0ld0"] {
        let mut c = Chain::new();
        c.full(10, T0);
        for m in 1..=60 {
            c.delta(10, T0 + m * MIN, MIN);
        }
        let before = c.links.last().unwrap().clone();
        c.full(c.last_revision(), T0 + 61 * MIN); // the next writer's takeover
        for m in 62..=180 {
            c.delta(10, T0 + m * MIN, MIN);
        }
        // The old writer's next delta, signed before the takeover, landed after it.
        let first = before.link.next_delta;
        let t = T0 + 60 * MIN + 30_000;
        let mut late = testing::verified(testing::Spec {
            seq: before.link.seq + 1,
            kind: Kind::Delta,
            revisions: (first, first + 4),
            times: (t, t),
            next_delta: first + 5,
            cluster: "c1",
            prev: Some(&before),
        });
        late.link.session = session.into();
        late.link.object = Some(crate::chain::delta_name(
            late.link.seq,
            session,
            first,
            first + 4,
        ));
        late.name = late.link.manifest_name();
        late.sha256 = format!("late-{session}");
        let mut links = c.links.clone();
        links.push(late.clone());
        links.sort_by(|a, b| (a.link.seq, &a.name).cmp(&(b.link.seq, &b.name)));
        assert!(
            check_links(ZONE, &links).is_err(),
            "{session}: no fork made"
        );
        let hour = policy(HOUR, 0, 0, 0);

        // The window starts before the takeover: everything is kept, the late link too.
        let (plan, kept) = run(&links, &hour, T0 + 100 * MIN);
        assert!(plan.drop.is_empty(), "{session}: {:?}", plan.drop);
        let split = crate::fork::split_late(kept);
        assert_eq!(split.late, [late.clone()], "{session}");
        check_links(ZONE, &split.chain).unwrap_or_else(|b| panic!("{session}: {b}"));

        // The takeover's full is the anchor: the late link stays only where it sorts after
        // it, and is set apart.
        let (plan, kept) = run(&links, &hour, T0 + 130 * MIN);
        let kept_late = plan.keep.contains(&late.name);
        assert_eq!(kept_late, late.name > c.links[61].name, "{session}");
        let split = crate::fork::split_late(kept);
        assert_eq!(split.late.len(), usize::from(kept_late), "{session}");
        check_links(ZONE, &split.chain).unwrap_or_else(|b| panic!("{session}: {b}"));

        // A later full is the anchor: the late link is gone, with everything before it.
        c.full(c.last_revision(), T0 + 181 * MIN);
        c.delta(10, T0 + 182 * MIN, MIN);
        let mut later = c.links.clone();
        later.push(late.clone());
        later.sort_by(|a, b| (a.link.seq, &a.name).cmp(&(b.link.seq, &b.name)));
        let (plan, kept) = run(&later, &hour, T0 + 250 * MIN);
        assert!(!plan.keep.contains(&late.name), "{session}: kept for ever");
        assert!(plan.drop.iter().any(|d| d.manifest == late.name));
        check_links(ZONE, &kept).unwrap_or_else(|b| panic!("{session}: {b}"));
    }
}
