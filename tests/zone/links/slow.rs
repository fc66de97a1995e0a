//! A zone behind slow links (issue 51, items 2 and 5): three members on network-namespace
//! machines whose peer connections all go through zone-recorder's relays. The links are
//! long and their uplink saturates: 400-500 ms each way (a member an ocean away, behind a
//! home connection), and every [`PERIOD`] all of them stall [`STALL`] more at once (a
//! full upload buffer, every connection waiting behind it). With etcd's defaults (heartbeat 100 ms, election 1 s) each stall outlasts an
//! election timeout, so leaders change; each keeper records the round trips it sees, and
//! `check` and `status` warn that the zone's timeouts are below what its links need, with
//! the `[settings]` lines that fit. With those lines followed (copied into every
//! node.toml, the members restarted one at a time, the leader last), the same links for
//! the same time see no leader change. Leader changes are etcd's own count
//! (`etcd_server_leader_changes_seen_total`, what `ZoneEtcdLeaderChangesFrequent` reads),
//! the busiest member's, in both halves of one run.
//!
//! Machines on `addresses::SLOW_LINKS` .1-3, the test's thread on its clients' machine
//! .100.

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use zone_recorder::net::Net;
use zone_recorder::proxy::Delay;
use zone_recorder::zone::{LocalZone, Tools};
use zone_testkit::{addresses, Kind};

use crate::common;

/// How long each half counts leader changes.
const WATCHED: Duration = Duration::from_secs(60);
/// How often the uplink stalls, and for how long.
const PERIOD: Duration = Duration::from_secs(10);
const STALL: Duration = Duration::from_secs(2);

/// The links between stalls: 400-500 ms each way, about a second's round trip.
fn calm() -> Delay {
    Delay {
        base: Duration::from_millis(400),
        jitter: Duration::from_millis(100),
        ..Delay::default()
    }
}

/// Stalls every link [`STALL`] every [`PERIOD`] until `stop`, then lets them flow.
fn saturating_uplink(zone: &LocalZone, stop: &AtomicBool) {
    let relays = relays(zone);
    let wait = |d: Duration| {
        let until = Instant::now() + d;
        while Instant::now() < until && !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    while !stop.load(Ordering::SeqCst) {
        relays.set(calm());
        wait(PERIOD - STALL);
        relays.set(Delay {
            base: calm().base + STALL,
            ..calm()
        });
        wait(STALL);
    }
    relays.set(Delay::default());
}

/// The most leader changes any member's etcd has counted since it started.
fn leader_changes(zone: &LocalZone) -> u64 {
    (0..zone.members.len())
        .map(|i| {
            let text = metrics(zone, i);
            text.lines()
                .find_map(|l| l.strip_prefix("etcd_server_leader_changes_seen_total "))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or_else(|| panic!("member {i}'s metrics have no leader changes"))
                as u64
        })
        .max()
        .unwrap_or(0)
}

/// Member `i`'s metrics: on its machine's loopback (plain HTTP), read there with curl.
fn metrics(zone: &LocalZone, i: usize) -> String {
    let ns = zone.net.as_ref().expect("the machines").namespace(i);
    let out = Command::new("ip")
        .args(["netns", "exec", &ns, "curl", "-sS", "--max-time", "10"])
        .arg("http://127.0.0.1:2381/metrics")
        .output()
        .expect("ip netns exec runs (iproute2; scripts/test.sh installs curl)");
    assert!(
        out.status.success(),
        "member {i}'s metrics: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The leader changes of [`WATCHED`] behind the saturating uplink; then, until `more`
/// returns true, the uplink goes on saturating.
fn changes_behind_the_uplink(zone: &LocalZone, more: impl FnOnce()) -> u64 {
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        // Set when this closure ends, also by a panic: the scope joins the uplink's
        // thread before the panic goes on (a thread that never stops would hang the test
        // with its zone running).
        let _stop = StopOnDrop(&stop);
        let before = leader_changes(zone);
        s.spawn(|| saturating_uplink(zone, &stop));
        std::thread::sleep(WATCHED);
        let changes = leader_changes(zone) - before;
        more();
        changes
    })
}

struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn relays(zone: &LocalZone) -> &zone_recorder::proxy::Relays {
    zone.relays.as_ref().expect("the relays")
}

#[test]
fn a_zone_behind_slow_links_gets_the_settings_that_hold_it() {
    let tools = Tools {
        zone_etcd: PathBuf::from(env!("CARGO_BIN_EXE_zone-etcd")),
        bin_dir: common::repo().join("bin"),
    };
    let net = Net::new(addresses::SLOW_LINKS.subnet(), 3).unwrap_or_else(|e| panic!("{e}"));
    let mut zone = LocalZone::create_networked(&tools, Kind::LeastPrivilege, net, 3, "")
        .unwrap_or_else(|e| panic!("{e}"));
    zone.install_relays().unwrap_or_else(|e| panic!("{e}"));
    zone.launch_all().unwrap_or_else(|e| panic!("{e}"));
    zone.wait_healthy(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));

    // etcd's defaults behind the saturating uplink: leaders change, and the keepers
    // record the round trips (a minute's reading, put once it moved; the uplink goes on
    // saturating until member 1's record says so).
    let config = zone.config(0).display().to_string();
    let mut links = Value::Null;
    let with_defaults = changes_behind_the_uplink(&zone, || {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let (_, out) = zone.on_any(0, &["check", "--json"]).unwrap();
            links = serde_json::from_str::<Value>(&out).unwrap_or_default()["links"].clone();
            if links.get("warning").is_some() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "member 1's check did not warn that the timeouts are too low within 180 s: {links}\n{}",
                zone.log_tail(0)
            );
            std::thread::sleep(Duration::from_secs(2));
        }
    });
    let fits = &links["fits"];
    let (heartbeat, election) = (
        fits["heartbeat_interval_ms"].as_u64().unwrap(),
        fits["election_timeout_ms"].as_u64().unwrap(),
    );
    assert!(heartbeat > 100 && election == heartbeat * 10, "{links}");
    let warning = links["warning"].as_str().unwrap();
    assert!(
        warning.contains(&format!(
            "heartbeat_interval_ms = {heartbeat} and election_timeout_ms = {election}"
        )),
        "{warning}"
    );
    let (_, text) = zone.on_any(0, &["status"]).unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("warning: the zone's timeouts (heartbeat 100 ms, election 1000 ms) are below what its links need")),
        "{text}"
    );

    // The advice followed: the lines in every node.toml, the members restarted one at a
    // time, the leader last (on calm links, as an operator would pick the moment).
    let leader = zone.leader().unwrap_or_else(|e| panic!("{e}"));
    let order: Vec<usize> = (0..3).filter(|&i| i != leader).chain([leader]).collect();
    for i in order {
        let path = zone.config(i);
        let text = fs::read_to_string(&path).unwrap();
        assert!(!text.lines().any(|l| l.trim() == "[settings]"), "{text}");
        fs::write(
            &path,
            format!("{text}\n[settings]\nheartbeat_interval_ms = {heartbeat}\nelection_timeout_ms = {election}\n"),
        )
        .unwrap();
        zone.terminate(i).unwrap_or_else(|e| panic!("{e}"));
        zone.launch(i).unwrap_or_else(|e| panic!("{e}"));
        zone.wait_healthy(Duration::from_secs(120))
            .unwrap_or_else(|e| panic!("member {i} restarted: {e}"));
    }
    // Each member's etcd runs with them (zone-etcd execs etcd: the member's PID is etcd's).
    for i in 0..3 {
        let pid = zone.pid(i).expect("a running member");
        let argv = fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        let argv = String::from_utf8_lossy(&argv).replace('\0', " ");
        for flag in [
            format!("--heartbeat-interval={heartbeat} "),
            format!("--election-timeout={election} "),
        ] {
            assert!(argv.contains(&flag), "member {i}: {argv}");
        }
    }
    let with_fit = changes_behind_the_uplink(&zone, || {});
    eprintln!(
        "leader changes in {WATCHED:?} behind an uplink stalling {STALL:?} every {PERIOD:?}: {with_defaults} with etcd's defaults, {with_fit} with heartbeat {heartbeat} ms and election {election} ms ({config})"
    );
    assert!(
        with_defaults >= 2,
        "the defaults did not flap: {with_defaults} leader changes"
    );
    assert_eq!(with_fit, 0, "the settings that fit did not hold the zone");
}
