//! The release one member moves to next on the zone's way to the release its owner chose
//! (`zone-etcd upgrade-etcd --to`), out of the releases this machine has.
//!
//! Pure (no process, no file): a function of versions, unit-tested. It takes only the
//! steps [`super::path`] admits: the next patch of its own minor version while it runs one
//! older than the next minor needs; the next minor once every member runs that patch and
//! the cluster's version is its own; one minor down only once etcd's downgrade has
//! lowered the cluster's version. Whether the others are healthy and whose turn it is are
//! the keeper's to check (the app's `rollout`).

use super::path::minimum_before_next_minor;
use super::Version;

/// What one member does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// It runs the target: nothing to do.
    Arrived,
    /// Restart it on this release.
    Move(Version),
    /// Not now, and why (the others first, etcd's downgrade not enabled, a release this
    /// machine does not have).
    Wait(String),
}

/// The next step of a member running `running`, on the way to `target`, in a cluster at
/// `cluster` (etcd's cluster version; `None` while undecided) whose other members run
/// `others` (name and release; `None` for one that did not answer), with the releases
/// `shelf` on this machine.
pub fn step_toward(
    target: Version,
    running: Version,
    cluster: Option<Version>,
    others: &[(String, Option<Version>)],
    shelf: &[Version],
) -> Step {
    if running == target {
        return Step::Arrived;
    }
    let Some(cluster) = cluster else {
        return Step::Wait("the cluster has not decided its version yet".into());
    };
    let have = |want: Version| -> Step {
        if shelf.contains(&want) {
            Step::Move(want)
        } else {
            Step::Wait(format!(
                "etcd {want} is not on this machine (install the zone-etcd package that carries it, or put it in etcd-{want}/etcd beside the bundled etcd)"
            ))
        }
    };
    // The newest release of `series` on this machine, at least `floor`; the wanted release
    // is named when there is none.
    let newest = |series: (u32, u32), floor: Version| -> Step {
        shelf
            .iter()
            .filter(|v| v.series() == series && **v >= floor)
            .max()
            .map_or_else(|| have(floor), |v| Step::Move(*v))
    };
    let (from, to) = (running.series(), target.series());
    if from == to {
        return have(target);
    }
    if to < from {
        if to.0 != from.0 || to.1 + 1 != from.1 {
            return Step::Wait(format!(
                "etcd {target} is more than one minor version below this member's {running}: etcd downgrades one minor version at a time"
            ));
        }
        if cluster.series() != to {
            return Step::Wait(format!(
                "etcd's downgrade to {}.{} is not enabled (the cluster's version is {}.{}): run zone-etcd upgrade-etcd --to {target} again",
                to.0,
                to.1,
                cluster.major,
                cluster.minor
            ));
        }
        return have(target);
    }
    // Up: first the patch the next minor version needs, on this member itself.
    let floor = minimum_before_next_minor(from);
    if let Some(floor) = floor.filter(|floor| running < *floor) {
        return newest(from, floor);
    }
    let short: Vec<String> = others
        .iter()
        .filter_map(|(name, release)| match release {
            None => Some(format!("{name} did not answer")),
            Some(v) if v.series() < from => Some(format!("{name} runs {v}")),
            Some(v) if floor.is_some_and(|floor| v.series() == from && *v < floor) => {
                Some(format!("{name} runs {v}"))
            }
            Some(_) => None,
        })
        .collect();
    if !short.is_empty() {
        let need = floor.map_or(format!("{}.{}", from.0, from.1), |f| f.to_string());
        return Step::Wait(format!(
            "every member must run etcd {need} or later first, and {}",
            short.join(", ")
        ));
    }
    if cluster.series() != from {
        return Step::Wait(format!(
            "the cluster's version is {}.{}, not yet {}.{} (etcd raises it within seconds)",
            cluster.major, cluster.minor, from.0, from.1
        ));
    }
    let next = (from.0, from.1 + 1);
    if next == to {
        return have(target);
    }
    newest(next, Version::new(next.0, next.1, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    fn others(list: &[&str]) -> Vec<(String, Option<Version>)> {
        list.iter()
            .enumerate()
            .map(|(i, s)| (format!("n{}", i + 2), Version::parse(s)))
            .collect()
    }

    const SHELF: [&str; 7] = [
        "3.4.45", "3.5.30", "3.5.33", "3.5.34", "3.6.15", "3.7.1", "3.7.2",
    ];

    fn step(target: &str, running: &str, cluster: &str, rest: &[&str]) -> Step {
        let shelf: Vec<Version> = SHELF.iter().map(|s| v(s)).collect();
        step_toward(
            v(target),
            v(running),
            Version::parse(cluster),
            &others(rest),
            &shelf,
        )
    }

    #[test]
    fn the_path_up_takes_the_patch_then_each_minor_in_turn() {
        // 3.5.30 -> 3.7.2: first the newest 3.5 this machine has.
        assert_eq!(
            step("3.7.2", "3.5.30", "3.5.0", &["3.5.30", "3.5.30"]),
            Step::Move(v("3.5.34"))
        );
        // On 3.5.34 while the others still run 3.5.30: wait for them.
        let Step::Wait(why) = step("3.7.2", "3.5.34", "3.5.0", &["3.5.30", "3.5.34"]) else {
            panic!("moved past 3.5 with n2 on 3.5.30");
        };
        assert!(
            why.contains("3.5.32") && why.contains("n2 runs 3.5.30"),
            "{why}"
        );
        // Everyone on 3.5.32 or later: the newest 3.6.
        assert_eq!(
            step("3.7.2", "3.5.34", "3.5.0", &["3.5.34", "3.5.33"]),
            Step::Move(v("3.6.15"))
        );
        // A member that did not answer holds the step to the next minor.
        let Step::Wait(why) = step("3.7.2", "3.5.34", "3.5.0", &["", "3.5.34"]) else {
            panic!("moved with a member silent");
        };
        assert!(why.contains("n2 did not answer"), "{why}");
        // 3.6 while the cluster is still at 3.5: the first to 3.7 waits for it to rise.
        let Step::Wait(why) = step("3.7.2", "3.6.15", "3.5.0", &["3.6.15", "3.6.15"]) else {
            panic!("3.7 before the cluster's version rose");
        };
        assert!(why.contains("not yet 3.6"), "{why}");
        // Then the target itself, not merely the newest 3.7.
        assert_eq!(
            step("3.7.1", "3.6.15", "3.6.0", &["3.6.15", "3.7.1"]),
            Step::Move(v("3.7.1"))
        );
        assert_eq!(
            step("3.7.2", "3.7.2", "3.7.0", &["3.7.2", "3.7.2"]),
            Step::Arrived
        );
        // A member already ahead (3.6) does not hold one still on 3.5 back.
        assert_eq!(
            step("3.7.2", "3.5.34", "3.5.0", &["3.6.15", "3.5.34"]),
            Step::Move(v("3.6.15"))
        );
        // 3.4 moves to 3.5 with no patch owed.
        assert_eq!(
            step("3.5.34", "3.4.45", "3.4.0", &["3.4.45", "3.5.34"]),
            Step::Move(v("3.5.34"))
        );
    }

    #[test]
    fn a_release_this_machine_lacks_is_a_wait_that_names_it() {
        let Step::Wait(why) = step("3.6.14", "3.6.15", "3.6.0", &["3.6.15", "3.6.15"]) else {
            panic!("moved to a release the shelf lacks");
        };
        assert!(why.contains("3.6.14 is not on this machine"), "{why}");
        // No 3.6.11 or later of 3.6 on the way to 3.7: the floor is named.
        let shelf = [v("3.6.5"), v("3.7.2")];
        let Step::Wait(why) = step_toward(v("3.7.2"), v("3.6.5"), Some(v("3.6.0")), &[], &shelf)
        else {
            panic!("moved to 3.7 from 3.6.5");
        };
        assert!(why.contains("3.6.11"), "{why}");
    }

    #[test]
    fn the_way_down_waits_for_etcds_downgrade_and_takes_one_minor() {
        // Not enabled: the cluster's version is still 3.7.
        let Step::Wait(why) = step("3.6.15", "3.7.2", "3.7.0", &["3.7.2", "3.7.2"]) else {
            panic!("moved down before etcd's downgrade");
        };
        assert!(
            why.contains("not enabled") && why.contains("upgrade-etcd --to 3.6.15"),
            "{why}"
        );
        // Enabled: the cluster's version dropped to 3.6 at once.
        assert_eq!(
            step("3.6.15", "3.7.2", "3.6.0", &["3.7.2", "3.6.15"]),
            Step::Move(v("3.6.15"))
        );
        // Two minors down at once: never.
        let Step::Wait(why) = step("3.5.34", "3.7.2", "3.5.0", &[]) else {
            panic!("two minors down");
        };
        assert!(why.contains("one minor version at a time"), "{why}");
        // Undecided cluster: wait.
        assert!(matches!(step("3.6.15", "3.7.2", "", &[]), Step::Wait(_)));
    }
}
