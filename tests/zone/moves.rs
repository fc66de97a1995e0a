//! A member that moves (`addresses::MOVES`): the owner gives node3 a new address in the zone
//! file and re-activates it (its node CA is name-constrained to its address): `activate`
//! into a new directory, then node.toml and pki/ copied over node3's bundle, keeping its
//! state/. node3's next `launch` has the cluster record its new peer URL (MemberUpdate,
//! with quorum) and starts there: no data lost, no leave and join, under a writer that
//! uses every endpoint. Refused in one line: a move with no quorum answering.

use crate::common;

use std::fs;
use std::process::Command;
use std::time::Duration;

use common::{activate_args, run, run_ok, TestZone};
use zone_testkit::addresses;

const ZONE: &str = "moving.zone";

/// The owner moves node3 to `address`: a new zone file, node3 activated into a new
/// directory, its node.toml and pki/ copied over node3's bundle (state/ kept).
fn move_node3(zone: &TestZone, address: &str, file: &str) {
    let text = common::zone_toml(
        ZONE,
        &[
            (&format!("node1.{ZONE}"), &addresses::MOVES.ip(1)),
            (&format!("node2.{ZONE}"), &addresses::MOVES.ip(2)),
            (&format!("node3.{ZONE}"), address),
        ],
    );
    let zone_file = zone.path(file);
    fs::write(&zone_file, text).unwrap();
    let fresh = zone.path(&format!("{file}.node3"));
    run_ok(&activate_args(
        zone.path("ca").to_str().unwrap(),
        zone_file.to_str().unwrap(),
        &format!("node3.{ZONE}"),
        fresh.to_str().unwrap(),
    ));
    let bundle = zone.node_dir(2);
    fs::remove_dir_all(bundle.join("pki")).unwrap();
    for item in ["node.toml", "pki"] {
        let status = Command::new("cp")
            .arg("-a")
            .arg(fresh.join(item))
            .arg(&bundle)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

#[test]
fn a_member_moves_to_a_new_address_under_writes_and_keeps_its_data() {
    let zone = TestZone::bootstrap(ZONE, addresses::MOVES.subnet(), 3);
    let mut running = zone.launch_all();
    zone.wait_healthy(&mut running);
    let (_, status, _) = zone.status(0);
    let id_before = status["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == format!("node3.{ZONE}"))
        .map(|m| m["id"].clone())
        .unwrap();

    let load = zone.failover_load(
        &[&format!("{}:2379", addresses::MOVES.ip(13))],
        "move",
        Duration::from_millis(40),
    );
    std::thread::sleep(Duration::from_millis(500));

    // The move: stop node3, re-activate it at .13, launch.
    running.pop().unwrap().stop();
    move_node3(&zone, &addresses::MOVES.ip(13), "zone-moved.toml");
    let node3 = common::Running::start(&zone.config(2), &zone.path("node3.moved.log"));
    running.push(node3);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (ok, _, _) = zone.etcdctl(
            0,
            &format!("https://{}:2379", addresses::MOVES.ip(13)),
            &["endpoint", "health"],
        );
        if ok {
            break;
        }
        if let Ok(Some(status)) = running[2].child.try_wait() {
            panic!("node3 exited ({status}):\n{}", running[2].log());
        }
        assert!(
            std::time::Instant::now() < deadline,
            "node3 not healthy:\n{}",
            running[2].log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    std::thread::sleep(Duration::from_millis(500));
    let result = load.stop();
    assert!(result.failures.is_empty(), "{:?}", result.failures);
    assert!(
        result.acknowledged.len() > 20,
        "{}",
        result.acknowledged.len()
    );

    // Same member, new peer URL; every acknowledged write is on node3.
    let (ok, status, err) = zone.status(0);
    assert!(ok, "{err}\n{status}");
    let node3 = &status["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == format!("node3.{ZONE}"))
        .cloned()
        .unwrap();
    assert_eq!(node3["id"], id_before, "{status}");
    assert_eq!(
        node3["peer_urls"][0],
        format!("https://{}:2380", addresses::MOVES.ip(13)),
        "{status}"
    );
    let (ok, out, err) = zone.etcdctl(
        2,
        &format!("https://{}:2379", addresses::MOVES.ip(13)),
        &["get", "move/", "--prefix", "--keys-only", "--consistency=s"],
    );
    assert!(ok, "{err}");
    for key in &result.acknowledged {
        assert!(out.lines().any(|l| l == key), "{key} missing on node3");
    }

    // A move onto another member's address: the owner's activate refuses it, in one line,
    // and writes nothing.
    let clash = zone.path("zone-clash.toml");
    fs::write(
        &clash,
        common::zone_toml(
            ZONE,
            &[
                (&format!("node1.{ZONE}"), &addresses::MOVES.ip(1)),
                (&format!("node2.{ZONE}"), &addresses::MOVES.ip(2)),
                (&format!("node3.{ZONE}"), &addresses::MOVES.ip(1)),
            ],
        ),
    )
    .unwrap();
    let out_dir = zone.path("clash-node3");
    let (ok, _, err) = run(&activate_args(
        zone.path("ca").to_str().unwrap(),
        clash.to_str().unwrap(),
        &format!("node3.{ZONE}"),
        out_dir.to_str().unwrap(),
    ));
    assert!(!ok);
    let line = common::one_error_line(&err);
    assert!(
        line.contains(&format!(
            "{}:2380 is already used by etcd #1",
            addresses::MOVES.ip(1)
        )),
        "{err}"
    );
    assert!(!out_dir.exists());

    // A move with no quorum answering: refused, nothing changed.
    running.pop().unwrap().stop();
    for member in running.drain(..) {
        member.stop();
    }
    move_node3(&zone, &addresses::MOVES.ip(23), "zone-moved-again.toml");
    let before = common::snapshot(&zone.node_dir(2).join("state/data"));
    let (ok, _, err) = run(&["launch", "--config", zone.config(2).to_str().unwrap()]);
    assert!(!ok);
    let line = common::one_error_line(&err);
    assert!(
        line.contains(&format!(
            "https://{}:2380 -> https://{}:2380",
            addresses::MOVES.ip(13),
            addresses::MOVES.ip(23)
        )) && line.contains("no other member answered"),
        "{err}"
    );
    assert_eq!(
        common::snapshot(&zone.node_dir(2).join("state/data")),
        before
    );
}
