//! Least privilege (issue 34): etcd's auth on against auth off, and the time a signed
//! policy change takes to reach every member.
//!
//! In each run, two fresh 3-member zones of the bundled etcd, launched by `zone-etcd
//! launch`, from the same zone file except that one has an `[access]` section with
//! `enforce = true` and a service `bench` (read_write `bench/`, on node1): its members'
//! client ports trust the zone's client CA only and their keepers turn etcd's auth on
//! (waited for: `etcdctl auth status` as the owner's `ca admin` identity says true; the
//! time from its launch is recorded). In each zone, a writer (a put of a new
//! `VALUE_BYTES`-byte key every 10 ms) and a reader (a get of one existing key every
//! 10 ms, linearizable, etcd's default), each round-robin over the three members through
//! one keep-alive gRPC connection to each (etcd-client over mutual TLS, as zone-etcd's
//! own commands talk to etcd): in the auth-on zone as the service's identity
//! `bench@node1...` (from `env --service bench`), in the auth-off zone as node1's member
//! client certificate. After a warm-up, the two zones are served in turn, `SLICE` each
//! (the zone served first alternating across runs), `LOAD_SECONDS` in all for each, so
//! the machine's noise (other processes on a shared machine) hits both alike and neither
//! zone's load slows the other. Beside the latencies: each member's etcd metrics (WAL
//! fsync, backend commit, requests handled) and the CPU time of the members and of
//! zone-etcd's helpers over the window.
//!
//! Then, in the auth-on zone, `PUBLISHES` signed policy changes (the service gains the
//! prefix `bench2/`, then loses it, alternately) and `UNCHANGED` publishes of the same
//! file again, interleaved, each by `zone-etcd zone publish` (which returns once every
//! member's record names the new document). A watch (as the owner's identity, on node1)
//! on the published document and the three members' records timestamps the command's
//! put and each member's record, so the wall time splits into the command's own part
//! (start to its put: process start, reading the CA, connecting, signing) and the
//! keepers' (put to the last member's record).
//!
//! Every member is killed by its PID at the end of each run, also on error, and
//! zone-etcd's helpers of the zone (found by their `--config` in the zone's directory)
//! by theirs if they have not exited with their etcd. Zones on `addresses::BENCH_ACCESS_ON`
//! .1-3 (auth on) and `addresses::BENCH_ACCESS_OFF` .1-3 (auth off).
//!
//! - [`zones`]: the two zones, set up and torn down, their identities, etcdctl, and the
//!   members' metrics and CPU time;
//! - [`metrics`]: the members' etcd metrics read, and their parsing;
//! - [`load`]: the writers' and readers' load, the zones served in turn, and the JSON of
//!   the latencies and costs;
//! - [`policy`]: the timed publishes of policy changes and the watch that splits them;
//! - here: one run ([`one`]) and the section's JSON ([`run`]).

pub(crate) mod load;
mod metrics;
mod policy;
pub mod scale;
pub(crate) mod zones;

use std::fs;
use std::path::Path;
use std::time::Instant;

use serde_json::{json, Value};

use crate::support::*;
use load::{
    costs, latency, order, ratios, sorted, windows, Load, Seen, Window, LOAD_SECONDS, VALUE_BYTES,
};
use policy::{policy_changes, Published};
use zone_testkit::addresses;
use zones::{Live, ZONE};

/// What one run measured.
struct Run {
    order: [&'static str; 2],
    on: Window,
    off: Window,
    auth_on_ms: f64,
    published: Vec<Published>,
}

fn one(dir: &Path, run: usize) -> Result<Run> {
    let launched = Instant::now();
    let on = Live::start(dir, true, run)?;
    let auth_on_ms = ms(on.wait_auth_on(launched)?);
    let off = Live::start(dir, false, run)?;
    let (service, user) = on.service()?;
    if user != format!("bench@node1.{ZONE}") {
        return Err(format!("env --service bench names user {user:?}"));
    }
    // Auth is on for this identity: outside its prefix it is refused.
    let refused = on.etcdctl(&service, &["put", "other/x", "1"]);
    if !refused.contains("permission denied") {
        return Err(format!(
            "the service wrote outside its prefix: {}",
            refused.trim()
        ));
    }
    let member = off.member_identity(0);
    let first = run % 2;
    let load = Load {
        tag: run.to_string(),
        value_bytes: VALUE_BYTES,
    };
    let [on_window, off_window] = windows([(&on, &service), (&off, &member)], &load, first)?;
    for (live, w) in [(&on, &on_window), (&off, &off_window)] {
        let failed: Vec<&String> = w.write.failed.iter().chain(&w.read.failed).collect();
        if !failed.is_empty() {
            eprintln!(
                "  access: auth {}: {} requests failed, e.g. {:?}",
                if live.on { "on" } else { "off" },
                failed.len(),
                failed[0]
            );
        }
    }
    drop(off);
    let published = policy_changes(&on)?;
    drop(on);
    let _ = fs::remove_dir_all(dir.join(format!("auth-on-run{run}")));
    let _ = fs::remove_dir_all(dir.join(format!("auth-off-run{run}")));
    Ok(Run {
        order: order(["auth on", "auth off"], first),
        on: on_window,
        off: off_window,
        auth_on_ms,
        published,
    })
}

/// The `access` section: `runs` runs.
pub fn run(dir: &Path, runs: usize) -> Result<Value> {
    let root = dir.join("access");
    fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
    let load_before = loadavg();
    let mut done: Vec<Run> = Vec::new();
    for run in 0..runs {
        let r = one(&root, run)?;
        let p99 = |s: &Seen| percentile(&sorted(&s.latencies), 99.0);
        let changed: Vec<f64> = r
            .published
            .iter()
            .filter(|p| p.changed)
            .map(|p| p.wall_ms)
            .collect();
        eprintln!(
            "  access run {run} ({} first; load {} / {}): write p99 {:.2} on / {:.2} off ms, read p99 {:.2} / {:.2} ms; auth on {:.0} ms after launch; publish median {:.0} ms",
            r.order[0],
            r.on.load,
            r.off.load,
            p99(&r.on.write),
            p99(&r.off.write),
            p99(&r.on.read),
            p99(&r.off.read),
            r.auth_on_ms,
            median(&changed)
        );
        done.push(r);
    }
    let side = |on: bool| -> Value {
        let windows: Vec<&Window> = done
            .iter()
            .map(|r| if on { &r.on } else { &r.off })
            .collect();
        json!({
            "write": latency(&windows.iter().map(|w| &w.write).collect::<Vec<_>>()),
            "read": latency(&windows.iter().map(|w| &w.read).collect::<Vec<_>>()),
            "costs": costs(&windows),
            "costs_per_run": windows.iter().map(|w| costs(&[w])).collect::<Vec<_>>(),
        })
    };
    let (on, off) = (side(true), side(false));
    let ratios = ratios(&on, &off);
    // The publishes: wall time, the command's part and the keepers'.
    let publishes = |changed: bool| -> Value {
        let ps: Vec<&Published> = done
            .iter()
            .flat_map(|r| &r.published)
            .filter(|p| p.changed == changed)
            .collect();
        let wall: Vec<f64> = ps.iter().map(|p| p.wall_ms).collect();
        let put: Vec<f64> = ps.iter().filter_map(|p| p.put_ms).collect();
        let last: Vec<f64> = ps
            .iter()
            .filter_map(|p| p.applied_ms.iter().copied().collect::<Option<Vec<f64>>>())
            .map(|a| a.into_iter().fold(0.0, f64::max))
            .collect();
        let keepers: Vec<f64> = ps
            .iter()
            .filter_map(|p| {
                let a = p.applied_ms.iter().copied().collect::<Option<Vec<f64>>>()?;
                Some(a.into_iter().fold(0.0, f64::max) - p.put_ms?)
            })
            .collect();
        let first: Vec<f64> = ps
            .iter()
            .filter_map(|p| {
                let a = p.applied_ms.iter().copied().collect::<Option<Vec<f64>>>()?;
                Some(a.into_iter().fold(f64::INFINITY, f64::min) - p.put_ms?)
            })
            .collect();
        let after: Vec<f64> = ps
            .iter()
            .filter_map(|p| {
                let a = p.applied_ms.iter().copied().collect::<Option<Vec<f64>>>()?;
                Some(p.wall_ms - a.into_iter().fold(0.0, f64::max))
            })
            .collect();
        json!({
            "publishes": ps.len(),
            "wall_ms": summary(&wall),
            "wall_ms_samples": wall.iter().map(|x| x.round()).collect::<Vec<_>>(),
            "start_to_put_ms": summary(&put),
            "start_to_last_member_ms": summary(&last),
            "put_to_first_member_ms": summary(&first),
            "put_to_last_member_ms": summary(&keepers),
            "last_member_to_return_ms": summary(&after),
            "seen_by_the_watch": format!("{} of {}", keepers.len(), ps.len()),
        })
    };
    let changed = publishes(true);
    let unchanged = publishes(false);
    let auth_on: Vec<f64> = done.iter().map(|r| r.auth_on_ms).collect();
    eprintln!(
        "  access: write p50/p99 {}/{} ms on, {}/{} off (p99 x{}); read p50/p99 {}/{} on, {}/{} off (p99 x{}); policy change median {} ms, worst {} ms (unchanged file {} ms)",
        on["write"]["p50_ms"],
        on["write"]["p99_ms"],
        off["write"]["p50_ms"],
        off["write"]["p99_ms"],
        ratios["write_p99_ms"],
        on["read"]["p50_ms"],
        on["read"]["p99_ms"],
        off["read"]["p50_ms"],
        off["read"]["p99_ms"],
        ratios["read_p99_ms"],
        changed["wall_ms"]["median"],
        changed["wall_ms"]["max"],
        unchanged["wall_ms"]["median"],
    );
    Ok(json!({
        "zones": {
            "auth_on": format!("{}.1-3", addresses::BENCH_ACCESS_ON.prefix()),
            "auth_off": format!("{}.1-3", addresses::BENCH_ACCESS_OFF.prefix()),
        },
        "load_seconds": LOAD_SECONDS,
        "pause_ms": 10,
        "value_bytes": VALUE_BYTES,
        "order": done.iter().map(|r| r.order).collect::<Vec<_>>(),
        "load_before": load_before,
        "load_after": loadavg(),
        "auth_on": on,
        "auth_off": off,
        "ratios": ratios,
        "auth_on_after_launch_ms": summary(&auth_on),
        "policy_change": changed,
        "policy_unchanged": unchanged,
    }))
}
