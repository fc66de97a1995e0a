//! The zone CA rotates on a real 3-member zone, in the README's phases: trust both roots
//! (rolling restart), re-activate under the new root (rotate, no restart), drop the old
//! root (rolling restart). The zone answers between every step and loses nothing; at the
//! end a certificate from the old root is refused everywhere.
//!
//! Subnet: 127.0.47.0/24.

mod common;

use std::fs;
use std::path::Path;

use common::*;

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Writes `key` through member `index` and insists it works.
fn put(zone: &TestZone, index: usize, key: &str) {
    let (ok, _, err) = zone.etcdctl(index, &zone.client_url(index), &["put", key, "v"]);
    assert!(ok, "put {key} through member {index}: {err}");
}

/// A service certificate from member `index`'s node CA, as a client identity.
fn issue_client(zone: &TestZone, index: usize, service: &str) -> Identity {
    let out = zone.path(service);
    run_ok(&[
        "issue-client",
        "--config",
        arg(&zone.config(index)),
        "--name",
        service,
        "--out",
        arg(&out),
    ]);
    Identity {
        chain: out.join("client.crt"),
        key: out.join("client.key"),
    }
}

/// Every node trusts the roots in `file` from now on (`zone-etcd trust`).
fn install_trust(zone: &TestZone, file: &Path) {
    for i in 0..zone.members.len() {
        run_ok(&["trust", "--config", arg(&zone.config(i)), "--ca", arg(file)]);
    }
}

/// Restarts the members one at a time, each healthy before the next (quorum kept).
fn rolling_restart(zone: &TestZone, running: &mut Vec<Running>, phase: &str) {
    for i in 0..running.len() {
        running.remove(i).stop();
        running.insert(i, zone.launch(i));
        zone.wait_healthy(running);
        put(zone, (i + 1) % 3, &format!("{phase}/restarted-{i}"));
    }
}

#[test]
fn the_zone_ca_rotates_in_phases_and_the_zone_keeps_serving() {
    let zone = TestZone::bootstrap("carot.zone", 47, 3);
    let mut running = zone.launch_all();
    zone.wait_healthy(&mut running);
    put(&zone, 0, "before");
    let legacy = issue_client(&zone, 0, "legacy");
    let old_ca = zone.path("ca");
    let new_ca = zone.path("ca-next");

    // Phase 1: every node trusts both roots; members restart one at a time.
    run_ok(&["ca", "rotate", "--ca", arg(&old_ca), "--out", arg(&new_ca)]);
    install_trust(&zone, &new_ca.join("trust.crt"));
    rolling_restart(&zone, &mut running, "phase1");

    // Phase 2: re-activated under the new root, leaves rotated while etcd runs.
    for i in 0..3 {
        let bundle = zone.path(&format!("reactivated-{i}"));
        run_ok(&activate_args(
            arg(&new_ca),
            arg(&zone.path("zone.toml")),
            &zone.members[i].0,
            arg(&bundle),
        ));
        let pki = zone.node_dir(i).join("pki");
        fs::rename(&pki, zone.node_dir(i).join("pki.old")).unwrap();
        fs::rename(bundle.join("pki"), &pki).unwrap();
        let before = serial(&zone.tls(i, "server.crt"));
        run_ok(&["rotate", "--config", arg(&zone.config(i))]);
        assert_ne!(serial(&zone.tls(i, "server.crt")), before);
        put(&zone, i, &format!("phase2/rotated-{i}"));
    }
    for member in running.iter_mut() {
        assert!(
            member.child.try_wait().unwrap().is_none(),
            "no restart in phase 2"
        );
    }
    zone.wait_healthy(&mut running);

    // Installing the new root alone before re-activation would cut a node off: refused.
    // (Checked on a copy of node 0's pre-phase-2 bundle.)
    let stale = zone.path("stale");
    fs::create_dir_all(&stale).unwrap();
    fs::copy(zone.config(0), stale.join("node.toml")).unwrap();
    fs::rename(zone.node_dir(0).join("pki.old"), stale.join("pki")).unwrap();
    let (ok, _, stderr) = run(&[
        "trust",
        "--config",
        arg(&stale.join("node.toml")),
        "--ca",
        arg(&new_ca.join("ca.crt")),
    ]);
    assert!(
        !ok && stderr.contains("does not hold the root that signed this node's CA"),
        "{stderr}"
    );

    // Phase 3: the old root is dropped everywhere; members restart one at a time.
    run_ok(&["ca", "retire", "--ca", arg(&new_ca)]);
    assert!(!new_ca.join("trust.crt").exists());
    install_trust(&zone, &new_ca.join("ca.crt"));
    rolling_restart(&zone, &mut running, "phase3");

    // Nothing written on the way is lost.
    let (ok, keys, err) = zone.etcdctl(
        2,
        &zone.endpoints(),
        &["get", "", "--prefix", "--keys-only"],
    );
    assert!(ok, "{err}");
    for key in [
        "before",
        "phase1/restarted-2",
        "phase2/rotated-1",
        "phase3/restarted-0",
    ] {
        assert!(keys.lines().any(|l| l == key), "{key} missing from {keys}");
    }
    // A certificate under the old root no longer opens any member; a new one does.
    let ca = new_ca.join("ca.crt");
    let old_identity = legacy;
    let new_identity = issue_client(&zone, 1, "fresh");
    for i in 0..3 {
        let addr = zone.client_addr(i);
        assert!(
            https_get(&addr, &ca, Some(&old_identity), "/version").is_err(),
            "member {i} still accepts the old root"
        );
        let status = https_get(&addr, &ca, Some(&new_identity), "/version").unwrap();
        assert!(status.contains(" 200 "), "{status}");
        let out = run_ok(&["check", "--config", arg(&zone.config(i))]);
        assert!(out.contains("no problems"), "{out}");
    }
}
