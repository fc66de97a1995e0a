//! The mixed zone: two amd64 members and one arm64 member (the package's zone-etcd and
//! etcd under qemu-user) on network-namespace machines (tag "a6", `addresses::ARM64` .1-3,
//! the test's clients on .4). The arm64 member rotates its leaves, answers `status`,
//! takes a snapshot, leaves and joins again, and survives a SIGKILL and relaunch, while
//! a writer's every acknowledged write is kept.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::binfmt::Binfmt;
use super::common::netns::{Machine, Net};
use super::common::{self, sysroot, Running, TestZone};
use super::emulated;
use super::{output_ok, SLOW};
use zone_testkit::addresses;

/// `status --json` from member `from` (run on the client machine): voters and learners.
fn voters_and_learners(zone: &TestZone, from: usize) -> (usize, usize) {
    match zone.status(from) {
        (true, status, _) => common::roles(&status),
        _ => (0, 0),
    }
}

#[test]
fn a_zone_with_an_emulated_arm64_member_rotates_snapshots_leaves_joins_and_survives_a_kill() {
    const ZONE: &str = "mixed.zone";
    let arm = emulated::unpack(&sysroot::package_for("arm64"));
    // The emulated zone-etcd execs the arm64 etcd, as on a Pi.
    let _binfmt = Binfmt::register();
    let names: Vec<(String, String)> = (1..=3)
        .map(|i| (format!("node{i}.{ZONE}"), addresses::ARM64.ip(i)))
        .collect();
    let pairs: Vec<(&str, &str)> = names
        .iter()
        .map(|(n, a)| (n.as_str(), a.as_str()))
        .collect();
    let zone = TestZone::from_zone_file(
        ZONE,
        &common::zone_toml(ZONE, &pairs),
        names.clone(),
        2380,
        2379,
    );
    let mut net = Net::new("a6");
    let mut hosts = names.clone();
    hosts.push((format!("client.{ZONE}"), addresses::ARM64.ip(4)));
    let machines: Vec<Machine> = (0..4)
        .map(|i| net.machine(i + 1, &hosts[i].1, &hosts))
        .collect();
    // This test's clients (etcdctl, status, the writer) are on the fourth machine.
    Net::enter(&machines[3]);

    let config = |i: usize| zone.config(i).to_str().unwrap().to_string();
    let amd64 = |i: usize, log: &str| {
        let mut launch = common::zone_etcd();
        launch.args(["launch", "--config", &config(i)]);
        Running::spawn(Net::inside(&machines[i], &launch), &zone.path(log))
    };
    let arm64 = |args: &[&str]| Net::inside(&machines[2], &arm.command(args));
    let node3 = config(2);
    let mut running = vec![
        amd64(0, "node1.log"),
        amd64(1, "node2.log"),
        Running::spawn(
            arm64(&["launch", "--config", &node3]),
            &zone.path("node3.log"),
        ),
    ];
    zone.wait_healthy_within(&mut running, Duration::from_secs(60) * SLOW);
    // node3's etcd is the package's arm64 etcd, run by qemu through binfmt_misc.
    let pid = running[2].pid();
    assert_eq!(
        fs::read_link(format!("/proc/{pid}/exe")).unwrap(),
        Path::new(emulated::QEMU)
    );
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let program = String::from_utf8_lossy(cmdline.split(|b| *b == 0).nth(1).unwrap()).to_string();
    assert_eq!(
        Path::new(&program).canonicalize().unwrap(),
        arm.lib("etcd").canonicalize().unwrap(),
        "node3 runs {program}"
    );

    let load = zone.failover_load(&[], "load", Duration::from_millis(70));
    let ids = tempfile::tempdir().unwrap();
    let ca = zone.path("ca/ca.crt");
    let client = common::fixed_identity(&zone, 0, "client", ids.path());

    // Rotation: node3 serves its new server certificate, without a restart.
    let before = common::served_serial(&zone.client_addr(2), &ca, &client);
    let out = output_ok(arm64(&["rotate", "--config", &node3]));
    assert!(out.contains("no restart needed"), "{out}");
    let rotated = common::serial(&zone.tls(2, "server.crt"));
    assert_ne!(before, rotated);
    common::wait_for(
        Duration::from_secs(10) * SLOW,
        "node3 to serve its new certificate",
        || common::served_serial(&zone.client_addr(2), &ca, &client) == rotated,
    );
    assert!(
        running[2].child.try_wait().unwrap().is_none(),
        "node3 did not restart"
    );

    // status, from the arm64 build.
    let status: serde_json::Value =
        serde_json::from_str(&output_ok(arm64(&["status", "--json", "--config", &node3]))).unwrap();
    assert_eq!(common::roles(&status), (3, 0), "{status}");
    assert!(status["leader"].is_string(), "{status}");

    // A snapshot, saved by the arm64 build and read by the amd64 etcdutl.
    let out = output_ok(arm64(&["snapshot", "save", "--config", &node3]));
    let dir = zone.node_dir(2).join("state/snapshots");
    let file = fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "db"))
        .unwrap_or_else(|| panic!("no snapshot in {}: {out}", dir.display()));
    let manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(format!("{}.json", file.display())).unwrap())
            .unwrap();
    assert_eq!(manifest["zone"], ZONE, "{manifest}");
    assert_eq!(
        manifest["etcd_version"],
        common::bundled_version(),
        "{manifest}"
    );
    let mut etcdutl = Command::new(common::bundled("etcdutl"));
    etcdutl
        .args(["snapshot", "status", "-w", "json"])
        .arg(&file);
    let read: serde_json::Value = serde_json::from_str(&output_ok(etcdutl)).unwrap();
    assert_eq!(read["revision"], manifest["revision"], "{read} {manifest}");

    // node3 leaves (its etcd stops by itself) and joins again with fresh data.
    let out = output_ok(arm64(&["leave", "--config", &node3]));
    assert!(out.contains(&format!("removed node3.{ZONE}")), "{out}");
    common::wait_for(
        Duration::from_secs(20) * SLOW,
        "node3's etcd to stop",
        || running[2].child.try_wait().unwrap().is_some(),
    );
    common::wait_for(Duration::from_secs(30), "2 voters", || {
        voters_and_learners(&zone, 0) == (2, 0)
    });
    running[2] = Running::spawn(
        arm64(&["join", "--config", &node3]),
        &zone.path("node3.join.log"),
    );
    common::wait_for(
        Duration::from_secs(60) * SLOW,
        "node3 to join as a voter",
        || voters_and_learners(&zone, 0) == (3, 0),
    );
    zone.wait_healthy_within(&mut running, Duration::from_secs(60) * SLOW);

    // SIGKILL, by its PID, and a relaunch: writes go on meanwhile, and through it after.
    running[2].child.kill().unwrap();
    running[2].child.wait().unwrap();
    let at_kill = load.acknowledged();
    common::wait_for(
        Duration::from_secs(30),
        "writes to go on with 2 of 3",
        || load.acknowledged() > at_kill + 20,
    );
    running[2] = Running::spawn(
        arm64(&["launch", "--config", &node3]),
        &zone.path("node3.relaunch.log"),
    );
    zone.wait_healthy_within(&mut running, Duration::from_secs(60) * SLOW);
    common::wait_for(
        Duration::from_secs(10) * SLOW,
        "a write through node3",
        || {
            zone.etcdctl(
                2,
                &zone.client_url(2),
                &["put", "through-node3", "after-relaunch"],
            )
            .0
        },
    );

    let result = load.stop();
    result.few_failed_and_enough_acknowledged(100);
    result.kept_on_every_member(&zone, "load");
    for member in running.drain(..) {
        member.stop();
    }
    drop(net);
}
