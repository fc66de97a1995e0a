//! etcd releases under a zone: a rolling upgrade from Debian bookworm's etcd 3.4.23 to the
//! bundled 3.5.30 under writes (127.0.91.1-3), the refusal of an etcd older than the
//! cluster's version, `status` on a zone with a member that never started (127.0.92.1-3),
//! and binaries that are not an etcd the launcher runs (127.0.93.1, nothing listens).

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use common::{run, snapshot, wait_for, TestZone};

/// `status` exits 0: every member healthy and a quorum.
fn healthy(zone: &TestZone, index: usize) -> bool {
    zone.status(index).0
}

#[test]
fn rolling_upgrade_from_3_4_to_3_5_under_writes() {
    let zone = TestZone::bootstrap("upgrade.zone", 91, 3);
    let (old, new) = (
        common::etcd_release(Some("3.4.23")),
        common::etcd_release(None),
    );
    for i in 0..3 {
        zone.set_etcd_bin(i, &old);
    }
    let mut running = zone.launch_all();
    zone.wait_healthy(&mut running);
    let (_, json, _) = zone.status(0);
    assert_eq!(json["cluster_version"], "3.4.0", "{json}");

    // A client that knows every endpoint writes all along.
    let load = zone.failover_load(&[], "upgrade", Duration::from_millis(20));

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
    for i in 0..3 {
        let (ok, keys, err) = zone.etcdctl(
            i,
            &zone.client_url(i),
            &["get", "upgrade/", "--prefix", "--keys-only"],
        );
        assert!(ok, "{err}");
        let keys: std::collections::BTreeSet<&str> =
            keys.lines().filter(|l| !l.is_empty()).collect();
        let missing: Vec<&String> = result
            .acknowledged
            .iter()
            .filter(|k| !keys.contains(k.as_str()))
            .collect();
        assert!(missing.is_empty(), "member {i} lacks {missing:?}");
    }

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

#[test]
fn status_counts_a_member_that_never_started() {
    let zone = TestZone::bootstrap("lazy.zone", 92, 3);
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
    let zone = TestZone::bootstrap("odd.zone", 93, 1);
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
    // The stand-in answers as 3.5.30: accepted, and the dry run names it.
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
