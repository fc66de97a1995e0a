//! A real 3-member zone: bootstrap, launch through `zone-etcd launch`, write and read with
//! client certificates, and every kind of intruder refused; on the bundled etcd 3.5.30
//! (127.0.10.1-3) and on the older releases the launcher supports, Debian bookworm's 3.4.23
//! (127.0.13.x, no --tls-min-version: cipher suites instead) and trixie's 3.5.16 (127.0.14.x).

mod common;

use std::fs;
use std::path::Path;

use common::{activate_args, https_get, s_client, Identity, TestZone};
use zone_pki::{Authority, LeafKind, NodeIdentity};

/// Writes an issued certificate and key where `https_get` can use them.
fn identity(dir: &Path, name: &str, issued: &zone_pki::Issued) -> Identity {
    let chain = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    fs::write(&chain, &issued.chain_pem).unwrap();
    fs::write(&key, &issued.key_pem).unwrap();
    Identity { chain, key }
}

#[test]
fn three_members_with_mutual_tls_refuse_every_intruder() {
    acceptance(None, "3.5.30", 10);
}

#[test]
fn the_same_zone_on_etcd_3_4_23() {
    acceptance(Some("3.4.23"), "3.4.23", 13);
}

#[test]
fn the_same_zone_on_etcd_3_5_16() {
    acceptance(Some("3.5.16"), "3.5.16", 14);
}

/// The acceptance of issue 2 on the etcd `release` (the bundle for `None`), which must
/// report `version`.
fn acceptance(release: Option<&str>, version: &str, subnet: u8) {
    let zone = TestZone::bootstrap("example.zone", subnet, 3);
    let etcd = common::etcd_release(release);
    for i in 0..3 {
        zone.set_etcd_bin(i, &etcd);
    }
    let mut running = zone.launch_all();
    zone.wait_healthy(&mut running);

    // exec: the PID we started is etcd's.
    let etcd = fs::canonicalize(&etcd).unwrap();
    for member in &running {
        let exe = fs::read_link(format!("/proc/{}/exe", member.pid())).unwrap();
        assert_eq!(exe, etcd, "launch must exec etcd in place");
    }
    // status names the release of every member and the cluster's version (etcd decides
    // the cluster version a moment after it has heard from every member: wait for it).
    let mut status = zone.status(0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while status.1["cluster_version"] == "3.0.0" && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(250));
        status = zone.status(0);
    }
    let (ok, json, err) = status;
    assert!(ok, "{err}\n{json}");
    for member in json["members"].as_array().unwrap() {
        assert_eq!(member["version"], version, "{json}");
    }
    let series = version.rsplit_once('.').unwrap().0;
    assert_eq!(json["cluster_version"], format!("{series}.0"), "{json}");
    check_tls_floor(&zone, version);
    check_learner_warning(&zone, &running, version);

    // Write on node1, read on node3, each with its own node's client certificate.
    let (ok, _, err) = zone.etcdctl(0, &zone.client_url(0), &["put", "greeting", "hello zone"]);
    assert!(ok, "put failed: {err}");
    let (ok, out, err) = zone.etcdctl(
        2,
        &zone.client_url(2),
        &["get", "greeting", "--print-value-only"],
    );
    assert!(ok, "get failed: {err}");
    assert_eq!(out.trim(), "hello zone");

    let ca = zone.tls(0, "ca.crt");
    let own_client = Identity {
        chain: zone.tls(0, "client.crt"),
        key: zone.tls(0, "client.key"),
    };
    let own_peer = Identity {
        chain: zone.tls(0, "peer.crt"),
        key: zone.tls(0, "peer.key"),
    };
    let client_port = zone.client_addr(1);
    let peer_port = zone.peer_addr(1);

    // Controls: the probe itself works with the right certificates.
    let answer = https_get(&client_port, &ca, Some(&own_client), "/version")
        .expect("client cert on client port");
    assert!(answer.contains("200"), "{answer}");
    let answer =
        https_get(&peer_port, &ca, Some(&own_peer), "/version").expect("peer cert on peer port");
    assert!(answer.contains("200"), "{answer}");

    // 1. No client certificate.
    assert!(
        https_get(&client_port, &ca, None, "/version").is_err(),
        "no client cert must be refused"
    );
    let (ok, _, _) = std::process::Command::new(common::bundled("etcdctl"))
        .args([
            &format!("--endpoints={}", zone.client_url(1)),
            &format!("--cacert={}", ca.display()),
        ])
        .args(["--command-timeout=3s", "get", "greeting"])
        .output()
        .map(|o| (o.status.success(), (), ()))
        .unwrap();
    assert!(!ok, "etcdctl without a client certificate must fail");

    // 2. A certificate from another zone's CA.
    let other_root = Authority::new_root("other.zone").unwrap();
    let other_node = NodeIdentity {
        zone: "other.zone".into(),
        node_name: "node1.other.zone".into(),
        address: None,
        member: true,
        tunneled: false,
    };
    let other_ca = other_root.issue_node_ca(&other_node).unwrap();
    let foreign = identity(
        zone.dir.path(),
        "foreign",
        &other_ca
            .issue_leaf(LeafKind::Client, &other_node, None)
            .unwrap(),
    );
    assert!(
        https_get(&client_port, &ca, Some(&foreign), "/version").is_err(),
        "another zone's cert must be refused"
    );

    // 3. A client certificate of this zone on the peer port.
    let refused = https_get(&peer_port, &ca, Some(&own_client), "/version");
    assert!(
        refused.is_err(),
        "client cert on the peer port must be refused: {refused:?}"
    );

    // 4. A leaf that node1's CA issued for node2's name and address.
    let node1_ca = Authority::load(
        &zone.node_dir(0).join("pki/node.crt"),
        &zone.node_dir(0).join("pki/node.key"),
    )
    .unwrap();
    let node2 = NodeIdentity {
        zone: zone.name.clone(),
        node_name: zone.members[1].0.clone(),
        address: Some(zone_pki::Host::parse(&zone.members[1].1)),
        member: true,
        tunneled: false,
    };
    for kind in [LeafKind::Client, LeafKind::Peer] {
        let forged = identity(
            zone.dir.path(),
            "forged",
            &node1_ca.issue_leaf(kind, &node2, None).unwrap(),
        );
        assert!(
            https_get(&client_port, &ca, Some(&forged), "/version").is_err(),
            "forged {kind:?} on client port"
        );
        assert!(
            https_get(&peer_port, &ca, Some(&forged), "/version").is_err(),
            "forged {kind:?} on peer port"
        );
    }

    // 5. A node the owner did not make a member cannot mint a peer certificate.
    run_activate_non_member(&zone);
    let outsider_dir = zone.path("outsider");
    let outsider_ca = Authority::load(
        &outsider_dir.join("pki/node.crt"),
        &outsider_dir.join("pki/node.key"),
    )
    .unwrap();
    let outsider = NodeIdentity {
        zone: zone.name.clone(),
        node_name: "client9.example.zone".into(),
        address: None,
        member: true,
        tunneled: false,
    };
    let fake_peer = identity(
        zone.dir.path(),
        "fake-peer",
        &outsider_ca
            .issue_leaf(LeafKind::Peer, &outsider, None)
            .unwrap(),
    );
    assert!(
        https_get(&peer_port, &ca, Some(&fake_peer), "/version").is_err(),
        "a non-member's peer cert must be refused"
    );
    // ...while its client certificate is a perfectly good client.
    let outsider_client = identity(
        zone.dir.path(),
        "outsider-client",
        &outsider_ca
            .issue_leaf(LeafKind::Client, &outsider, None)
            .unwrap(),
    );
    assert!(https_get(&client_port, &ca, Some(&outsider_client), "/version").is_ok());

    // A restarted member rejoins with its data and its still-valid leaves.
    let serial_before = fs::read(zone.tls(2, "server.crt")).unwrap();
    running.pop().unwrap().stop();
    running.push(zone.launch(2));
    zone.wait_healthy(&mut running);
    assert_eq!(
        fs::read(zone.tls(2, "server.crt")).unwrap(),
        serial_before,
        "valid leaves are reused"
    );
    let (ok, out, _) = zone.etcdctl(
        2,
        &zone.client_url(2),
        &["get", "greeting", "--print-value-only"],
    );
    assert!(
        ok && out.trim() == "hello zone",
        "restarted member serves the data: {out}"
    );
}

fn run_activate_non_member(zone: &TestZone) {
    let out = zone.path("outsider");
    common::run_ok(&activate_args(
        zone.path("ca").to_str().unwrap(),
        zone.path("zone.toml").to_str().unwrap(),
        "client9.example.zone",
        out.to_str().unwrap(),
    ));
}

#[test]
fn a_one_member_zone_launches() {
    let zone = TestZone::bootstrap("solo.zone", 11, 1);
    let mut running = zone.launch_all();
    zone.wait_healthy(&mut running);
    let (ok, _, err) = zone.etcdctl(0, &zone.client_url(0), &["put", "k", "v"]);
    assert!(ok, "{err}");
    let (ok, out, _) = zone.etcdctl(0, &zone.client_url(0), &["get", "k", "--print-value-only"]);
    assert!(ok && out.trim() == "v");
}

/// The TLS the launcher gave this release holds: TLS 1.3 works everywhere; TLS 1.2 is
/// refused where etcd has --tls-min-version, and limited to ECDHE-ECDSA with AES-GCM or
/// ChaCha20 where it does not (3.4.0-3.4.24, 3.5.0-3.5.7).
fn check_tls_floor(zone: &TestZone, version: &str) {
    let dry_run = common::run_ok(&[
        "launch",
        "--dry-run",
        "--config",
        zone.config(0).to_str().unwrap(),
    ]);
    let tls13_only = dry_run.lines().any(|l| l == "--tls-min-version=TLS1.3");
    let ciphers = dry_run.lines().any(|l| l.starts_with("--cipher-suites="));
    assert!(tls13_only != ciphers, "exactly one TLS floor:\n{dry_run}");
    assert_eq!(ciphers, version == "3.4.23", "{version}:\n{dry_run}");
    // The EnvironmentFile form says the same.
    let env = common::run_ok(&[
        "launch",
        "--dry-run",
        "--format",
        "env",
        "--config",
        zone.config(0).to_str().unwrap(),
    ]);
    assert_eq!(
        env.contains("\nETCD_CIPHER_SUITES=TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,"),
        ciphers,
        "{env}"
    );
    assert_eq!(
        env.contains("\nETCD_TLS_MIN_VERSION=TLS1.3\n"),
        tls13_only,
        "{env}"
    );
    let (ca, cert, key) = (
        zone.tls(0, "ca.crt"),
        zone.tls(0, "client.crt"),
        zone.tls(0, "client.key"),
    );
    let addr = zone.client_addr(0);
    let (done, text) = s_client(&addr, &ca, &cert, &key, &["-tls1_3"]);
    assert!(done, "{version}: TLS 1.3 refused:\n{text}");
    let strong = s_client(
        &addr,
        &ca,
        &cert,
        &key,
        &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"],
    );
    assert_eq!(
        strong.0, ciphers,
        "{version}: TLS 1.2 with ECDHE-ECDSA-AES128-GCM:\n{}",
        strong.1
    );
    for weak in [
        "AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES128-SHA",
        "ECDHE-ECDSA-AES256-SHA384",
    ] {
        let (done, text) = s_client(&addr, &ca, &cert, &key, &["-tls1_2", "-cipher", weak]);
        assert!(!done, "{version}: TLS 1.2 with {weak} accepted:\n{text}");
    }
}

/// 3.5.1-3.5.19 (etcd #19557) start with one warning line at launch, and `status` and
/// `check` show the same warning; other releases show none.
fn check_learner_warning(zone: &TestZone, running: &[common::Running], version: &str) {
    let affected = version == "3.5.16";
    let log = running[0].log();
    let launch_lines = log.lines().filter(|l| l.contains("#19557")).count();
    assert_eq!(
        launch_lines,
        usize::from(affected),
        "{version} launch log:\n{log}"
    );
    let config = zone.config(0);
    let (_, table, _) = common::run(&["status", "--config", config.to_str().unwrap()]);
    let status_lines = table
        .lines()
        .filter(|l| l.starts_with("warning: ") && l.contains("#19557") && l.contains("3.5.32"))
        .count();
    assert_eq!(
        status_lines,
        if affected { 3 } else { 0 },
        "{version} status:\n{table}"
    );
    let (_, check, _) = common::run(&["check", "--config", config.to_str().unwrap()]);
    assert!(
        check.contains(&format!("(version {version})")),
        "check names the local etcd's version:\n{check}"
    );
    assert_eq!(
        check
            .lines()
            .any(|l| l.starts_with("warning: ") && l.contains("#19557")),
        affected,
        "{version} check:\n{check}"
    );
}
