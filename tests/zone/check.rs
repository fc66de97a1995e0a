//! `zone-etcd check`: a clean node passes; each problem, made on purpose, is reported on
//! the right certificate with a fix, and the exit status is non-zero.
//!
//! Subnet: `addresses::CHECK` (no etcd: a stand-in).

use crate::common;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use common::*;
use time::{Duration, OffsetDateTime};
use zone_pki::{LeafKind, NodeIdentity};
use zone_testkit::addresses;

/// Runs check --json; returns (exit success, the problems of `row` as text).
fn check(zone: &TestZone, row: &str) -> (bool, Vec<String>, serde_json::Value) {
    let config = zone.config(0);
    let (ok, stdout, stderr) = run(&["check", "--config", config.to_str().unwrap(), "--json"]);
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("JSON report");
    if !ok {
        assert!(stderr.contains("problem"), "{stderr}");
    }
    let problems = report["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .chain(std::iter::once(
            &serde_json::json!({"name": "node", "problems": report["other_problems"]}),
        ))
        .filter(|r| r["name"] == row)
        .flat_map(|r| r["problems"].as_array().cloned().unwrap_or_default())
        .map(|p| {
            format!(
                "{} (fix: {})",
                p["problem"].as_str().unwrap(),
                p["fix"].as_str().unwrap()
            )
        })
        .collect();
    (ok, problems, report)
}

/// Expects `row` to carry a problem containing `expected`, and check to fail.
fn reported(zone: &TestZone, row: &str, expected: &str) {
    let (ok, problems, report) = check(zone, row);
    assert!(!ok, "check should fail for {expected:?}");
    assert!(
        problems.iter().any(|p| p.contains(expected)),
        "{row}: want {expected:?} in {problems:?}\n{report:#}"
    );
    assert_eq!(report["ok"], false);
}

/// A fresh, clean set for the next case.
fn clean(zone: &TestZone) {
    run_ok(&["rotate", "--config", zone.config(0).to_str().unwrap()]);
    let (ok, _, report) = check(zone, "server");
    assert!(ok, "clean after rotate: {report:#}");
}

fn issue(
    zone: &TestZone,
    kind: LeafKind,
    identity: &NodeIdentity,
    days_ago: i64,
) -> zone_pki::Issued {
    let at = OffsetDateTime::now_utc() - Duration::days(days_ago);
    let params = zone_pki::profile::leaf(kind, identity, None, at).unwrap();
    node_authority(zone, 0).issue(params).unwrap()
}

#[test]
fn a_clean_node_passes_and_each_problem_is_reported() {
    let zone = zone_with_true_etcd(addresses::CHECK.subnet());
    let config = zone.config(0);
    run_ok(&["launch", "--config", config.to_str().unwrap()]);
    let text = run_ok(&["check", "--config", config.to_str().unwrap()]);
    for row in [
        "zone CA",
        "node CA",
        "server",
        "peer",
        "client",
        "no problems",
        // A zone of least privilege, as `ca init` makes one.
        "access: enforced (each identity has its grants only)",
    ] {
        assert!(text.contains(row), "{text}");
    }
    let me = member_identity(&zone, 0);

    put_leaf(&zone, "server", &issue(&zone, LeafKind::Server, &me, 100));
    reported(&zone, "server", "expired (fix: zone-etcd rotate --config");
    clean(&zone);

    put_leaf(&zone, "peer", &issue(&zone, LeafKind::Peer, &me, 61));
    reported(&zone, "peer", "due for renewal");
    clean(&zone);

    let elsewhere = NodeIdentity {
        address: None,
        ..me.clone()
    };
    put_leaf(
        &zone,
        "server",
        &issue(&zone, LeafKind::Server, &elsewhere, 0),
    );
    reported(
        &zone,
        "server",
        &format!(
            "does not name {}, which this node advertises",
            addresses::CHECK.ip(1)
        ),
    );
    clean(&zone);

    put_leaf(&zone, "server", &issue(&zone, LeafKind::Client, &me, 0));
    reported(
        &zone,
        "server",
        "wrong extended key usage: needs serverAuth and clientAuth",
    );
    clean(&zone);

    // A leaf from another zone's node CA for the same name.
    let other = TestZone::bootstrap("leaves.zone", addresses::CHECK.subnet(), 1);
    let foreign =
        zone_pki::profile::leaf(LeafKind::Server, &me, None, OffsetDateTime::now_utc()).unwrap();
    put_leaf(
        &zone,
        "server",
        &node_authority(&other, 0).issue(foreign).unwrap(),
    );
    reported(
        &zone,
        "server",
        "not issued by this node's CA, so it does not chain to the zone CA",
    );
    clean(&zone);

    // The node CA signs anything it is given; Go and etcd refuse names outside its constraints.
    let mut params =
        zone_pki::profile::leaf(LeafKind::Server, &me, None, OffsetDateTime::now_utc()).unwrap();
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress("10.9.9.9".parse().unwrap()));
    put_leaf(
        &zone,
        "server",
        &node_authority(&zone, 0).issue(params).unwrap(),
    );
    reported(
        &zone,
        "server",
        "names 10.9.9.9, outside the name constraints of its CA",
    );
    clean(&zone);

    fs::copy(zone.tls(0, "peer.key"), zone.tls(0, "client.key")).unwrap();
    reported(&zone, "client", "the key does not match the certificate");
    clean(&zone);

    fs::set_permissions(zone.tls(0, "server.key"), fs::Permissions::from_mode(0o640)).unwrap();
    reported(&zone, "server", "is readable by group or others (mode 640)");
    fs::set_permissions(zone.tls(0, "server.key"), fs::Permissions::from_mode(0o600)).unwrap();
    let state = zone.node_dir(0).join("state");
    fs::set_permissions(&state, fs::Permissions::from_mode(0o755)).unwrap();
    reported(
        &zone,
        "node",
        "is open to group or others (mode 755) (fix: chmod 700",
    );
    fs::set_permissions(&state, fs::Permissions::from_mode(0o700)).unwrap();
    clean(&zone);

    // The node CA itself: signed by another zone's root.
    fs::copy(
        other.node_dir(0).join("pki/node.crt"),
        zone.node_dir(0).join("pki/node.crt"),
    )
    .unwrap();
    fs::copy(
        other.node_dir(0).join("pki/node.key"),
        zone.node_dir(0).join("pki/node.key"),
    )
    .unwrap();
    reported(&zone, "node CA", "does not chain to the zone CA");
}

/// A member's data disk: `check --json` carries its fdatasync p50/p99 in ms and keeps the
/// figure (0600, for an hour) so that `--format prometheus` (the metrics timer) reports it
/// without measuring again; the probe leaves no file; a data directory in memory (tmpfs)
/// is told with its fix, and a kept file that does not read is measured over.
#[test]
fn a_members_data_disk_is_measured_kept_and_judged() {
    // On a disk: TMPDIR may be in memory (tmpfs), where a sync takes no time.
    let zone = common::zone_with_true_etcd_on_disk(addresses::CHECK.subnet());
    let config = zone.config(0);
    let cfg = config.to_str().unwrap();
    let state = zone.node_dir(0).join("state");
    let name = zone.members[0].0.clone();
    // Before the first start: measured where the data will be, nothing kept (a check
    // writes nothing where there was nothing).
    let (_, stdout, _) = run(&["check", "--config", cfg, "--json"]);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        report["disk"]["dir"],
        zone.node_dir(0).display().to_string()
    );
    assert!(!state.exists());
    run_ok(&["launch", "--config", cfg]);
    let (_, stdout, _) = run(&["check", "--config", cfg, "--json"]);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let disk = &report["disk"];
    let p50 = disk["fdatasync_p50_ms"].as_f64().unwrap();
    let p99 = disk["fdatasync_p99_ms"].as_f64().unwrap();
    assert!(0.0 < p50 && p50 <= p99, "{disk:#}");
    assert!(disk["writes"].as_u64().unwrap() >= 200, "{disk:#}");
    assert_eq!(
        disk["bytes"].as_u64(),
        Some(disk["writes"].as_u64().unwrap() * 2300)
    );
    eprintln!("this machine's disk: {disk}");
    let kept = state.join("disk-probe.json");
    assert_eq!(
        fs::metadata(&kept).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let probes = |dir: &std::path::Path| {
        fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                name.to_string_lossy().contains("disk-probe-")
            })
            .count()
    };
    assert_eq!(probes(&state), 0);
    // The metrics report the kept figure, and do not measure again.
    let before = fs::read_to_string(&kept).unwrap();
    let (_, metrics, _) = run(&["check", "--config", cfg, "--format", "prometheus"]);
    let p99_line = format!(
        "zone_etcd_disk_fdatasync_seconds{{node=\"{}\",quantile=\"0.99\"}} {}",
        name,
        p99 / 1000.0
    );
    assert!(metrics.contains(&p99_line), "want {p99_line} in\n{metrics}");
    assert!(metrics.contains("zone_etcd_disk_findings{"), "{metrics}");
    assert_eq!(fs::read_to_string(&kept).unwrap(), before);
    // Text: the line naming the directory measured.
    let (_, text, _) = run(&["check", "--config", cfg]);
    assert!(
        text.contains(&format!("data disk: {}", state.display())),
        "{text}"
    );

    // A data directory in memory: told, with its fix; a damaged kept file is measured over.
    let shm = tempfile::tempdir_in("/dev/shm").unwrap();
    let data = shm.path().join("data");
    let mut toml = fs::read_to_string(&config).unwrap();
    toml = format!("data_dir = \"{}\"\n{toml}", data.display());
    fs::write(&config, toml).unwrap();
    fs::write(&kept, "{").unwrap();
    let (_, stdout, _) = run(&["check", "--config", cfg, "--json"]);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["disk"]["kind"], "memory", "{report:#}");
    assert_eq!(report["disk"]["dir"], shm.path().display().to_string());
    let findings = report["disk"]["findings"].as_array().unwrap();
    assert!(
        findings.iter().any(
            |f| f["what"].as_str().unwrap().contains("in memory (tmpfs)")
                && f["fix"].as_str().unwrap().contains("join --replace")
        ),
        "{report:#}"
    );
    assert_eq!(probes(shm.path()), 0);
    let (_, metrics, _) = run(&["check", "--config", cfg, "--format", "prometheus"]);
    assert!(
        metrics.contains(&format!("zone_etcd_disk_findings{{node=\"{name}\"}} 1")),
        "{metrics}"
    );
}
