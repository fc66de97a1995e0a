//! Revocation (issue 25): `zone-etcd revoke` locks a client node and a member out of a
//! running zone within seconds, on both ports and through gRPC and the HTTP gateway alike,
//! cuts a watch the client held open, removes the member, and the zone serves throughout;
//! forged and older CRLs are refused and change nothing; a revoked member cannot launch.
//!
//! Addresses: members on `addresses::REVOCATION` .1-3; the nameservice zone on
//! `addresses::REVOCATION_NAMESERVICE` .1-3 and .100.

use crate::common;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use common::revocation::*;
use common::*;
use zone_testkit::addresses;

const ZONE: &str = "revoke.zone";
const LAPTOP: &str = "laptop.revoke.zone";

/// Whether a peer port at `addr` answers `identity` (its /version over a new connection).
fn peer_answers(addr: &str, ca: &Path, identity: &Identity) -> bool {
    https_get(addr, ca, Some(identity), "/version").is_ok_and(|s| s.contains(" 200"))
}

fn crl_number(state: &Path) -> Option<u64> {
    let text = fs::read_to_string(state.join("revocations.json")).ok()?;
    let doc: serde_json::Value = serde_json::from_str(&text).ok()?;
    let crl = zone_pki::revocation::Crl::parse_pem(doc["crl"].as_str()?).ok()?;
    Some(crl.number)
}

fn state_files(zone: &TestZone, index: usize) -> (Vec<u8>, Vec<u8>) {
    let state = zone.node_dir(index).join("state");
    (
        fs::read(state.join("crl.der")).unwrap_or_default(),
        fs::read(state.join("revocations.json")).unwrap_or_default(),
    )
}

#[test]
fn a_revoked_client_and_member_are_locked_out_within_seconds_while_the_zone_serves() {
    let zone = TestZone::bootstrap(ZONE, addresses::REVOCATION.subnet(), 3);
    let mut running = zone.launch_all();
    zone.wait_healthy(&mut running);
    // The zone has revoked nothing, and each member's keeper notes it
    // (state/revocations.none). So member 1 restarts at once while member 0 hangs
    // (SIGSTOP: its ports take connections and answer nothing, as a member replaying a long
    // WAL on a loaded machine does) and member 2 is down: there is nothing it could serve
    // without. (Without the note it waited 10 s and refused to start, cc97.)
    let state = |i: usize| zone.node_dir(i).join("state");
    common::wait_for(
        Duration::from_secs(20),
        "every keeper notes that the zone has no revocations",
        || (0..3).all(|i| state(i).join("revocations.none").exists()),
    );
    assert!(!state(1).join("revocations.json").exists());
    running.remove(2).stop();
    running.remove(1).stop();
    running[0]
        .signal(nix::sys::signal::Signal::SIGSTOP)
        .unwrap();
    let mut restarted = zone.launch(1);
    let serves = || std::net::TcpStream::connect(zone.client_addr(1)).is_ok();
    let mut started = false;
    for _ in 0..300 {
        started = serves();
        if started || !restarted.is_running() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    running[0]
        .signal(nix::sys::signal::Signal::SIGCONT)
        .unwrap();
    assert!(
        started && restarted.is_running(),
        "member 1 of a zone that revoked nothing did not start while member 0 hung:\n{}",
        restarted.log()
    );
    running.push(restarted);
    running.push(zone.launch(2));
    zone.wait_healthy(&mut running);
    // Launch gives etcd a CRL on both ports (the client port's without the node CAs: it
    // trusts the client root alone in this enforcing zone), and never the flag that makes
    // etcd skip it on gRPC (GHSA-3wh4-j44w-pg92).
    let dry = run_ok(&[
        "launch",
        "--dry-run",
        "--config",
        zone.config(0).to_str().unwrap(),
    ]);
    let crl_file = zone.node_dir(0).join("state/crl.der");
    let client_crl_file = zone.node_dir(0).join("state/client-crl.der");
    assert!(
        dry.contains(&format!("--client-crl-file={}", client_crl_file.display())),
        "{dry}"
    );
    assert!(
        dry.contains(&format!("--peer-crl-file={}", crl_file.display())),
        "{dry}"
    );
    assert!(!dry.contains("listen-client-http-urls"), "{dry}");
    assert!(
        crl_file.exists() && client_crl_file.exists(),
        "launch wrote etcd's CRL files"
    );

    // A client-only node, activated and holding a watch.
    let laptop = zone.path("laptop");
    run_ok(&activate_args(
        zone.path("ca").to_str().unwrap(),
        zone.path("zone.toml").to_str().unwrap(),
        LAPTOP,
        laptop.to_str().unwrap(),
    ));
    run_ok(&[
        "env",
        "--config",
        laptop.join("node.toml").to_str().unwrap(),
    ]);
    let (ca, laptop_id) = client_identity(&laptop);
    let addrs: Vec<String> = (0..3).map(|i| zone.client_addr(i)).collect();
    for addr in &addrs {
        assert!(
            grpc_reads(addr, &ca, &laptop_id) && http_reads(addr, &ca, &laptop_id),
            "{addr}"
        );
    }
    let watch_log = zone.path("laptop-watch.log");
    let mut watch_cmd = etcdctl_as(&ca, &laptop_id.chain, &laptop_id.key, &zone.endpoints());
    watch_cmd.args(["watch", "--prefix", "nodes/laptop.revoke.zone/watched/"]);
    let watch = Running::spawn(watch_cmd, &watch_log);
    let watch_pid = watch.pid();
    // Writes until the watch (connecting meanwhile) sees one.
    let mut n = 0;
    wait_for(
        Duration::from_secs(10),
        "the laptop's watch sees a write",
        || {
            n += 1;
            let (ok, _, err) = zone.etcdctl(
                0,
                &zone.endpoints(),
                &[
                    "put",
                    &format!("nodes/laptop.revoke.zone/watched/before-{n}"),
                    "1",
                ],
            );
            assert!(ok, "{err}");
            std::thread::sleep(Duration::from_millis(100));
            fs::read_to_string(&watch_log)
                .unwrap_or_default()
                .contains("nodes/laptop.revoke.zone/watched/before")
        },
    );
    assert!(!connections_of(watch_pid, &[zone.client_port]).is_empty());

    // A writer using the members that stay, failing over between them.
    let stay = [zone.client_addr(0), zone.client_addr(1)];
    let writer = WriteLoad::start_failover(
        &stay,
        &zone.tls(0, "ca.crt"),
        &Identity {
            chain: zone.tls(0, "client.crt"),
            key: zone.tls(0, "client.key"),
        },
        "load",
        Duration::from_millis(40),
    );
    std::thread::sleep(Duration::from_secs(1));

    // Revoke the laptop through member 0's bundle.
    let config0 = zone.config(0);
    let ca_dir = zone.path("ca");
    let out = run_ok(&[
        "revoke",
        "--ca",
        ca_dir.to_str().unwrap(),
        "--node",
        LAPTOP,
        "--config",
        config0.to_str().unwrap(),
    ]);
    let revoked_at = Instant::now();
    assert!(out.contains("CRL number 1 published"), "{out}");
    let number_1 = fs::read(zone.path("ca/revocations.json")).unwrap();

    // Within the promise: every member refuses the laptop's new connections, through the
    // HTTP gateway and through gRPC.
    let times = refused_times(&addrs, revoked_at, |a| http_reads(a, &ca, &laptop_id));
    eprintln!("members refused the laptop {times:?} after revoke returned");
    assert!(
        !any_grpc_reads(&addrs, &ca, &laptop_id),
        "a member serves the laptop over gRPC"
    );
    // The open watch is cut, on every member, and sees nothing written after.
    wait_for(
        PROMISE.saturating_sub(revoked_at.elapsed()),
        "the laptop's watch is cut",
        || connections_of(watch_pid, &[zone.client_port]).is_empty(),
    );
    let (ok, _, err) = zone.etcdctl(
        0,
        &zone.endpoints(),
        &["put", "nodes/laptop.revoke.zone/watched/after", "2"],
    );
    assert!(ok, "{err}");
    // A leaf the laptop's node CA issues now is refused too.
    let node_ca =
        zone_pki::Authority::load(&laptop.join("pki/node.crt"), &laptop.join("pki/node.key"))
            .unwrap();
    let identity = zone_pki::NodeIdentity {
        zone: ZONE.into(),
        node_name: LAPTOP.into(),
        address: None,
        member: false,
        tunneled: false,
    };
    let fresh = node_ca
        .issue_leaf(zone_pki::LeafKind::Client, &identity, None)
        .unwrap();
    let fresh_id = Identity {
        chain: zone.path("fresh.crt"),
        key: zone.path("fresh.key"),
    };
    fs::write(&fresh_id.chain, &fresh.chain_pem).unwrap();
    fs::write(&fresh_id.key, &fresh.key_pem).unwrap();
    assert!(addrs.iter().all(|a| !http_reads(a, &ca, &fresh_id)));
    assert!(
        !any_grpc_reads(&addrs, &ca, &fresh_id),
        "a member serves the fresh leaf"
    );
    std::thread::sleep(Duration::from_millis(500));
    let seen = fs::read_to_string(&watch_log).unwrap();
    assert!(
        !seen.contains("nodes/laptop.revoke.zone/watched/after"),
        "the revoked watch saw a later write:\n{seen}"
    );

    // Revoke member 2 (node3): locked out on both ports of the others, and removed.
    let node3 = zone.members[2].0.clone();
    let peer3 = Identity {
        chain: zone.tls(2, "peer.crt"),
        key: zone.tls(2, "peer.key"),
    };
    let client3 = Identity {
        chain: zone.tls(2, "client.crt"),
        key: zone.tls(2, "client.key"),
    };
    assert!(
        peer_answers(&zone.peer_addr(0), &ca, &peer3),
        "node3's peer cert works before"
    );
    let out = run_ok(&[
        "revoke",
        "--ca",
        ca_dir.to_str().unwrap(),
        "--node",
        &node3,
        "--config",
        config0.to_str().unwrap(),
    ]);
    let revoked_at = Instant::now();
    assert!(out.contains("CRL number 2 published"), "{out}");
    assert!(out.contains(&format!("removed {node3}")), "{out}");
    let peers: Vec<String> = (0..2).map(|i| zone.peer_addr(i)).collect();
    refused_times(&stay, revoked_at, |a| http_reads(a, &ca, &client3));
    refused_times(&peers, revoked_at, |a| peer_answers(a, &ca, &peer3));
    assert!(
        !any_grpc_reads(&stay, &ca, &client3),
        "a member serves node3 over gRPC"
    );
    let stay_endpoints = stay
        .iter()
        .map(|a| format!("https://{a}"))
        .collect::<Vec<_>>()
        .join(",");
    let (ok, members, err) = zone.etcdctl(0, &stay_endpoints, &["member", "list"]);
    assert!(ok, "{err}");
    assert!(!members.contains(&node3), "{members}");

    let result = writer.stop();
    assert!(
        result.failures.is_empty(),
        "the writer failed: {:?}",
        result.failures
    );
    assert!(
        result.acknowledged.len() > 50,
        "{}",
        result.acknowledged.len()
    );

    // node3's etcd stops (removed); its launch refuses, naming the revocation.
    let member3 = running.pop().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut member3 = member3;
    while Instant::now() < deadline && member3.child.try_wait().unwrap().is_none() {
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(member3);
    let (ok, _, err) = run(&["launch", "--config", zone.config(2).to_str().unwrap()]);
    assert!(!ok);
    let line = one_error_line(&err);
    assert!(
        line.contains(&format!("{node3} was revoked")) && line.contains("CRL number 2"),
        "{err}"
    );

    // Forged and older documents offered in the zone are refused by every member and
    // change nothing.
    let before: Vec<_> = (0..2).map(|i| state_files(&zone, i)).collect();
    let number_2 = before[0].1.clone();
    assert_eq!(crl_number(&zone.node_dir(0).join("state")), Some(2));
    // Another root under the zone's name signs number 9: refused by `revoke` itself,
    // and by every member when it is put in the zone directly.
    let forged_ca = zone.path("forged-ca");
    common::ca_init_previous_kind(ZONE, forged_ca.to_str().unwrap());
    let (ok, _, err) = run(&[
        "revoke",
        "--ca",
        forged_ca.to_str().unwrap(),
        "--node",
        LAPTOP,
        "--config",
        config0.to_str().unwrap(),
        "--node-ca",
        laptop.join("pki/node.crt").to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(
        one_error_line(&err).contains("not the root this zone trusts"),
        "{err}"
    );
    let forged = forge(&forged_ca, 9);
    for doc in [forged, number_1] {
        let text = String::from_utf8(doc).unwrap();
        let (ok, _, err) =
            zone.etcdctl(0, &stay_endpoints, &["put", "zone-etcd/revocations", &text]);
        assert!(ok, "{err}");
        std::thread::sleep(Duration::from_secs(2));
        let after: Vec<_> = (0..2).map(|i| state_files(&zone, i)).collect();
        assert!(after == before, "a refused CRL changed a member's files");
    }
    // The zone's copy is healed: a member put number 2 back.
    wait_for(
        Duration::from_secs(5),
        "a member puts number 2 back",
        || {
            let (_, value, _) = zone.etcdctl(
                0,
                &stay_endpoints,
                &["get", "--print-value-only", "zone-etcd/revocations"],
            );
            value.contains(&String::from_utf8_lossy(&number_2).to_string())
        },
    );
    // Each remaining member's keeper saw both offers on its watch; a keeper whose watch
    // was being re-established meanwhile reads the healed value instead, so one suffices.
    let log0 = running[0].log() + &running[1].log();
    assert!(
        log0.contains("is not signed by the zone root this node trusts"),
        "{log0}"
    );
    assert!(
        log0.contains("CRL number 1 is older than number 2"),
        "{log0}"
    );
    assert!(stay.iter().all(|a| !http_reads(a, &ca, &laptop_id)));
    assert!(!any_grpc_reads(&stay, &ca, &laptop_id));

    // status shows the zone's CRL; check exports the node's copy and its age.
    let (_, status, err) = zone.status(0);
    assert_eq!(status["crl"]["number"], 2, "{status}\n{err}");
    let revoked = status["crl"]["revoked"].to_string();
    assert!(
        revoked.contains(LAPTOP) && revoked.contains(&node3),
        "{revoked}"
    );
    let metrics = run(&[
        "check",
        "--format",
        "prometheus",
        "--config",
        config0.to_str().unwrap(),
    ])
    .1;
    let node1 = &zone.members[0].0;
    assert!(
        metrics.contains(&format!("zone_etcd_crl_number{{node=\"{node1}\"}} 2\n")),
        "{metrics}"
    );
    assert!(metrics.contains("zone_etcd_crl_age_seconds{"), "{metrics}");

    // A member that starts later has the zone's CRL before it serves: member 1, its copy
    // gone, restarts while member 0 runs. First while member 0 hangs (SIGSTOP: its ports
    // take connections and answer nothing): member 1 does not serve with a CRL that
    // revokes nothing (every revoked identity admitted until its keeper reads the zone's
    // copy); it refuses to start, in one line, and writes no CRL.
    let member1 = running.remove(1);
    member1.stop();
    let state1 = zone.node_dir(1).join("state");
    fs::remove_file(state1.join("revocations.json")).unwrap();
    fs::remove_file(state1.join("crl.der")).unwrap();
    fs::remove_file(state1.join("client-crl.der")).unwrap();
    running[0]
        .signal(nix::sys::signal::Signal::SIGSTOP)
        .unwrap();
    let mut hung_start = zone.launch(1);
    let exited = hung_start.wait_exit(Duration::from_secs(40));
    running[0]
        .signal(nix::sys::signal::Signal::SIGCONT)
        .unwrap();
    let said = hung_start.log();
    assert!(
        exited && hung_start.exit_status().is_some_and(|s| !s.success()),
        "member 1 started without the zone's CRL while member 0 hung:\n{said}"
    );
    assert!(
        said.contains("holds no copy of the zone's revocations")
            && said.contains("revocations.json"),
        "{said}"
    );
    assert!(
        !state1.join("crl.der").exists() && !state1.join("client-crl.der").exists(),
        "member 1 wrote a CRL it did not have"
    );
    drop(hung_start);
    let _member1 = zone.launch(1);
    wait_for(Duration::from_secs(20), "member 1 listens again", || {
        std::net::TcpStream::connect(zone.client_addr(1)).is_ok()
    });
    assert_eq!(
        crl_number(&state1),
        Some(2),
        "member 1 serves without the zone's CRL"
    );
    assert_eq!(
        fs::read(state1.join("crl.der")).unwrap(),
        state_files(&zone, 0).0
    );
    assert_eq!(
        fs::read(state1.join("client-crl.der")).unwrap(),
        fs::read(zone.node_dir(0).join("state/client-crl.der")).unwrap(),
        "member 1's client port serves without the zone's CRL"
    );
    drop(watch);
}

/// A zone whose nodes follow the nameservice (no member list in their node.toml) gets a
/// revocation the same way: a client node revoked through a member's bundle is refused
/// by every member within the promise. Members on `addresses::REVOCATION_NAMESERVICE`
/// .1-3, the nameservice on its .100.
#[test]
fn a_zone_following_the_nameservice_refuses_a_revoked_node_within_seconds() {
    const NS_ZONE: &str = "ns-revoke.zone";
    let laptop_name = format!("laptop.{NS_ZONE}");
    let members = loopback_members(NS_ZONE, addresses::REVOCATION_NAMESERVICE.subnet(), 3);
    let pairs: Vec<(&str, &str)> = members
        .iter()
        .map(|(n, a)| (n.as_str(), a.as_str()))
        .collect();
    let zone = TestZone::unmade(NS_ZONE, members.clone());
    let (ca, zone_file) = (zone.path("ca"), zone.path("zone.toml"));
    let s = |p: &Path| p.to_str().unwrap().to_string();
    fs::write(&zone_file, zone_toml(NS_ZONE, &pairs)).unwrap();
    common::ca_init_previous_kind(NS_ZONE, &s(&ca));
    run_ok(&[
        "zone",
        "sign",
        "--ca",
        &s(&ca),
        "--zone",
        &s(&zone_file),
        "--out",
        &s(&zone.path("zone.json")),
    ]);
    let nameservice = TestNameservice::start(&addresses::REVOCATION_NAMESERVICE.ip(100), NS_ZONE);
    nameservice.serve(&fs::read(zone.path("zone.json")).unwrap());
    for name in members
        .iter()
        .map(|(n, _)| n.as_str())
        .chain([laptop_name.as_str()])
    {
        let mut args = activate_args(
            &s(&ca),
            &s(&zone_file),
            name,
            &s(&zone.path(&format!("nodes/{name}"))),
        );
        args.extend(["--nameservice".to_string(), nameservice.url.clone()]);
        run_ok(&args);
    }
    let member_toml = fs::read_to_string(zone.config(0)).unwrap();
    assert!(!member_toml.contains("[[etcd]]"), "{member_toml}");
    let mut running = zone.launch_all();
    zone.wait_healthy(&mut running);

    let laptop = zone.path(&format!("nodes/{laptop_name}"));
    run_ok(&["env", "--config", &s(&laptop.join("node.toml"))]);
    let (ca_crt, laptop_id) = client_identity(&laptop);
    let addrs: Vec<String> = (0..3).map(|i| zone.client_addr(i)).collect();
    assert!(addrs.iter().all(|a| http_reads(a, &ca_crt, &laptop_id)));

    let out = run_ok(&[
        "revoke",
        "--ca",
        &s(&ca),
        "--node",
        &laptop_name,
        "--config",
        &s(&zone.config(0)),
    ]);
    let revoked_at = Instant::now();
    assert!(out.contains("CRL number 1 published"), "{out}");
    let times = refused_times(&addrs, revoked_at, |a| http_reads(a, &ca_crt, &laptop_id));
    eprintln!(
        "members following the nameservice refused the laptop {times:?} after revoke returned"
    );
    assert!(!any_grpc_reads(&addrs, &ca_crt, &laptop_id));
    // The members themselves still serve each other and their own clients.
    let (ok, _, err) = zone.etcdctl(0, &zone.endpoints(), &["put", "after-revoke", "1"]);
    assert!(ok, "{err}");
    drop(running);
}

/// A revocations document as `revoke` writes one, signed by the root in `ca_dir`.
fn forge(ca_dir: &Path, number: u64) -> Vec<u8> {
    use zone_node::revocation::doc::Revocations;
    let root = zone_pki::Authority::load(&ca_dir.join("ca.crt"), &ca_dir.join("ca.key")).unwrap();
    Revocations::issue(&root, number, &[], time::OffsetDateTime::now_utc(), 1)
        .unwrap()
        .to_json()
        .into_bytes()
}

/// The benchmark of BENCHMARKS.md "Revocation" (`scripts/bench.sh`, not the suite): ten
/// client nodes revoked one after another in a 3-member zone under a failover writer;
/// for each, the time from `revoke` returning to the last member refusing the node's new
/// connections, and the writer's p99 across the revocations against its p99 over as
/// long a stretch before them, in the same run. Writes `REVOKE_BENCH_OUT` (JSON).
#[test]
#[ignore = "a benchmark: scripts/bench.sh runs it"]
fn revocation_timing() {
    let zone = TestZone::bootstrap(ZONE, addresses::REVOCATION_TIMING.subnet(), 3);
    let mut running = zone.launch_all();
    zone.wait_healthy(&mut running);
    let addrs: Vec<String> = (0..3).map(|i| zone.client_addr(i)).collect();
    let ca = zone.tls(0, "ca.crt");
    let nodes: Vec<(String, Identity)> = (1..=10)
        .map(|i| {
            let name = format!("laptop{i}.{ZONE}");
            let dir = zone.path(&name);
            run_ok(&activate_args(
                zone.path("ca").to_str().unwrap(),
                zone.path("zone.toml").to_str().unwrap(),
                &name,
                dir.to_str().unwrap(),
            ));
            run_ok(&["env", "--config", dir.join("node.toml").to_str().unwrap()]);
            let tls = dir.join("state/tls/current");
            (
                name,
                Identity {
                    chain: tls.join("client.crt"),
                    key: tls.join("client.key"),
                },
            )
        })
        .collect();
    let writer_id = Identity {
        chain: zone.tls(0, "client.crt"),
        key: zone.tls(0, "client.key"),
    };
    let latencies = |r: &LoadResult| -> Vec<Duration> {
        r.sent_at
            .iter()
            .zip(&r.acknowledged_at)
            .map(|(s, a)| *a - *s)
            .collect()
    };
    let p99 = |mut v: Vec<Duration>| -> Duration {
        v.sort();
        v[(v.len() * 99 / 100).min(v.len() - 1)]
    };
    let mut times = Vec::new();
    let started = Instant::now();
    let writer =
        WriteLoad::start_failover(&addrs, &ca, &writer_id, "during", Duration::from_millis(30));
    for (name, id) in &nodes {
        assert!(addrs.iter().all(|a| http_reads(a, &ca, id)));
        run_ok(&[
            "revoke",
            "--ca",
            zone.path("ca").to_str().unwrap(),
            "--node",
            name,
            "--config",
            zone.config(0).to_str().unwrap(),
        ]);
        let since = Instant::now();
        times.push(
            *refused_times(&addrs, since, |a| http_reads(a, &ca, id))
                .iter()
                .max()
                .unwrap(),
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let during = writer.stop();
    let span = started.elapsed();
    let before =
        WriteLoad::start_failover(&addrs, &ca, &writer_id, "quiet", Duration::from_millis(30));
    std::thread::sleep(span);
    let quiet = before.stop();
    assert!(during.failures.is_empty(), "{:?}", during.failures);
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let json = serde_json::json!({
        "revocations": times.len(),
        "refused_after_ms": times.iter().map(|d| ms(*d)).collect::<Vec<_>>(),
        "median_ms": ms(times[times.len() / 2]),
        "worst_ms": ms(*times.last().unwrap()),
        "writer_p99_ms_during": ms(p99(latencies(&during))),
        "writer_p99_ms_without": ms(p99(latencies(&quiet))),
        "writer_writes_during": during.acknowledged.len(),
        "writer_failures_during": during.failures.len(),
    });
    eprintln!("{json}");
    if let Ok(out) = std::env::var("REVOKE_BENCH_OUT") {
        fs::write(out, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    }
}
