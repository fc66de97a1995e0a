//! A zone that knows its links (issue 51, item 2): each member's keeper reads its etcd's
//! peer round trips (`etcd_network_peer_round_trip_time_seconds`) a minute apart and
//! records the minute's p50 and p99 per peer at `zone-etcd/links/<member>`; `status`
//! shows them (`links` in `--json`, a `links of` line a member), and warns with the
//! `[settings]` lines that fit when the zone's timeouts are below what they need.
//!
//! Zone on `addresses::LINKS` .1-3.

use crate::common;

use std::time::Duration;

use common::{wait_for, TestZone};
use serde_json::Value;
use zone_testkit::addresses;

const ZONE: &str = "links.zone";

#[test]
fn every_member_records_its_round_trips_and_status_shows_them() {
    let zone = TestZone::bootstrap(ZONE, addresses::LINKS.subnet(), 3);
    let mut running = zone.launch_all();
    zone.wait_healthy(&mut running);

    // Two readings a minute apart: within 90 s every member has a record naming its two
    // peers, measured on loopback.
    let mut json = Value::Null;
    wait_for(
        Duration::from_secs(90),
        "every member's links recorded",
        || {
            json = zone.status(0).1;
            json["members"].as_array().is_some_and(|members| {
                members
                    .iter()
                    .all(|m| m["links"]["peers"].as_array().is_some_and(|p| p.len() == 2))
            })
        },
    );
    let names: Vec<&str> = zone.members.iter().map(|(n, _)| n.as_str()).collect();
    for member in json["members"].as_array().unwrap() {
        let name = member["name"].as_str().unwrap();
        let links = &member["links"];
        assert_eq!(links["format"], 1, "{links}");
        assert_eq!(links["member"], name, "{links}");
        for peer in links["peers"].as_array().unwrap() {
            let to = peer["peer"].as_str().unwrap();
            assert!(to != name && names.contains(&to), "{peer}");
            let (p50, p99) = (
                peer["p50_ms"].as_f64().unwrap(),
                peer["p99_ms"].as_f64().unwrap(),
            );
            assert!(p50 > 0.0 && p50 <= p99 && p99 < 100.0, "loopback: {peer}");
            assert!(peer["samples"].as_u64().unwrap() > 0, "{peer}");
        }
    }
    let (_, out, err) = common::run(&["status", "--config", zone.config(0).to_str().unwrap()]);
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("links of ")).collect();
    assert_eq!(lines.len(), 3, "{out}{err}");
    // Loopback needs nothing above etcd's defaults: no warning.
    assert!(!out.contains("below what its links need"), "{out}");
    for member in running {
        member.stop();
    }
}
