//! Certificate rotation while the zone serves, and renewal of due leaves at launch and by
//! `rotate --if-due`. Rotation killed at any point is in faults.rs.
//!
//! Subnets: `addresses::ROTATION` (a real zone under load), `addresses::ROTATION_STAND_IN`
//! (no etcd: a stand-in).

use crate::common;

use std::fs;
use std::time::Duration;

use common::*;
use zone_pki::{Host, LeafKind};
use zone_testkit::addresses;

#[test]
fn rotation_under_load_fails_no_request_and_serves_new_certificates() {
    // A service of node2's, granted to read the load's keys: its identity is checked
    // against the rotated zone below.
    let members = loopback_members("rotate.zone", addresses::ROTATION.subnet(), 3);
    let text = zone_testkit::zone::zone_toml("rotate.zone", &members, 2380, 2379)
        + "\n[access]\nnodes = [\"*\"]\n\n[[access.service]]\nname = \"nameservice\"\nnodes = [\"node2.rotate.zone\"]\nread = [\"load/\"]\n";
    let zone = TestZone::from_zone_file("rotate.zone", &text, members, 2380, 2379);
    let mut running = zone.launch_all();
    zone.wait_healthy(&mut running);
    let probes = tempfile::tempdir().unwrap();
    let ca = zone.path("ca/ca.crt");
    let client = fixed_identity(&zone, 0, "client", probes.path());
    let peer = fixed_identity(&zone, 0, "peer", probes.path());
    let served = |i: usize| {
        (
            served_serial(&zone.client_addr(i), &ca, &client),
            served_serial(&zone.peer_addr(i), &ca, &peer),
        )
    };
    let before: Vec<_> = (0..3).map(served).collect();

    // One writer per member, each request on a new TCP connection and TLS session.
    let addrs: Vec<String> = (0..3).map(|i| zone.client_addr(i)).collect();
    let load = WriteLoad::start(&addrs, &ca, &client, "load", Duration::from_millis(45));

    std::thread::sleep(Duration::from_millis(500));
    for _round in 0..3 {
        for i in 0..3 {
            let out = run_ok(&["rotate", "--config", zone.config(i).to_str().unwrap()]);
            assert!(out.contains("no restart needed"), "{out}");
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let LoadResult {
        acknowledged,
        failures,
        ..
    } = load.stop();
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    assert!(
        acknowledged.len() >= 60,
        "the load ran: {} writes",
        acknowledged.len()
    );

    // Every port now serves a certificate of the new set; etcd never restarted.
    for (i, (client_before, peer_before)) in before.iter().enumerate() {
        let (client_now, peer_now) = served(i);
        assert_ne!(&client_now, client_before, "member {i} client port");
        assert_ne!(&peer_now, peer_before, "member {i} peer port");
        assert_eq!(client_now, serial(&zone.tls(i, "server.crt")));
        assert_eq!(peer_now, serial(&zone.tls(i, "peer.crt")));
        assert!(
            running[i].child.try_wait().unwrap().is_none(),
            "still running"
        );
        let sets = fs::read_dir(zone.node_dir(i).join("state/tls/sets")).unwrap();
        assert_eq!(sets.count(), 2, "current and previous set kept");
    }
    // A service certificate from a member's CA works against the rotated zone, CN = service.
    let service = zone.path("nameservice-tls");
    run_ok(&[
        "issue-client",
        "--config",
        zone.config(1).to_str().unwrap(),
        "--name",
        "nameservice",
        "--out",
        service.to_str().unwrap(),
    ]);
    let cert = service.join("client.crt");
    assert_eq!(
        zone_pki::CertInfo::parse_pem(&fs::read_to_string(&cert).unwrap())
            .unwrap()
            .subject_cn,
        "nameservice@node2.rotate.zone"
    );
    // It reads its grant (over gRPC, as a client with an identity does) and nothing else.
    let etcdctl = |args: &[&str]| {
        let out = std::process::Command::new(bundled("etcdctl"))
            .arg(format!("--endpoints={}", zone.client_url(2)))
            .arg(format!("--cacert={}", service.join("ca.crt").display()))
            .arg(format!("--cert={}", cert.display()))
            .arg(format!("--key={}", service.join("client.key").display()))
            .arg("--command-timeout=5s")
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, err) = etcdctl(&["get", "load/0/000000"]);
    assert!(ok, "{err}");
    let (ok, err) = etcdctl(&["get", "zone-etcd/", "--prefix"]);
    assert!(!ok && err.contains("permission denied"), "{err}");

    // Nothing acknowledged is lost.
    let (ok, keys, err) = zone.etcdctl(
        1,
        &zone.endpoints(),
        &["get", "load/", "--prefix", "--keys-only"],
    );
    assert!(ok, "{err}");
    let stored: Vec<&str> = keys.lines().filter(|l| !l.is_empty()).collect();
    for key in &acknowledged {
        assert!(stored.contains(&key.as_str()), "{key} lost");
    }
}

/// Replaces member 0's current server leaf with one issued `age_days` ago.
fn age_server_leaf(zone: &TestZone, age_days: i64) {
    let issued_at = time::OffsetDateTime::now_utc() - time::Duration::days(age_days);
    let params =
        zone_pki::profile::leaf(LeafKind::Server, &member_identity(zone, 0), None, issued_at)
            .unwrap();
    let issued = node_authority(zone, 0).issue(params).unwrap();
    put_leaf(zone, "server", &issued);
}

#[test]
fn due_leaves_are_renewed_at_launch_and_by_rotate_if_due() {
    let zone = zone_with_true_etcd(addresses::ROTATION_STAND_IN.subnet());
    let config = zone.config(0);
    let config = config.to_str().unwrap();
    run_ok(&["launch", "--config", config]);
    let first = serial(&zone.tls(0, "server.crt"));
    let out = run_ok(&["rotate", "--if-due", "--config", config]);
    assert!(out.contains("are not due; next renewal after"), "{out}");
    assert_eq!(serial(&zone.tls(0, "server.crt")), first);

    // 61 of 90 days used: due (the threshold is 60).
    age_server_leaf(&zone, 61);
    let aged = serial(&zone.tls(0, "server.crt"));
    let out = run_ok(&["rotate", "--if-due", "--config", config]);
    assert!(out.contains("past two thirds of its life"), "{out}");
    assert_ne!(serial(&zone.tls(0, "server.crt")), aged);
    assert_whole_set(&zone);

    // 59 days: not yet.
    age_server_leaf(&zone, 59);
    let young = serial(&zone.tls(0, "server.crt"));
    run_ok(&["launch", "--config", config]);
    assert_eq!(serial(&zone.tls(0, "server.crt")), young);

    // Expired, at launch.
    age_server_leaf(&zone, 100);
    let (ok, _, stderr) = run(&["launch", "--config", config]);
    assert!(
        ok && stderr.contains("server certificate: expired"),
        "{stderr}"
    );
    assert_whole_set(&zone);

    // The member's address changes to its node name: the SANs follow at the next launch.
    let text = fs::read_to_string(config).unwrap();
    fs::write(
        config,
        text.replace(
            &format!("address = \"{}\"", addresses::ROTATION_STAND_IN.ip(1)),
            "address = \"\"",
        ),
    )
    .unwrap();
    let (ok, _, stderr) = run(&["launch", "--config", config]);
    assert!(ok && stderr.contains("names no longer match"), "{stderr}");
    let info =
        zone_pki::CertInfo::parse_pem(&fs::read_to_string(zone.tls(0, "server.crt")).unwrap())
            .unwrap();
    assert!(info.sans.contains(&Host::Dns("node1.leaves.zone".into())));
    assert!(!info
        .sans
        .contains(&Host::parse(&addresses::ROTATION_STAND_IN.ip(1))));
}
