//! A zone is bootstrapped once (issue 21), on real etcd processes: twenty keys written, all
//! members stopped, node1 (with its data) left down, node2 and node3 back on new disks.
//! They never answer a read or accept a write; `snapshot save --from-data` on node1 and
//! `restore` on all three bring back the twenty keys, and nothing else.
//!
//! - `addresses::BOOTSTRAP_ONCE_KEPT`: the data directories are lost, `state/` survived
//!   (after a restart, so each node's state records its member): refused at once, in one
//!   line.
//! - `addresses::BOOTSTRAP_ONCE_AGAIN`: the whole node directories are put back from the
//!   owner's copy of `bootstrap`'s output: they wait for the zone's first start; once node1
//!   runs from its data, they are refused for good (exit 78), naming the way back.

use crate::common;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{one_error_line, run, wait_for, Running, TestZone};
use zone_testkit::addresses;

const KEYS: usize = 20;

/// Launches every member, writes the twenty keys and stops every member.
fn a_zone_with_twenty_keys(zone: &TestZone) {
    let mut running = zone.launch_all();
    zone.wait_healthy(&mut running);
    for i in 0..KEYS {
        let (ok, _, err) = zone.etcdctl(0, &zone.endpoints(), &["put", &format!("key{i}"), "v"]);
        assert!(ok, "{err}");
    }
    for member in running {
        member.stop();
    }
}

/// node2 and node3's endpoints, where nothing may answer.
fn empty_members(zone: &TestZone) -> String {
    format!("{},{}", zone.client_url(1), zone.client_url(2))
}

/// Over `window`, no read through node2 or node3 is answered and no write accepted.
fn never_serve(zone: &TestZone, window: Duration) {
    let deadline = Instant::now() + window;
    let mut tries = 0;
    while Instant::now() < deadline {
        let (ok, out, _) = zone.etcdctl(
            1,
            &empty_members(zone),
            &["get", "key3", "--command-timeout=1s", "--dial-timeout=1s"],
        );
        assert!(!ok, "an empty member answered a read: {out:?}");
        let (ok, _, _) = zone.etcdctl(
            1,
            &empty_members(zone),
            &[
                "put",
                "intruder",
                "x",
                "--command-timeout=1s",
                "--dial-timeout=1s",
            ],
        );
        assert!(!ok, "an empty member accepted a write");
        tries += 1;
    }
    assert!(tries >= 1, "the window was too short to ask");
}

/// Stops node1 if it runs, saves a snapshot from its data directory, restores it on every
/// member, launches them: exactly the twenty keys come back.
fn the_survivor_brings_the_zone_back(zone: &TestZone, node1: Option<Running>) {
    if let Some(node1) = node1 {
        node1.stop();
    }
    let rescue = zone.path("rescue.db");
    let node1_config = zone.config(0);
    let (ok, out, err) = run(&[
        "snapshot",
        "save",
        "--config",
        node1_config.to_str().unwrap(),
        "--from-data",
        "--out",
        rescue.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("from node1."), "{out}");
    for i in 0..3 {
        let (ok, _, err) = run(&[
            "restore",
            "--config",
            zone.config(i).to_str().unwrap(),
            "--from",
            rescue.to_str().unwrap(),
        ]);
        assert!(ok, "restore on member {i}: {err}");
    }
    let mut running = zone.launch_all();
    zone.wait_healthy(&mut running);
    let (ok, out, err) = zone.etcdctl(
        0,
        &zone.endpoints(),
        &["get", "", "--prefix", "--keys-only"],
    );
    assert!(ok, "{err}");
    // zone-etcd's own keys aside (each member's keeper records its release there).
    let mut keys: Vec<&str> = out
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with("zone-etcd/"))
        .collect();
    keys.sort();
    let mut expected: Vec<String> = (0..KEYS).map(|i| format!("key{i}")).collect();
    expected.sort();
    assert_eq!(
        keys, expected,
        "all twenty keys and nothing written meanwhile"
    );
    let (ok, _, err) = zone.etcdctl(0, &zone.endpoints(), &["put", "after", "the rescue"]);
    assert!(ok, "{err}");
}

/// `launch` of member `index`, which must end within 30 s: its exit code and output. A
/// launch still running then (it started etcd, or waits) fails the test.
fn launch_output(zone: &TestZone, index: usize) -> (Option<i32>, String) {
    let mut launch = zone.launch(index);
    let deadline = Instant::now() + Duration::from_secs(30);
    while launch.child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "launch of member {index} did not refuse:\n{}",
            launch.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = launch.child.wait().unwrap();
    (status.code(), launch.log())
}

#[test]
fn lost_data_directories_with_their_state_kept_are_refused_at_once() {
    let zone = TestZone::bootstrap("kept.zone", addresses::BOOTSTRAP_ONCE_KEPT.subnet(), 3);
    a_zone_with_twenty_keys(&zone);
    // The zone ran for a while: each member restarted once over its data.
    let mut running = zone.launch_all();
    zone.wait_healthy(&mut running);
    for member in running {
        member.stop();
    }
    for i in [1, 2] {
        let data = zone.node_dir(i).join("state/data");
        fs::remove_dir_all(&data).unwrap();
        assert!(zone.node_dir(i).join("state/member.json").exists());
    }
    // Both at once, as after a power cut: neither starts, each says why in one line.
    let started = Instant::now();
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| launch_output(&zone, 1));
        let b = s.spawn(|| launch_output(&zone, 2));
        (a.join().unwrap(), b.join().unwrap())
    });
    for (code, err) in [a, b] {
        assert_eq!(code, Some(1), "{err}");
        let line = one_error_line(&err);
        assert!(
            line.contains("holds no member")
                && line.contains("lost its data")
                && line.contains("member.json")
                && line.contains("snapshot save")
                && line.contains("--from-data"),
            "{line}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the refusal waited"
    );
    never_serve(&zone, Duration::from_secs(4));
    the_survivor_brings_the_zone_back(&zone, None);
}

#[test]
fn node_directories_put_back_from_the_bootstrap_output_wait_and_never_serve() {
    let zone = TestZone::bootstrap("again.zone", addresses::BOOTSTRAP_ONCE_AGAIN.subnet(), 3);
    let owner_copy = zone.path("owner-copy");
    fs::create_dir_all(&owner_copy).unwrap();
    for i in [1, 2] {
        copy_dir(&zone.node_dir(i), &owner_copy.join(i.to_string()));
    }
    a_zone_with_twenty_keys(&zone);
    for i in [1, 2] {
        fs::remove_dir_all(zone.node_dir(i)).unwrap();
        copy_dir(&owner_copy.join(i.to_string()), &zone.node_dir(i));
    }
    let mut empty: Vec<Running> = [1, 2].iter().map(|&i| zone.launch(i)).collect();
    never_serve(&zone, Duration::from_secs(6));
    for member in empty.iter_mut() {
        assert!(
            member.child.try_wait().unwrap().is_none(),
            "an empty member gave up waiting: {}",
            member.log()
        );
        let log = member.log();
        assert!(
            log.contains("waiting for the zone's first start") && log.contains("node1.again.zone"),
            "{log}"
        );
    }
    // node1 comes back with its data: the waiting members learn they lost theirs, and
    // stop for good (78: systemd does not restart them).
    let node1 = zone.launch(0);
    for member in empty.iter_mut() {
        wait_for(
            Duration::from_secs(30),
            "the empty member's refusal",
            || member.child.try_wait().unwrap().is_some(),
        );
        let status = member.child.wait().unwrap();
        let log = member.log();
        assert_eq!(status.code(), Some(78), "{log}");
        let line = one_error_line(&log);
        assert!(
            line.contains("lists")
                && line.contains("lost its data")
                && line.contains("join --replace")
                && line.contains("--from-data"),
            "{line}"
        );
    }
    never_serve(&zone, Duration::from_secs(4));
    the_survivor_brings_the_zone_back(&zone, Some(node1));
}

fn copy_dir(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "cp -a {} {}",
        from.display(),
        to.display()
    );
}
