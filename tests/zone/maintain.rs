//! `zone-etcd maintain` on a real 3-member zone (`addresses::MAINTAIN`, .1-3): members defragmented
//! one by one under a writer that uses every endpoint, with no failed request; refused while a
//! voter is down unless --force.

use crate::common;

use std::time::Duration;

use common::{run, TestZone};
use zone_testkit::addresses;

/// Writes `rounds` transactions of 100 keys of 8 KiB through member 0, deletes them and
/// compacts the history physically: the members' database files are left mostly free
/// pages.
fn fill_and_free(zone: &TestZone, rounds: usize) {
    let value = "x".repeat(8 * 1024);
    for round in 0..rounds {
        let ops: String = (0..100)
            .map(|i| format!("put junk/{round:02}/{i:03} {value}\n"))
            .collect();
        let (ok, err) = zone.txn(0, &zone.client_url(0), &ops);
        assert!(ok, "txn {round}: {err}");
    }
    let (ok, _, err) = zone.etcdctl(0, &zone.client_url(0), &["del", "junk/", "--prefix"]);
    assert!(ok, "{err}");
    let (ok, out, err) = zone.etcdctl(
        0,
        &zone.client_url(0),
        &["endpoint", "status", "-w", "json"],
    );
    assert!(ok, "{err}");
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    let revision = status[0]["Status"]["header"]["revision"].as_i64().unwrap();
    let (ok, _, err) = zone.etcdctl(
        0,
        &zone.client_url(0),
        &["compact", &revision.to_string(), "--physical"],
    );
    assert!(ok, "{err}");
}

fn members(json: &serde_json::Value) -> Vec<serde_json::Value> {
    json["members"].as_array().cloned().unwrap_or_default()
}

#[test]
fn maintain_defragments_one_by_one_under_writes_and_refuses_with_a_voter_down() {
    let zone = TestZone::bootstrap("tidy.zone", addresses::MAINTAIN.subnet(), 3);
    let mut running = zone.launch_all();
    zone.wait_healthy(&mut running);
    fill_and_free(&zone, 6);

    let load = zone.failover_load(&[], "tidy", Duration::from_millis(30));
    std::thread::sleep(Duration::from_millis(500));
    let config = zone.config(0);
    let (ok, out, err) = run(&["maintain", "--json", "--config", config.to_str().unwrap()]);
    assert!(ok, "{err}\n{out}");
    std::thread::sleep(Duration::from_millis(500));
    let result = load.stop();
    assert!(
        result.failures.is_empty(),
        "requests failed while defragmenting: {:?}",
        result.failures
    );
    assert!(
        result.acknowledged.len() > 20,
        "{}",
        result.acknowledged.len()
    );
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rows = members(&report);
    assert_eq!(rows.len(), 3, "{report}");
    for row in &rows {
        assert_eq!(row["action"], "defragmented", "{report}");
        let (before, after) = (
            row["size_before"].as_i64().unwrap(),
            row["size_after"].as_i64().unwrap(),
        );
        assert!(after * 2 < before, "{}: {before} -> {after}", row["name"]);
    }
    // The leader goes last.
    let (_, status, _) = zone.status(0);
    let leader = status["leader"].as_str().unwrap_or_default().to_string();
    assert_eq!(rows[2]["name"], leader, "{report}");

    // A second run finds nothing worth doing.
    let (ok, out, err) = run(&["maintain", "--config", config.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert_eq!(out.matches("skipped: little to gain").count(), 3, "{out}");

    // One voter down: refused in one line, nothing done; --force handles the others and
    // names the one it could not.
    running.pop().unwrap().stop();
    let (ok, out, err) = run(&["maintain", "--config", config.to_str().unwrap()]);
    assert!(!ok, "{out}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].contains("node3.tidy.zone") && lines[0].contains("--force"),
        "{err}"
    );
    assert!(out.is_empty(), "{out}");
    let (ok, out, err) = run(&["maintain", "--force", "--config", config.to_str().unwrap()]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("node3.tidy.zone: - (in use -) -> -: failed: not answering"),
        "{out}"
    );
    assert!(
        err.contains("members not maintained: node3.tidy.zone"),
        "{err}"
    );
}
