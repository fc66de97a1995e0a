//! Scale (issue 48, item 7): a policy of [`SERVICES`] services on [`NODES`] nodes
//! (each service on 3 of them: 3,000 service users, 300 node users, 1,300 roles), in a
//! fresh 3-member zone of the bundled etcd on `addresses::BENCH_ACCESS_SCALE` .1-3 launched with it
//! in its zone file (`enforce = true`). Timed: from the launch to etcd's auth on (every user made,
//! each made again without a password just before auth goes on); then [`PUBLISHES`]
//! changes, each one service gaining or losing a prefix, by `zone publish` (which returns
//! once every member's record names the new document), from its start to its exit; and
//! the members' gRPC requests and CPU over [`IDLE`] with nothing changing (the keepers'
//! rounds: each second a list of users and roles, every 30 s a full read).

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::zones::{Live, ZONE};
use crate::support::*;
use zone_testkit::addresses;

pub(super) const SERVICES: usize = 1_000;
pub(super) const NODES: usize = 300;
const PUBLISHES: usize = 10;
const IDLE: Duration = Duration::from_secs(30);
/// The least time from one publish's start to the next's.
const PUBLISH_GAP: Duration = Duration::from_millis(1_100);
const SUBNET: u8 = addresses::BENCH_ACCESS_SCALE.subnet();

/// The `[access]` of the zone; `variant` changes one service's prefixes.
fn policy(variant: usize) -> String {
    let node = |i: usize| format!("n{i}.{ZONE}");
    let mut text = String::from("\n[access]\nenforce = true\nnodes = [");
    text += &(0..NODES)
        .map(|i| format!("\"{}\"", node(i)))
        .collect::<Vec<_>>()
        .join(", ");
    // Small quotas, so that 1,300 tenants fit etcd's default 2 GiB (issue 69's room
    // check: (1,300 x 256 KiB x 2) x 1.25 = 812.5 MiB of the 1.5 GiB beside the reserve;
    // at the defaults, 32 MiB a service and 8 MiB a node, the zone would be refused).
    text += "]\nnode_quota = \"256 KiB\"\nservice_quota = \"256 KiB\"\n";
    for j in 0..SERVICES {
        let nodes: Vec<String> = (0..3)
            .map(|k| format!("\"{}\"", node((j * 3 + k) % NODES)))
            .collect();
        let extra = if j == variant % SERVICES && variant % 2 == 1 {
            ", \"extra/\""
        } else {
            ""
        };
        text += &format!(
            "\n[[access.service]]\nname = \"s{j}\"\nnodes = [{}]\nread_write = [\"apps/s{j}/\"{extra}]\n",
            nodes.join(", ")
        );
    }
    text
}

pub fn run(dir: &Path) -> Result<Value> {
    let root = dir.join("scale");
    let launched = Instant::now();
    let live = Live::start_with(&root, SUBNET, &policy(0), true)?;
    let auth_on = live.wait_auth_on_within(launched, Duration::from_secs(900))?;
    eprintln!(
        "  access scale: auth on {:.1} s after the launch",
        auth_on.as_secs_f64()
    );
    let zone_file = live.zone.root.join("zone.toml");
    let base = zone_toml(ZONE, &live.zone.members);
    let mut walls = Vec::new();
    let mut previous: Option<Instant> = None;
    for i in 1..=PUBLISHES {
        write(&zone_file, &format!("{base}{}", policy(i)))?;
        // A document is signed to the second, after the one published: publishes that
        // start less than a second apart would sign ahead of the clock, which `zone
        // publish` refuses past 2 s. Not part of the time measured.
        if let Some(gap) = previous.map(|p| PUBLISH_GAP.saturating_sub(p.elapsed())) {
            std::thread::sleep(gap);
        }
        let started = Instant::now();
        previous = Some(started);
        live.publish(&zone_file)?;
        walls.push(ms(started.elapsed()));
        eprintln!(
            "  access scale: publish {i}: {:.0} ms",
            walls[walls.len() - 1]
        );
    }
    let requests = |live: &Live| -> Result<f64> {
        Ok(live
            .metrics()?
            .iter()
            .filter_map(|m| m.get("grpc_server_handled_total"))
            .sum())
    };
    let (before, cpu_before) = (requests(&live)?, live.cpu().sums());
    std::thread::sleep(IDLE);
    let (after, cpu_after) = (requests(&live)?, live.cpu().sums());
    let mut sorted_walls = walls.clone();
    sorted_walls.sort_by(f64::total_cmp);
    let idle_requests = (after - before) / IDLE.as_secs_f64();
    let idle_cpu = (cpu_after.0 - cpu_before.0, cpu_after.1 - cpu_before.1);
    eprintln!(
        "  access scale: publish p50 {:.0} / p99 {:.0} ms; idle: {:.1} requests/s, etcd CPU {:.2} s, helpers {:.2} s over {IDLE:?}",
        percentile(&sorted_walls, 50.0),
        percentile(&sorted_walls, 99.0),
        idle_requests,
        idle_cpu.0,
        idle_cpu.1
    );
    drop(live);
    keep_logs(&root);
    let _ = fs::remove_dir_all(&root);
    Ok(json!({
        "zone": format!("{}.1-3", addresses::BENCH_ACCESS_SCALE.prefix()),
        "services": SERVICES,
        "nodes": NODES,
        "auth_on_after_launch_ms": round(ms(auth_on)),
        "publish_ms": summary(&walls),
        "publish_p99_ms": round(percentile(&sorted_walls, 99.0)),
        "publish_ms_samples": walls.iter().map(|w| w.round()).collect::<Vec<_>>(),
        "idle_seconds": IDLE.as_secs(),
        "idle_requests_per_second": round(idle_requests),
        "idle_etcd_cpu_s": round(idle_cpu.0),
        "idle_helpers_cpu_s": round(idle_cpu.1),
    }))
}

/// With `ZONE_ETCD_BENCH_LOGS=DIR`, the members' logs (each keeper logs where an apply's
/// time went, phase by phase) are copied there before the zone's directory goes.
fn keep_logs(root: &Path) {
    let Some(to) = std::env::var_os("ZONE_ETCD_BENCH_LOGS") else {
        return;
    };
    let to = Path::new(&to);
    let _ = fs::create_dir_all(to);
    let logs = fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|zone| fs::read_dir(zone.path()).into_iter().flatten().flatten())
        .chain(fs::read_dir(root).into_iter().flatten().flatten())
        .filter(|e| e.path().extension().is_some_and(|x| x == "log"));
    for log in logs {
        let _ = fs::copy(log.path(), to.join(log.file_name()));
    }
}
