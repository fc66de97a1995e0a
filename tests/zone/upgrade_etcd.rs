//! The owner's one action that moves a zone between etcd releases (`zone-etcd upgrade-etcd
//! --to`): three members (`addresses::UPGRADE_ETCD`, .1-3) under a supervisor that starts `launch`
//! again whenever it exits (as systemd's unit does), a writer all along; 3.5.30 up to 3.7.2 by
//! the members' keepers alone, every step one etcd allows and one member at a time, on a
//! quiet zone (a write a second, etcd's own snapshot count: the launcher runs 3.6 with a
//! low one until it has snapshotted past what 3.5 wrote, which 3.7 cannot replay), then
//! back down to 3.6 through etcd's downgrade by the same command, then `--cancel`.

use crate::common;

use std::collections::BTreeMap;
use std::fs;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{run, zone_etcd, TestZone};
use zone_testkit::addresses;

/// `zone-etcd launch` kept running: started again 1 s after each exit, until dropped
/// (then the running one is stopped by its PID and waited for).
struct Supervised {
    stop: Arc<AtomicBool>,
    child: Arc<Mutex<Option<Child>>>,
    starts: Arc<Mutex<Vec<Option<i32>>>>,
    thread: Option<JoinHandle<()>>,
    log: PathBuf,
}

impl Supervised {
    fn start(config: &Path, log: &Path) -> Supervised {
        let stop = Arc::new(AtomicBool::new(false));
        let child: Arc<Mutex<Option<Child>>> = Arc::new(Mutex::new(None));
        let starts = Arc::new(Mutex::new(Vec::new()));
        let spawn = {
            let (config, log) = (config.to_path_buf(), log.to_path_buf());
            move || -> Child {
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .expect("the member's log opens");
                zone_etcd()
                    .args(["launch", "--config", config.to_str().unwrap()])
                    .stdin(Stdio::null())
                    .stdout(file.try_clone().unwrap())
                    .stderr(file)
                    .spawn()
                    .expect("zone-etcd launch starts")
            }
        };
        *child.lock().unwrap() = Some(spawn());
        let thread = {
            let (stop, child, starts) = (stop.clone(), child.clone(), starts.clone());
            std::thread::spawn(move || loop {
                std::thread::sleep(Duration::from_millis(100));
                let mut slot = child.lock().unwrap();
                let exited = match slot.as_mut().map(Child::try_wait) {
                    Some(Ok(Some(status))) => Some(status.code()),
                    _ => None,
                };
                if let Some(code) = exited {
                    starts.lock().unwrap().push(code);
                    *slot = None;
                }
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                if slot.is_none() {
                    drop(slot);
                    std::thread::sleep(Duration::from_secs(1));
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    *child.lock().unwrap() = Some(spawn());
                }
            })
        };
        Supervised {
            stop,
            child,
            starts,
            thread: Some(thread),
            log: log.to_path_buf(),
        }
    }

    /// Stops the running `launch` (its etcd, by the PID started) with SIGTERM, as the
    /// keeper does: it is started again.
    fn restart(&self) {
        if let Some(child) = self.child.lock().unwrap().as_ref() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
    }

    /// The exit codes of the runs that ended (`None`: killed by a signal).
    fn exits(&self) -> Vec<Option<i32>> {
        self.starts.lock().unwrap().clone()
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if let Some(mut child) = self.child.lock().unwrap().take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Each member's name: its release and whether it answers its status.
type Members = BTreeMap<String, (String, bool)>;

/// Each member's release and whether it answers its status, as `status` tells them now
/// (a quorum read may fail on every member for the moment of an election; a stopped
/// member does not answer at all).
fn releases(zone: &TestZone) -> Option<(Members, serde_json::Value)> {
    let (_, json, _) = (0..3)
        .map(|i| zone.status(i))
        .find(|(_, j, _)| j.is_object())?;
    let members = json["members"].as_array()?;
    let map = members
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap_or("?").to_string(),
                (
                    m["version"].as_str().unwrap_or("").to_string(),
                    !m["raft_index"].is_null(),
                ),
            )
        })
        .collect();
    Some((map, json))
}

/// Watches the zone until every member runs `want` and the cluster's version is
/// `cluster`, checking at each look that at most one member is down or moving and that
/// each member's releases follow `path` in order. Panics with the logs after `limit`.
fn follow(
    zone: &TestZone,
    members: &[Supervised],
    (want, cluster): (&str, &str),
    path: &[&str],
    seen: &mut BTreeMap<String, Vec<String>>,
    waits: &mut Vec<String>,
    limit: Duration,
) {
    let started = Instant::now();
    let deadline = started + limit;
    loop {
        if let Some((now, json)) = releases(zone) {
            // A wait, when one is seen, says for what and how far off.
            for w in json["etcd_waiting"].as_array().into_iter().flatten() {
                let says = w["waits_for"].as_str().unwrap_or_default();
                assert!(
                    says.contains("has taken a snapshot past") && says.contains("entries from now"),
                    "{w}"
                );
                waits.push(says.to_string());
            }
            let down: Vec<&String> = now
                .iter()
                .filter(|(_, (_, ok))| !ok)
                .map(|(n, _)| n)
                .collect();
            assert!(
                down.len() <= 1,
                "two members stopped at once: {down:?}\n{json}"
            );
            for (name, (version, _)) in &now {
                if version.is_empty() {
                    continue;
                }
                let steps = seen.entry(name.clone()).or_default();
                if steps.last() != Some(version) {
                    steps.push(version.clone());
                }
                let at: Vec<usize> = steps
                    .iter()
                    .map(|v| {
                        path.iter()
                            .position(|p| p == v)
                            .unwrap_or_else(|| panic!("{name} ran {v}, off the path {path:?}"))
                    })
                    .collect();
                assert!(
                    at.windows(2).all(|w| w[0] + 1 == w[1]),
                    "{name} took {steps:?}, not one step at a time along {path:?}"
                );
            }
            if now.values().all(|(v, ok)| v == want && *ok)
                && json["cluster_version"] == cluster
                && json["healthy_voters"] == 3
            {
                return;
            }
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = members.iter().map(Supervised::log).collect();
            panic!(
                "the zone did not reach etcd {want} (cluster {cluster}) within {limit:?}: seen {seen:?}, status {:?}\n{}",
                releases(zone).map(|(_, j)| j),
                logs.join("\n----\n")
            );
        }
        // Every release a member runs lasts seconds (its turn, the others' turns after
        // it): a look a second is enough to see each, and a `status` costs the machine
        // about 0.2 CPU-second.
        std::thread::sleep(common::next_look(started.elapsed()));
    }
}

#[test]
fn one_owner_action_moves_the_zone_up_to_3_7_and_back_to_3_6_under_writes() {
    let zone = TestZone::bootstrap("rollout.zone", addresses::UPGRADE_ETCD.subnet(), 3);
    let v3530 = common::etcd_release(Some("3.5.30"));
    // etcd's own snapshot count (10,000 entries): on a quiet zone, 3.6 would take the
    // snapshot past what 3.5 wrote, which 3.7 needs, hours later; the launcher lowers it
    // on 3.6 until then.
    for i in 0..3 {
        zone.set_etcd_bin(i, &v3530);
    }
    let members: Vec<Supervised> = (0..3)
        .map(|i| Supervised::start(&zone.config(i), &zone.path(&format!("member{i}.log"))))
        .collect();
    common::wait_for(
        Duration::from_secs(90),
        "the zone healthy on 3.5.30",
        || {
            releases(&zone).is_some_and(|(m, j)| {
                m.values().all(|(v, ok)| v == "3.5.30" && *ok) && j["cluster_version"] == "3.5.0"
            })
        },
    );
    // A quiet home zone: a write a second.
    let load = zone.failover_load(&[], "rollout", Duration::from_secs(1));

    // node1 gets the package whose bundle is 3.6.15 (no etcd_bin) and restarts: the
    // cluster does not admit 3.6 before every member runs 3.5.32, so it comes back on the
    // newest 3.5 this machine has, the step on the way.
    let node1 = zone.config(0);
    let text = fs::read_to_string(&node1).unwrap();
    let rest: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("etcd_bin"))
        .collect();
    fs::write(&node1, rest.join("\n") + "\n").unwrap();
    members[0].restart();
    common::wait_for(Duration::from_secs(60), "node1 back on 3.5.34", || {
        releases(&zone).is_some_and(|(m, _)| {
            m.get("node1.rollout.zone")
                .is_some_and(|(v, ok)| v == "3.5.34" && *ok)
        })
    });
    assert!(
        members[0]
            .log()
            .contains("the bundled etcd 3.6.15 cannot join this cluster yet"),
        "{}",
        members[0].log()
    );
    let config = zone.config(0);
    let config = config.to_str().unwrap();

    // Refused in one line, exit 78, nothing recorded: a release the launcher does not run.
    let out = zone_etcd()
        .args(["upgrade-etcd", "--config", config, "--to", "3.9.1"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(common::one_error_line(&err).contains("--to"), "{err}");
    assert!(zone.status(0).1["etcd_target"].is_null());

    // The one action: up to 3.7.2. Each member's release is taken before it, as the first
    // step of its path: a member may move before the first look after the command.
    let mut seen: BTreeMap<String, Vec<String>> = releases(&zone)
        .expect("the zone answers before the upgrade")
        .0
        .into_iter()
        .map(|(name, (version, _))| (name, vec![version]))
        .collect();
    assert_eq!(seen.len(), 3, "{seen:?}");
    let (ok, out, err) = run(&["upgrade-etcd", "--config", config, "--to", "3.7.2"]);
    assert!(ok, "{err}");
    assert!(out.contains("now 3.7.2"), "{out}");
    assert_eq!(zone.status(0).1["etcd_target"], "3.7.2");
    let up = ["3.5.30", "3.5.34", "3.6.15", "3.7.2"];
    let mut waits = Vec::new();
    let started = Instant::now();
    follow(
        &zone,
        &members,
        ("3.7.2", "3.7.0"),
        &up,
        &mut seen,
        &mut waits,
        Duration::from_secs(420),
    );
    eprintln!(
        "up to 3.7.2 (8 moves) took {:?}; status showed {} waits, the last {:?}",
        started.elapsed(),
        waits.len(),
        waits.last()
    );

    for (name, steps) in &seen {
        // node1 was on 3.5.34 already, by its restart on the package.
        let from = usize::from(name == "node1.rollout.zone");
        assert_eq!(steps, &up[from..], "{name}");
    }
    for member in &members[1..] {
        let log = member.log();
        assert!(
            log.contains("moving this member from etcd 3.5.30 to etcd 3.5.34"),
            "{log}"
        );
    }
    for member in &members {
        let log = member.log();
        // Every stop was the keeper's SIGTERM, every start went on: never a refusal.
        assert!(!member.exits().contains(&Some(78)), "{log}");
        // 3.6 started over what 3.5 wrote with the low count, and 3.7 after it with the
        // zone's.
        assert!(
            log.contains("etcd 3.6.15 runs with --snapshot-count=100 (the zone's: etcd's default)"),
            "{log}"
        );
    }

    // More than one minor version down: refused, the target kept.
    let out = zone_etcd()
        .args(["upgrade-etcd", "--config", config, "--to", "3.5.34"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(
        common::one_error_line(&err).contains("one minor version"),
        "{err}"
    );
    assert_eq!(zone.status(0).1["etcd_target"], "3.7.2");

    // The same action, one minor version down: etcd's downgrade, then each member (each
    // member's release taken before it, as above).
    let mut down: BTreeMap<String, Vec<String>> = releases(&zone)
        .expect("the zone answers before the downgrade")
        .0
        .into_iter()
        .map(|(name, (version, _))| (name, vec![version]))
        .collect();
    let (ok, out, err) = run(&["upgrade-etcd", "--config", config, "--to", "3.6.15"]);
    assert!(ok, "{err}");
    assert!(out.contains("downgrade to 3.6 enabled"), "{out}");
    let started = Instant::now();
    follow(
        &zone,
        &members,
        ("3.6.15", "3.6.0"),
        &["3.7.2", "3.6.15"],
        &mut down,
        &mut Vec::new(),
        Duration::from_secs(240),
    );
    eprintln!("3.7.2 -> 3.6.15 (3 moves) took {:?}", started.elapsed());

    // --cancel: no target; nobody moves.
    let (ok, _, err) = run(&["upgrade-etcd", "--config", config, "--cancel"]);
    assert!(ok, "{err}");
    assert!(zone.status(0).1["etcd_target"].is_null());

    let result = load.stop();
    result.few_failed_and_enough_acknowledged(100);
    result.kept_on_every_member(&zone, "rollout");
}
