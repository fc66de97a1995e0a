//! A launch while this member's listen addresses are still held (real etcd): by the
//! member's previous etcd, slow to stop, it waits for it and starts; by an unrelated
//! process, it refuses in one line, exit 78, before anything is written
//! ([`zone_node::preflight::held`]).
//!
//! Subnets: `addresses::RELAUNCH_STOPPING` (the previous etcd stopping), `addresses::RELAUNCH_HELD`
//! (a port held by this test). Every process started here is killed by its PID when dropped
//! ([`common::Running`]).

use crate::common;

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{one_error_line, snapshot, zone_etcd, Running, TestZone};
use zone_testkit::addresses;

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{name} {pid}");
}

/// What etcd prints when it could not bind, or a Go panic prints.
fn assert_no_bind_failure(log: &str) {
    for bad in ["address already in use", "goroutine ", "panic:"] {
        assert!(
            !log.contains(bad),
            "{bad:?} in the relaunch's output:\n{log}"
        );
    }
}

#[test]
fn a_relaunch_waits_for_the_previous_etcd_to_stop() {
    let zone = TestZone::bootstrap("stopping.zone", addresses::RELAUNCH_STOPPING.subnet(), 1);
    let mut first = vec![zone.launch(0)];
    zone.wait_healthy(&mut first);
    let mut previous = first.pop().expect("the first launch");
    let pid = previous.pid();

    // A stop that takes long: SIGTERM while etcd is stopped, so it exits only once it is
    // continued, still holding its ports and data directory meanwhile.
    signal(pid, "STOP");
    signal(pid, "TERM");
    let mut relaunch = Running::start(&zone.config(0), &zone.path("relaunch.log"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !relaunch
        .log()
        .contains("waiting up to 30s for the previous etcd")
    {
        if let Ok(Some(status)) = relaunch.child.try_wait() {
            panic!(
                "the relaunch exited ({status}) while the previous etcd still ran:\n{}",
                relaunch.log()
            );
        }
        assert!(
            Instant::now() < deadline,
            "the relaunch did not say it waits:\n{}",
            relaunch.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        relaunch.log().contains(&format!("pid {pid}")),
        "the wait names the previous etcd's PID:\n{}",
        relaunch.log()
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        relaunch.child.try_wait().expect("try_wait").is_none(),
        "the relaunch still waits:\n{}",
        relaunch.log()
    );

    // The previous etcd goes on, handles its SIGTERM and exits.
    signal(pid, "CONT");
    previous.child.wait().expect("the previous etcd exits");

    let mut relaunched = vec![relaunch];
    zone.wait_healthy(&mut relaunched);
    let log = relaunched[0].log();
    assert!(log.contains("exec "), "the relaunch started etcd:\n{log}");
    assert_no_bind_failure(&log);
}

#[test]
fn a_port_held_by_another_process_is_refused_before_anything_is_written() {
    let zone = TestZone::bootstrap("held.zone", addresses::RELAUNCH_HELD.subnet(), 1);
    let holder = TcpListener::bind(zone.client_addr(0)).expect("the test binds the client port");
    let before = snapshot(&zone.node_dir(0));

    let mut cmd = zone_etcd();
    cmd.args(["launch", "--config", zone.config(0).to_str().unwrap()]);
    let mut launch = Running::spawn(cmd, &zone.path("held.log"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = launch.child.try_wait().expect("try_wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "launch did not refuse:\n{}",
            launch.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = launch.log();
    assert_eq!(status.code(), Some(78), "{log}");
    let line = one_error_line(&log);
    assert!(line.contains(&zone.client_addr(0)), "{line}");
    assert!(
        line.contains(&format!("(pid {})", std::process::id())),
        "names the holder: {line}"
    );
    assert!(line.contains("kill "), "names the fix: {line}");
    assert_no_bind_failure(&log);
    assert_eq!(snapshot(&zone.node_dir(0)), before, "nothing written");
    drop(holder);
}
