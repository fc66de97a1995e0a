//! The zone's `[settings]` on real etcd processes (`addresses::SETTINGS`): they reach every
//! member's argv and the zone is healthy with them; a small quota drives the zone into
//! NOSPACE and `maintain` brings it back with no restart; settings in a signed zone
//! document reach a node that follows the nameservice, and a document whose settings were
//! changed after signing is refused. Metrics answer on the member's loopback address over
//! plain HTTP.

use crate::common;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{activate_args, run, run_ok, wait_for, TestNameservice, TestZone};
use zone_testkit::addresses;

const ZONE: &str = "tuned.zone";
const QUOTA: u64 = 16 << 20;

fn settings_zone() -> TestZone {
    let members = common::loopback_members(ZONE, addresses::SETTINGS.subnet(), 3);
    let pairs: Vec<(&str, &str)> = members
        .iter()
        .map(|(n, a)| (n.as_str(), a.as_str()))
        .collect();
    let text = format!(
        "{}\n[settings]\nheartbeat_interval_ms = 300\nelection_timeout_ms = 3000\nquota_backend_bytes = {QUOTA}\n",
        common::zone_toml(ZONE, &pairs)
    );
    TestZone::from_zone_file(ZONE, &text, members, 2380, 2379)
}

/// The command line of a running process, one argument a line.
fn cmdline(pid: u32) -> Vec<String> {
    fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap()
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// Rewrites the same 100 keys of 8 KiB through member 0 in one transaction: the live data
/// stays 800 KiB, the history grows by as much. Returns etcdctl's success and stderr.
fn rewrite_round(zone: &TestZone) -> (bool, String) {
    let value = "x".repeat(8 * 1024);
    let ops: String = (0..100)
        .map(|i| format!("put churn/{i:03} {value}\n"))
        .collect();
    zone.txn(0, &zone.client_url(0), &ops)
}

/// GET http://<addr>/metrics over plain HTTP: the status line and the body.
fn plain_get(addr: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text
}

#[test]
fn settings_reach_every_member_and_a_small_quota_recovers_with_maintain() {
    let zone = settings_zone();
    // The bundles carry the zone's settings.
    let node_toml = fs::read_to_string(zone.config(1)).unwrap();
    assert!(
        node_toml.lines().any(|l| l == "[settings]")
            && node_toml.contains("election_timeout_ms = 3000"),
        "{node_toml}"
    );
    let mut running = zone.launch_all();
    zone.wait_healthy(&mut running);

    // Each etcd (launch execs it: same PID) runs with the settings and the defaults.
    for (i, member) in running.iter().enumerate() {
        let argv = cmdline(member.pid());
        let address = &zone.members[i].1;
        for flag in [
            "--heartbeat-interval=300".to_string(),
            "--election-timeout=3000".to_string(),
            format!("--quota-backend-bytes={QUOTA}"),
            "--auto-compaction-mode=periodic".to_string(),
            "--auto-compaction-retention=5m".to_string(),
            "--feature-gates=InitialCorruptCheck=true,CompactHashCheck=true".to_string(),
            format!("--listen-metrics-urls=http://{address}:2381"),
        ] {
            assert!(argv.contains(&flag), "member {i}: {flag} not in {argv:?}");
        }
        // Metrics over plain HTTP on the member's own loopback address.
        let metrics = plain_get(&format!("{address}:2381"), "/metrics");
        assert!(
            metrics.starts_with("HTTP/1.0 200") && metrics.contains("etcd_server_has_leader 1"),
            "{}",
            &metrics[..metrics.len().min(300)]
        );
    }

    // Driven into NOSPACE: history of rewrites fills the 16 MiB quota.
    let pids: Vec<u32> = running.iter().map(|r| r.pid()).collect();
    let mut refused = None;
    for round in 0..100 {
        let (ok, err) = rewrite_round(&zone);
        if !ok {
            refused = Some((round, err));
            break;
        }
    }
    let (round, err) = refused.expect("100 rounds of 800 KiB never filled a 16 MiB quota");
    assert!(round > 5, "refused too early, at round {round}: {err}");
    assert!(err.contains("database space exceeded"), "{err}");
    let (ok, status, _) = zone.status(0);
    assert!(!ok, "status must fail with an active alarm: {status}");
    assert!(status.to_string().contains("NOSPACE"), "{status}");
    let (ok, _, err) = zone.etcdctl(0, &zone.client_url(1), &["put", "after", "full"]);
    assert!(!ok && err.contains("database space exceeded"), "{err}");

    // maintain: compacts, defragments every member, disarms; writes are accepted again.
    let config = zone.config(0);
    let (ok, out, err) = run(&["maintain", "--config", config.to_str().unwrap()]);
    assert!(ok, "maintain failed: {err}\n{out}");
    assert!(
        out.contains("compacted the history up to revision"),
        "{out}"
    );
    assert_eq!(out.matches("defragmented").count(), 3, "{out}");
    assert!(out.contains("alarms: none"), "{out}");
    assert!(out.contains("quota 16.0 MiB"), "{out}");
    let (ok, _, err) = zone.etcdctl(0, &zone.client_url(1), &["put", "after", "maintain"]);
    assert!(ok, "{err}");
    let (ok, status, err) = zone.status(0);
    assert!(ok, "{err}\n{status}");
    // No member was restarted.
    for (member, pid) in running.iter().zip(&pids) {
        assert_eq!(member.pid(), *pid);
        assert!(
            fs::metadata(format!("/proc/{pid}")).is_ok(),
            "member {pid} is gone"
        );
    }
    for member in running {
        member.stop();
    }
}

#[test]
fn settings_in_the_signed_document_reach_a_node_that_follows_the_nameservice() {
    let zone = settings_zone();
    let ca = zone.path("ca");
    let zone_file = zone.path("zone.toml");
    let document = zone.path("zone.json");
    run_ok(&[
        "zone",
        "sign",
        "--ca",
        ca.to_str().unwrap(),
        "--zone",
        zone_file.to_str().unwrap(),
        "--out",
        document.to_str().unwrap(),
    ]);
    let signed = fs::read_to_string(&document).unwrap();
    let value: serde_json::Value = serde_json::from_str(&signed).unwrap();
    assert_eq!(value["extend"]["settings"]["heartbeat_interval_ms"], 300);

    let nameservice = TestNameservice::start(&addresses::SETTINGS.ip(100), ZONE);
    nameservice.serve(signed.as_bytes());
    let node = zone.path("follower");
    let mut args = activate_args(
        ca.to_str().unwrap(),
        zone_file.to_str().unwrap(),
        &format!("node2.{ZONE}"),
        node.to_str().unwrap(),
    );
    args.extend(["--nameservice".to_string(), nameservice.url.clone()]);
    run_ok(&args);
    let config = node.join("node.toml");
    let node_toml = fs::read_to_string(&config).unwrap();
    assert!(!node_toml.lines().any(|l| l == "[settings]"), "{node_toml}");
    let argv = run_ok(&["launch", "--dry-run", "--config", config.to_str().unwrap()]);
    for flag in [
        "--heartbeat-interval=300",
        "--election-timeout=3000",
        "--quota-backend-bytes=16777216",
    ] {
        assert!(argv.lines().any(|l| l == flag), "{flag} not in\n{argv}");
    }

    // The same document with its settings changed after signing: refused like a changed
    // member list, and nothing is cached.
    let tampered = signed.replace(
        "\"election_timeout_ms\": 3000",
        "\"election_timeout_ms\": 2000",
    );
    assert_ne!(tampered, signed);
    nameservice.serve(tampered.as_bytes());
    let (ok, out, err) = run(&["launch", "--dry-run", "--config", config.to_str().unwrap()]);
    assert!(!ok, "{out}");
    assert!(
        err.contains("sign:") && err.contains("changed after it was signed"),
        "{err}"
    );
    assert!(!node.join("state/zone.json").exists());
    wait_for(
        Duration::from_secs(1),
        "the nameservice to be asked",
        || nameservice.requests() >= 2,
    );
}
