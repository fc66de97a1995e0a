//! Corruption seen (issue 51, item 3), on real etcd: bits flip under one member's etcd (a
//! value's bytes in its database file, changed in place while it runs, as a failing disk
//! or a bad memory stick would), the zone compacts, and etcd's compaction hash check (on
//! for every member) compares the members' hashes of the compacted history: the CORRUPT
//! alarm names that member, `status` says so (exit 1) with the fix, and the fix followed
//! word for word (stop the member, move its data directory aside, `join --replace`,
//! `etcdctl alarm disarm`) gives a zone that takes writes again, with the member's data
//! the others'. The corrupted data directory is kept for a post-mortem.
//!
//! Zone on `addresses::CORRUPTION` .1-3.

use crate::common;

use std::fs;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use common::{run, wait_for, Running, TestZone};
use serde_json::Value;
use zone_testkit::addresses;

const ZONE: &str = "corrupt.zone";
/// The value whose bytes flip on member 3's disk (unique in its database file).
const GOOD: &str = "zone-etcd-corruption-probe-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
const BAD: &str = "zone-etcd-corruption-probe-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB";
const BROKEN: usize = 2;

fn etcdctl(zone: &TestZone, endpoint: usize, args: &[&str]) -> (bool, String) {
    let out = zone
        .etcdctl_command(0, &zone.client_url(endpoint))
        .args(args)
        .output()
        .expect("etcdctl runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// Where `needle` is in `haystack`.
fn offsets(haystack: &[u8], needle: &[u8]) -> Vec<usize> {
    haystack
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn a_member_whose_data_differ_is_named_by_the_corrupt_alarm_and_rebuilt_as_status_says() {
    let zone = TestZone::bootstrap(ZONE, addresses::CORRUPTION.subnet(), 3);
    let mut running = zone.launch_all();
    zone.wait_healthy(&mut running);
    let (ok, out) = etcdctl(&zone, 0, &["put", "app/probe", GOOD]);
    assert!(ok, "{out}");
    // Writes after it, so that its page of the database is not the last one (the one each
    // new revision's write copies and rewrites).
    let filler = "f".repeat(400);
    for i in 0..40 {
        let (ok, out) = etcdctl(&zone, 0, &["put", &format!("app/k{i}"), &filler]);
        assert!(ok, "{out}");
    }

    // Member 3's database file holds the value once its backend committed (100 ms
    // batches); its bytes flip there, in place, while its etcd runs (the page cache its
    // read-only map reads). A commit that was copying the page when it flipped writes the
    // value anew elsewhere: flipped again until member 3's etcd answers the flipped value.
    let db = zone.node_dir(BROKEN).join("state/data/member/snap/db");
    let get = |i: usize| {
        let (_, out) = etcdctl(
            &zone,
            i,
            &["get", "app/probe", "--consistency=s", "--print-value-only"],
        );
        out.trim().to_string()
    };
    wait_for(
        Duration::from_secs(20),
        "member 3's etcd to answer the flipped value",
        || {
            let found = offsets(&fs::read(&db).unwrap(), GOOD.as_bytes());
            let file = fs::OpenOptions::new().write(true).open(&db).unwrap();
            for at in &found {
                file.write_all_at(BAD.as_bytes(), *at as u64).unwrap();
            }
            drop(file);
            std::thread::sleep(Duration::from_millis(300));
            get(BROKEN) == BAD
        },
    );
    assert_eq!(get(0), GOOD, "the others answer the written value");

    // A compaction at the zone's revision: each member hashes the history it compacts,
    // and the leader compares the hashes every minute.
    let (ok, out) = etcdctl(&zone, 0, &["endpoint", "status", "-w", "json"]);
    assert!(ok, "{out}");
    let status: Value = serde_json::from_str(&out).unwrap();
    let revision = status[0]["Status"]["header"]["revision"].as_u64().unwrap();
    let (ok, out) = etcdctl(&zone, 0, &["compaction", &revision.to_string()]);
    assert!(ok, "{out}");

    let broken_name = zone.members[BROKEN].0.clone();
    let config = zone.config(0);
    let deadline = Instant::now() + Duration::from_secs(150);
    let json = loop {
        let (ok, json, _) = zone.status(0);
        let named = json["alarms"].as_array().is_some_and(|alarms| {
            alarms
                .iter()
                .any(|a| a["alarm"] == "CORRUPT" && a["member"] == broken_name.as_str())
        });
        if named {
            assert!(!ok, "status exits 0 with a CORRUPT alarm: {json}");
            break json;
        }
        assert!(
            Instant::now() < deadline,
            "no CORRUPT alarm on {broken_name} within 150 s of the compaction: {json}\n{}",
            running[0].log()
        );
        std::thread::sleep(Duration::from_secs(2));
    };
    let alarms = json["alarms"].as_array().unwrap();
    assert_eq!(alarms.len(), 1, "only member 3 is named: {json}");
    let (ok, text, _) = run(&["status", "--config", config.to_str().unwrap()]);
    assert!(!ok);
    let said = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line: {text}"))
            .to_string()
    };
    assert_eq!(
        said("alarms: "),
        format!("alarms: CORRUPT on {broken_name}")
    );
    let fix = said("fix: ");
    for step in [
        "stop it",
        "mv <state>/data <state>/data.corrupt",
        "zone-etcd join --replace",
        "etcdctl alarm disarm",
    ] {
        assert!(fix.contains(step), "{fix}");
    }
    // The zone refuses writes now.
    let (ok, out) = etcdctl(&zone, 0, &["put", "app/after", "x"]);
    assert!(!ok, "a write went through a CORRUPT alarm: {out}");

    // The fix, word for word: on the named member's node, stop it, move its data
    // directory aside, join --replace; then disarm the alarm.
    running.pop().unwrap().stop();
    let state = zone.node_dir(BROKEN).join("state");
    fs::rename(state.join("data"), state.join("data.corrupt")).unwrap();
    let mut join = common::zone_etcd();
    join.args([
        "join",
        "--replace",
        "--config",
        zone.config(BROKEN).to_str().unwrap(),
    ]);
    let node3 = Running::spawn(join, &zone.path("node3.join.log"));
    wait_for(
        Duration::from_secs(90),
        "member 3 back as a healthy voter",
        || {
            zone.status(0).1["members"]
                .as_array()
                .is_some_and(|members| {
                    members.iter().any(|m| {
                        m["name"] == broken_name.as_str()
                            && m["role"] == "voter"
                            && m["healthy"] == true
                    })
                })
        },
    );
    let (ok, out) = etcdctl(&zone, 0, &["alarm", "disarm"]);
    assert!(ok, "{out}\n{}", node3.log());
    let (ok, json, err) = zone.status(0);
    assert!(ok, "status after the fix: {json}{err}");
    let (ok, out) = etcdctl(&zone, 0, &["put", "app/after", "x"]);
    assert!(ok, "no write after the fix: {out}");
    let (_, three) = etcdctl(
        &zone,
        BROKEN,
        &["get", "app/probe", "--consistency=s", "--print-value-only"],
    );
    assert_eq!(three.trim(), GOOD, "member 3 rebuilt from the others");
    assert!(
        state.join("data.corrupt/member/snap/db").is_file(),
        "the corrupted data kept"
    );
    drop(node3);
    for member in running {
        member.stop();
    }
}
