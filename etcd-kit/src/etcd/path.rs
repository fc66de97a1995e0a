//! The steps etcd's guides allow a zone to take between releases, and the ones the
//! launcher refuses: an upgrade one minor version at a time, only once every member runs
//! the patch the step needs; a downgrade through etcd's downgrade API, one minor version
//! down from 3.6 on; and no etcd 3.7 over a log that still holds what etcd 3.5 wrote.
//!
//! Pure (no process, no file): each decision is a function of versions, unit-tested;
//! every refusal is a (problem, fix) pair for one line.

use super::release::Version;
use super::version::cluster_version_decided;

/// The upgrade etcd's guides require before a member of `from`'s series may run the next
/// minor: every member on at least this release first (3.5 -> 3.6 needs 3.5.32, for the
/// learner and zombie-member fixes; 3.6 -> 3.7 needs 3.6.11).
pub fn minimum_before_next_minor(from: (u32, u32)) -> Option<Version> {
    match from {
        (3, 5) => Some(Version::new(3, 5, 32)),
        (3, 6) => Some(Version::new(3, 6, 11)),
        _ => None,
    }
}

/// Why a member running `binary` must not start in a cluster at `cluster` (etcd's cluster
/// version: the lowest minor series of its members) whose other members run `members`
/// (name and release, of those that told), if it must not, with the fix. etcd would stop
/// such a member with a fatal error of its own, or, for a step from too old a patch, let
/// it run where its upgrade guide forbids; this says what to do instead.
pub fn upgrade_refusal(
    binary: Version,
    cluster: Version,
    members: &[(String, Version)],
) -> Option<(String, String)> {
    let (have, want) = (binary.series(), cluster.series());
    if !cluster_version_decided(cluster) {
        return None;
    }
    if have < want {
        return Some((
            format!(
                "this node's etcd is {binary}, older than the cluster's version {}.{} (etcd never runs a member older than its cluster; a zone goes back one minor version only through etcd's downgrade)",
                want.0, want.1
            ),
            format!(
                "point etcd_bin to etcd {}.{} or later, or remove it to use the bundled etcd",
                want.0, want.1
            ),
        ));
    }
    if have.0 != want.0 || have.1 > want.1 + 1 {
        return Some((
            format!(
                "this node's etcd is {binary}, more than one minor version ahead of the cluster's version {}.{} (etcd upgrades one minor version at a time)",
                want.0, want.1
            ),
            format!(
                "first upgrade every member to etcd {}.{}, one at a time (guide: Upgrade etcd), or point etcd_bin to it here",
                want.0,
                want.1 + 1
            ),
        ));
    }
    if have == want {
        return None;
    }
    // One minor version up: every member must be on the release the step needs first.
    let minimum = minimum_before_next_minor(want)?;
    let behind: Vec<String> = members
        .iter()
        .filter(|(_, version)| version.series() == want && *version < minimum)
        .map(|(name, version)| format!("{name} runs {version}"))
        .collect();
    if behind.is_empty() {
        return None;
    }
    Some((
        format!(
            "this node's etcd is {binary}, but etcd {}.{} needs every member on etcd {minimum} or later first (etcd's upgrade guide), and {}",
            have.0,
            have.1,
            behind.join(", ")
        ),
        format!(
            "first move every member to the newest etcd {}.{} (the bundle carries it), one at a time, then this one",
            want.0, want.1
        ),
    ))
}

/// The minor version (`3.6`) a cluster at `cluster` whose members run `members` (name and
/// release; `None` for one that did not tell) may be downgraded to when asked for `to`, or
/// why not, with the fix. etcd downgrades one minor version at a time, from 3.6 on, and
/// only a cluster whose every member runs its version (no move under way).
pub fn downgrade_target(
    cluster: Version,
    members: &[(String, Option<Version>)],
    to: Version,
) -> Result<String, (String, String)> {
    let (from, want) = (cluster.series(), to.series());
    if !cluster_version_decided(cluster) {
        return Err((
            "the cluster has not decided its version yet".into(),
            "wait until zone-etcd status shows a cluster version, then ask again".into(),
        ));
    }
    if from < (3, 6) {
        return Err((
            format!(
                "the cluster runs etcd {}.{}; etcd downgrades only from 3.6 on",
                from.0, from.1
            ),
            "restore a snapshot into the older etcd instead (guide: Restores, including the house burned down)".into(),
        ));
    }
    if want.0 != from.0 || want.1 + 1 != from.1 {
        return Err((
            format!(
                "--to {}.{} is not one minor version below the cluster's {}.{} (etcd downgrades one minor version at a time)",
                want.0, want.1, from.0, from.1
            ),
            format!("ask for --to {}.{} first", from.0, from.1 - 1),
        ));
    }
    let unready: Vec<String> = members
        .iter()
        .filter_map(|(name, version)| match version {
            None => Some(format!("{name} did not answer")),
            Some(v) if v.series() != from => Some(format!("{name} runs {v}")),
            Some(_) => None,
        })
        .collect();
    if !unready.is_empty() {
        return Err((
            format!(
                "every member must run etcd {}.{} and answer before a downgrade, and {}",
                from.0,
                from.1,
                unready.join(", ")
            ),
            "start or finish moving those members (zone-etcd status shows them), then ask again"
                .into(),
        ));
    }
    Ok(format!("{}.{}", want.0, want.1))
}

/// Why `binary` must not start over a log that still holds, after its last snapshot, the
/// v2 request at index `last_v2` (etcd 3.5 wrote it; see [`crate::wal::entries_before_3_6`]):
/// etcd 3.7 and later panic replaying one. `None` when it may start.
pub fn replay_refusal(binary: Version, last_v2: Option<u64>) -> Option<(String, String)> {
    let index = last_v2?;
    (binary.series() >= (3, 7)).then(|| {
        (
            format!(
                "this node's etcd is {binary}, and its log still holds, past its last snapshot, entries etcd 3.5 wrote (up to index {index}): etcd 3.7 cannot replay them (it stops with \"unmarshal should never fail\")"
            ),
            "run etcd 3.6 on this member until it has taken a snapshot past them (zone-etcd runs 3.6 over such a log with --snapshot-count=100: within about 100 entries, a minute or two on a quiet zone), then launch 3.7 again".to_string(),
        )
    })
}

/// The `--snapshot-count` etcd 3.6 runs with over a log that still holds, past its last
/// snapshot, entries etcd 3.5 wrote: low enough that a quiet zone takes the snapshot 3.7
/// needs within minutes (at 10,000 entries, etcd's default, a home zone's few entries a
/// second take hours or days; seen stuck at 3.6 on the way to 3.7).
pub const CATCH_UP_SNAPSHOT_COUNT: u64 = 100;

/// etcd 3.6's own `--snapshot-count` default.
pub const DEFAULT_SNAPSHOT_COUNT: u64 = 10_000;

/// The `--snapshot-count` a member running `binary` over a log whose last v2 request past
/// its last snapshot is `last_v2` starts with instead of the zone's `configured` one (etcd's
/// default when unset), so that etcd 3.7 may soon replay its log: `None` when the zone's
/// count stands (any release but 3.6, nothing 3.5 wrote left, or a count already as low).
/// Only until that snapshot: the start after it has nothing left to replay.
pub fn catch_up_snapshot_count(
    binary: Version,
    last_v2: Option<u64>,
    configured: Option<u64>,
) -> Option<u64> {
    let lower = binary.series() == (3, 6)
        && last_v2.is_some()
        && configured.is_none_or(|c| c > CATCH_UP_SNAPSHOT_COUNT);
    lower.then_some(CATCH_UP_SNAPSHOT_COUNT)
}

/// What a member of etcd 3.6 waits for before 3.7 may replay its log: a snapshot past
/// `last_v2`, which etcd takes once its applied index is more than `count` past the
/// snapshot at `snapshot`; `applied` is its applied index now. For `status` and the log.
pub fn snapshot_wait(last_v2: u64, snapshot: u64, count: u64, applied: Option<u64>) -> String {
    let at = snapshot + count + 1;
    let to_go = applied.map_or(String::new(), |a| {
        format!(", {} entries from now", at.saturating_sub(a))
    });
    format!(
        "etcd 3.6 has taken a snapshot past the entries etcd 3.5 wrote (up to index {last_v2}): it takes one at index {at} (every {count} entries{to_go})"
    )
}

/// What a zone whose cluster is at `cluster`, whose members run `members` (name and
/// release) and whose downgrade under way goes to `downgrade` (etcd's status says so)
/// does next on its way between releases, for `status`: `None` when nothing is under way
/// and nothing is owed before the next minor version.
pub fn next_step(
    cluster: Version,
    members: &[(String, Version)],
    downgrade: Option<Version>,
) -> Option<String> {
    if !cluster_version_decided(cluster) || members.is_empty() {
        return None;
    }
    let series = cluster.series();
    if let Some(to) = downgrade {
        let (to, names) = (to.series(), members.iter());
        let above: Vec<String> = names
            .filter(|(_, v)| v.series() > to)
            .map(|(n, _)| n.clone())
            .collect();
        return Some(if above.is_empty() {
            format!(
                "downgrade to etcd {}.{}: every member runs it; etcd ends the downgrade within seconds",
                to.0, to.1
            )
        } else {
            format!(
                "downgrade to etcd {}.{} under way: restart {} on etcd {}.{}, one at a time",
                to.0,
                to.1,
                above.join(", "),
                to.0,
                to.1
            )
        });
    }
    let on = |pick: &dyn Fn(&Version) -> bool| -> Vec<String> {
        members
            .iter()
            .filter(|(_, v)| pick(v))
            .map(|(n, _)| n.clone())
            .collect()
    };
    let newest = members.iter().map(|(_, v)| v.series()).max()?;
    let oldest = members.iter().map(|(_, v)| v.series()).min()?;
    if newest > series && oldest == series {
        let behind = on(&|v| v.series() == series);
        return Some(format!(
            "upgrade to etcd {}.{} under way: move {} to it, one at a time",
            newest.0,
            newest.1,
            behind.join(", ")
        ));
    }
    if newest > series && oldest > series {
        return Some(format!(
            "every member runs etcd {}.{} or later: etcd raises the cluster version within seconds",
            oldest.0, oldest.1
        ));
    }
    if oldest < series {
        return Some(format!(
            "members run etcd older than the cluster's version {}.{}: etcd refuses them; move them to {}.{}",
            series.0, series.1, series.0, series.1
        ));
    }
    // Every member on the cluster's series: a downgrade ends, or a patch is owed first.
    if series == (3, 4) {
        return Some(
            "etcd 3.4 is end-of-life: move every member to etcd 3.5 (the bundle carries 3.5.34), one at a time".into(),
        );
    }
    let minimum = minimum_before_next_minor(series)?;
    let short = on(&|v| *v < minimum);
    (!short.is_empty()).then(|| {
        format!(
            "before etcd {}.{}: move {} to etcd {minimum} or later, one at a time",
            series.0,
            series.1 + 1,
            short.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_3_6_over_what_3_5_wrote_snapshots_soon_and_only_then() {
        let v = |s: &str| Version::parse(s).unwrap();
        let low = Some(CATCH_UP_SNAPSHOT_COUNT);
        assert_eq!(catch_up_snapshot_count(v("3.6.15"), Some(40), None), low);
        assert_eq!(
            catch_up_snapshot_count(v("3.6.15"), Some(40), Some(10_000)),
            low
        );
        // The zone's own count stands when it is as low, and wherever nothing is owed.
        assert_eq!(
            catch_up_snapshot_count(v("3.6.15"), Some(40), Some(50)),
            None
        );
        assert_eq!(
            catch_up_snapshot_count(v("3.6.15"), Some(40), Some(100)),
            None
        );
        assert_eq!(catch_up_snapshot_count(v("3.6.15"), None, None), None);
        assert_eq!(catch_up_snapshot_count(v("3.5.34"), Some(40), None), None);
        assert_eq!(catch_up_snapshot_count(v("3.7.2"), Some(40), None), None);
        let wait = snapshot_wait(40, 10, 100, Some(71));
        assert!(
            wait.contains("index 111") && wait.contains("40 entries from now"),
            "{wait}"
        );
        assert!(!snapshot_wait(40, 10, 100, None).contains("from now"));
        assert!(snapshot_wait(40, 10, 100, Some(500)).contains(", 0 entries"));
    }

    #[test]
    fn status_names_the_next_step_on_the_path() {
        let v = |s: &str| Version::parse(s).unwrap();
        let zone = |list: &[&str]| -> Vec<(String, Version)> {
            list.iter()
                .enumerate()
                .map(|(i, s)| (format!("n{}", i + 1), v(s)))
                .collect()
        };
        let next = |cluster: &str, list: &[&str]| next_step(v(cluster), &zone(list), None);
        let step = next("3.5.0", &["3.5.30", "3.5.34", "3.5.30"]).unwrap();
        assert!(
            step.contains("before etcd 3.6") && step.contains("n1, n3") && step.contains("3.5.32"),
            "{step}"
        );
        assert_eq!(next("3.5.0", &["3.5.34", "3.5.34", "3.5.34"]), None);
        let step = next("3.5.0", &["3.6.15", "3.5.34", "3.5.34"]).unwrap();
        assert!(
            step.contains("upgrade to etcd 3.6 under way") && step.contains("n2, n3"),
            "{step}"
        );
        let step = next("3.6.0", &["3.7.2", "3.7.2", "3.7.2"]).unwrap();
        assert!(step.contains("raises the cluster version"), "{step}");
        // A downgrade looks like an upgrade but for etcd's word that one is under way.
        let down = next_step(
            v("3.6.0"),
            &zone(&["3.6.15", "3.7.2", "3.7.2"]),
            Some(v("3.6")),
        );
        let down = down.unwrap();
        assert!(
            down.contains("downgrade to etcd 3.6 under way") && down.contains("restart n2, n3"),
            "{down}"
        );
        let done = next_step(v("3.6.0"), &zone(&["3.6.15", "3.6.15"]), Some(v("3.6"))).unwrap();
        assert!(done.contains("ends the downgrade"), "{done}");
        let up = next("3.6.0", &["3.6.15", "3.7.2", "3.7.2"]).unwrap();
        assert!(
            up.contains("upgrade to etcd 3.7 under way") && up.contains("move n1"),
            "{up}"
        );
        assert!(next("3.4.0", &["3.4.45"]).unwrap().contains("end-of-life"));
        assert_eq!(next("3.7.0", &["3.7.2", "3.7.2", "3.7.2"]), None);
        assert_eq!(next("3.0.0", &["3.6.15"]), None);
        assert_eq!(next("3.6.0", &[]), None);
    }

    #[test]
    fn downgrades_go_one_minor_version_down_from_a_settled_cluster() {
        let v = |s: &str| Version::parse(s).unwrap();
        let all = |s: &str| -> Vec<(String, Option<Version>)> {
            ["n1", "n2", "n3"]
                .iter()
                .map(|n| (n.to_string(), Some(v(s))))
                .collect()
        };
        assert_eq!(
            downgrade_target(v("3.7.0"), &all("3.7.2"), v("3.6")).unwrap(),
            "3.6"
        );
        assert_eq!(
            downgrade_target(v("3.6.0"), &all("3.6.15"), v("3.5")).unwrap(),
            "3.5"
        );
        let (skip, fix) = downgrade_target(v("3.7.0"), &all("3.7.2"), v("3.5")).unwrap_err();
        assert!(skip.contains("one minor version at a time"), "{skip}");
        assert!(fix.contains("--to 3.6"), "{fix}");
        assert!(downgrade_target(v("3.7.0"), &all("3.7.2"), v("3.7")).is_err());
        assert!(downgrade_target(v("3.7.0"), &all("3.7.2"), v("3.8")).is_err());
        let (old, _) = downgrade_target(v("3.5.0"), &all("3.5.34"), v("3.4")).unwrap_err();
        assert!(old.contains("only from 3.6"), "{old}");
        let mut moving = all("3.7.2");
        moving[1].1 = Some(v("3.6.15"));
        moving[2].1 = None;
        let (problem, _) = downgrade_target(v("3.6.0"), &moving, v("3.5")).unwrap_err();
        assert!(
            problem.contains("n1 runs 3.7.2") && problem.contains("n3 did not answer"),
            "{problem}"
        );
        assert!(downgrade_target(v("3.0.0"), &all("3.6.15"), v("3.5")).is_err());
    }

    #[test]
    fn etcd_3_7_never_replays_what_3_5_wrote() {
        let v = |s: &str| Version::parse(s).unwrap();
        let (problem, fix) = replay_refusal(v("3.7.2"), Some(1234)).unwrap();
        assert!(
            problem.contains("3.7.2") && problem.contains("1234"),
            "{problem}"
        );
        assert!(fix.contains("snapshot-count=100"), "{fix}");
        assert_eq!(replay_refusal(v("3.7.2"), None), None);
        assert_eq!(replay_refusal(v("3.6.15"), Some(1234)), None);
        assert_eq!(replay_refusal(v("3.5.34"), Some(1234)), None);
        assert!(replay_refusal(v("3.8.0"), Some(1)).is_some());
    }

    #[test]
    fn a_minor_step_waits_for_every_member_on_the_release_it_needs() {
        let v = |s: &str| Version::parse(s).unwrap();
        let members = |list: &[(&str, &str)]| -> Vec<(String, Version)> {
            list.iter().map(|(n, s)| (n.to_string(), v(s))).collect()
        };
        // 3.5 -> 3.6: every member on 3.5.32 first.
        let (problem, fix) = upgrade_refusal(
            v("3.6.15"),
            v("3.5.0"),
            &members(&[("node2", "3.5.34"), ("node3", "3.5.30")]),
        )
        .unwrap();
        assert!(
            problem.contains("3.5.32") && problem.contains("node3 runs 3.5.30"),
            "{problem}"
        );
        assert!(!problem.contains("node2"), "{problem}");
        assert!(fix.contains("newest etcd 3.5"), "{fix}");
        let ready = members(&[("node2", "3.5.34"), ("node3", "3.5.32")]);
        assert_eq!(upgrade_refusal(v("3.6.15"), v("3.5.0"), &ready), None);
        // A member already moved to 3.6 is no obstacle.
        let moving = members(&[("node2", "3.6.15"), ("node3", "3.5.34")]);
        assert_eq!(upgrade_refusal(v("3.6.15"), v("3.5.0"), &moving), None);
        // 3.6 -> 3.7: every member on 3.6.11 first.
        let (problem, _) =
            upgrade_refusal(v("3.7.2"), v("3.6.0"), &members(&[("node2", "3.6.10")])).unwrap();
        assert!(
            problem.contains("3.6.11") && problem.contains("node2 runs 3.6.10"),
            "{problem}"
        );
        assert_eq!(
            upgrade_refusal(v("3.7.2"), v("3.6.0"), &members(&[("node2", "3.6.11")])),
            None
        );
        // Patches within a series are free; 3.4 -> 3.5 has no minimum.
        assert_eq!(
            upgrade_refusal(v("3.5.34"), v("3.5.0"), &members(&[("n", "3.5.1")])),
            None
        );
        assert_eq!(
            upgrade_refusal(v("3.5.34"), v("3.4.0"), &members(&[("n", "3.4.1")])),
            None
        );
    }

    #[test]
    fn upgrades_go_one_minor_version_at_a_time_and_never_back() {
        let v = |s: &str| Version::parse(s).unwrap();
        let upgrade_refusal = |binary, cluster| super::upgrade_refusal(binary, cluster, &[]);
        // Rolling 3.4 -> 3.5: the cluster stays at 3.4 until every member runs 3.5.
        assert_eq!(upgrade_refusal(v("3.4.23"), v("3.4.0")), None);
        assert_eq!(upgrade_refusal(v("3.5.30"), v("3.4.0")), None);
        assert_eq!(upgrade_refusal(v("3.5.16"), v("3.5.0")), None);
        assert_eq!(upgrade_refusal(v("3.6.4"), v("3.5.0")), None);
        let (older, fix) = upgrade_refusal(v("3.4.23"), v("3.5.0")).unwrap();
        assert!(
            older.contains("older than the cluster's version 3.5"),
            "{older}"
        );
        assert!(fix.contains("etcd 3.5 or later"), "{fix}");
        let (skip, fix) = upgrade_refusal(v("3.6.4"), v("3.4.0")).unwrap();
        assert!(skip.contains("one minor version at a time"), "{skip}");
        assert!(fix.contains("every member to etcd 3.5"), "{fix}");
        assert!(upgrade_refusal(v("4.0.0"), v("3.6.0")).is_some());
        // 3.0 is etcd's cluster version until every member has been seen: no refusal.
        assert_eq!(upgrade_refusal(v("3.5.30"), v("3.0.0")), None);
        assert_eq!(upgrade_refusal(v("3.6.4"), v("3.0.0")), None);
    }
}
