//! `zone-etcd check`: a clean node passes; each problem, made on purpose, is reported on
//! the right certificate with a fix, and the exit status is non-zero.
//!
//! Subnet: 127.0.45.0/24 (no etcd: a stand-in).

use crate::common;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use common::*;
use time::{Duration, OffsetDateTime};
use zone_pki::{LeafKind, NodeIdentity};

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
    let zone = zone_with_true_etcd(45);
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
        // A zone without [access] is told so, and how to move (not a problem: an opt-out).
        "access: none: every client certificate of the zone is root in etcd (to move to least privilege: add [access] to the zone file and follow the guide's \"Moving a running zone to least privilege\" (docs/src/access.md))",
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
        "does not name 127.0.45.1, which this node advertises",
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
    let other = TestZone::bootstrap("leaves.zone", 45, 1);
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
