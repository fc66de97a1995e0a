//! `zone-etcd demo`: the main job, end to end, secure by default: the owner's printed
//! command line works, and the laptop's (a node that is not a member) works under its own
//! prefix and nowhere else. It owns 127.0.0.1-3:2379/2380, which no other test uses.

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the demo and its members by PID if the test fails half-way.
struct Guard(Vec<u32>);

impl Drop for Guard {
    fn drop(&mut self) {
        for pid in &self.0 {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
        }
    }
}

/// The last lines of every member's log the demo keeps in `zone` (for a failure's message).
fn member_logs(zone: &Path) -> String {
    let mut out = String::new();
    for entry in std::fs::read_dir(zone).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "log") {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(5)..].join("\n");
            out += &format!("--- {}:\n{tail}\n", path.display());
        }
    }
    out
}

#[test]
fn demo_runs_a_healthy_zone_and_stops_it_on_ctrl_c() {
    // First, a member that cannot start: something else holds node3's peer port. The
    // demo's one line says what the member said (launch's refusal naming the address),
    // not only where its log is, and it leaves no member running.
    {
        let held = std::net::TcpListener::bind("127.0.0.3:2380").expect("127.0.0.3:2380 free");
        let dir = tempfile::tempdir().unwrap();
        let out = common::zone_etcd()
            .args(["demo", "--dir", dir.path().join("zone").to_str().unwrap()])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        drop(held);
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().last().unwrap_or("");
        assert!(
            !out.status.success()
                && last.starts_with("zone-etcd: error: ")
                && last.contains("member node3.example.zone exited before the zone became healthy; it said last: ")
                && last.contains("127.0.0.3:2380"),
            "{}{err}\n{}",
            String::from_utf8_lossy(&out.stdout),
            member_logs(&dir.path().join("zone"))
        );
    }

    let dir = tempfile::tempdir().unwrap();
    let mut demo = common::zone_etcd()
        .args(["demo", "--dir", dir.path().join("zone").to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut guard = Guard(vec![demo.id()]);
    let mut lines = BufReader::new(demo.stdout.take().unwrap()).lines();
    let mut member_pids = Vec::new();
    let mut put = None;
    let mut own = None;
    let started = Instant::now();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(pid) = line.split_whitespace().skip_while(|w| *w != "pid").nth(1) {
            member_pids.push(pid.parse::<u32>().unwrap());
            guard.0.push(*member_pids.last().unwrap());
        }
        if line.trim_start().contains("etcdctl") && line.ends_with("put hello world") {
            put = Some(line.trim().to_string());
        }
        if line.contains("etcdctl") && line.contains("put nodes/laptop.example.zone/hello") {
            own = Some(line.trim().to_string());
        }
        if line.contains("press Ctrl-C") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "demo took too long"
        );
    }
    assert_eq!(
        member_pids.len(),
        3,
        "three members listed; the members' logs:\n{}",
        member_logs(&dir.path().join("zone"))
    );
    // The printed command works as printed.
    let put = put.expect("the demo prints an etcdctl command line");
    let words: Vec<&str> = put.split_whitespace().collect();
    let out = Command::new(words[0]).args(&words[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK");

    // Least privilege by default: the laptop (not a member) writes under its own prefix,
    // as printed, and nothing else: not the owner's key, not the keyspace, no snapshot.
    let own = own.expect("the demo prints the laptop's command line");
    let words: Vec<&str> = own.split_whitespace().collect();
    let etcdctl = |args: &[&str]| {
        // An --endpoints of the case's own replaces the printed one.
        let flags = words[1..words.len() - 3]
            .iter()
            .filter(|f| !(f.starts_with("--endpoints=") && args[0].starts_with("--endpoints=")));
        Command::new(words[0])
            .args(flags)
            .args(args)
            .output()
            .unwrap()
    };
    let out = etcdctl(&words[words.len() - 3..]);
    assert!(
        out.status.success(),
        "the laptop's own put: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let snapshot = dir.path().join("stolen.db");
    for args in [
        vec!["put", "hello", "mine"],
        vec!["get", "hello"],
        vec!["del", "", "--prefix"],
        vec!["get", "", "--prefix", "--keys-only"],
        // etcdctl asks one member for a snapshot.
        vec![
            "--endpoints=https://127.0.0.1:2379",
            "snapshot",
            "save",
            snapshot.to_str().unwrap(),
        ],
        vec!["user", "add", "eve:pw"],
    ] {
        let out = etcdctl(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("permission denied"),
            "the laptop ran `{}`: {}{err}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    assert!(!snapshot.exists(), "a snapshot was written");

    // Ctrl-C: the demo stops every member and exits cleanly.
    Command::new("kill")
        .arg("-INT")
        .arg(demo.id().to_string())
        .status()
        .unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = demo.wait().unwrap();
    assert!(
        status.success(),
        "demo exit: {status}; output after Ctrl-C: {rest:?}"
    );
    for pid in member_pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "member {pid} still running"
        );
    }
}
