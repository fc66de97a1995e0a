//! A database that never fills up, measured:
//! - `churn`: the same 1 KiB key rewritten 100,000 times at a steady rate over
//!   `--churn-seconds` (default 30 minutes: six compaction windows), on two one-member
//!   zones side by side: one launched by zone-etcd (its
//!   default settings: periodic compaction keeping 5 minutes, explicit quota), one running
//!   the same etcd with the same TLS but etcd's own defaults (the argv without zone-etcd's
//!   compaction and quota flags). Figures: each database file and the part in use at the
//!   end (and every 30 s), whether revision 2 is still readable, and zone-etcd's file
//!   after `zone-etcd maintain`.
//! - `latency`: a writer that spreads its puts over every member of a 3-member zone, with
//!   and without `zone-etcd maintain` defragmenting the members one by one, alternating;
//!   p50/p99/max of each request's latency, and failures.
//!
//! Zones on `addresses::BENCH_MAINTAIN` (latency), `addresses::BENCH_CHURN_DEFAULTS` .1 (etcd's
//! defaults) and `addresses::BENCH_CHURN_OURS` .1 (zone-etcd).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

use crate::support::*;
use zone_testkit::addresses;

/// Rewrites in the churn.
const REWRITES: usize = 100_000;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// POSTs a JSON body to one of etcd's gateway paths; the answer as JSON.
fn call(client: &TlsClient, base: &str, path: &str, body: &str) -> Result<Value> {
    let text = client.post(&format!("{base}{path}"), body)?;
    serde_json::from_str(&text).map_err(|e| format!("{path}: {e}: {text}"))
}

/// (database file, in use) of one member, in bytes.
fn db_size(client: &TlsClient, base: &str) -> Result<(u64, u64)> {
    let status = call(client, base, "/v3/maintenance/status", "{}")?;
    let number = |key: &str| {
        status[key]
            .as_str()
            .and_then(|s| s.parse().ok())
            .or_else(|| status[key].as_u64())
            .ok_or_else(|| format!("status without {key}: {status}"))
    };
    Ok((number("dbSize")?, number("dbSizeInUse")?))
}

fn revision(client: &TlsClient, base: &str) -> Result<u64> {
    let status = call(client, base, "/v3/maintenance/status", "{}")?;
    status["header"]["revision"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("status without a revision: {status}"))
}

/// Whether revision 2 of `key` still answers (false once compacted).
fn old_revision_readable(client: &TlsClient, base: &str, key: &str) -> bool {
    let body = format!("{{\"key\":\"{}\",\"revision\":\"2\"}}", b64(key.as_bytes()));
    client.post(&format!("{base}/v3/kv/range"), &body).is_ok()
}

fn mib(bytes: u64) -> f64 {
    round(bytes as f64 / (1024.0 * 1024.0))
}

/// The `churn` section: 100,000 rewrites spread over `seconds`.
pub fn churn(dir: &Path, seconds: u64) -> Result<Value> {
    let ours = Zone::bootstrap(
        &dir.join("churn-ours"),
        "ours.zone",
        addresses::BENCH_CHURN_OURS.subnet(),
        1,
    )?;
    let theirs = Zone::bootstrap(
        &dir.join("churn-defaults"),
        "defaults.zone",
        addresses::BENCH_CHURN_DEFAULTS.subnet(),
        1,
    )?;
    let mut ours_member = ours.launch(0)?;
    // etcd's defaults: the argv zone-etcd would exec, without its compaction and quota
    // flags. `env` issues the member's leaves first, as launch would.
    output(zone_etcd(&[
        "env",
        "--config",
        &theirs.config(0).to_string_lossy(),
    ])?)?;
    let argv = theirs.etcd_argv(0)?;
    let dropped = ["--auto-compaction-", "--quota-backend-bytes"];
    let mut etcd = std::process::Command::new(&argv[0]);
    etcd.args(
        argv[1..]
            .iter()
            .filter(|a| !dropped.iter().any(|d| a.starts_with(d))),
    );
    let mut theirs_member = Process::spawn(etcd, &theirs.root.join("etcd.log"))?;
    let ours_client = ours.client(0)?;
    let theirs_client = theirs.client(0)?;
    ours.wait_healthy(&ours_client, Instant::now())?;
    theirs.wait_healthy(&theirs_client, Instant::now())?;

    eprintln!("  churn: {REWRITES} rewrites of 1 KiB over {seconds} s on each zone, side by side");
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let writers: Vec<_> = [(&ours, &ours_client), (&theirs, &theirs_client)]
        .into_iter()
        .map(|(zone, client)| {
            let agent = client.agent();
            let base = zone.client_url(0);
            let failures = failures.clone();
            std::thread::spawn(move || {
                let interval = Duration::from_secs(seconds).div_f64(REWRITES as f64);
                let start = Instant::now();
                for n in 0..REWRITES {
                    let due = start + interval.mul_f64(n as f64);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let value = format!("{n:016}").repeat(64);
                    if let Err(e) = put(&agent, &base, "churn", value.as_bytes()) {
                        failures.lock().unwrap_or_else(|e| e.into_inner()).push(e);
                    }
                }
            })
        })
        .collect();
    let started = Instant::now();
    let mut series = Vec::new();
    while writers.iter().any(|w| !w.is_finished()) {
        std::thread::sleep(Duration::from_secs(30));
        let (a, b) = (
            db_size(&ours_client, &ours.client_url(0))?,
            db_size(&theirs_client, &theirs.client_url(0))?,
        );
        eprintln!(
            "    {:>4} s: zone-etcd {:.1} MiB (in use {:.1}), etcd defaults {:.1} MiB (in use {:.1})",
            started.elapsed().as_secs(),
            mib(a.0),
            mib(a.1),
            mib(b.0),
            mib(b.1)
        );
        series.push(json!({
            "seconds": started.elapsed().as_secs(),
            "zone_etcd_mib": mib(a.0), "zone_etcd_in_use_mib": mib(a.1),
            "etcd_defaults_mib": mib(b.0), "etcd_defaults_in_use_mib": mib(b.1),
        }));
    }
    for writer in writers {
        let _ = writer.join();
    }
    let seconds = started.elapsed().as_secs_f64();
    let ours_end = db_size(&ours_client, &ours.client_url(0))?;
    let theirs_end = db_size(&theirs_client, &theirs.client_url(0))?;
    let ours_old = old_revision_readable(&ours_client, &ours.client_url(0), "churn");
    let theirs_old = old_revision_readable(&theirs_client, &theirs.client_url(0), "churn");
    output(zone_etcd(&[
        "maintain",
        "--config",
        &ours.config(0).to_string_lossy(),
    ])?)?;
    let ours_maintained = db_size(&ours_client, &ours.client_url(0))?;
    if !ours_member.is_running() || !theirs_member.is_running() {
        return Err("a member exited during the churn".into());
    }
    let failures = failures.lock().unwrap_or_else(|e| e.into_inner());
    eprintln!(
        "  churn: zone-etcd {:.1} MiB (in use {:.1}; {:.1} MiB after maintain), etcd defaults {:.1} MiB (in use {:.1}); revision 2 readable: {ours_old} / {theirs_old}; {} failed",
        mib(ours_end.0),
        mib(ours_end.1),
        mib(ours_maintained.0),
        mib(theirs_end.0),
        mib(theirs_end.1),
        failures.len()
    );
    Ok(json!({
        "rewrites": REWRITES,
        "seconds": round(seconds),
        "value_bytes": 1024,
        "zone_etcd_mib": mib(ours_end.0),
        "zone_etcd_in_use_mib": mib(ours_end.1),
        "zone_etcd_after_maintain_mib": mib(ours_maintained.0),
        "etcd_defaults_mib": mib(theirs_end.0),
        "etcd_defaults_in_use_mib": mib(theirs_end.1),
        "ratio": round(theirs_end.0 as f64 / ours_end.0.max(1) as f64),
        "revision_2_readable": { "zone_etcd": ours_old, "etcd_defaults": theirs_old },
        "failed": failures.len(),
        "failures": failures.iter().take(5).collect::<Vec<_>>(),
        "series": series,
    }))
}

/// What a writer saw: each request's latency (ms), and the failures.
#[derive(Default)]
pub(crate) struct Seen {
    pub latencies: Vec<f64>,
    pub failed: Vec<String>,
}

/// A writer putting new keys `load/<n>` = `value` every 10 ms, round-robin over every
/// member, until stopped.
pub(crate) fn writer(
    zone: &Zone,
    client: &TlsClient,
    value: &[u8],
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Seen> {
    let value = value.to_vec();
    let bases: Vec<String> = (0..zone.members.len())
        .map(|i| zone.client_url(i))
        .collect();
    let agents: Vec<ureq::Agent> = bases.iter().map(|_| client.agent()).collect();
    std::thread::spawn(move || {
        let mut seen = Seen::default();
        let mut n = 0usize;
        while !stop.load(Ordering::SeqCst) {
            let i = n % bases.len();
            let started = Instant::now();
            match put(&agents[i], &bases[i], &format!("load/{n}"), &value) {
                Ok(_) => seen.latencies.push(ms(started.elapsed())),
                Err(e) => seen.failed.push(e),
            }
            n += 1;
            std::thread::sleep(Duration::from_millis(10));
        }
        seen
    })
}

/// Writes 30 MiB of 8 KiB values over 100 keys through member 0, then compacts the history
/// physically: every member's file is left with about 30 MiB free for `maintain`.
fn fill_and_free(zone: &Zone, client: &TlsClient) -> Result<()> {
    let agent = client.agent();
    let base = zone.client_url(0);
    let value = vec![b'x'; 8 * 1024];
    for n in 0..(30 * 128) {
        put(&agent, &base, &format!("junk/{:03}", n % 100), &value)?;
    }
    let rev = revision(client, &base)?;
    call(
        client,
        &base,
        "/v3/kv/compaction",
        &format!("{{\"revision\":\"{rev}\",\"physical\":true}}"),
    )?;
    Ok(())
}

/// The `maintain` section: writer latency with and without `maintain`, `runs` times each.
pub fn latency(dir: &Path, runs: usize) -> Result<Value> {
    let zone = Zone::bootstrap(
        &dir.join("maintain"),
        "maintain.zone",
        addresses::BENCH_MAINTAIN.subnet(),
        3,
    )?;
    let (mut members, client) = zone.launch_all()?;
    let config = zone.config(0);
    let (mut with, mut without) = (Seen::default(), Seen::default());
    let mut maintain_ms: Vec<f64> = Vec::new();
    for _ in 0..runs {
        fill_and_free(&zone, &client)?;
        // Without: as long as the last maintain took (at least 3 s).
        let window =
            Duration::from_millis(maintain_ms.last().copied().unwrap_or(3000.0).max(3000.0) as u64);
        let stop = Arc::new(AtomicBool::new(false));
        let handle = writer(&zone, &client, b"v", stop.clone());
        std::thread::sleep(window + Duration::from_millis(500));
        stop.store(true, Ordering::SeqCst);
        let seen = handle.join().map_err(|_| "writer panicked")?;
        without.latencies.extend(seen.latencies);
        without.failed.extend(seen.failed);
        // With: maintain defragments the three members one by one meanwhile.
        let stop = Arc::new(AtomicBool::new(false));
        let handle = writer(&zone, &client, b"v", stop.clone());
        std::thread::sleep(Duration::from_millis(250));
        let took = timed(zone_etcd(&[
            "maintain",
            "--config",
            &config.to_string_lossy(),
        ])?)?;
        maintain_ms.push(ms(took));
        std::thread::sleep(Duration::from_millis(250));
        stop.store(true, Ordering::SeqCst);
        let seen = handle.join().map_err(|_| "writer panicked")?;
        with.latencies.extend(seen.latencies);
        with.failed.extend(seen.failed);
    }
    if !members.iter_mut().all(Process::is_running) {
        return Err("a member exited during maintain".into());
    }
    let describe = |seen: &mut Seen| {
        seen.latencies.sort_by(f64::total_cmp);
        let l = &seen.latencies;
        json!({
            "requests": l.len() + seen.failed.len(),
            "failed": seen.failed.len(),
            "failures": seen.failed.iter().take(5).collect::<Vec<_>>(),
            "p50_ms": round(percentile(l, 50.0)),
            "p99_ms": round(percentile(l, 99.0)),
            "max_ms": round(l.last().copied().unwrap_or(f64::NAN)),
        })
    };
    let (with, without) = (describe(&mut with), describe(&mut without));
    eprintln!(
        "  maintain: {:.0} ms a run; writer p50/p99 {}/{} ms with, {}/{} ms without; failed {} / {}",
        median(&maintain_ms),
        with["p50_ms"],
        with["p99_ms"],
        without["p50_ms"],
        without["p99_ms"],
        with["failed"],
        without["failed"]
    );
    Ok(json!({
        "maintain_ms": summary(&maintain_ms),
        "with_maintain": with,
        "without": without,
    }))
}
