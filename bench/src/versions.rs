//! etcd 3.6.15 against 3.5.30 (issue 33): the bundle's etcd (etcd's official 3.6.15 in
//! bin/etcd) against the one before it (Debian's 3.5.30, which `scripts/fetch-etcd.sh
//! --compat` puts in bin/etcd-3.5.30/etcd), each in a real 3-member zone launched by
//! `zone-etcd launch` with `etcd_bin` pointed at the release, alternating across runs
//! (ABBA: 3.6.15 first in even runs, 3.5.30 first in odd ones), a fresh zone each time.
//! In each run and for each release:
//!
//! - the zone's start: `STARTS` starts over fresh data directories (leaves in place), from
//!   three `zone-etcd launch` to all three client ports listening and to all three members
//!   answering /health with true (what launch.rs measures, here for each release); the
//!   last start stays up for the rest;
//! - member memory: VmRSS (and RssAnon, RssFile) of each member's etcd, the process the
//!   launch became by exec, once healthy and empty, and after `KEYS` puts of `VALUE_BYTES`
//!   bytes (pitr.rs's writer of 8 clients over the three members, as fast as the zone
//!   takes them; its rate and the members' CPU time are recorded too); VmHWM at the end;
//! - write latency under a steady load: maintain's writer (one put of a new key every
//!   10 ms, round-robin over the members, `VALUE_BYTES` bytes) for `LOAD_SECONDS` over the
//!   100,000 keys; p50/p99 of the pooled requests of each release.
//!
//! Every member is killed by its PID at the end of each run, also on error. The figures
//! are ratios 3.6.15 / 3.5.30 from the same run, beside the absolute ones.
//!
//! Zones on `addresses::BENCH_VERSIONS_3_6` .1-3 (3.6.15) and `addresses::BENCH_VERSIONS_3_5`
//! .1-3 (3.5.30).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::maintenance::{self, Seen};
use crate::pitr;
use crate::support::*;
use zone_testkit::addresses::{self, Block};

/// Keys written before memory is read.
const KEYS: u64 = 100_000;
/// A realistic small value.
const VALUE_BYTES: usize = 256;
/// Zone starts per release and run.
const STARTS: usize = 4;
/// The steady writer's time per release and run.
const LOAD_SECONDS: u64 = 20;

/// A release under test: its version, binary (from the repository) and address block.
struct Release {
    version: &'static str,
    binary: &'static str,
    block: Block,
    zone: &'static str,
}

const RELEASES: [Release; 2] = [
    Release {
        version: "3.6.15",
        binary: "bin/etcd",
        block: addresses::BENCH_VERSIONS_3_6,
        zone: "etcd36.zone",
    },
    Release {
        version: "3.5.30",
        binary: "bin/etcd-3.5.30/etcd",
        block: addresses::BENCH_VERSIONS_3_5,
        zone: "etcd35.zone",
    },
];

/// What one run of one release measured.
#[derive(Default)]
struct Measured {
    listening_ms: Vec<f64>,
    healthy_ms: Vec<f64>,
    /// Per member, KiB: once healthy and empty; after the keys (VmRSS, RssAnon, RssFile);
    /// the peak (VmHWM) at the end.
    rss_empty: Vec<f64>,
    rss_keys: Vec<f64>,
    anon_keys: Vec<f64>,
    file_keys: Vec<f64>,
    hwm: Vec<f64>,
    fill_s: f64,
    fill_cpu_s: f64,
    seen: Seen,
    load: String,
}

/// The binary of `release`, checked to answer `--version` with its version.
fn binary(release: &Release) -> Result<PathBuf> {
    let path = repo().join(release.binary);
    let mut cmd = std::process::Command::new(&path);
    cmd.arg("--version");
    let out = output(cmd).map_err(|e| {
        format!("{e} (fix: ./scripts/fetch-etcd.sh --compat puts etcd 3.5.30 in bin/etcd-3.5.30)")
    })?;
    let first = out.lines().next().unwrap_or_default();
    if first.trim() != format!("etcd Version: {}", release.version) {
        return Err(format!(
            "{} answers {first:?}, not etcd {} (fix: ./scripts/fetch-etcd.sh --compat)",
            path.display(),
            release.version
        ));
    }
    Ok(path)
}

/// A field of `/proc/<pid>/status` for every member, insisting each is `etcd`.
fn per_member(members: &[Process], etcd: &Path, field: &str) -> Result<Vec<f64>> {
    let etcd = fs::canonicalize(etcd).map_err(|e| format!("{}: {e}", etcd.display()))?;
    members
        .iter()
        .map(|m| {
            let exe = fs::read_link(format!("/proc/{}/exe", m.pid()))
                .map_err(|e| format!("member {}: {e}", m.pid()))?;
            if exe != etcd {
                return Err(format!(
                    "member {} runs {}, not {}",
                    m.pid(),
                    exe.display(),
                    etcd.display()
                ));
            }
            status_kib(m.pid(), field).ok_or_else(|| format!("member {}: no {field}", m.pid()))
        })
        .collect()
}

/// One run of `release`: a fresh zone, its starts, the keys, the steady writer; every
/// member killed by its PID on return (the `Process`es are dropped), also on error.
fn one(dir: &Path, release: &Release, run: usize, snapshot_count: Option<u64>) -> Result<Measured> {
    let etcd = binary(release)?;
    let zone = Zone::bootstrap(
        &dir.join(format!("{}-run{run}", release.version)),
        release.zone,
        release.block.subnet(),
        3,
    )?;
    for i in 0..3 {
        zone.set_etcd_bin(i, &etcd)?;
        if let Some(count) = snapshot_count {
            let config = zone.config(i);
            let text =
                fs::read_to_string(&config).map_err(|e| format!("{}: {e}", config.display()))?;
            fs::write(
                &config,
                format!("{text}\n[settings]\nsnapshot_count = {count}\n"),
            )
            .map_err(|e| format!("{}: {e}", config.display()))?;
        }
        // Leaves first (rotate writes a set with no etcd running), as launch.rs does.
        output(zone_etcd(&[
            "rotate",
            "--config",
            &zone.config(i).to_string_lossy(),
        ])?)?;
    }
    let client = zone.client(0)?;
    let mut m = Measured {
        load: loadavg(),
        ..Measured::default()
    };
    let mut members: Vec<Process> = Vec::new();
    for start in 0..STARTS {
        drop(std::mem::take(&mut members));
        for i in 0..3 {
            let _ = fs::remove_dir_all(zone.node_dir(i).join("state/data"));
        }
        let started = Instant::now();
        members = (0..3).map(|i| zone.launch(i)).collect::<Result<_>>()?;
        let (listening, healthy) = zone.wait_healthy(&client, started)?;
        if !members.iter_mut().all(Process::is_running) {
            return Err(format!(
                "etcd {}: a member exited during start {start}",
                release.version
            ));
        }
        m.listening_ms.push(ms(listening));
        m.healthy_ms.push(ms(healthy));
    }
    // Let the start settle (the launcher's helpers, etcd's first compaction check).
    std::thread::sleep(Duration::from_secs(2));
    m.rss_empty = per_member(&members, &etcd, "VmRSS")?;

    let cpu = |members: &[Process]| -> f64 {
        members
            .iter()
            .filter_map(|p| cpu_seconds(p.pid()))
            .sum::<f64>()
    };
    let cpu_before = cpu(&members);
    let filled = Instant::now();
    pitr::write_many(&zone, &client, "keys", KEYS, VALUE_BYTES)?;
    m.fill_s = filled.elapsed().as_secs_f64();
    m.fill_cpu_s = cpu(&members) - cpu_before;
    std::thread::sleep(Duration::from_secs(2));
    m.rss_keys = per_member(&members, &etcd, "VmRSS")?;
    m.anon_keys = per_member(&members, &etcd, "RssAnon")?;
    m.file_keys = per_member(&members, &etcd, "RssFile")?;

    let stop = Arc::new(AtomicBool::new(false));
    let handle = maintenance::writer(&zone, &client, &[b'v'; VALUE_BYTES], stop.clone());
    std::thread::sleep(Duration::from_secs(LOAD_SECONDS));
    stop.store(true, Ordering::SeqCst);
    m.seen = handle.join().map_err(|_| "writer panicked")?;
    m.hwm = per_member(&members, &etcd, "VmHWM")?;
    if !members.iter_mut().all(Process::is_running) {
        return Err(format!(
            "etcd {}: a member exited during the writes",
            release.version
        ));
    }
    drop(members);
    let seen = &m.seen;
    eprintln!(
        "  etcd {} (run {run}, load {}): healthy {:.0} ms (median of {STARTS}); {KEYS} keys in {:.1} s ({:.0}/s, {:.1} s CPU); RSS {:.1} MB a member empty, {:.1} MB after the keys (sum {:.1} MB); writer p50/p99 {:.2}/{:.2} ms, {} failed",
        release.version,
        m.load,
        median(&m.healthy_ms),
        m.fill_s,
        KEYS as f64 / m.fill_s,
        m.fill_cpu_s,
        median(&m.rss_empty) / 1024.0,
        median(&m.rss_keys) / 1024.0,
        m.rss_keys.iter().sum::<f64>() / 1024.0,
        percentile(&sorted(&seen.latencies), 50.0),
        percentile(&sorted(&seen.latencies), 99.0),
        seen.failed.len()
    );
    // The zone's data (about 3 x 60 MB) is not needed any more.
    let _ = fs::remove_dir_all(&zone.root);
    Ok(m)
}

fn sorted(values: &[f64]) -> Vec<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

/// The `etcd` section: `runs` runs, each release once per run, alternating.
pub fn run(dir: &Path, runs: usize, snapshot_count: Option<u64>) -> Result<Value> {
    let root = dir.join("etcd-versions");
    fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
    let mut measured: [Vec<Measured>; 2] = [Vec::new(), Vec::new()];
    let mut order = Vec::new();
    for run in 0..runs {
        let first = if run % 2 == 0 { [0, 1] } else { [1, 0] };
        order.push(json!([
            RELEASES[first[0]].version,
            RELEASES[first[1]].version
        ]));
        for r in first {
            measured[r].push(one(&root, &RELEASES[r], run, snapshot_count)?);
        }
    }
    let mut out = json!({
        "keys": KEYS,
        "value_bytes": VALUE_BYTES,
        "fill_clients": 8,
        "starts_per_run": STARTS,
        "load_seconds": LOAD_SECONDS,
        "load_pause_ms": 10,
        "snapshot_count": snapshot_count,
        "order": order,
        "releases": {},
    });
    // Per release: the medians over runs (per-member figures over every member of every
    // run; sums over runs), the pooled latencies.
    let mut medians: Vec<serde_json::Map<String, Value>> = Vec::new();
    for (release, runs) in RELEASES.iter().zip(&measured) {
        let flat = |f: fn(&Measured) -> &Vec<f64>| -> Vec<f64> {
            runs.iter().flat_map(|m| f(m).iter().copied()).collect()
        };
        let sums = |f: fn(&Measured) -> &Vec<f64>| -> Vec<f64> {
            runs.iter().map(|m| f(m).iter().sum()).collect()
        };
        let mut latencies = flat(|m| &m.seen.latencies);
        latencies.sort_by(f64::total_cmp);
        let failed: Vec<&String> = runs.iter().flat_map(|m| &m.seen.failed).collect();
        let fill_s: Vec<f64> = runs.iter().map(|m| m.fill_s).collect();
        let rate: Vec<f64> = fill_s.iter().map(|s| KEYS as f64 / s).collect();
        let cpu: Vec<f64> = runs.iter().map(|m| m.fill_cpu_s).collect();
        let per_run_p = |p: f64| -> Vec<f64> {
            runs.iter()
                .map(|m| round(percentile(&sorted(&m.seen.latencies), p)))
                .collect()
        };
        let mut figures = serde_json::Map::new();
        for (key, value) in [
            ("listening_ms", median(&flat(|m| &m.listening_ms))),
            ("healthy_ms", median(&flat(|m| &m.healthy_ms))),
            ("rss_empty_member_kib", median(&flat(|m| &m.rss_empty))),
            ("rss_empty_sum_kib", median(&sums(|m| &m.rss_empty))),
            ("rss_member_kib", median(&flat(|m| &m.rss_keys))),
            ("rss_sum_kib", median(&sums(|m| &m.rss_keys))),
            ("rss_anon_sum_kib", median(&sums(|m| &m.anon_keys))),
            ("rss_file_sum_kib", median(&sums(|m| &m.file_keys))),
            ("hwm_sum_kib", median(&sums(|m| &m.hwm))),
            ("fill_writes_per_s", median(&rate)),
            ("fill_cpu_s", median(&cpu)),
            ("p50_ms", percentile(&latencies, 50.0)),
            ("p99_ms", percentile(&latencies, 99.0)),
        ] {
            figures.insert(key.into(), json!(round(value)));
        }
        out["releases"][release.version] = json!({
            "binary": release.binary,
            "members": format!("{}.1-3", release.block.prefix()),
            "listening_ms": summary(&flat(|m| &m.listening_ms)),
            "healthy_ms": summary(&flat(|m| &m.healthy_ms)),
            "healthy_samples_ms": flat(|m| &m.healthy_ms).iter().map(|x| x.round()).collect::<Vec<_>>(),
            "rss_empty_member_kib": summary(&flat(|m| &m.rss_empty)),
            "rss_empty_sum_kib": summary(&sums(|m| &m.rss_empty)),
            "rss_member_kib": summary(&flat(|m| &m.rss_keys)),
            "rss_sum_kib": summary(&sums(|m| &m.rss_keys)),
            "rss_anon_sum_kib": summary(&sums(|m| &m.anon_keys)),
            "rss_file_sum_kib": summary(&sums(|m| &m.file_keys)),
            "hwm_sum_kib": summary(&sums(|m| &m.hwm)),
            "rss_members_kib_per_run": runs.iter().map(|m| &m.rss_keys).collect::<Vec<_>>(),
            "fill_s": summary(&fill_s),
            "fill_writes_per_s": summary(&rate),
            "fill_cpu_s": summary(&cpu),
            "latency": {
                "requests": latencies.len() + failed.len(),
                "failed": failed.len(),
                "failures": failed.iter().take(5).collect::<Vec<_>>(),
                "p50_ms": round(percentile(&latencies, 50.0)),
                "p99_ms": round(percentile(&latencies, 99.0)),
                "max_ms": round(latencies.last().copied().unwrap_or(f64::NAN)),
                "p50_ms_per_run": per_run_p(50.0),
                "p99_ms_per_run": per_run_p(99.0),
            },
            "load_per_run": runs.iter().map(|m| m.load.clone()).collect::<Vec<_>>(),
            "medians": figures.clone(),
        });
        medians.push(figures);
    }
    // 3.6.15 / 3.5.30 of every median.
    let mut ratios = serde_json::Map::new();
    for (key, new) in &medians[0] {
        let (Some(new), Some(old)) = (new.as_f64(), medians[1][key].as_f64()) else {
            continue;
        };
        ratios.insert(key.clone(), json!(round(new / old)));
    }
    eprintln!(
        "  etcd 3.6.15 / 3.5.30: RSS a member x{}, sum x{}; p50 x{}, p99 x{}; healthy x{}; fill rate x{}",
        ratios["rss_member_kib"],
        ratios["rss_sum_kib"],
        ratios["p50_ms"],
        ratios["p99_ms"],
        ratios["healthy_ms"],
        ratios["fill_writes_per_s"]
    );
    out["ratios"] = Value::Object(ratios);
    Ok(out)
}
