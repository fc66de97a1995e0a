//! The latency load of a run and its figures: in each zone a writer (a put of a new key
//! with a value of [`Load::value_bytes`] every 10 ms) and a reader (a get of one key of
//! that size every 10 ms), each
//! round-robin over the three members through one keep-alive connection to each
//! ([`load_thread`]); the zones served in turn, `SLICE` each, `LOAD_SECONDS` in all for
//! each ([`windows`]); and the JSON of the pooled latencies ([`latency`]) and of where
//! the time went ([`costs`]). Shared with the quota section (`crate::quota`).
//!
//! Invariants: nothing is counted before every load thread has connected and warmed up
//! (`WARMUP`, then a barrier); a thread sends only while its zone is the one served, so
//! one zone's load never slows the other's; a request that meets `AUTH_OLD` is retried
//! (at most 3 times, counted) and its latency is measured from its first try; the
//! members' metrics and CPU time of a window are after minus before, over the whole
//! interleaved window (a process's CPU counted only if it ran at both ends).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use zone_etcd_kit::cluster_api;

use super::metrics::HISTOGRAMS;
use super::zones::{Cpu, Identity, Live};
use crate::support::*;

/// The measured window of the writer and the reader, per zone and run.
pub(crate) const LOAD_SECONDS: u64 = 20;
/// Requests before the window (connections opened, not counted).
const WARMUP: Duration = Duration::from_secs(1);
/// The zones are served in turn, this long each.
const SLICE: Duration = Duration::from_millis(500);
pub(crate) const VALUE_BYTES: usize = 256;
/// etcd's answer to a request that raced a change of its auth store (retried, as etcd's
/// Go client does for certificate users).
const AUTH_OLD: &str = "revision of auth store is old";

/// What a writer or a reader saw: each request's latency (ms), failures, retries.
#[derive(Default)]
pub(crate) struct Seen {
    pub(crate) latencies: Vec<f64>,
    pub(crate) failed: Vec<String>,
    retried: usize,
}

/// What the writers put: new keys `bench/w/<tag>/<n>` with values of `value_bytes` (the
/// readers read one key of that size); `tag` tells one load's keys from another's.
#[derive(Clone)]
pub(crate) struct Load {
    pub(crate) tag: String,
    pub(crate) value_bytes: usize,
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Write,
    Read,
}

/// Which zone the load threads serve now (`IDLE`: neither).
const IDLE: usize = 2;

/// A writer or a reader of zone `me` (the first or the second) as `who`, round-robin
/// over `endpoints` (one connection each): `WARMUP` of requests, then waits at `go` with
/// the others, then sends its requests while `active` names its zone, until `stop`.
/// The reader first puts the key it reads.
#[allow(clippy::too_many_arguments)]
fn load_thread(
    op: Op,
    me: usize,
    endpoints: Vec<String>,
    who: Identity,
    load: Load,
    go: Arc<Barrier>,
    active: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Result<Seen>> {
    std::thread::spawn(move || {
        let creds = who.credentials();
        let runtime = cluster_api::runtime().map_err(|e| e.to_string());
        let (creds, runtime) = match (creds, runtime) {
            (Ok(c), Ok(r)) => (c, r),
            (Err(e), _) | (_, Err(e)) => {
                go.wait();
                return Err(e);
            }
        };
        let mut clients = Vec::new();
        for endpoint in &endpoints {
            match runtime.block_on(cluster_api::connect(endpoint, &creds)) {
                Ok(c) => clients.push(c),
                Err(e) => {
                    go.wait();
                    return Err(format!("{endpoint}: {e}"));
                }
            }
        }
        let value = vec![b'v'; load.value_bytes];
        if op == Op::Read {
            if let Err(e) = runtime.block_on(clients[0].put("bench/read", value.clone(), None)) {
                go.wait();
                return Err(format!("put bench/read: {}", cluster_api::describe(&e)));
            }
        }
        let mut n = 0usize;
        let mut seen = Seen::default();
        let mut request = |seen: &mut Seen| {
            let i = n % clients.len();
            let key = format!("bench/w/{}/{n:07}", load.tag);
            let started = Instant::now();
            let mut tries = 0;
            let result = loop {
                let result = match op {
                    Op::Write => runtime
                        .block_on(clients[i].put(key.as_str(), value.clone(), None))
                        .map(|_| ())
                        .map_err(|e| cluster_api::describe(&e)),
                    Op::Read => runtime
                        .block_on(clients[i].get("bench/read", None))
                        .map_err(|e| cluster_api::describe(&e))
                        .and_then(|got| match got.kvs().first() {
                            Some(kv) if kv.value().len() == load.value_bytes => Ok(()),
                            _ => Err("bench/read: not the value put".to_string()),
                        }),
                };
                match result {
                    Err(e) if e.contains(AUTH_OLD) && tries < 3 => {
                        tries += 1;
                        seen.retried += 1;
                    }
                    other => break other,
                }
            };
            match result {
                Ok(()) => seen.latencies.push(ms(started.elapsed())),
                Err(e) => seen.failed.push(format!("{}: {e}", endpoints[i])),
            }
            n += 1;
            std::thread::sleep(Duration::from_millis(10));
        };
        let mut warmup = Seen::default();
        let warm = Instant::now() + WARMUP;
        while Instant::now() < warm {
            request(&mut warmup);
        }
        go.wait();
        while !stop.load(Ordering::SeqCst) {
            if active.load(Ordering::SeqCst) == me {
                request(&mut seen);
            } else {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        Ok(seen)
    })
}

/// One zone's share of a run's load: its writer's and reader's requests, with the
/// members' metrics and CPU time over the whole interleaved window.
pub(crate) struct Window {
    pub(crate) write: Seen,
    pub(crate) read: Seen,
    pub(crate) load: String,
    pub(crate) seconds: f64,
    /// Members' metrics after minus before, summed over the three members.
    metrics: HashMap<String, f64>,
    etcd_cpu_s: f64,
    helpers_cpu_s: f64,
    /// Each member's and helper's CPU seconds over the window, by PID.
    pub(crate) cpu_by_pid: HashMap<u32, f64>,
}

/// Each member's metrics, and the CPU seconds of the members and of the helpers, by PID
/// (the members' [`Cpu::members`]).
type Sample = (Vec<HashMap<String, f64>>, Cpu);

/// The load of a run: a writer and a reader in each zone, the zones served in turn for
/// `SLICE` each (`first` first), `LOAD_SECONDS` in all for each zone.
pub(crate) fn windows(
    zones: [(&Live, &Identity); 2],
    load: &Load,
    first: usize,
) -> Result<[Window; 2]> {
    let loadavg = loadavg();
    let go = Arc::new(Barrier::new(5));
    let active = Arc::new(AtomicUsize::new(IDLE));
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for (me, (live, who)) in zones.iter().enumerate() {
        for op in [Op::Write, Op::Read] {
            threads.push(load_thread(
                op,
                me,
                live.endpoints(),
                (*who).clone(),
                load.clone(),
                go.clone(),
                active.clone(),
                stop.clone(),
            ));
        }
    }
    go.wait();
    let measure = |live: &Live| -> Result<Sample> { Ok((live.metrics()?, live.cpu())) };
    let before = [measure(zones[0].0)?, measure(zones[1].0)?];
    let started = Instant::now();
    let slices = (LOAD_SECONDS as u128 * 1000 / SLICE.as_millis()) as usize;
    for slice in 0..2 * slices {
        active.store((first + slice) % 2, Ordering::SeqCst);
        std::thread::sleep(SLICE);
    }
    active.store(IDLE, Ordering::SeqCst);
    stop.store(true, Ordering::SeqCst);
    let seconds = started.elapsed().as_secs_f64();
    let mut seen = Vec::new();
    for thread in threads {
        seen.push(thread.join().map_err(|_| "a load thread panicked")??);
    }
    let after = [measure(zones[0].0)?, measure(zones[1].0)?];
    let mut seen = seen.into_iter();
    let mut window = |(b, a): (&Sample, &Sample)| {
        let mut metrics = HashMap::new();
        for (b, a) in b.0.iter().zip(&a.0) {
            for (name, value) in a {
                *metrics.entry(name.clone()).or_insert(0.0) += value - b.get(name).unwrap_or(&0.0);
            }
        }
        let cpu_by_pid: HashMap<u32, f64> =
            a.1.by_pid
                .iter()
                .filter_map(|(pid, after)| Some((*pid, after - b.1.by_pid.get(pid)?)))
                .collect();
        let sum = |members: bool| {
            cpu_by_pid
                .iter()
                .filter(|(pid, _)| a.1.members.contains(pid) == members)
                .map(|(_, s)| s)
                .sum::<f64>()
        };
        Window {
            write: seen.next().unwrap_or_default(),
            read: seen.next().unwrap_or_default(),
            load: loadavg.clone(),
            seconds,
            metrics,
            etcd_cpu_s: sum(true),
            helpers_cpu_s: sum(false),
            cpu_by_pid,
        }
    };
    let on = window((&before[0], &after[0]));
    let off = window((&before[1], &after[1]));
    Ok([on, off])
}

/// The `q` quantile (0-1) of histogram `base` in `metrics`, in ms: the upper bound of the
/// bucket it falls in (etcd's buckets double: this is within a factor of two).
fn quantile_ms(metrics: &HashMap<String, f64>, base: &str, q: f64) -> f64 {
    let mut buckets: Vec<(f64, f64)> = metrics
        .iter()
        .filter_map(|(k, v)| {
            let le = k.strip_prefix(base)?.strip_prefix('|')?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, *v))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last().map(|b| b.1).unwrap_or(0.0);
    if total <= 0.0 {
        return f64::NAN;
    }
    buckets
        .iter()
        .find(|(_, cumulative)| *cumulative >= q * total)
        .map(|(le, _)| round(le * 1000.0))
        .unwrap_or(f64::NAN)
}

pub(crate) fn sorted(values: &[f64]) -> Vec<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

/// p50/p99/max and counts of pooled samples, and p99 per run.
pub(crate) fn latency(samples: &[&Seen]) -> Value {
    let all = sorted(
        &samples
            .iter()
            .flat_map(|s| s.latencies.iter().copied())
            .collect::<Vec<_>>(),
    );
    let failed: Vec<&String> = samples.iter().flat_map(|s| &s.failed).collect();
    json!({
        "requests": all.len() + failed.len(),
        "failed": failed.len(),
        "failures": failed.iter().take(5).collect::<Vec<_>>(),
        "retried_auth_old": samples.iter().map(|s| s.retried).sum::<usize>(),
        "p50_ms": round(percentile(&all, 50.0)),
        "p90_ms": round(percentile(&all, 90.0)),
        "p99_ms": round(percentile(&all, 99.0)),
        "max_ms": round(all.last().copied().unwrap_or(f64::NAN)),
        "p50_ms_per_run": samples.iter().map(|s| round(percentile(&sorted(&s.latencies), 50.0))).collect::<Vec<_>>(),
        "p99_ms_per_run": samples.iter().map(|s| round(percentile(&sorted(&s.latencies), 99.0))).collect::<Vec<_>>(),
    })
}

/// `a / b`, of two JSON numbers, rounded.
pub(crate) fn ratio(a: &Value, b: &Value) -> f64 {
    round(a.as_f64().unwrap_or(f64::NAN) / b.as_f64().unwrap_or(f64::NAN))
}

/// Side `a`'s latencies over side `b`'s ([`latency`]'s JSON): `write_p99_ms` and the like.
pub(crate) fn ratios(a: &Value, b: &Value) -> serde_json::Map<String, Value> {
    let mut ratios = serde_json::Map::new();
    for op in ["write", "read"] {
        for p in ["p50_ms", "p90_ms", "p99_ms", "max_ms"] {
            ratios.insert(format!("{op}_{p}"), json!(ratio(&a[op][p], &b[op][p])));
        }
    }
    ratios
}

/// The two zones' names in the order [`windows`] served them (`first` first).
pub(crate) fn order(names: [&'static str; 2], first: usize) -> [&'static str; 2] {
    [names[first], names[1 - first]]
}

/// Where the time went in a zone's windows: disk, CPU, requests.
pub(crate) fn costs(windows: &[&Window]) -> Value {
    let total = |name: &str| {
        windows
            .iter()
            .map(|w| w.metrics.get(name).copied().unwrap_or(0.0))
            .sum::<f64>()
    };
    let mean_ms = |sum: &str, count: &str| round(total(sum) / total(count).max(1.0) * 1000.0);
    let requests: f64 = windows
        .iter()
        .map(|w| (w.write.latencies.len() + w.read.latencies.len()) as f64)
        .sum();
    let seconds: f64 = windows.iter().map(|w| w.seconds).sum();
    let etcd_cpu: f64 = windows.iter().map(|w| w.etcd_cpu_s).sum();
    let mut merged: HashMap<String, f64> = HashMap::new();
    for w in windows {
        for (k, v) in &w.metrics {
            *merged.entry(k.clone()).or_insert(0.0) += v;
        }
    }
    let quantile = |base: &str, q: f64| quantile_ms(&merged, base, q);
    let (apply, fsync, commit) = (HISTOGRAMS[2], HISTOGRAMS[0], HISTOGRAMS[1]);
    let mut apply_by_op = serde_json::Map::new();
    for (k, count) in &merged {
        let Some(op) = k.strip_prefix("etcd_server_apply_duration_seconds_count|op=") else {
            continue;
        };
        let sum = merged
            .get(&format!("etcd_server_apply_duration_seconds_sum|op={op}"))
            .copied()
            .unwrap_or(f64::NAN);
        apply_by_op.insert(
            op.to_string(),
            json!({ "count": count, "mean_ms": round(sum / count.max(1.0) * 1000.0) }),
        );
    }
    let helpers_cpu: f64 = windows.iter().map(|w| w.helpers_cpu_s).sum();
    json!({
        "wal_fsync_mean_ms": mean_ms("etcd_disk_wal_fsync_duration_seconds_sum", "etcd_disk_wal_fsync_duration_seconds_count"),
        "wal_fsyncs": total("etcd_disk_wal_fsync_duration_seconds_count"),
        "backend_commit_mean_ms": mean_ms("etcd_disk_backend_commit_duration_seconds_sum", "etcd_disk_backend_commit_duration_seconds_count"),
        "apply_mean_ms": mean_ms("etcd_server_apply_duration_seconds_sum", "etcd_server_apply_duration_seconds_count"),
        "apply_mean_ms_by_op": apply_by_op,
        // From the buckets (upper bounds; etcd's buckets double).
        "apply_p50_p99_ms": [quantile(apply, 0.5), quantile(apply, 0.99)],
        "wal_fsync_p50_p99_ms": [quantile(fsync, 0.5), quantile(fsync, 0.99)],
        "backend_commit_p50_p99_ms": [quantile(commit, 0.5), quantile(commit, 0.99)],
        "applies": total("etcd_server_apply_duration_seconds_count"),
        "grpc_requests_handled": total("grpc_server_handled_total"),
        "proposals_committed": total("etcd_server_proposals_committed_total"),
        "slow_applies": total("etcd_server_slow_apply_total"),
        "slow_read_indexes": total("etcd_server_slow_read_indexes_total"),
        "etcd_cpu_s": round(etcd_cpu),
        "etcd_cpu_ms_per_request": round(etcd_cpu * 1000.0 / requests.max(1.0)),
        // Every request a member handled, the zone-etcd helpers' (keepers') too.
        "etcd_cpu_ms_per_grpc_request": round(etcd_cpu * 1000.0 / total("grpc_server_handled_total").max(1.0)),
        "etcd_cpu_share_of_a_core": round(etcd_cpu / seconds.max(1e-9)),
        "helpers_cpu_s": round(helpers_cpu),
        "load_per_run": windows.iter().map(|w| w.load.clone()).collect::<Vec<_>>(),
    })
}
