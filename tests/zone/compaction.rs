//! A 3-member zone with the default settings (`addresses::COMPACTION`, .1-3) under a churn of
//! rewrites: etcd's periodic compaction (every member runs `--auto-compaction-mode=periodic
//! --auto-compaction-retention=5m`) compacts the old revisions by itself, and each
//! member's database keeps, besides the live keys, at most the writes of the last two
//! retention periods.
//!
//! etcd's periodic compactor samples the revision when the member starts, and first
//! compacts one retention later, up to that sample. So the test makes 20,000 rewrites,
//! restarts the members (a zone's members restart for upgrades and reboots), goes on with
//! a light churn and waits for the compaction of what was written just before the
//! restart: about 5 minutes. `scripts/test.sh` runs this binary beside the rest of the suite.

use crate::common;

use std::time::{Duration, Instant};

use common::TestZone;
use zone_testkit::addresses;

const KEYS: usize = 100;
const VALUE_BYTES: usize = 1024;

/// One transaction rewriting keys churn/000.. (`count` of them) with 1 KiB values.
fn rewrite(zone: &TestZone, count: usize, round: usize) {
    let value = format!("{round:08}").repeat(VALUE_BYTES / 8);
    let ops: String = (0..count)
        .map(|i| format!("put churn/{i:03} {value}\n"))
        .collect();
    let (ok, err) = zone.txn(0, &zone.endpoints(), &ops);
    assert!(ok, "rewrite round {round}: {err}");
}

/// Each member's (database size, size in use), from `etcdctl endpoint status`.
fn sizes(zone: &TestZone) -> Vec<(i64, i64)> {
    (0..3)
        .map(|i| {
            let (ok, out, err) = zone.etcdctl(
                0,
                &zone.client_url(i),
                &["endpoint", "status", "-w", "json"],
            );
            assert!(ok, "{err}");
            let status: serde_json::Value = serde_json::from_str(&out).unwrap();
            let status = &status[0]["Status"];
            (
                status["dbSize"].as_i64().unwrap(),
                status["dbSizeInUse"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn churn_with_the_default_settings_is_compacted_and_the_database_stays_bounded() {
    let zone = TestZone::bootstrap("churn.zone", addresses::COMPACTION.subnet(), 3);
    let argv = common::run_ok(&[
        "launch",
        "--dry-run",
        "--config",
        zone.config(0).to_str().unwrap(),
    ]);
    for flag in [
        "--auto-compaction-mode=periodic",
        "--auto-compaction-retention=5m",
        "--quota-backend-bytes=2147483648",
    ] {
        assert!(argv.lines().any(|l| l == flag), "{flag} not in\n{argv}");
    }
    let mut running = zone.launch_all();
    zone.wait_healthy(&mut running);

    // 20,000 rewrites of 1 KiB; `first`, the revision of the next to last, is what the
    // compaction after the restart must take, and not sooner than one retention: written
    // moments before the restart, so no compaction before it (up to a revision at least
    // one retention old; the rewrites take minutes on a loaded machine) took it already.
    // Read back: the keepers write their records now and then.
    for round in 0..199 {
        rewrite(&zone, KEYS, round);
    }
    let (ok, out, err) = zone.etcdctl(0, &zone.endpoints(), &["get", "churn/000", "-w", "json"]);
    assert!(ok, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let first = json["kvs"][0]["mod_revision"]
        .as_i64()
        .expect("churn/000's revision");
    rewrite(&zone, KEYS, 199);
    let (ok, out, err) = zone.etcdctl(
        0,
        &zone.endpoints(),
        &["get", "churn/000", &format!("--rev={first}")],
    );
    assert!(
        ok && out.contains("churn/000"),
        "revision {first} readable: {err}"
    );
    let before = sizes(&zone);
    for (file, in_use) in &before {
        assert!(*in_use > 20_000 * VALUE_BYTES as i64, "{file} {in_use}");
    }

    // The members restart; their compactors start from the current revision.
    for member in running.drain(..) {
        member.stop();
    }
    let mut running = zone.launch_all();
    zone.wait_healthy(&mut running);
    let restarted = Instant::now();

    // A light churn, 10 rewrites a second (50 every 5 s: one etcdctl for the writes and
    // one for the look, not ten), until `first` is compacted.
    let mut rewrites_since = 0usize;
    let mut round = 200;
    let compacted = loop {
        rewrite(&zone, 50, round);
        rewrites_since += 50;
        round += 1;
        let (ok, _, err) = zone.etcdctl(
            0,
            &zone.endpoints(),
            &["get", "churn/000", &format!("--rev={first}")],
        );
        if !ok {
            assert!(err.contains("compacted"), "{err}");
            break restarted.elapsed();
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(450),
            "revision {first} still readable 7.5 minutes after the restart:\n{}",
            running[0].log()
        );
        std::thread::sleep(Duration::from_millis(4900));
    };
    eprintln!("revision {first} compacted {compacted:?} after the restart");
    assert!(
        compacted >= Duration::from_secs(240),
        "compacted after {compacted:?}: sooner than one retention period"
    );

    // The stated bound: the live keys and the writes since the restart (the history the
    // compaction keeps), at 1.5 KiB a rewrite, plus 2 MiB.
    let bound = 2 * 1024 * 1024 + (rewrites_since as i64) * 1536;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = sizes(&zone);
        if now.iter().all(|(_, in_use)| *in_use <= bound) {
            for ((file, in_use), (old_file, old_in_use)) in now.iter().zip(&before) {
                eprintln!(
                    "in use {old_in_use} -> {in_use} (file {old_file} -> {file}), bound {bound}"
                );
                assert!(in_use * 2 < *old_in_use, "{in_use} vs {old_in_use}");
            }
            break;
        }
        assert!(
            Instant::now() < deadline,
            "sizes {now:?} over the bound {bound} a minute after the compaction"
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    for member in running {
        member.stop();
    }
}
