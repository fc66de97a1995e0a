//! The checker finds nothing in correct histories: many seeds of the simulated etcd
//! (tests/history/common/sim.rs), small and at full size (2,000 operations, 8 clients), each
//! timed; and the binary's exit codes and messages on real files.

use crate::common;

use common::sim::{generate, Config};
use std::process::Command;
use std::time::Instant;
use zone_consistency::check_history;

#[test]
fn correct_histories_are_clean_on_many_seeds() {
    let start = Instant::now();
    let (mut ops, mut unknown, mut watch) = (0, 0, 0);
    for seed in 0..300 {
        let g = generate(Config::small(seed));
        let report = check_history(&g.history);
        assert!(
            report.anomalies.is_empty(),
            "seed {seed}: {}",
            report.anomalies[0]
        );
        ops += report.ops;
        unknown += g
            .history
            .ops
            .iter()
            .filter(|o| o.outcome == zone_consistency::Outcome::Unknown)
            .count();
        watch += report.watch_responses;
    }
    eprintln!(
        "300 histories, {ops} operations ({unknown} unknown), {watch} watch responses: {:.2} s",
        start.elapsed().as_secs_f64()
    );
    assert!(
        unknown > 300 && watch > 300,
        "the generator must exercise unknown outcomes and watches"
    );
}

#[test]
fn full_size_histories_are_clean_and_quick() {
    for seed in 0..4 {
        for (clients, keys) in [(5, 5), (10, 3)] {
            let cfg = Config {
                seed,
                clients,
                keys,
                ops: 2000,
                watchers: 4,
                unknown_per_mille: 30,
                failed_per_mille: 10,
            };
            let g = generate(cfg);
            let start = Instant::now();
            let report = check_history(&g.history);
            let took = start.elapsed();
            eprintln!("seed {seed}, {clients} clients, {keys} keys: {} operations, {} watch responses, checked in {:.3} s", report.ops, report.watch_responses, took.as_secs_f64());
            assert!(
                report.anomalies.is_empty(),
                "seed {seed}: {}",
                report.anomalies[0]
            );
            assert!(took.as_secs() < 60, "{took:?}");
        }
    }
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_zone-consistency"))
}

fn scratch(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("zone-consistency-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_binary_exits_0_1_2() {
    let g = generate(Config::small(7));
    let clean = scratch("clean.jsonl", &g.text);
    let out = bin().arg("check").arg(&clean).arg(&clean).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    assert!(stdout.contains("clean: "), "{stdout}");

    // An anomaly: a put that failed, read back. One line naming file, line, operation.
    let mut text = g.text.clone();
    text.push_str(r#"{"type":"op","client":900,"op":"put","key":"k0","value":"lost","call_ns":1,"return_ns":2,"outcome":"failed"}"#);
    text.push('\n');
    text.push_str(r#"{"type":"op","client":901,"op":"get","key":"k0","call_ns":3,"return_ns":4,"outcome":"ok","revision":2,"result_value":"lost","result_mod_revision":2}"#);
    text.push('\n');
    let bad = scratch("bad.jsonl", &text);
    let out = bin().arg("check").arg(&clean).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let n = text.lines().count();
    let want = format!(
        "{}: line {n}: client 901 get key \"k0\" called at 3 ns: phantom value",
        bad.display()
    );
    assert!(stderr.starts_with(&want), "{stderr}");

    // Malformed: file and line.
    let malformed = scratch(
        "malformed.jsonl",
        &format!("{}{{\"type\":\"op\"}}\n", g.text),
    );
    let out = bin().arg("check").arg(&malformed).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let want = format!(
        "{}: malformed history: line {}: ",
        malformed.display(),
        g.text.lines().count() + 1
    );
    assert!(stderr.starts_with(&want), "{stderr}");

    let out = bin()
        .arg("check")
        .arg("/nonexistent/history.jsonl")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .starts_with("/nonexistent/history.jsonl: cannot read it"));
    for args in [&[][..], &["check"][..], &["frob", "x"][..]] {
        let out = bin().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    std::fs::remove_dir_all(clean.parent().unwrap()).unwrap();
}

#[test]
fn mangled_histories_never_panic() {
    // One to three numbers replaced at random (zero, small, huge): either malformed (a
    // ParseError) or checked, never a panic.
    let mut rng = common::sim::Rng::new(99);
    let (mut checked, mut found) = (0, 0);
    for seed in 0..100 {
        let g = generate(Config {
            ops: 60,
            ..Config::small(seed)
        });
        let runs = g
            .text
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .count() as u64;
        for _ in 0..10 {
            let picks: Vec<u64> = (0..1 + rng.below(3)).map(|_| rng.below(runs)).collect();
            let mut text = String::with_capacity(g.text.len());
            let (mut run, mut in_run) = (0u64, false);
            for c in g.text.chars() {
                if !c.is_ascii_digit() {
                    if in_run {
                        run += 1;
                    }
                    in_run = false;
                    text.push(c);
                    continue;
                }
                if !in_run && picks.contains(&run) {
                    text.push_str(&match rng.below(3) {
                        0 => rng.below(20).to_string(),
                        1 => i64::MAX.to_string(),
                        _ => (rng.next() >> 1).to_string(),
                    });
                }
                if !picks.contains(&run) {
                    text.push(c);
                }
                in_run = true;
            }
            if let Ok(h) = zone_consistency::parse(&text) {
                found += usize::from(!check_history(&h).anomalies.is_empty());
                checked += 1;
            }
        }
    }
    eprintln!("{checked} mangled histories parsed, {found} with anomalies");
    assert!(checked > 200, "only {checked} mangled histories parsed");
}

#[test]
fn hard_histories_stay_well_under_a_minute() {
    // One key for everything, 10 clients, many unknown outcomes; without watchers or final
    // reads nothing places the unknown writes (the widest search), with them most are
    // placed or ruled out. With watchers, also a stale read late in the history, so the
    // search must exhaust every order of the 1,800 operations before it.
    for (seed, unknown, watchers) in [(1, 100, 0), (2, 200, 0), (3, 100, 3), (5, 200, 4)] {
        let cfg = Config {
            seed,
            clients: 10,
            keys: 1,
            ops: 2000,
            watchers,
            unknown_per_mille: unknown,
            failed_per_mille: 10,
        };
        let mut g = generate(cfg);
        if watchers == 0 {
            g.history.finals.clear();
        }
        let start = Instant::now();
        let report = check_history(&g.history);
        let took = start.elapsed();
        let unknowns = g
            .history
            .ops
            .iter()
            .filter(|o| o.outcome == zone_consistency::Outcome::Unknown)
            .count();
        eprintln!(
            "1 key, 10 clients, {} operations ({unknowns} unknown), {watchers} watchers: {:.3} s",
            report.ops,
            took.as_secs_f64()
        );
        assert!(
            report.anomalies.is_empty(),
            "seed {seed}: {}",
            report.anomalies[0]
        );
        assert!(took.as_secs() < 60, "{took:?}");
        if watchers > 0 {
            let late = g.history.ops.iter().map(|o| o.call_ns).max().unwrap_or(0) / 10 * 9;
            let (broken, what) = common::inject::stale_read_after(&g, late).expect("a late get");
            let start = Instant::now();
            let report = check_history(&broken);
            let took = start.elapsed();
            eprintln!(
                "  with a late stale read ({what}): {:.3} s",
                took.as_secs_f64()
            );
            assert!(report
                .anomalies
                .iter()
                .any(|a| a.rule == zone_consistency::Rule::Linearizable));
            assert!(took.as_secs() < 60, "{took:?}");
        }
    }
}
