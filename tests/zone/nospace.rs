//! A zone whose databases reached their quota (etcd's NOSPACE alarm) on real 3-member
//! zones with a 6 MiB quota: `status` names the alarm, the leader and the quorum and says
//! writes are refused and the fix, and `maintain` names live data that fills the quota
//! (`addresses::NOSPACE_FULL`); `maintain` brings a zone filled by history back in one run, 20
//! times in a row, while a client keeps writing (`addresses::NOSPACE_REFILL`); the owner's
//! revoke and zone publish go through a full database (`addresses::NOSPACE_TENANT`).

use crate::common;

use std::time::{Duration, Instant};

use common::{run, Running, TestZone};
use zone_testkit::addresses;

const QUOTA: u64 = 6 << 20;

/// A 3-member zone with a 6 MiB quota on 127.0.<subnet>.1-3, launched and healthy.
fn full_zone(zone_name: &str, subnet: u8) -> (TestZone, Vec<Running>) {
    let members = common::loopback_members(zone_name, subnet, 3);
    let pairs: Vec<(&str, &str)> = members
        .iter()
        .map(|(n, a)| (n.as_str(), a.as_str()))
        .collect();
    let text = format!(
        "{}\n[settings]\nquota_backend_bytes = {QUOTA}\n",
        common::zone_toml(zone_name, &pairs)
    );
    let zone = TestZone::from_zone_file(zone_name, &text, members, 2380, 2379);
    let mut running = zone.launch_all();
    zone.wait_healthy(&mut running);
    (zone, running)
}

/// Rewrites the same 5 keys of 250 KiB (about 1.2 MiB a transaction, under etcd's 1.5 MiB
/// request limit) until etcd refuses: the live data stays 1.2 MiB, the history fills the
/// quota. Returns how many rounds were accepted.
fn fill_to_nospace(zone: &TestZone) -> usize {
    let value = "x".repeat(250 * 1024);
    let ops: String = (0..5).map(|i| format!("put fill/{i} {value}\n")).collect();
    for round in 0..40 {
        let (ok, err) = zone.txn(0, &zone.client_url(round % 3), &ops);
        if !ok {
            assert!(
                err.contains("database space exceeded"),
                "round {round}: {err}"
            );
            return round;
        }
    }
    panic!("40 rounds of 1.2 MiB never filled a 6 MiB quota");
}

/// `etcdctl alarm list` through every member.
fn alarm_list(zone: &TestZone) -> String {
    let (ok, out, err) = zone.etcdctl(0, &zone.endpoints(), &["alarm", "list"]);
    assert!(ok, "{err}");
    out
}

/// The leader's member name, as etcd itself reports it.
fn etcd_leader(zone: &TestZone) -> String {
    let (ok, out, err) = zone.etcdctl(0, &zone.endpoints(), &["endpoint", "status", "-w", "json"]);
    assert!(ok, "{err}");
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rows = rows.as_array().unwrap();
    let leader = rows[0]["Status"]["leader"].as_u64().unwrap();
    let index = rows
        .iter()
        .position(|r| r["Status"]["header"]["member_id"].as_u64() == Some(leader))
        .expect("the leader is one of the members");
    zone.members[index].0.clone()
}

#[test]
fn status_under_nospace_names_the_alarm_the_leader_and_the_quorum() {
    let (zone, _running) = full_zone("full.zone", addresses::NOSPACE_FULL.subnet());
    fill_to_nospace(&zone);
    assert!(alarm_list(&zone).contains("NOSPACE"));
    let leader = etcd_leader(&zone);
    let config = zone.config(1);

    let (ok, out, err) = run(&["status", "--config", config.to_str().unwrap()]);
    assert!(!ok, "an active alarm exits 1:\n{out}");
    assert!(
        out.contains(&format!(
            "quorum: yes (3 of 3 voters healthy, 1 more may fail), leader: {leader}"
        )),
        "{out}"
    );
    assert!(!out.contains("UNHEALTHY"), "{out}");
    // The zone's policy, read and enforced under NOSPACE too.
    assert!(
        out.contains("access policy: node.toml (the members' own copy), 0 service(s), enforced; applied by node1.full.zone, node2.full.zone, node3.full.zone"),
        "{out}"
    );
    assert!(
        out.contains("writes are refused: NOSPACE")
            && out.contains("reached its quota_backend_bytes (6.0 MiB)")
            && out.contains("zone-etcd maintain"),
        "{out}"
    );
    let line = common::one_error_line(&err);
    assert!(
        line.contains("NOSPACE") && line.contains("writes are refused"),
        "{err}"
    );
    assert!(err.contains("zone-etcd maintain"), "{err}");

    let (ok, json, _) = zone.status(1);
    assert!(!ok, "{json}");
    assert_eq!(json["quorum"], true, "{json}");
    assert_eq!(json["leader"], leader.as_str(), "{json}");
    assert_eq!(json["voters"], 3, "{json}");
    assert_eq!(json["healthy_voters"], 3, "{json}");
    assert_eq!(json["fault_tolerance"], 1, "{json}");
    assert_eq!(json["alarms"][0]["alarm"], "NOSPACE", "{json}");
    assert_eq!(json["writes_refused"], true, "{json}");
    let why = json["writes_refused_because"].as_str().unwrap_or_default();
    assert!(why.contains("NOSPACE") && why.contains("quota"), "{json}");
    let fix = json["fix"].as_str().unwrap_or_default();
    assert!(fix.contains("zone-etcd maintain"), "{json}");
    for member in json["members"].as_array().unwrap() {
        assert_eq!(member["healthy"], true, "{json}");
        assert_eq!(
            member["leader"],
            member["name"] == leader.as_str(),
            "{json}"
        );
    }

    // Once maintained, status is clean again and says writes are accepted.
    let (ok, out, err) = run(&["maintain", "--config", config.to_str().unwrap()]);
    assert!(ok, "{err}\n{out}");
    let (ok, json, err) = zone.status(1);
    assert!(ok, "{err}\n{json}");
    assert_eq!(json["writes_refused"], false, "{json}");
    assert!(json["fix"].is_null(), "{json}");

    // Live data that fills the quota (distinct keys, no history to compact): maintain
    // defragments, cannot disarm, and says the data itself is too big.
    let value = "y".repeat(10 * 1024);
    let refused = (0..100).find(|round| {
        let ops: String = (0..20)
            .map(|i| format!("put live/{round:03}/{i:02} {value}\n"))
            .collect();
        let (ok, err) = zone.txn(1, &zone.client_url(1), &ops);
        assert!(ok || err.contains("database space exceeded"), "{err}");
        !ok
    });
    assert!(
        refused.is_some(),
        "100 rounds of 200 KiB never filled a 6 MiB quota"
    );
    let (ok, out, err) = run(&["maintain", "--config", config.to_str().unwrap()]);
    assert!(!ok, "{out}");
    let line = common::one_error_line(&err);
    assert!(
        line.contains("NOSPACE is still armed")
            && line.contains("its live data")
            && line.contains("raise quota_backend_bytes")
            && !line.contains("not answering"),
        "{err}"
    );
    assert_eq!(out.matches("defragmented").count(), 3, "{out}");
    assert!(out.contains("NOSPACE kept armed by"), "{out}");
}

#[test]
fn maintain_brings_a_nospace_zone_back_in_one_run_20_times_in_a_row() {
    let (zone, _running) = full_zone("refill.zone", addresses::NOSPACE_REFILL.subnet());
    let config = zone.config(0);
    let started = Instant::now();
    for attempt in 1..=20 {
        let rounds = fill_to_nospace(&zone);
        assert!(
            rounds >= 2,
            "attempt {attempt}: refused after {rounds} rounds"
        );
        assert!(alarm_list(&zone).contains("NOSPACE"), "attempt {attempt}");

        // A client keeps writing through every member while maintain runs, as a service
        // renewing its keys would: each member it reaches before its defragmentation raises
        // its own NOSPACE alarm, after maintain first listed them.
        let writing = std::sync::atomic::AtomicBool::new(true);
        let (ok, out, err) = std::thread::scope(|scope| {
            scope.spawn(|| {
                for i in 0.. {
                    if !writing.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    zone.etcdctl(0, &zone.client_url(i % 3), &["put", "busy", "1"]);
                }
            });
            let done = run(&["maintain", "--json", "--config", config.to_str().unwrap()]);
            writing.store(false, std::sync::atomic::Ordering::Relaxed);
            done
        });
        assert!(ok, "attempt {attempt}: maintain failed: {err}\n{out}");
        let report: serde_json::Value = serde_json::from_str(&out).unwrap();
        let rows = report["members"].as_array().unwrap();
        assert_eq!(rows.len(), 3, "attempt {attempt}: {report}");
        // Every member that held NOSPACE is defragmented; one that did not may be left
        // when its defragmentation would gain little (in one of 20 attempts on a fast
        // disk, the fill raised NOSPACE on one member while the others stood at 82% of
        // the quota, 16% of it free).
        let alarmed: Vec<&str> = report["alarms_before"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| a.as_str())
            .collect();
        for row in rows {
            let name = row["name"].as_str().unwrap();
            let held = alarmed.iter().any(|a| a.ends_with(&format!(" {name}")));
            if !held && row["action"] == "skipped: little to gain" {
                continue;
            }
            assert_eq!(row["action"], "defragmented", "attempt {attempt}: {report}");
            assert!(
                row["size_after"].as_i64().unwrap() < QUOTA as i64 / 2,
                "attempt {attempt}: {report}"
            );
        }
        assert!(
            rows.iter().any(|r| r["action"] == "defragmented"),
            "attempt {attempt}: {report}"
        );
        assert!(
            report["alarms_after"].as_array().unwrap().is_empty(),
            "attempt {attempt}: {report}"
        );
        assert_eq!(alarm_list(&zone).trim(), "", "attempt {attempt}");
        let (ok, _, err) = zone.etcdctl(0, &zone.client_url(2), &["put", "after", "maintain"]);
        assert!(ok, "attempt {attempt}: write refused after maintain: {err}");
    }
    eprintln!("20 fills and maintains in {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(600));
}

/// Issue 48, item 6: a database filled to NOSPACE in an enforcing zone; the owner's
/// `revoke` of a node and then a `zone publish` each succeed in one run (room made as
/// `maintain` would), and what they print is true (`addresses::NOSPACE_TENANT`). The zone
/// fills it itself (a member's writes): with quotas (issue 69) a tenant no longer can, and
/// a 6 MiB database has no room for any tenant's quota (`policy::room`), so the policy names
/// none.
#[test]
fn the_owners_emergency_goes_through_a_full_database() {
    const ZONE: &str = "tenant.zone";
    let members = common::loopback_members(ZONE, addresses::NOSPACE_TENANT.subnet(), 3);
    let pairs: Vec<(&str, &str)> = members
        .iter()
        .map(|(n, a)| (n.as_str(), a.as_str()))
        .collect();
    let access = "\n[access]\nenforce = true\nnodes = []\n";
    let text = format!(
        "{}\n[settings]\nquota_backend_bytes = {QUOTA}\n{access}",
        common::zone_toml(ZONE, &pairs)
    );
    let zone = TestZone::from_zone_file(ZONE, &text, members, 2380, 2379);
    let nas = zone.path("nodes").join("nas.tenant.zone");
    common::run_ok(&common::activate_args(
        zone.path("ca").to_str().unwrap(),
        zone.path("zone.toml").to_str().unwrap(),
        "nas.tenant.zone",
        nas.to_str().unwrap(),
    ));
    let mut running = zone.launch_all();
    zone.wait_healthy(&mut running);
    // A steady zone: every member's keeper has applied and recorded the policy, so no
    // keeper write is pending when the tenant fills the database. (A record still pending
    // then is retried each second and may land between the owner's disarm and his write,
    // taking the room the emergency made: seen on a loaded machine.)
    common::wait_for(
        Duration::from_secs(60),
        "every member records the policy",
        || {
            let (ok, json, _) = zone.status(0);
            ok && json["access"]["applied_by"].as_array().map(Vec::len) == Some(3)
        },
    );
    let rounds = fill_to_nospace(&zone);
    assert!(rounds >= 2, "refused after {rounds} rounds");
    assert!(alarm_list(&zone).contains("NOSPACE"));

    let config = zone.config(0);
    let (ok, out, err) = run(&[
        "revoke",
        "--ca",
        zone.path("ca").to_str().unwrap(),
        "--node",
        "nas.tenant.zone",
        "--config",
        config.to_str().unwrap(),
    ]);
    let said = || {
        running
            .iter()
            .map(|r| {
                r.log()
                    .lines()
                    .filter(|l| {
                        l.contains("access policy") || l.contains("CRL") || l.contains("NOSPACE")
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .collect::<Vec<_>>()
            .join("\n----\n")
    };
    assert!(
        ok,
        "revoke on a full database: {err}\n{out}\nwhat the members said:\n{}",
        said()
    );
    assert!(
        out.contains("NOSPACE disarmed") && out.contains("revoked nas.tenant.zone"),
        "{out}"
    );
    assert_eq!(
        alarm_list(&zone).trim(),
        "",
        "revoke said NOSPACE was disarmed"
    );
    let (ok, _, err) = zone.etcdctl(0, &zone.client_url(1), &["put", "after", "revoke"]);
    assert!(ok, "a write refused after revoke made room: {err}");

    // Filled again (nas is revoked now): zone publish goes through too. First
    // the keepers finish with nas (its users deleted): a write racing a change of etcd's
    // auth store is refused ("revision of auth store is old"), and etcdctl does not retry.
    common::wait_for(Duration::from_secs(10), "nas's users deleted", || {
        let (ok, out, _) = zone.etcdctl(0, &zone.endpoints(), &["user", "list"]);
        ok && !out.contains("nas.tenant.zone")
    });
    std::thread::sleep(Duration::from_secs(2));
    let rounds = fill_to_nospace(&zone);
    assert!(rounds >= 2, "refused after {rounds} rounds");
    let (ok, out, err) = run(&[
        "zone",
        "publish",
        "--ca",
        zone.path("ca").to_str().unwrap(),
        "--zone",
        zone.path("zone.toml").to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    assert!(ok, "zone publish on a full database: {err}\n{out}");
    assert!(out.contains("NOSPACE disarmed"), "{out}\n{err}");
    assert_eq!(alarm_list(&zone).trim(), "");
    drop(running);
}
