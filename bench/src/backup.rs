//! Continuous backups (issue 22), measured: a 3-member zone with `[backup]` (the default
//! `delta_every` of 5 s and `full_every` of 1 h), SeaweedFS as the S3 target and a
//! directory target beside it, as the tests and the guide set it up, and one writer of
//! unique keys (one put per request, 256-byte values, round-robin over the members, 10 ms
//! between requests) running through the whole section. Figures:
//!
//! - writer latency with `backup run` active against without, same run, alternating (ABBA
//!   rounds of `--backup-seconds` each side). A "with" side starts `backup run` on all
//!   three members and measures once the new term's full snapshot is on both targets (the
//!   writes during that start-up, election and full snapshot included, are reported
//!   apart as "term start"); it ends with SIGKILL of the three;
//! - the same on a busy disk (the 4 GiB `dd` writer of writer.rs beside it);
//! - the recovery point after SIGKILL of every member and every `backup run` at once,
//!   under the writer: the chain on each target is read back (manifests, then the deltas
//!   decrypted with the owner's identity by the library), and each acknowledged write is
//!   looked up in it. Then the zone restarts from its data, `backup run` again, a new term
//!   continues the chain, and the next kill comes at a random instant;
//! - bytes on the targets per write (deltas and fulls apart), the peak memory (VmHWM) of
//!   the active `backup run` and of the idle ones, and the CPU each (and SeaweedFS) used
//!   during the "with" windows.
//!
//! Zone on 127.0.71.1-3, SeaweedFS on 127.0.71.100 (ports 11800.., see seaweed.rs).

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use zone_etcd::backup::chain::{check_links, Kind, Link, Verified};
use zone_etcd::backup::crypto::{self, Identities};
use zone_etcd::backup::local::sha256_hex;
use zone_etcd::backup::segment;
use zone_etcd::backup::target::file::DirTarget;
use zone_etcd::backup::target::Target;

use crate::backup_cuts;
use crate::seaweed::{self, Seaweed};
use crate::support::*;

const ZONE: &str = "backup.zone";
const SUBNET: u8 = 71;
const WEED_IP: &str = "127.0.71.100";
/// What the recovery-point goal allows beyond the zone's `delta_every` (issue 22: 2 s).
const RPO_SLACK: Duration = Duration::from_secs(2);
const VALUE_BYTES: usize = 256;
/// Pause between two requests of the writer.
const PAUSE: Duration = Duration::from_millis(10);

/// What a request was part of.
const IDLE: u8 = 0;
const WITHOUT: u8 = 1;
const START: u8 = 2;
const WITH: u8 = 3;
/// With `backup run` active, its local chain (`<state>/backup`) bind-mounted on a tmpfs:
/// the same run without the local chain's disk writes and fsyncs (diagnosis, issue 37).
const WITH_TMPFS: u8 = 4;
/// A second "without" window in each round: the A/A comparison that shows the run's
/// own noise, against which a with/without ratio can be judged.
const WITHOUT_AGAIN: u8 = 5;

pub struct Settings {
    pub runs: usize,
    pub seconds: u64,
    pub kills: usize,
    /// The zone's `delta_every` (signed into its zone document; the default is 5 s).
    pub delta_every: Duration,
    /// Rounds beside the 4 GiB `dd` writer (0: none).
    pub busy_rounds: usize,
    /// Adds a third side to each quiet round: the local chain on a tmpfs.
    pub tmpfs_side: bool,
    /// Adds a second "without" side to each quiet round (A/A: the noise floor).
    pub aa_side: bool,
    /// Keeps the targets' storage (SeaweedFS's data, the directory target) on a tmpfs:
    /// off etcd's disk, as a store off the machine and a USB disk are in service.
    pub targets_off_disk: bool,
}

#[derive(Clone, Copy)]
struct Sample {
    n: u64,
    phase: u8,
    round: u16,
    started: Instant,
    /// `started` on the wall clock, ms since the epoch (to place it against the cuts).
    wall_ms: f64,
    acked: Option<Instant>,
    /// The revision etcd gave the put.
    revision: i64,
}

/// The writer: unique keys `bench/<n>`, one put per request, until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    phase: Arc<AtomicU8>,
    round: Arc<std::sync::atomic::AtomicU16>,
    samples: Arc<Mutex<Vec<Sample>>>,
    failures: Arc<Mutex<Vec<String>>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn wall_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

fn key(n: u64) -> String {
    format!("bench/{n:09}")
}

/// Puts `key` = `value`; the revision etcd gave it.
fn put(agent: &ureq::Agent, base: &str, key: &str, value: &[u8]) -> Result<i64> {
    let body = format!(
        "{{\"key\":\"{}\",\"value\":\"{}\"}}",
        b64(key.as_bytes()),
        b64(value)
    );
    let mut response = agent
        .post(&format!("{base}/v3/kv/put"))
        .content_type("application/json")
        .send(&body)
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let text = response
        .body_mut()
        .read_to_string()
        .map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("HTTP {status}: {text}"));
    }
    serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v["header"]["revision"].as_str()?.parse().ok())
        .ok_or_else(|| format!("a put answer without a revision: {text}"))
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

impl Load {
    fn start(zone: &Zone, client: &TlsClient) -> Load {
        let bases: Vec<String> = (0..zone.members.len())
            .map(|i| zone.client_url(i))
            .collect();
        let agents: Vec<ureq::Agent> = bases.iter().map(|_| client.agent()).collect();
        let mut load = Load {
            stop: Arc::new(AtomicBool::new(false)),
            phase: Arc::new(AtomicU8::new(IDLE)),
            round: Arc::new(std::sync::atomic::AtomicU16::new(0)),
            samples: Arc::new(Mutex::new(Vec::new())),
            failures: Arc::new(Mutex::new(Vec::new())),
            handle: None,
        };
        let (stop, phase, round, samples, failures) = (
            load.stop.clone(),
            load.phase.clone(),
            load.round.clone(),
            load.samples.clone(),
            load.failures.clone(),
        );
        let handle = std::thread::spawn(move || {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let i = n as usize % bases.len();
                // Random bytes: gzip cannot shrink them, the figures hold for real data.
                let value: Vec<u8> = (0..VALUE_BYTES / 8)
                    .flat_map(|_| rng.next().to_le_bytes())
                    .collect();
                let (ph, r) = (phase.load(Ordering::SeqCst), round.load(Ordering::SeqCst));
                let started = Instant::now();
                let wall_ms = wall_ms();
                let result = put(&agents[i], &bases[i], &key(n), &value);
                let acked = Instant::now();
                if let Err(e) = &result {
                    let mut f = failures.lock().unwrap_or_else(|e| e.into_inner());
                    f.push(format!("{}: {e}", bases[i]));
                }
                samples
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(Sample {
                        n,
                        phase: ph,
                        round: r,
                        started,
                        wall_ms,
                        acked: result.is_ok().then_some(acked),
                        revision: *result.as_ref().unwrap_or(&0),
                    });
                n += 1;
                std::thread::sleep(PAUSE);
            }
        });
        load.handle = Some(handle);
        load
    }

    fn set(&self, phase: u8, round: usize) {
        self.round.store(round as u16, Ordering::SeqCst);
        self.phase.store(phase, Ordering::SeqCst);
    }

    fn samples(&self) -> Vec<Sample> {
        self.samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn stop(&mut self) -> (Vec<Sample>, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        let failures = self
            .failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        (self.samples(), failures)
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// One link as read back from a target (manifest body, not its signature: the drills
/// verify those; here only what the chain holds counts).
struct Read {
    link: Link,
    sha256: String,
    manifest_bytes: u64,
}

/// A target's chain as the owner would read it: manifests, then the deltas they name,
/// decrypted; which writer keys it holds.
struct ChainReader {
    name: &'static str,
    target: Box<dyn Target>,
    links: BTreeMap<String, Read>,
    keys: HashSet<u64>,
    /// Revisions the delta links cover.
    revisions: u64,
    /// The newest linked full snapshot's revision: every write up to it is in the chain.
    full_revision: i64,
}

impl ChainReader {
    /// Reads the manifests not read yet, and the deltas they name.
    fn refresh(&mut self, identities: &Identities) -> Result<()> {
        let listed = self.target.list("chain/").map_err(|e| e.to_string())?;
        for object in listed {
            if self.links.contains_key(&object.name) {
                continue;
            }
            let Some(bytes) = self
                .target
                .get(&object.name, 1 << 20)
                .map_err(|e| e.to_string())?
            else {
                continue;
            };
            let envelope: Value = serde_json::from_slice(&bytes)
                .map_err(|e| format!("{}: not a manifest: {e}", object.name))?;
            let link: Link = serde_json::from_str(envelope["body"].as_str().unwrap_or(""))
                .map_err(|e| format!("{}: not a link: {e}", object.name))?;
            if link.kind == Kind::Full {
                self.full_revision = self.full_revision.max(link.last_revision);
            }
            if link.kind == Kind::Delta {
                if let Some(name) = &link.object {
                    let cipher = self
                        .target
                        .get(name, 256 << 20)
                        .map_err(|e| e.to_string())?
                        .ok_or_else(|| format!("{}: names {name}, which is absent", object.name))?;
                    let plain = crypto::decrypt_bytes(&cipher, identities)
                        .map_err(|e| format!("{name}: {e}"))?;
                    let (_, revisions) = segment::decode(&plain, ZONE, 1 << 30)
                        .map_err(|e| format!("{name}: {e}"))?;
                    for r in &revisions {
                        for e in &r.events {
                            let k = String::from_utf8_lossy(&e.key);
                            if let Some(n) = k.strip_prefix("bench/").and_then(|n| n.parse().ok()) {
                                self.keys.insert(n);
                            }
                        }
                    }
                    self.revisions += revisions.len() as u64;
                }
            }
            self.links.insert(
                object.name.clone(),
                Read {
                    link,
                    sha256: sha256_hex(&bytes),
                    manifest_bytes: bytes.len() as u64,
                },
            );
        }
        Ok(())
    }

    /// Whether a write is in the chain: in a linked delta, or at most the revision of a
    /// linked full snapshot (a chain starts with one, and a restore starts from one).
    fn holds(&self, s: &Sample) -> bool {
        self.keys.contains(&s.n) || (s.revision > 0 && s.revision <= self.full_revision)
    }

    /// The sessions whose full snapshot is linked.
    fn full_sessions(&self) -> HashSet<String> {
        self.links
            .values()
            .filter(|r| r.link.kind == Kind::Full)
            .map(|r| r.link.session.clone())
            .collect()
    }

    /// A full snapshot of a session not in `before`: (session, writer node).
    fn new_full(&self, before: &HashSet<String>) -> Option<(String, String)> {
        self.links
            .values()
            .find(|r| r.link.kind == Kind::Full && !before.contains(&r.link.session))
            .map(|r| (r.link.session.clone(), r.link.writer.clone()))
    }

    /// Whether `session` linked a delta (not a heartbeat) after its full snapshot.
    fn has_delta(&self, session: &str) -> bool {
        self.links.values().any(|r| {
            r.link.session == session
                && r.link.kind == Kind::Delta
                && r.link.last_revision >= r.link.first_revision
        })
    }

    /// The chain's rules (sequence, hashes, delta revisions), as the drill checks them.
    fn check(&self) -> std::result::Result<(), String> {
        let links: Vec<Verified> = self
            .links
            .iter()
            .map(|(name, r)| Verified {
                name: name.clone(),
                sha256: r.sha256.clone(),
                link: r.link.clone(),
            })
            .collect();
        check_links(ZONE, &links).map_err(|b| b.to_string())
    }

    /// Bytes on the target by kind: (full objects, delta objects, manifests, counts).
    fn bytes(&self) -> Result<Value> {
        let all = self.target.list("").map_err(|e| e.to_string())?;
        let sum = |prefix: &str| -> (u64, usize) {
            let v: Vec<_> = all.iter().filter(|o| o.name.starts_with(prefix)).collect();
            (v.iter().map(|o| o.size).sum(), v.len())
        };
        let (full, fulls) = sum("full/");
        let (delta, deltas) = sum("delta/");
        let manifests = |kind: Kind| -> u64 {
            self.links
                .values()
                .filter(|r| r.link.kind == kind)
                .map(|r| r.manifest_bytes)
                .sum()
        };
        let writes = self.revisions.max(1) as f64;
        let delta_manifests = manifests(Kind::Delta);
        let full_manifests = manifests(Kind::Full);
        Ok(json!({
            "revisions_in_deltas": self.revisions,
            "writer_keys_in_deltas": self.keys.len(),
            "full_objects": fulls, "full_bytes": full,
            "delta_objects": deltas, "delta_bytes": delta,
            "delta_manifest_bytes": delta_manifests,
            "full_manifest_bytes": full_manifests,
            "delta_bytes_per_write": round(delta as f64 / writes),
            "delta_and_manifest_bytes_per_write": round((delta + delta_manifests) as f64 / writes),
            "full_bytes_per_write": round(full as f64 / writes),
            "full_bytes_median": median(&all.iter().filter(|o| o.name.starts_with("full/")).map(|o| o.size as f64).collect::<Vec<_>>()),
        }))
    }
}

/// The zone's `backup run` processes (one per member), with the store's credentials.
fn backup_runs(zone: &Zone, tag: &str) -> Result<Vec<Process>> {
    (0..zone.members.len())
        .map(|i| {
            let mut cmd = zone_etcd(&[
                "backup",
                "run",
                "--config",
                &zone.config(i).to_string_lossy(),
            ])?;
            cmd.env("AWS_ACCESS_KEY_ID", seaweed::ACCESS_KEY)
                .env("AWS_SECRET_ACCESS_KEY", seaweed::SECRET_KEY)
                .env_remove("AWS_PROFILE")
                .env_remove("AWS_SHARED_CREDENTIALS_FILE");
            Process::spawn(
                cmd,
                &zone
                    .dir
                    .join(format!("{}.backup-run.{tag}.log", zone.members[i].0)),
            )
        })
        .collect()
}

struct Bench {
    zone: Zone,
    identities: Identities,
    readers: Vec<ChainReader>,
    load: Load,
    active_kib: Vec<f64>,
    idle_kib: Vec<f64>,
    term_start_s: Vec<f64>,
    /// Share of one core used during a "with" window: the active run, each idle run,
    /// SeaweedFS.
    active_cpu: Vec<f64>,
    idle_cpu: Vec<f64>,
    weed_cpu: Vec<f64>,
    weed_pid: u32,
    client: TlsClient,
    /// etcd's extra writes per window: (phase, JSON of `backup_cuts::extra_rates`).
    extra: Vec<(u8, Value)>,
    /// The load average at the end of each round.
    round_loads: Vec<Value>,
}

impl Bench {
    fn refresh(&mut self) -> Result<()> {
        for r in &mut self.readers {
            r.refresh(&self.identities)?;
        }
        Ok(())
    }

    fn sessions(&self) -> Vec<HashSet<String>> {
        self.readers
            .iter()
            .map(ChainReader::full_sessions)
            .collect()
    }

    /// Starts `backup run` on every member and waits until a new term's full snapshot is
    /// linked on every target (and, with `delta`, a delta after it); returns the runs and
    /// the active node.
    fn start_term(&mut self, tag: &str, delta: bool) -> Result<(Vec<Process>, String)> {
        let before = self.sessions();
        let spawned = Instant::now();
        let mut runs = backup_runs(&self.zone, tag)?;
        let deadline = spawned + Duration::from_secs(180);
        loop {
            std::thread::sleep(Duration::from_millis(500));
            self.refresh()?;
            let news: Vec<Option<(String, String)>> = self
                .readers
                .iter()
                .zip(&before)
                .map(|(r, b)| r.new_full(b))
                .collect();
            if let Some(Some((session, node))) = news.first().cloned() {
                let everywhere = news
                    .iter()
                    .all(|n| n.as_ref().map(|n| &n.0) == Some(&session));
                let deltas = !delta || self.readers.iter().all(|r| r.has_delta(&session));
                if everywhere && deltas {
                    self.term_start_s.push(spawned.elapsed().as_secs_f64());
                    return Ok((runs, node));
                }
            }
            if !runs.iter_mut().all(Process::is_running) {
                return Err(format!(
                    "a `backup run` exited: see {}/*.backup-run.{tag}.log",
                    self.zone.dir.display()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no new term's full snapshot on every target after 180 s: see {}/*.backup-run.{tag}.log",
                    self.zone.dir.display()
                ));
            }
        }
    }

    /// Records the peak memory of the runs: the active node's and the others'.
    fn record_memory(&mut self, runs: &[Process], active: &str) {
        for (i, run) in runs.iter().enumerate() {
            if let Some(kib) = status_kib(run.pid(), "VmHWM") {
                if self.zone.members[i].0 == active {
                    self.active_kib.push(kib);
                } else {
                    self.idle_kib.push(kib);
                }
            }
        }
    }

    /// `seconds` of the writer in `phase`, with etcd's counters read before and after.
    fn window(&mut self, phase: u8, round: usize, seconds: u64) {
        let base = self.zone.client_url(0);
        let bases: Vec<String> = (0..self.zone.members.len())
            .map(|i| self.zone.client_url(i))
            .collect();
        let metrics0 = backup_cuts::etcd_metrics(&self.client, &bases);
        let before = backup_cuts::counters(&self.client, &base);
        let t0 = Instant::now();
        self.load.set(phase, round);
        std::thread::sleep(Duration::from_secs(seconds));
        self.load.set(IDLE, round);
        let elapsed = t0.elapsed().as_secs_f64();
        let after = backup_cuts::counters(&self.client, &base);
        let metrics1 = backup_cuts::etcd_metrics(&self.client, &bases);
        let puts = self
            .load
            .samples()
            .iter()
            .filter(|s| s.phase == phase && s.round as usize == round && s.acked.is_some())
            .count();
        let mut rates = backup_cuts::extra_rates(before, after, puts, elapsed);
        if rates.is_object() {
            rates["etcd"] = backup_cuts::metrics_rates(metrics0, metrics1, elapsed);
            rates["round"] = json!(round);
        }
        self.extra.push((phase, rates));
    }

    /// `rounds` ABBA rounds: `seconds` of the writer without `backup run`, and `seconds`
    /// with it active (after its term's start); with `tmpfs`, a third side, ABCCBA;
    /// `offset` numbers the rounds.
    fn latency_rounds(
        &mut self,
        rounds: usize,
        seconds: u64,
        offset: usize,
        (tmpfs, aa): (bool, bool),
    ) -> Result<()> {
        for round in offset..offset + rounds {
            let mut order = vec![WITHOUT, WITH];
            if tmpfs {
                order.push(WITH_TMPFS);
            }
            if aa {
                order.push(WITHOUT_AGAIN);
            }
            if round % 2 == 1 {
                order.reverse();
            }
            for side in order {
                if side == WITHOUT || side == WITHOUT_AGAIN {
                    self.window(side, round, seconds);
                    continue;
                }
                let mounted = if side == WITH_TMPFS {
                    Some(LocalOnTmpfs::mount(&self.zone)?)
                } else {
                    None
                };
                self.load.set(START, round);
                let (runs, active) = self.start_term(&format!("r{round}"), false)?;
                let pids: Vec<u32> = runs
                    .iter()
                    .map(Process::pid)
                    .chain([self.weed_pid])
                    .collect();
                let cpu0: Vec<Option<f64>> = pids.iter().map(|p| cpu_seconds(*p)).collect();
                let t0 = Instant::now();
                self.window(side, round, seconds);
                let elapsed = t0.elapsed().as_secs_f64();
                for (i, (pid, c0)) in pids.iter().zip(cpu0).enumerate() {
                    let Some(share) = c0.zip(cpu_seconds(*pid)).map(|(a, b)| (b - a) / elapsed)
                    else {
                        continue;
                    };
                    if i == runs.len() {
                        self.weed_cpu.push(share);
                    } else if self.zone.members[i].0 == active {
                        self.active_cpu.push(share);
                    } else {
                        self.idle_cpu.push(share);
                    }
                }
                self.record_memory(&runs, &active);
                drop(runs); // SIGKILL by PID
                drop(mounted);
            }
            let load = loadavg();
            eprintln!("    round {round} done; load {load}");
            self.round_loads.push(json!({"round": round, "load": load}));
        }
        Ok(())
    }
}

/// A directory removed when dropped.
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Every member's local chain (`<state>/backup`) bind-mounted on a fresh tmpfs directory
/// while it lives (the bench runs as root); unmounted and removed when dropped, after
/// the `backup run` processes are killed.
struct LocalOnTmpfs {
    mounts: Vec<std::path::PathBuf>,
    shm: std::path::PathBuf,
}

impl LocalOnTmpfs {
    fn mount(zone: &Zone) -> Result<LocalOnTmpfs> {
        use std::os::unix::fs::DirBuilderExt;
        let shm = Path::new("/dev/shm").join(format!("zone-etcd-bench-{}", std::process::id()));
        let mut on = LocalOnTmpfs {
            mounts: Vec::new(),
            shm: shm.clone(),
        };
        for i in 0..zone.members.len() {
            let from = shm.join(&zone.members[i].0);
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&from)
                .map_err(|e| format!("{}: {e}", from.display()))?;
            let to = zone.node_dir(i).join("state/backup");
            output({
                let mut c = std::process::Command::new("mount");
                c.arg("--bind").arg(&from).arg(&to);
                c
            })
            .map_err(|e| format!("{e} (the tmpfs side needs root)"))?;
            on.mounts.push(to);
        }
        Ok(on)
    }
}

impl Drop for LocalOnTmpfs {
    fn drop(&mut self) {
        for m in &self.mounts {
            let _ = std::process::Command::new("umount").arg(m).status();
        }
        let _ = std::fs::remove_dir_all(&self.shm);
    }
}

/// p50/p99/max of the acknowledged requests of `phase` in `rounds`, and the failures.
fn describe(samples: &[Sample], phase: u8, rounds: std::ops::Range<usize>) -> Value {
    let chosen: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.phase == phase && rounds.contains(&(s.round as usize)))
        .collect();
    let mut l: Vec<f64> = chosen
        .iter()
        .filter_map(|s| s.acked.map(|a| ms(a - s.started)))
        .collect();
    l.sort_by(f64::total_cmp);
    let per_round: Vec<Value> = rounds
        .clone()
        .map(|r| {
            let mut v: Vec<f64> = chosen
                .iter()
                .filter(|s| s.round as usize == r)
                .filter_map(|s| s.acked.map(|a| ms(a - s.started)))
                .collect();
            v.sort_by(f64::total_cmp);
            json!({"round": r, "requests": v.len(), "p50_ms": round(percentile(&v, 50.0)), "p99_ms": round(percentile(&v, 99.0))})
        })
        .collect();
    json!({
        "requests": chosen.len(),
        "failed": chosen.iter().filter(|s| s.acked.is_none()).count(),
        "p50_ms": round(percentile(&l, 50.0)),
        "p99_ms": round(percentile(&l, 99.0)),
        "max_ms": round(l.last().copied().unwrap_or(f64::NAN)),
        "per_round": per_round,
    })
}

fn compare(samples: &[Sample], rounds: std::ops::Range<usize>) -> Value {
    let without = describe(samples, WITHOUT, rounds.clone());
    let with = describe(samples, WITH, rounds.clone());
    let tmpfs = describe(samples, WITH_TMPFS, rounds.clone());
    let start = describe(samples, START, rounds.clone());
    let f = |v: &Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    let mut out = json!({
        "p50_ratio": round(f(&with, "p50_ms") / f(&without, "p50_ms")),
        "p99_ratio": round(f(&with, "p99_ms") / f(&without, "p99_ms")),
        "without": without,
        "with_active": with,
        "term_start": start,
    });
    if tmpfs["requests"].as_u64().unwrap_or(0) > 0 {
        out["tmpfs_p99_ratio"] = json!(round(f(&tmpfs, "p99_ms") / f(&out["without"], "p99_ms")));
        out["with_local_chain_on_tmpfs"] = tmpfs;
    }
    let again = describe(samples, WITHOUT_AGAIN, rounds.clone());
    if again["requests"].as_u64().unwrap_or(0) > 0 {
        out["aa_p99_ratio"] = json!(round(f(&again, "p99_ms") / f(&out["without"], "p99_ms")));
        out["without_again"] = again;
    }
    // Each round's own with/without ratio (its two sides minutes apart at most), median.
    let per = |v: &Value| -> Vec<f64> {
        v["per_round"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|r| r["p99_ms"].as_f64().unwrap_or(f64::NAN))
                    .collect()
            })
            .unwrap_or_default()
    };
    let ratios: Vec<f64> = per(&out["with_active"])
        .iter()
        .zip(per(&out["without"]))
        .map(|(w, o)| w / o)
        .collect();
    out["per_round_p99_ratio_median"] = json!(round(median(&ratios)));
    out["per_round_p99_ratios"] = json!(ratios.iter().map(|r| round(*r)).collect::<Vec<_>>());
    out
}

/// The requests of `phase` in `rounds`, acknowledged, for `backup_cuts`.
fn timed(samples: &[Sample], phase: u8, rounds: std::ops::Range<usize>) -> Vec<backup_cuts::Timed> {
    samples
        .iter()
        .filter(|s| s.phase == phase && rounds.contains(&(s.round as usize)))
        .filter_map(|s| {
            s.acked.map(|a| backup_cuts::Timed {
                start_ms: s.wall_ms,
                latency_ms: ms(a - s.started),
            })
        })
        .collect()
}

/// Percentiles of `values` in seconds, for the JSON results.
fn spread(values: &[f64]) -> Value {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    json!({
        "n": v.len(),
        "p50": round(percentile(&v, 50.0)),
        "p99": round(percentile(&v, 99.0)),
        "max": round(v.last().copied().unwrap_or(f64::NAN)),
        "min": round(v.first().copied().unwrap_or(f64::NAN)),
    })
}

pub fn run(dir: &Path, opts: &Settings) -> Result<Value> {
    let load_start = loadavg();
    let delta_every = opts.delta_every;
    let root = dir.join(format!("backup-{}s", delta_every.as_secs()));
    std::fs::create_dir_all(&root).map_err(|e| e.to_string())?;
    // The owner's identity, made with Debian's age as an owner would.
    let owner_key = root.join("owner.key");
    output({
        let mut c = std::process::Command::new("age-keygen");
        c.arg("-o").arg(&owner_key);
        c
    })
    .map_err(|e| format!("{e} (fix: ./scripts/need.sh age)"))?;
    let recipient = output({
        let mut c = std::process::Command::new("age-keygen");
        c.arg("-y").arg(&owner_key);
        c
    })?
    .trim()
    .to_string();
    let identities = crypto::load_identities(&owner_key).map_err(|e| e.to_string())?;
    let off_disk = opts.targets_off_disk.then(|| {
        Path::new("/dev/shm").join(format!("zone-etcd-bench-{}-targets", std::process::id()))
    });
    let _off_disk = off_disk.as_ref().map(|d| RemoveOnDrop(d.clone()));
    let storage = off_disk.clone().unwrap_or_else(|| root.clone());
    let weed = Seaweed::start(&storage.join("weed"), WEED_IP)?;
    let usb = storage.join("usb");
    std::fs::create_dir_all(&usb).map_err(|e| e.to_string())?;
    let s3_url = format!("s3://{}/zones/{ZONE}", seaweed::BUCKET);
    let file_url = format!("file://{}", usb.display());
    let extra = format!(
        "\n[backup]\nrecipients = [\"{recipient}\"]\ndelta_every = \"{}s\"\n\n[[backup.target]]\nurl = \"{s3_url}\"\nendpoint = \"{}\"\n\n[[backup.target]]\nurl = \"{file_url}\"\n",
        delta_every.as_secs(),
        weed.endpoint()
    );
    let zone = Zone::bootstrap_with(&root.join("zone"), ZONE, SUBNET, 3, &extra)?;
    let mut members: Vec<Process> = (0..3).map(|i| zone.launch(i)).collect::<Result<_>>()?;
    let current = zone.node_dir(0).join("state/tls/current/client.key");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !current.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let client = zone.client(0)?;
    let zone_client = zone.client(0)?;
    zone.wait_healthy(&client, Instant::now())?;
    let s3 = weed.s3_target(ZONE)?;
    let reader = |name, target: Box<dyn Target>| ChainReader {
        name,
        target,
        links: BTreeMap::new(),
        keys: HashSet::new(),
        revisions: 0,
        full_revision: 0,
    };
    let load = Load::start(&zone, &client);
    let mut b = Bench {
        readers: vec![
            reader("s3", Box::new(s3)),
            reader("dir", Box::new(DirTarget::new(&file_url, &usb))),
        ],
        zone,
        identities,
        load,
        active_kib: Vec::new(),
        idle_kib: Vec::new(),
        term_start_s: Vec::new(),
        active_cpu: Vec::new(),
        idle_cpu: Vec::new(),
        weed_cpu: Vec::new(),
        weed_pid: weed.pid(),
        client: zone_client,
        extra: Vec::new(),
        round_loads: Vec::new(),
    };
    let seconds = opts.seconds;

    // 1. Writer latency, quiet disk.
    let quiet_rounds = opts.runs;
    eprintln!(
        "  backup: {quiet_rounds} rounds of {seconds} s without / with `backup run` (delta_every {} s){}",
        delta_every.as_secs(),
        if opts.tmpfs_side { " / with its local chain on tmpfs" } else { "" }
    );
    b.latency_rounds(quiet_rounds, seconds, 0, (opts.tmpfs_side, opts.aa_side))?;

    // 5. The same beside the 4 GiB writer.
    let busy_rounds = opts.busy_rounds;
    let mut dd_rounds = 0;
    if busy_rounds > 0 {
        eprintln!("  backup: {busy_rounds} rounds beside a 4 GiB dd writer");
        let dd = crate::writer::Writer::start(dir)?;
        let busy = b.latency_rounds(busy_rounds, seconds, quiet_rounds, (false, false));
        dd_rounds = dd.stop();
        busy?;
    }

    // 2. The recovery point after SIGKILL of everything at once.
    eprintln!(
        "  backup: {} kills of every member and every `backup run`",
        opts.kills
    );
    b.load.set(IDLE, 0);
    let mut rng = Rng(std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64 | 1)
        .unwrap_or(7));
    let mut settled = Instant::now(); // every write acknowledged before this must be in
    let mut kills = Vec::new();
    for k in 0..opts.kills {
        let (runs, active) = b.start_term(&format!("k{k}"), true)?;
        // A random instant relative to the segment cuts: 2 s, then up to 2 x delta_every.
        let wait = Duration::from_secs(2)
            + Duration::from_millis(rng.next() % (2 * delta_every.as_millis() as u64));
        std::thread::sleep(wait);
        b.record_memory(&runs, &active);
        let pids: Vec<u32> = members.iter().chain(&runs).map(Process::pid).collect();
        let killed_at = Instant::now();
        for pid in &pids {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(*pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        drop(runs);
        drop(members);
        // In-flight uploads that left the machine before the kill land now.
        std::thread::sleep(Duration::from_millis(500));
        b.refresh()?;
        let samples = b.load.samples();
        let acked: Vec<(&Sample, Instant)> = samples
            .iter()
            .filter_map(|s| s.acked.filter(|a| *a < killed_at).map(|a| (s, a)))
            .collect();
        let mut per_target = serde_json::Map::new();
        for r in &b.readers {
            let newest_in = acked
                .iter()
                .filter(|(s, _)| r.holds(s))
                .map(|(_, a)| *a)
                .max();
            let missing: Vec<Instant> = acked
                .iter()
                .filter(|(s, _)| !r.holds(s))
                .map(|(_, a)| *a)
                .collect();
            let oldest_missing = missing.iter().min().copied();
            let lost = missing.iter().filter(|a| **a < settled).count();
            per_target.insert(
                r.name.into(),
                json!({
                    "newest_in_chain_s": newest_in.map(|a| round((killed_at - a).as_secs_f64())),
                    "oldest_missing_s": round(oldest_missing.map_or(0.0, |a| (killed_at - a).as_secs_f64())),
                    "missing_writes": missing.len(),
                    "lost_writes": lost,
                    "chain_check": r.check().err().unwrap_or_else(|| "ok".into()),
                }),
            );
        }
        eprintln!(
            "    kill {k}: s3 newest in chain {} s before, oldest missing {} s ({} writes); dir {} s / {} s",
            per_target["s3"]["newest_in_chain_s"],
            per_target["s3"]["oldest_missing_s"],
            per_target["s3"]["missing_writes"],
            per_target["dir"]["newest_in_chain_s"],
            per_target["dir"]["oldest_missing_s"],
        );
        kills.push(
            json!({"active": active, "waited_s": round(wait.as_secs_f64()), "targets": per_target}),
        );
        settled = killed_at;
        // Back from the members' data.
        members = (0..3).map(|i| b.zone.launch(i)).collect::<Result<_>>()?;
        b.zone.wait_healthy(&client, Instant::now())?;
    }
    // Catch up once more so the byte counts cover a whole chain.
    let (runs, active) = b.start_term("end", true)?;
    b.record_memory(&runs, &active);
    let (samples, failures) = b.load.stop();
    drop(runs);
    if !members.iter_mut().all(Process::is_running) {
        return Err("a member exited during the backup section".into());
    }
    drop(members);
    b.refresh()?;

    let quiet = compare(&samples, 0..quiet_rounds);
    // Where the tail goes: the requests of each "with" side against the cut instants
    // (every delta link's start, heartbeats included, from the directory target).
    let cut_ms: Vec<f64> = b
        .readers
        .iter()
        .find(|r| r.name == "dir")
        .map(|r| {
            r.links
                .values()
                .filter(|l| l.link.kind == Kind::Delta)
                .map(|l| l.link.last_time_ms as f64)
                .collect()
        })
        .unwrap_or_default();
    let without_p99 = quiet["without"]["p99_ms"].as_f64().unwrap_or(f64::NAN);
    let mut cuts = serde_json::Map::new();
    for (name, phase) in [
        ("with_active", WITH),
        ("with_local_chain_on_tmpfs", WITH_TMPFS),
    ] {
        let t = timed(&samples, phase, 0..quiet_rounds);
        if !t.is_empty() {
            cuts.insert(
                name.into(),
                backup_cuts::around_cuts(&cut_ms, &t, without_p99),
            );
        }
    }
    let mut extra = serde_json::Map::new();
    for (name, phase) in [
        ("without", WITHOUT),
        ("with_active", WITH),
        ("with_local_chain_on_tmpfs", WITH_TMPFS),
    ] {
        let windows: Vec<&Value> = b
            .extra
            .iter()
            .filter(|(p, _)| *p == phase)
            .map(|(_, v)| v)
            .collect();
        if !windows.is_empty() {
            extra.insert(name.into(), json!(windows));
        }
    }
    let busy = compare(&samples, quiet_rounds..quiet_rounds + busy_rounds);
    let rpo = |target: &str, key: &str| -> Vec<f64> {
        kills
            .iter()
            .filter_map(|k| k["targets"][target][key].as_f64())
            .collect()
    };
    let mut rpo_json = serde_json::Map::new();
    for r in &b.readers {
        // Every write acknowledged before the last kill is in the chain once the next
        // term has shipped its first delta (checked before each kill for the previous).
        let after_last = samples
            .iter()
            .filter(|s| s.acked.is_some_and(|a| a < settled) && !r.holds(s))
            .count() as u64;
        let lost: u64 = kills
            .iter()
            .filter_map(|k| k["targets"][r.name]["lost_writes"].as_u64())
            .sum::<u64>()
            + after_last;
        rpo_json.insert(
            r.name.into(),
            json!({
                "oldest_missing_s": spread(&rpo(r.name, "oldest_missing_s")),
                "newest_in_chain_s": spread(&rpo(r.name, "newest_in_chain_s")),
                "lost_writes": lost,
            }),
        );
    }
    let acked_total = samples.iter().filter(|s| s.acked.is_some()).count();
    let bytes: serde_json::Map<String, Value> = b
        .readers
        .iter()
        .map(|r| Ok((r.name.to_string(), r.bytes()?)))
        .collect::<Result<_>>()?;
    let chain_ok: serde_json::Map<String, Value> = b
        .readers
        .iter()
        .map(|r| {
            (
                r.name.to_string(),
                json!(r.check().err().unwrap_or_else(|| "ok".into())),
            )
        })
        .collect();
    let result = json!({
        // A subset run (--only) replaces the top-level machine: keep this section's own.
        "machine": machine(),
        "zone": "3 members, loopback, launched by zone-etcd",
        "targets": ["s3 (SeaweedFS on loopback)", "directory"],
        "delta_every_s": delta_every.as_secs(),
        "targets_storage": if off_disk.is_some() { "tmpfs (off etcd's disk)" } else { "etcd's disk" },
        "full_every": "1h (default): one full per term start only",
        "value_bytes": VALUE_BYTES,
        "key_bytes": key(0).len(),
        "window_s": seconds,
        "writer_pause_ms": ms(PAUSE),
        "quiet_rounds": quiet_rounds,
        "busy_rounds": busy_rounds,
        "busy_dd_rounds_of_4_gib": dd_rounds,
        "latency": quiet,
        "latency_around_cuts": cuts,
        "etcd_commits_per_window": extra,
        "round_loads": b.round_loads,
        "latency_busy": busy,
        "term_start_s": spread(&b.term_start_s),
        "rpo": {
            "kills": kills.len(),
            "goal_s": (delta_every + RPO_SLACK).as_secs(),
            "targets": rpo_json,
            "samples": kills,
        },
        "bytes": {
            "acknowledged_writes": acked_total,
            "raw_key_and_value_bytes": key(0).len() + VALUE_BYTES,
            "targets": bytes,
            "chain_check_at_end": chain_ok,
        },
        "cpu_share_of_one_core_with_active": {
            "active_run": summary(&b.active_cpu),
            "idle_run": summary(&b.idle_cpu),
            "seaweedfs": summary(&b.weed_cpu),
        },
        "memory_kib": {
            "active": summary(&b.active_kib),
            "idle": summary(&b.idle_kib),
        },
        "writer_failures": failures.len(),
        "writer_failures_first": failures.iter().take(3).collect::<Vec<_>>(),
        "load_start": load_start,
        "load_end": loadavg(),
    });
    drop(weed);
    eprintln!(
        "  backup: p50/p99 with {}/{} ms, without {}/{} ms (p99 x{}); busy x{}; RPO (s3, oldest missing) p50/p99/max {}/{}/{} s",
        result["latency"]["with_active"]["p50_ms"],
        result["latency"]["with_active"]["p99_ms"],
        result["latency"]["without"]["p50_ms"],
        result["latency"]["without"]["p99_ms"],
        result["latency"]["p99_ratio"],
        result["latency_busy"]["p99_ratio"],
        result["rpo"]["targets"]["s3"]["oldest_missing_s"]["p50"],
        result["rpo"]["targets"]["s3"]["oldest_missing_s"]["p99"],
        result["rpo"]["targets"]["s3"]["oldest_missing_s"]["max"],
    );
    Ok(result)
}
