//! Quotas per tenant (issue 69): the cost of keeping them, quotas on against off.
//!
//! In each run, two fresh 3-member zones of the bundled etcd, launched by `zone-etcd
//! launch` at once, from the same zone file but the `[access]` table ([`access_toml`]):
//! both `enforce = true` with `nodes = []`; "quotas on" has a service `bench` on node1
//! with `read_write = ["bench/"]` and a quota of [`QUOTA`] (never reached, so never
//! stopped): a tenant, so the leader's keeper's decider counts it and then follows every
//! put of the key space with one watch with `prev_kv`; "quotas off" has no service: no
//! tenant, so every decider stays idle (the keepers run all the same). Both wait for
//! etcd's auth on. The load, in both zones as node1's member identity (root, etcd's
//! permission checks alike): the access section's writer and reader
//! ([`crate::access::load`]: a put of a new key under `bench/` and a get, each every
//! 10 ms, round-robin over the members), first with values of 256 bytes, then of
//! 100 KB (the decider receives each event's value), each load served to the two zones in
//! turn in 0.5 s slices, 20 s a zone (the zone served first alternating across runs).
//! Beside the latencies, over each window: the members' etcd metrics and CPU, the CPU of
//! every helper, and of the leader's keeper (`zone-etcd keep-revocations` of the member
//! that led at the window's start, found by its `--config`; whether the leadership moved
//! is recorded). At the end of a run the decider's record `zone-etcd/quota/use` of each
//! zone is read (as node1): it shows the decider followed the load.
//!
//! Zones on `addresses::BENCH_QUOTA_ON` .1-3 and `addresses::BENCH_QUOTA_OFF` .1-3; the
//! members and helpers are killed by their PIDs at the end of each run, also on error
//! ([`Live`]'s drop).

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::access::load::{
    costs, latency, order, ratio, ratios, sorted, windows, Load, Window, LOAD_SECONDS,
};
use crate::access::zones::{Identity, Live, ZONE};
use crate::support::*;
use zone_testkit::addresses;

/// The service's quota: far above what a run writes (about 200 MB at 100 KB).
const QUOTA: &str = "512 MiB";
/// The loads' value sizes, in the order served.
const VALUES: [usize; 2] = [256, 100_000];
const USE_KEY: &str = "zone-etcd/quota/use";

/// The `[access]` of a zone: with the tenant `bench` when `on`.
fn access_toml(on: bool) -> String {
    let mut text = String::from("\n[access]\nenforce = true\nnodes = []\n");
    if on {
        text += &format!(
            "\n[[access.service]]\nname = \"bench\"\nnodes = [\"node1.{ZONE}\"]\nread_write = [\"bench/\"]\nquota = \"{QUOTA}\"\n"
        );
    }
    text
}

/// One zone's share of one load: its window and its leader's keeper.
struct Side {
    window: Window,
    leader_keeper_cpu_s: Option<f64>,
    leader_etcd_cpu_s: Option<f64>,
    leader_moved: bool,
}

/// What one run measured: per load, quotas on and off.
struct Run {
    order: [&'static str; 2],
    loads: Vec<[Side; 2]>,
    records: [Value; 2],
}

fn one(dir: &Path, run: usize) -> Result<Run> {
    let started = Instant::now();
    let start = |on: bool| {
        let (name, block) = if on {
            ("on", addresses::BENCH_QUOTA_ON)
        } else {
            ("off", addresses::BENCH_QUOTA_OFF)
        };
        let dir = dir.join(format!("quotas-{name}-run{run}"));
        Live::start_with(&dir, block.subnet(), &access_toml(on), on)
    };
    let zones = [start(true)?, start(false)?];
    for live in &zones {
        live.wait_auth_on(started)?;
    }
    let who: [Identity; 2] = [zones[0].member_identity(0), zones[1].member_identity(0)];
    let first = run % 2;
    let mut loads = Vec::new();
    for (k, value_bytes) in VALUES.into_iter().enumerate() {
        let leaders = [zones[0].leader(&who[0])?, zones[1].leader(&who[1])?];
        let keepers = [zones[0].keeper(leaders[0]), zones[1].keeper(leaders[1])];
        let load = Load {
            tag: format!("{run}-{k}"),
            value_bytes,
        };
        let pair = [(&zones[0], &who[0]), (&zones[1], &who[1])];
        let [on, off] = windows(pair, &load, first)?;
        let mut sides = Vec::new();
        for (z, window) in [on, off].into_iter().enumerate() {
            let failed = window.write.failed.len() + window.read.failed.len();
            if failed > 0 {
                let e = window.write.failed.iter().chain(&window.read.failed).next();
                eprintln!(
                    "  quota: zone {z}, {value_bytes} B: {failed} requests failed, e.g. {e:?}"
                );
            }
            let pid = zones[z].member_pid(leaders[z]);
            sides.push(Side {
                leader_keeper_cpu_s: keepers[z].and_then(|p| window.cpu_by_pid.get(&p).copied()),
                leader_etcd_cpu_s: window.cpu_by_pid.get(&pid).copied(),
                leader_moved: zones[z].leader(&who[z])? != leaders[z],
                window,
            });
        }
        let [on, off]: [Side; 2] = sides.try_into().map_err(|_| "two sides")?;
        loads.push([on, off]);
    }
    // The decider records at most once a second: let it see the last writes.
    std::thread::sleep(Duration::from_millis(1500));
    let record = |z: usize| -> Value {
        let out = zones[z].etcdctl(&who[z], &["get", USE_KEY, "--print-value-only"]);
        serde_json::from_str(out.trim()).unwrap_or(Value::Null)
    };
    let records = [record(0), record(1)];
    drop(zones);
    for name in ["on", "off"] {
        let _ = fs::remove_dir_all(dir.join(format!("quotas-{name}-run{run}")));
    }
    Ok(Run {
        order: order(["quotas on", "quotas off"], first),
        loads,
        records,
    })
}

/// The JSON of one zone's windows of one load over the runs.
fn side(sides: &[&Side]) -> Value {
    let windows: Vec<&Window> = sides.iter().map(|s| &s.window).collect();
    let keeper: Vec<f64> = sides.iter().filter_map(|s| s.leader_keeper_cpu_s).collect();
    let etcd: Vec<f64> = sides.iter().filter_map(|s| s.leader_etcd_cpu_s).collect();
    let seconds: f64 = windows.iter().map(|w| w.seconds).sum();
    json!({
        "write": latency(&windows.iter().map(|w| &w.write).collect::<Vec<_>>()),
        "read": latency(&windows.iter().map(|w| &w.read).collect::<Vec<_>>()),
        "costs": costs(&windows),
        "leader_keeper_cpu_s": round(keeper.iter().sum()),
        "leader_keeper_cpu_s_per_run": keeper.iter().map(|s| round(*s)).collect::<Vec<_>>(),
        "leader_keeper_share_of_a_core": round(keeper.iter().sum::<f64>() / seconds.max(1e-9)),
        "leader_keeper_found": format!("{} of {}", keeper.len(), sides.len()),
        "leader_etcd_cpu_s": round(etcd.iter().sum()),
        "leader_moved_in_runs": sides.iter().filter(|s| s.leader_moved).count(),
        "window_seconds": round(seconds),
    })
}

/// The `quota` section: `runs` runs.
pub fn run(dir: &Path, runs: usize) -> Result<Value> {
    let root = dir.join("quota");
    fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
    let load_before = loadavg();
    let began = Instant::now();
    let mut done: Vec<Run> = Vec::new();
    for run in 0..runs {
        let r = one(&root, run)?;
        let p99 = |w: &Window, write: bool| {
            let s = if write { &w.write } else { &w.read };
            percentile(&sorted(&s.latencies), 99.0)
        };
        for (k, [on, off]) in r.loads.iter().enumerate() {
            eprintln!(
                "  quota run {run} ({} first; {} B; load {}): write p99 {:.2} on / {:.2} off ms, read p99 {:.2} / {:.2} ms; leader's keeper {:.2} / {:.2} s CPU",
                r.order[0],
                VALUES[k],
                on.window.load,
                p99(&on.window, true),
                p99(&off.window, true),
                p99(&on.window, false),
                p99(&off.window, false),
                on.leader_keeper_cpu_s.unwrap_or(f64::NAN),
                off.leader_keeper_cpu_s.unwrap_or(f64::NAN),
            );
        }
        done.push(r);
    }
    let mut loads = serde_json::Map::new();
    for (k, value_bytes) in VALUES.into_iter().enumerate() {
        let pick = |z: usize| done.iter().map(|r| &r.loads[k][z]).collect::<Vec<_>>();
        let (on, off) = (side(&pick(0)), side(&pick(1)));
        let mut ratios = ratios(&on, &off);
        for c in ["etcd_cpu_s", "etcd_cpu_ms_per_request", "helpers_cpu_s"] {
            ratios.insert(c.into(), json!(ratio(&on["costs"][c], &off["costs"][c])));
        }
        eprintln!(
            "  quota, {value_bytes} B: write p50/p99 {}/{} ms on, {}/{} off (p99 x{}); read p50/p99 {}/{} on, {}/{} off (p99 x{}); leader's keeper {} s on, {} s off",
            on["write"]["p50_ms"], on["write"]["p99_ms"], off["write"]["p50_ms"], off["write"]["p99_ms"],
            ratios["write_p99_ms"], on["read"]["p50_ms"], on["read"]["p99_ms"], off["read"]["p50_ms"],
            off["read"]["p99_ms"], ratios["read_p99_ms"], on["leader_keeper_cpu_s"], off["leader_keeper_cpu_s"],
        );
        loads.insert(
            format!("values_{value_bytes}"),
            json!({ "value_bytes": value_bytes, "quotas_on": on, "quotas_off": off, "ratios": ratios }),
        );
    }
    Ok(json!({
        "zones": {
            "quotas_on": format!("{}.1-3", addresses::BENCH_QUOTA_ON.prefix()),
            "quotas_off": format!("{}.1-3", addresses::BENCH_QUOTA_OFF.prefix()),
        },
        "quota": QUOTA,
        "load_seconds": LOAD_SECONDS,
        "pause_ms": 10,
        "order": done.iter().map(|r| r.order).collect::<Vec<_>>(),
        "load_before": load_before,
        "load_after": loadavg(),
        "section_seconds": round(began.elapsed().as_secs_f64()),
        "loads": loads,
        "use_records": done.iter().map(|r| json!({"quotas_on": r.records[0], "quotas_off": r.records[1]})).collect::<Vec<_>>(),
    }))
}

/// The summary table's rows: write and read p99 on against off, per value size.
pub fn rows(q: &Value) -> Vec<[String; 5]> {
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let mut rows = Vec::new();
    for value_bytes in VALUES {
        let l = &q["loads"][format!("values_{value_bytes}")];
        for op in ["write", "read"] {
            let (on, off) = (&l["quotas_on"][op], &l["quotas_off"][op]);
            let ratio = f(&l["ratios"][format!("{op}_p99_ms")]);
            rows.push([
                format!("{op} p50/p99, quotas on ({value_bytes} B values)"),
                format!("{:.2}/{:.2} ms", f(&on["p50_ms"]), f(&on["p99_ms"])),
                format!("off {:.2}/{:.2} ms", f(&off["p50_ms"]), f(&off["p99_ms"])),
                format!("p99 x{ratio:.3}"),
                format!(
                    "p99 <= x1.05: {}",
                    if ratio <= 1.05 { "met" } else { "MISSED" }
                ),
            ]);
        }
        rows.push([
            format!("leader's keeper CPU, quotas on ({value_bytes} B values)"),
            format!("{:.2} s", f(&l["quotas_on"]["leader_keeper_cpu_s"])),
            format!("off {:.2} s", f(&l["quotas_off"]["leader_keeper_cpu_s"])),
            String::new(),
            String::new(),
        ]);
    }
    rows
}
