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
//! by theirs if they have not exited with their etcd. Zones on 127.0.240.1-3 (auth on)
//! and 127.0.241.1-3 (auth off).

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use zone_etcd::cluster_api::{self, Credentials};

use crate::support::*;

const ZONE: &str = "access.zone";
const ON_SUBNET: u8 = 240;
const OFF_SUBNET: u8 = 241;
/// The measured window of the writer and the reader, per zone and run.
const LOAD_SECONDS: u64 = 20;
/// Requests before the window (connections opened, not counted).
const WARMUP: Duration = Duration::from_secs(1);
/// The zones are served in turn, this long each.
const SLICE: Duration = Duration::from_millis(500);
const VALUE_BYTES: usize = 256;
/// Policy changes per run, and publishes of an unchanged file between them.
const PUBLISHES: usize = 10;
const UNCHANGED: usize = 3;
/// etcd's answer to a request that raced a change of its auth store (retried, as etcd's
/// Go client does for certificate users).
const AUTH_OLD: &str = "revision of auth store is old";
const POLICY_KEY: &str = "zone-etcd/access/policy";
const APPLIED_PREFIX: &str = "zone-etcd/access/applied/";

/// The `[access]` of the auth-on zone: the service `bench` on node1, with `bench2/` too
/// when `more`.
fn access_toml(more: bool) -> String {
    let prefixes = if more {
        r#""bench/", "bench2/""#
    } else {
        r#""bench/""#
    };
    format!(
        "\n[access]\nenforce = true\n\n[[access.service]]\nname = \"bench\"\nnodes = [\"node1.{ZONE}\"]\nread_write = [{prefixes}]\n"
    )
}

/// A client identity's files: the roots that verify the members, its chain and key.
#[derive(Clone)]
struct Identity {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl Identity {
    fn credentials(&self) -> Result<Credentials> {
        let read = |p: &Path| fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
        Ok(Credentials::from_pem(
            &read(&self.ca)?,
            &read(&self.cert)?,
            &read(&self.key)?,
        ))
    }
}

/// A running zone: its members (killed by PID when dropped) and, found once it runs,
/// zone-etcd's helpers beside them (killed by PID if they outlive their etcd).
struct Live {
    zone: Zone,
    members: Vec<Process>,
    on: bool,
}

impl Live {
    fn start(dir: &Path, on: bool, run: usize) -> Result<Live> {
        let (name, subnet, extra) = if on {
            ("on", ON_SUBNET, access_toml(false))
        } else {
            ("off", OFF_SUBNET, String::new())
        };
        let zone = Zone::bootstrap_with(
            &dir.join(format!("auth-{name}-run{run}")),
            ZONE,
            subnet,
            3,
            &extra,
        )?;
        let members = (0..3).map(|i| zone.launch(i)).collect::<Result<_>>()?;
        let live = Live { zone, members, on };
        // launch issues the leaves before it execs etcd.
        let current = live.zone.node_dir(0).join("state/tls/current/client.key");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !current.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        live.zone
            .wait_healthy(&live.zone.client(0)?, Instant::now())?;
        Ok(live)
    }

    fn ca(&self) -> PathBuf {
        self.zone.node_dir(0).join("state/tls/current/ca.crt")
    }

    fn endpoints(&self) -> Vec<String> {
        (0..3).map(|i| self.zone.client_url(i)).collect()
    }

    /// Member `i`'s own client certificate.
    fn member_identity(&self, i: usize) -> Identity {
        let tls = self.zone.node_dir(i).join("state/tls/current");
        Identity {
            ca: self.ca(),
            cert: tls.join("client.crt"),
            key: tls.join("client.key"),
        }
    }

    /// The owner's administrative identity (etcd's root), made once by `ca admin`.
    fn admin(&self) -> Result<Identity> {
        let dir = self.zone.dir.join("admin");
        if !dir.exists() {
            output(zone_etcd(&[
                "ca",
                "admin",
                "--ca",
                &self.zone.dir.join("ca").to_string_lossy(),
                "--out",
                &dir.to_string_lossy(),
            ])?)?;
        }
        Ok(Identity {
            ca: self.ca(),
            cert: dir.join("client.crt"),
            key: dir.join("client.key"),
        })
    }

    /// The service `bench`'s identity on node1 (`env --service bench`), and its user.
    fn service(&self) -> Result<(Identity, String)> {
        let out = output(zone_etcd(&[
            "env",
            "--format",
            "json",
            "--config",
            &self.zone.config(0).to_string_lossy(),
            "--service",
            "bench",
        ])?)?;
        let env: Value = serde_json::from_str(&out).map_err(|e| format!("env: {e}: {out}"))?;
        let field = |k: &str| {
            env[k]
                .as_str()
                .map(PathBuf::from)
                .ok_or_else(|| format!("env without {k}: {out}"))
        };
        Ok((
            Identity {
                ca: self.ca(),
                cert: field("cert_file")?,
                key: field("key_file")?,
            },
            env["user"].as_str().unwrap_or_default().to_string(),
        ))
    }

    /// etcdctl as `who` through every member: stdout and stderr.
    fn etcdctl(&self, who: &Identity, args: &[&str]) -> String {
        let out = std::process::Command::new(repo().join("bin/etcdctl"))
            .arg(format!("--endpoints={}", self.endpoints().join(",")))
            .arg(format!("--cacert={}", who.ca.display()))
            .arg(format!("--cert={}", who.cert.display()))
            .arg(format!("--key={}", who.key.display()))
            .arg("--dial-timeout=2s")
            .arg("--command-timeout=5s")
            .args(args)
            .output();
        match out {
            Ok(o) => format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => format!("etcdctl: {e}"),
        }
    }

    /// Waits until etcd says auth is on; the time it took from `since`.
    fn wait_auth_on(&self, since: Instant) -> Result<Duration> {
        let admin = self.admin()?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = self.etcdctl(&admin, &["auth", "status"]);
            if out.contains("Authentication Status: true") {
                return Ok(since.elapsed());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "auth not on after 60 s in {} (last answer: {}): see the logs there",
                    self.zone.dir.display(),
                    out.trim()
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// zone-etcd's helpers of this zone: processes other than the members whose command
    /// line names a file in the zone's directory.
    fn helpers(&self) -> Vec<u32> {
        let members: Vec<u32> = self.members.iter().map(Process::pid).collect();
        processes_naming(&self.zone.dir)
            .into_iter()
            .filter(|pid| !members.contains(pid))
            .collect()
    }

    /// CPU seconds of the members' etcd and of the helpers.
    fn cpu(&self) -> (f64, f64) {
        let sum = |pids: &[u32]| pids.iter().filter_map(|p| cpu_seconds(*p)).sum::<f64>();
        let members: Vec<u32> = self.members.iter().map(Process::pid).collect();
        (sum(&members), sum(&self.helpers()))
    }

    /// Each member's metrics of interest (`METRICS`, summed over their labels).
    fn metrics(&self) -> Result<Vec<HashMap<String, f64>>> {
        let agent = self.zone.client(0)?.agent();
        (0..3)
            .map(|i| {
                let url = format!("http://{}:2381/metrics", self.zone.members[i].1);
                let mut response = agent.get(&url).call().map_err(|e| format!("{url}: {e}"))?;
                let text = response
                    .body_mut()
                    .read_to_string()
                    .map_err(|e| format!("{url}: {e}"))?;
                Ok(parse_metrics(&text))
            })
            .collect()
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let helpers = self.helpers();
        // The members first: the helpers watch their etcd and exit with it.
        drop(std::mem::take(&mut self.members));
        let deadline = Instant::now() + Duration::from_secs(5);
        let naming = |pid: &u32| {
            fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| contains(&c, self.zone.dir.as_os_str().as_encoded_bytes()))
        };
        while helpers.iter().any(naming) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        for pid in helpers.iter().filter(|p| naming(p)) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(*pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// PIDs of the processes whose command line names something under `dir`.
fn processes_naming(dir: &Path) -> Vec<u32> {
    let needle = dir.as_os_str().as_encoded_bytes();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != std::process::id())
        .filter(|pid| fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| contains(&c, needle)))
        .collect()
}

/// The metrics read from each member (sums and counts of histograms, counters).
const METRICS: [&str; 10] = [
    "etcd_disk_wal_fsync_duration_seconds_sum",
    "etcd_disk_wal_fsync_duration_seconds_count",
    "etcd_disk_backend_commit_duration_seconds_sum",
    "etcd_disk_backend_commit_duration_seconds_count",
    "grpc_server_handled_total",
    "etcd_server_proposals_committed_total",
    "etcd_server_slow_apply_total",
    "etcd_server_slow_read_indexes_total",
    "etcd_server_apply_duration_seconds_sum",
    "etcd_server_apply_duration_seconds_count",
];

/// Histograms whose buckets are read too (summed over their labels but `le`).
const HISTOGRAMS: [&str; 3] = [
    "etcd_disk_wal_fsync_duration_seconds",
    "etcd_disk_backend_commit_duration_seconds",
    "etcd_server_apply_duration_seconds",
];

/// `METRICS` summed over their labels; each of `HISTOGRAMS`' buckets as `<name>|<le>`;
/// the applies' count and sum per operation as `<name>|op=<op>`.
fn parse_metrics(text: &str) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let name = line.split(['{', ' ']).next().unwrap_or_default();
        let Some(value) = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) else {
            continue;
        };
        let label = |key: &str| {
            let start = line.find(&format!("{key}=\""))? + key.len() + 2;
            let len = line[start..].find('"')?;
            Some(line[start..start + len].to_string())
        };
        let mut add = |key: String| *out.entry(key).or_insert(0.0) += value;
        if METRICS.contains(&name) {
            add(name.to_string());
            if name.starts_with("etcd_server_apply_duration_seconds") {
                if let Some(op) = label("op") {
                    add(format!("{name}|op={op}"));
                }
            }
        } else if let Some(base) = name.strip_suffix("_bucket") {
            if let (true, Some(le)) = (HISTOGRAMS.contains(&base), label("le")) {
                add(format!("{base}|{le}"));
            }
        }
    }
    out
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

/// What a writer or a reader saw: each request's latency (ms), failures, retries.
#[derive(Default)]
struct Seen {
    latencies: Vec<f64>,
    failed: Vec<String>,
    retried: usize,
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Write,
    Read,
}

/// Which zone the load threads serve now (`IDLE`: neither).
const IDLE: usize = 2;

/// A writer or a reader of zone `me` (0: auth on, 1: auth off) as `who`, round-robin
/// over `endpoints` (one connection each): `WARMUP` of requests, then waits at `go` with
/// the others, then sends its requests while `active` names its zone, until `stop`.
/// The reader first puts the key it reads.
#[allow(clippy::too_many_arguments)]
fn load_thread(
    op: Op,
    me: usize,
    endpoints: Vec<String>,
    who: Identity,
    run: usize,
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
        let value = vec![b'v'; VALUE_BYTES];
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
            let key = format!("bench/w/{run}/{n:07}");
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
                            Some(kv) if kv.value().len() == VALUE_BYTES => Ok(()),
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
struct Window {
    write: Seen,
    read: Seen,
    load: String,
    seconds: f64,
    /// Members' metrics after minus before, summed over the three members.
    metrics: HashMap<String, f64>,
    etcd_cpu_s: f64,
    helpers_cpu_s: f64,
}

/// Each member's metrics, and the CPU seconds of the members and of the helpers.
type Sample = (Vec<HashMap<String, f64>>, (f64, f64));

/// The load of a run: a writer and a reader in each zone, the zones served in turn for
/// `SLICE` each (`first` first), `LOAD_SECONDS` in all for each zone.
fn windows(zones: [(&Live, &Identity); 2], run: usize, first: usize) -> Result<[Window; 2]> {
    let load = loadavg();
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
                run,
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
        Window {
            write: seen.next().unwrap_or_default(),
            read: seen.next().unwrap_or_default(),
            load: load.clone(),
            seconds,
            metrics,
            etcd_cpu_s: a.1 .0 - b.1 .0,
            helpers_cpu_s: a.1 .1 - b.1 .1,
        }
    };
    let on = window((&before[0], &after[0]));
    let off = window((&before[1], &after[1]));
    Ok([on, off])
}

/// One publish: its wall time, and from the watch the command's put and the members'
/// records (ms from the command's start).
struct Published {
    changed: bool,
    wall_ms: f64,
    put_ms: Option<f64>,
    applied_ms: Vec<Option<f64>>,
}

/// Watches the published document and each member's record from `endpoint` as `who`;
/// sends (arrival, key, value) of every put, after one ("", "") once all are created.
fn watch_thread(
    endpoint: String,
    who: Identity,
    members: Vec<String>,
    events: mpsc::Sender<(Instant, String, String)>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Result<()>> {
    std::thread::spawn(move || {
        let creds = who.credentials()?;
        let runtime = cluster_api::runtime().map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let mut client =
                cluster_api::connect_for(&endpoint, &creds, Duration::from_secs(24 * 3600)).await?;
            let mut stream = client
                .watch(POLICY_KEY, None)
                .await
                .map_err(|e| cluster_api::describe(&e))?;
            for member in &members {
                stream
                    .watch(format!("{APPLIED_PREFIX}{member}"), None)
                    .await
                    .map_err(|e| cluster_api::describe(&e))?;
            }
            let mut created = 0;
            while !stop.load(Ordering::SeqCst) {
                let message = cluster_api::within_for(Duration::from_millis(300), async {
                    stream
                        .message()
                        .await
                        .map_err(|e| cluster_api::describe(&e))
                })
                .await;
                let response = match message {
                    Ok(Some(response)) => response,
                    Ok(None) => return Err("the watch ended".to_string()),
                    Err(e) if e.starts_with("no answer within") => continue,
                    Err(e) => return Err(format!("the watch: {e}")),
                };
                let now = Instant::now();
                if response.created() {
                    created += 1;
                    if created == members.len() + 1 {
                        let _ = events.send((now, String::new(), String::new()));
                    }
                }
                for event in response.events() {
                    if let Some(kv) = event.kv().filter(|kv| !kv.value().is_empty()) {
                        let _ = events.send((
                            now,
                            String::from_utf8_lossy(kv.key()).into_owned(),
                            String::from_utf8_lossy(kv.value()).into_owned(),
                        ));
                    }
                }
            }
            Ok(())
        })
    })
}

/// The `policy` a member's record names.
fn record_policy(value: &str) -> String {
    serde_json::from_str::<Value>(value)
        .ok()
        .and_then(|v| v["policy"].as_str().map(str::to_string))
        .unwrap_or_default()
}

/// `PUBLISHES` changes and `UNCHANGED` publishes of the same file in the auth-on zone.
fn policy_changes(live: &Live) -> Result<Vec<Published>> {
    let admin = live.admin()?;
    let names: Vec<String> = live.zone.members.iter().map(|m| m.0.clone()).collect();
    // The records as they are: what a member's new record must differ from.
    let mut policies: Vec<String> = {
        let runtime = cluster_api::runtime().map_err(|e| e.to_string())?;
        let creds = admin.credentials()?;
        runtime.block_on(async {
            let mut client = cluster_api::connect(&live.zone.client_url(0), &creds).await?;
            let mut out = Vec::new();
            for name in &names {
                let got = client
                    .get(format!("{APPLIED_PREFIX}{name}"), None)
                    .await
                    .map_err(|e| cluster_api::describe(&e))?;
                out.push(
                    got.kvs()
                        .first()
                        .map(|kv| record_policy(&String::from_utf8_lossy(kv.value())))
                        .unwrap_or_default(),
                );
            }
            Ok::<_, String>(out)
        })?
    };
    let (tx, rx) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_thread(
        live.zone.client_url(0),
        admin,
        names.clone(),
        tx,
        stop.clone(),
    );
    let result = (|| -> Result<Vec<Published>> {
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok((_, key, _)) if key.is_empty() => {}
            _ => return Err("the watch of the policy did not start".into()),
        }
        let files = [false, true].map(|more| {
            let path = live.zone.dir.join(format!("zone-more-{more}.toml"));
            let base = fs::read_to_string(live.zone.dir.join("zone.toml")).unwrap_or_default();
            let head = base
                .split("\n[access]")
                .next()
                .unwrap_or_default()
                .to_string();
            (path, head + &access_toml(more))
        });
        for (path, text) in &files {
            write(path, text)?;
        }
        let mut out = Vec::new();
        let mut more = false;
        // A xorshift over the clock: pauses of 1-2 s between publishes, so they fall at
        // every phase of the keepers' 1 s ticks.
        let mut seed = (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(1) as u64)
            | 1;
        for k in 0..PUBLISHES + UNCHANGED {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            std::thread::sleep(Duration::from_millis(1000 + seed % 1000));
            // Every fourth publishes the file in force again; the others change it.
            let changed = k % 4 != 3;
            if changed {
                more = !more;
            }
            let file = &files[usize::from(more)].0;
            while rx.try_recv().is_ok() {}
            let started = Instant::now();
            output(zone_etcd(&[
                "zone",
                "publish",
                "--ca",
                &live.zone.dir.join("ca").to_string_lossy(),
                "--zone",
                &file.to_string_lossy(),
                "--config",
                &live.zone.config(0).to_string_lossy(),
            ])?)?;
            let wall = started.elapsed();
            let mut put = None;
            let mut applied: Vec<Option<f64>> = vec![None; names.len()];
            let deadline = Instant::now() + Duration::from_secs(3);
            while applied.iter().any(Option::is_none) {
                let left = deadline.saturating_duration_since(Instant::now());
                let Ok((at, key, value)) = rx.recv_timeout(left) else {
                    break;
                };
                let since = ms(at.saturating_duration_since(started));
                if key == POLICY_KEY {
                    put.get_or_insert(since);
                } else if let Some(i) = names
                    .iter()
                    .position(|n| key == format!("{APPLIED_PREFIX}{n}"))
                {
                    let policy = record_policy(&value);
                    if applied[i].is_none() && policy != policies[i] {
                        applied[i] = Some(since);
                        policies[i] = policy;
                    }
                }
            }
            out.push(Published {
                changed,
                wall_ms: ms(wall),
                put_ms: put,
                applied_ms: applied,
            });
        }
        Ok(out)
    })();
    stop.store(true, Ordering::SeqCst);
    let watched = watcher.join().map_err(|_| "the watch panicked")?;
    let out = result?;
    watched?;
    Ok(out)
}

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
    let [on_window, off_window] = windows([(&on, &service), (&off, &member)], run, first)?;
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
        order: if first == 0 {
            ["auth on", "auth off"]
        } else {
            ["auth off", "auth on"]
        },
        on: on_window,
        off: off_window,
        auth_on_ms,
        published,
    })
}

fn sorted(values: &[f64]) -> Vec<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

/// p50/p99/max and counts of pooled samples, and p99 per run.
fn latency(samples: &[&Seen]) -> Value {
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

/// Where the time went in a zone's windows: disk, CPU, requests.
fn costs(windows: &[&Window]) -> Value {
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
    let ratio = |a: &Value, b: &Value| {
        round(a.as_f64().unwrap_or(f64::NAN) / b.as_f64().unwrap_or(f64::NAN))
    };
    let mut ratios = serde_json::Map::new();
    for op in ["write", "read"] {
        for p in ["p50_ms", "p90_ms", "p99_ms", "max_ms"] {
            ratios.insert(format!("{op}_{p}"), json!(ratio(&on[op][p], &off[op][p])));
        }
    }
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
        "zones": { "auth_on": format!("127.0.{ON_SUBNET}.1-3"), "auth_off": format!("127.0.{OFF_SUBNET}.1-3") },
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
