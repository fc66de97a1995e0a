//! etcd releases under a zone: a rolling upgrade from Debian bookworm's etcd 3.4.23 to
//! Debian's 3.5.30 (the bundle before 3.6) under writes (`addresses::VERSIONS_UPGRADE`, .1-3), the
//! refusal of an etcd older than the cluster's version, the path etcd allows from 3.5.30 to 3.7.2
//! under writes with every forbidden step refused (`addresses::VERSIONS_PATH`, .1-3), the way back
//! from 3.7.2 to 3.5.34 through etcd's downgrade under writes (`addresses::VERSIONS_DOWN`, .1-3),
//! `status` on a zone with a member that never started (`addresses::VERSIONS_LAZY`, .1-3),
//! and binaries that are not an etcd the launcher runs (`addresses::VERSIONS_ODD` .1, nothing
//! listens).

use crate::common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use common::{run, snapshot, wait_for, Kind, TestZone};
use zone_testkit::addresses;

/// `status` exits 0: every member healthy and a quorum.
fn healthy(zone: &TestZone, index: usize) -> bool {
    zone.status(index).0
}

#[test]
fn rolling_upgrade_from_3_4_to_3_5_under_writes() {
    let zone = TestZone::bootstrap_of(
        Kind::Previous("it starts on etcd 3.4, which launch refuses under least privilege"),
        "upgrade.zone",
        addresses::VERSIONS_UPGRADE.subnet(),
        3,
    );
    let (old, new) = (
        common::etcd_release(Some("3.4.23")),
        common::etcd_release(Some("3.5.30")),
    );
    for i in 0..3 {
        zone.set_etcd_bin(i, &old);
    }
    let mut running = zone.launch_all();
    zone.wait_healthy(&mut running);
    let (_, json, _) = zone.status(0);
    assert_eq!(json["cluster_version"], "3.4.0", "{json}");
    // 3.4 straight to the bundle (3.6) skips a minor version: refused, nothing changed.
    let back = refused_step(
        &zone,
        &mut running,
        0,
        &common::etcd_release(None),
        &old,
        &["3.6.15", "more than one minor version ahead", "3.4"],
    );
    running.insert(0, back);
    wait_for(Duration::from_secs(60), "node1 back", || healthy(&zone, 0));

    // A client that knows every endpoint writes all along.
    let load = zone.failover_load(&[], "upgrade", Duration::from_millis(40));

    // One member at a time: stop, point etcd_bin at the new etcd, launch, wait for health.
    for i in 0..3 {
        let before = load.acknowledged();
        wait_for(
            Duration::from_secs(20),
            "writes before the next step",
            || load.acknowledged() > before + 10,
        );
        let member = running.remove(i);
        member.stop();
        zone.set_etcd_bin(i, &new);
        running.insert(i, zone.launch(i));
        wait_for(
            Duration::from_secs(60),
            "the upgraded member healthy",
            || healthy(&zone, i),
        );
        let (_, json, _) = zone.status(i);
        assert_eq!(json["members"].as_array().unwrap().len(), 3, "{json}");
    }
    // Once every member runs 3.5, the leader moves the cluster version to 3.5.
    wait_for(Duration::from_secs(30), "cluster version 3.5", || {
        zone.status(0).1["cluster_version"] == "3.5.0"
    });
    let (ok, json, err) = zone.status(0);
    assert!(ok, "{err}");
    for member in json["members"].as_array().unwrap() {
        assert_eq!(member["version"], "3.5.30", "{json}");
    }
    let result = load.stop();
    assert!(
        result.failures.is_empty(),
        "writes no endpoint took: {:?}",
        &result.failures[..result.failures.len().min(5)]
    );
    assert!(
        result.acknowledged.len() > 30,
        "{}",
        result.acknowledged.len()
    );
    // Every acknowledged write is there, read through each member.
    result.kept_on_every_member(&zone, "upgrade");

    // The way back is closed: etcd 3.4 on a member of a 3.5 cluster is refused by the
    // launcher in one line, with the fix, and the member's data is left as it was.
    let member = running.remove(2);
    member.stop();
    zone.set_etcd_bin(2, &old);
    let data = zone.node_dir(2).join("state/data");
    let before = snapshot(&data);
    let (ok, _, err) = run(&["launch", "--config", zone.config(2).to_str().unwrap()]);
    assert!(!ok, "an etcd older than the cluster started");
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].contains("3.4.23") && lines[0].contains("older than the cluster's version 3.5"),
        "{err}"
    );
    assert!(lines[0].contains("etcd_bin"), "{err}");
    assert_eq!(snapshot(&data), before, "the data directory changed");
    // With the new etcd back in place it rejoins.
    zone.set_etcd_bin(2, &new);
    running.insert(2, zone.launch(2));
    wait_for(Duration::from_secs(60), "node3 back", || healthy(&zone, 2));
}

/// Relaunches member `i` on `etcd`: stop, point etcd_bin at it, launch, wait for health.
fn step_member(zone: &TestZone, running: &mut Vec<common::Running>, i: usize, etcd: &Path) {
    let member = running.remove(i);
    member.stop();
    zone.set_etcd_bin(i, etcd);
    running.insert(i, zone.launch(i));
    let started = std::time::Instant::now();
    while !healthy(zone, i) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "member {i} on {} not healthy within 60 s: status {}\nits log:\n{}",
            etcd.display(),
            zone.status(i).1,
            running[i].log()
        );
        std::thread::sleep(common::next_look(started.elapsed()));
    }
}

/// A relaunch of member `i` on `etcd` that the launcher must refuse before etcd starts:
/// exit 78, one error line containing each of `said`, the member's data as it was. The
/// member is left stopped, pointed back at `back`.
fn refused_step(
    zone: &TestZone,
    running: &mut Vec<common::Running>,
    i: usize,
    etcd: &Path,
    back: &Path,
    said: &[&str],
) -> common::Running {
    refused_step_over(zone, running, i, (etcd, back), said, None)
}

/// [`refused_step`], the launch tried over `data_then` (a copy of the member's data as it
/// was earlier) put in place of its data, which comes back after.
fn refused_step_over(
    zone: &TestZone,
    running: &mut Vec<common::Running>,
    i: usize,
    (etcd, back): (&Path, &Path),
    said: &[&str],
    data_then: Option<&Path>,
) -> common::Running {
    let member = running.remove(i);
    member.stop();
    zone.set_etcd_bin(i, etcd);
    let data = zone.node_dir(i).join("state/data");
    let now = zone.node_dir(i).join("state/data.now");
    if let Some(then) = data_then {
        fs::rename(&data, &now).unwrap();
        common::bash(&format!("cp -a '{}' '{}'", then.display(), data.display()));
    }
    let before = snapshot(&data);
    // A launch that is not refused execs etcd and never ends: stopped by its PID after a
    // minute, and the test fails (instead of waiting for ever).
    let mut launch = common::zone_etcd()
        .args(["launch", "--config", zone.config(i).to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while launch.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            launch.kill().unwrap();
            let out = launch.wait_with_output().unwrap();
            panic!(
                "launch on {} was not refused: etcd runs\n{}",
                etcd.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = launch.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(78), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    for text in said {
        assert!(lines[0].contains(text), "{text:?} not in: {err}");
    }
    assert!(!err.contains("goroutine"), "etcd started: {err}");
    assert_eq!(snapshot(&data), before, "the data directory changed");
    if data_then.is_some() {
        fs::remove_dir_all(&data).unwrap();
        fs::rename(&now, &data).unwrap();
    }
    zone.set_etcd_bin(i, back);
    zone.launch(i)
}

/// The cluster version once it is `want`; etcd raises it a moment after the last member
/// of the series is seen.
fn wait_cluster_version(zone: &TestZone, want: &str) {
    wait_for(Duration::from_secs(30), want, || {
        zone.status(0).1["cluster_version"] == want
    });
}

#[test]
fn the_path_from_3_5_30_to_3_7_2_is_taken_one_allowed_step_at_a_time_under_writes() {
    let zone = TestZone::bootstrap("path.zone", addresses::VERSIONS_PATH.subnet(), 3);
    let release = |v: &str| common::etcd_release(Some(v));
    let (v3530, v3534, v3615, v372) = (
        release("3.5.30"),
        release("3.5.34"),
        common::etcd_release(None),
        release("3.7.2"),
    );
    assert_eq!(common::bundled_version(), "3.6.15");
    for i in 0..3 {
        zone.set_etcd_bin(i, &v3530);
    }
    let mut running = zone.launch_all();
    zone.wait_healthy(&mut running);
    wait_cluster_version(&zone, "3.5.0");
    // status names the patch owed before 3.6.
    let step = zone.status(0).1["next_step"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        step.contains("before etcd 3.6")
            && step.contains("3.5.32")
            && step.contains("node1.path.zone"),
        "{step}"
    );
    // A writer all along.
    let load = zone.failover_load(&[], "path", Duration::from_millis(70));

    // 3.6 straight from 3.5.30 is refused: every member must run 3.5.32 first.
    let back = refused_step(
        &zone,
        &mut running,
        0,
        &v3615,
        &v3530,
        &[
            "3.6.15",
            "3.5.32",
            "node2.path.zone runs 3.5.30",
            "node3.path.zone runs 3.5.30",
        ],
    );
    running.insert(0, back);
    wait_for(Duration::from_secs(60), "node1 back", || healthy(&zone, 0));
    // 3.5.34 on every member, one at a time.
    for i in 0..3 {
        step_member(&zone, &mut running, i, &v3534);
    }
    // 3.7 from 3.5 skips a minor version: refused.
    let back = refused_step(
        &zone,
        &mut running,
        1,
        &v372,
        &v3534,
        &["3.7.2", "more than one minor version ahead", "3.5"],
    );
    running.insert(1, back);
    wait_for(Duration::from_secs(60), "node2 back", || healthy(&zone, 1));
    // node1's data as etcd 3.5 left it, kept for the refusal below.
    let as_3_5_left_it = zone.path("node1-data-3.5");
    let member = running.remove(0);
    member.stop();
    common::bash(&format!(
        "cp -a '{}' '{}'",
        zone.node_dir(0).join("state/data").display(),
        as_3_5_left_it.display()
    ));
    running.insert(0, zone.launch(0));
    wait_for(Duration::from_secs(60), "node1 back", || healthy(&zone, 0));
    // Then 3.6.15, then 3.7.2, each on every member in turn.
    for i in 0..3 {
        step_member(&zone, &mut running, i, &v3615);
    }
    wait_cluster_version(&zone, "3.6.0");
    // etcd 3.7 cannot replay the v2 requests etcd 3.5 wrote: refused while they are in the
    // log past its last snapshot (without the check, 3.7.2 panics applying one and never
    // serves). etcd 3.6 takes a snapshot past them within 100 entries (the launcher lowers
    // its snapshot count until then), so the attempt is made over node1's data as 3.5
    // left it, put in place and back: the refusal writes nothing.
    let back = refused_step_over(
        &zone,
        &mut running,
        0,
        (&v372, &v3615),
        &["3.7.2", "entries etcd 3.5 wrote", "snapshot"],
        Some(&as_3_5_left_it),
    );
    running.insert(0, back);
    wait_for(Duration::from_secs(60), "node1 back", || healthy(&zone, 0));
    // 3.6 has taken that snapshot on every member once 100 entries are past: no setting
    // needed.
    let before = load.acknowledged();
    wait_for(Duration::from_secs(60), "150 writes on 3.6", || {
        load.acknowledged() > before + 150
    });
    for i in 0..3 {
        step_member(&zone, &mut running, i, &v372);
    }
    wait_cluster_version(&zone, "3.7.0");
    let (ok, json, err) = zone.status(0);
    assert!(ok, "{err}");
    for member in json["members"].as_array().unwrap() {
        assert_eq!(member["version"], "3.7.2", "{json}");
    }

    let result = load.stop();
    result.few_failed_and_enough_acknowledged(30);
    result.kept_on_every_member(&zone, "path");
}

/// `zone-etcd downgrade` with `args` on member `i`'s config: (exit code, stdout, stderr).
fn downgrade(zone: &TestZone, i: usize, args: &[&str]) -> (Option<i32>, String, String) {
    let out = common::zone_etcd()
        .args(["downgrade", "--config", zone.config(i).to_str().unwrap()])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn a_zone_goes_back_from_3_7_2_to_3_5_34_through_etcds_downgrade_under_writes() {
    let zone = TestZone::bootstrap("down.zone", addresses::VERSIONS_DOWN.subnet(), 3);
    let (v3534, v3615, v372) = (
        common::etcd_release(Some("3.5.34")),
        common::etcd_release(None),
        common::etcd_release(Some("3.7.2")),
    );
    for i in 0..3 {
        zone.set_etcd_bin(i, &v372);
    }
    let mut running = zone.launch_all();
    zone.wait_healthy(&mut running);
    wait_cluster_version(&zone, "3.7.0");
    let load = zone.failover_load(&[], "down", Duration::from_millis(70));

    // Two minor versions at once, and a release older than the cluster without a
    // downgrade, are refused in one line; nothing changes.
    let (code, _, err) = downgrade(&zone, 0, &["--to", "3.5"]);
    assert_eq!(code, Some(78), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--to") && err.contains("one minor version at a time"),
        "{err}"
    );
    let back = refused_step(
        &zone,
        &mut running,
        2,
        &v3615,
        &v372,
        &["3.6.15", "older than the cluster's version 3.7"],
    );
    running.insert(2, back);
    wait_for(Duration::from_secs(60), "node3 back", || healthy(&zone, 2));
    assert_eq!(zone.status(0).1["cluster_version"], "3.7.0");

    // 3.7 -> 3.6: enable, then each member on 3.6.15 in turn.
    let (code, out, err) = downgrade(&zone, 1, &["--to", "3.6"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("downgrade to 3.6 enabled"), "{out}");
    wait_cluster_version(&zone, "3.6.0");
    let (_, json, _) = zone.status(0);
    assert_eq!(json["storage_version"], "3.6.0", "{json}");
    let step = json["next_step"].as_str().unwrap_or("").to_string();
    assert!(
        step.contains("downgrade to etcd 3.6 under way") && step.contains("node1.down.zone"),
        "{json}"
    );
    for i in 0..3 {
        step_member(&zone, &mut running, i, &v3615);
    }
    // 3.6 -> 3.5 the same way, once etcd has ended the first downgrade.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (code, out, err) = downgrade(&zone, 2, &["--to", "3.5"]);
        if code == Some(0) {
            assert!(out.contains("downgrade to 3.5 enabled"), "{out}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "downgrade to 3.5 refused: {err}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    wait_cluster_version(&zone, "3.5.0");
    for i in 0..3 {
        step_member(&zone, &mut running, i, &v3534);
    }
    let (ok, json, err) = zone.status(0);
    assert!(ok, "{err}");
    assert_eq!(json["cluster_version"], "3.5.0", "{json}");
    for member in json["members"].as_array().unwrap() {
        assert_eq!(member["version"], "3.5.34", "{json}");
    }

    let result = load.stop();
    result.few_failed_and_enough_acknowledged(30);
    result.kept_on_every_member(&zone, "down");
}

#[test]
fn status_counts_a_member_that_never_started() {
    let zone = TestZone::bootstrap("lazy.zone", addresses::VERSIONS_LAZY.subnet(), 3);
    // node3 takes part in the zone's first start (every member must), but its "etcd" is
    // the stand-in, which exits at once: it never starts.
    zone.set_etcd_bin(2, &common::stand_in_etcd());
    let mut running = [zone.launch(0), zone.launch(1)];
    let mut node3 = zone.launch(2);
    wait_for(Duration::from_secs(60), "node3's launch to end", || {
        node3.child.try_wait().unwrap().is_some()
    });
    assert!(node3.child.wait().unwrap().success(), "{}", node3.log());
    let two = format!("{},{}", zone.client_url(0), zone.client_url(1));
    wait_for(Duration::from_secs(60), "two members serving", || {
        for member in running.iter_mut() {
            if let Ok(Some(status)) = member.child.try_wait() {
                panic!("member exited ({status}):\n{}", member.log());
            }
        }
        zone.etcdctl(0, &two, &["endpoint", "health"]).0
    });

    let config = zone.config(0);
    let (ok, table, err) = run(&["status", "--config", config.to_str().unwrap()]);
    assert!(!ok, "status exits 1:\n{table}");
    let row = table
        .lines()
        .find(|l| l.starts_with("node3.lazy.zone"))
        .unwrap_or_else(|| panic!("a row for node3:\n{table}"));
    assert!(row.contains("UNHEALTHY"), "{table}");
    assert!(
        table.contains("node3.lazy.zone: never started"),
        "a line saying it never started:\n{table}"
    );
    assert!(
        table.contains("zone-etcd launch on node3.lazy.zone"),
        "{table}"
    );
    assert!(
        table.contains("quorum: yes (2 of 3 voters healthy, 0 more may fail)"),
        "{table}"
    );
    assert!(err.contains("unhealthy members: node3.lazy.zone"), "{err}");

    let (ok, json, _) = zone.status(0);
    assert!(!ok);
    assert_eq!(json["healthy_voters"], 2, "{json}");
    assert_eq!(json["fault_tolerance"], 0, "{json}");
    let node3 = json["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "node3.lazy.zone")
        .unwrap();
    assert_eq!(node3["healthy"], false, "{json}");
}

/// `launch` with `etcd_bin` set to `binary`: refused in one line naming node.toml and
/// etcd_bin, with `says` in it, and nothing on disk changed.
fn refused(zone: &TestZone, binary: &Path, says: &str) {
    zone.set_etcd_bin(0, binary);
    let before = snapshot(zone.dir.path());
    for args in [
        &["launch"][..],
        &["launch", "--dry-run"],
        &["join"],
        &["check"],
    ] {
        let mut argv: Vec<&str> = args.to_vec();
        let config = zone.config(0);
        argv.extend(["--config", config.to_str().unwrap()]);
        let (ok, out, err) = run(&argv);
        assert!(!ok, "{argv:?} with {} succeeded", binary.display());
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        if args[0] == "check" {
            assert!(out.contains(says), "check shows the problem:\n{out}");
            continue;
        }
        assert_eq!(lines.len(), 1, "{argv:?}: one line:\n{err}");
        for part in [says, "node.toml", "etcd_bin", "3.4.0"] {
            assert!(lines[0].contains(part), "{argv:?}: {part:?} missing: {err}");
        }
        assert!(out.is_empty(), "{argv:?} printed {out}");
    }
    assert_eq!(
        snapshot(zone.dir.path()),
        before,
        "{}: files changed",
        binary.display()
    );
}

#[test]
fn binaries_that_are_not_a_supported_etcd_are_refused() {
    let zone = TestZone::bootstrap("odd.zone", addresses::VERSIONS_ODD.subnet(), 1);
    let script = |name: &str, body: &str| {
        let path = zone.path(name);
        fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        path
    };
    refused(
        &zone,
        Path::new("/bin/true"),
        "/bin/true does not look like etcd",
    );
    refused(&zone, &script("silent", "exit 0"), "printed nothing");
    refused(
        &zone,
        &script("garbage", "echo 'Usage: frobnicate [--version]'"),
        "printed \"Usage: frobnicate [--version]\"",
    );
    refused(
        &zone,
        &script("etcd-3.3", "echo 'etcd Version: 3.3.25'; echo 'Git SHA: 1'"),
        "is etcd 3.3.25",
    );
    // The stand-in answers as 3.6.15: accepted, and the dry run names it.
    zone.set_etcd_bin(0, &common::stand_in_etcd());
    let out = common::run_ok(&[
        "launch",
        "--dry-run",
        "--config",
        zone.config(0).to_str().unwrap(),
    ]);
    assert!(
        out.starts_with(common::stand_in_etcd().to_str().unwrap()),
        "{out}"
    );
}
