//! The latency windows: the writer without `backup run`, with it active (after its
//! term's start), and the diagnostic sides (its local chain on a tmpfs, a second
//! "without"), in alternating rounds.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use zone_backup::crypto::Identities;

use super::cuts;
use super::load::Load;
use super::reader::ChainReader;
use super::shape::{
    IDLE, START, WITH, WITHOUT, WITHOUT_AGAIN, WITH_CPU_ONLY, WITH_IDLE, WITH_NICE, WITH_NO_S3,
    WITH_NO_TARGETS, WITH_TMPFS, WITH_WATCH_ONLY,
};
use super::sides::{Away, LocalOnTmpfs};

/// The sides a round adds to "without" and "with" (diagnosis, issue 37).
#[derive(Clone, Copy, Default)]
pub(super) struct Sides {
    /// The local chain on a tmpfs.
    pub(super) tmpfs: bool,
    /// A second "without" (A/A).
    pub(super) aa: bool,
    /// `backup run` at a lower CPU and I/O priority.
    pub(super) nice: bool,
    /// The store stopped; the store stopped and the directory target away.
    pub(super) away: bool,
    /// `backup run` under SCHED_IDLE.
    pub(super) idle: bool,
    /// Both targets away and the local chain on a tmpfs: the cut's CPU alone.
    pub(super) cpu_only: bool,
    /// A bare watcher of every key instead of `backup run`.
    pub(super) watch_only: bool,
}

/// How the bench starts the `backup run` processes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Priority {
    Normal,
    /// `nice -n 10 ionice -c2 -n7`: what the systemd unit's `Nice=` and
    /// `IOScheduling*=` would give it.
    Niced,
    /// `chrt --idle 0`: SCHED_IDLE, what `CPUSchedulingPolicy=idle` would give it.
    Idle,
}
use crate::seaweed;
use crate::support::*;

/// The zone's `backup run` processes (one per member), with the store's credentials, at
/// `priority`.
pub(super) fn backup_runs(zone: &Zone, tag: &str, priority: Priority) -> Result<Vec<Process>> {
    (0..zone.members.len())
        .map(|i| {
            let config = zone.config(i).to_string_lossy().into_owned();
            let plain = zone_etcd(&["backup", "run", "--config", &config])?;
            let prefix: &[&str] = match priority {
                Priority::Normal => &[],
                Priority::Niced => &["nice", "-n", "10", "ionice", "-c2", "-n7"],
                Priority::Idle => &["chrt", "--idle", "0"],
            };
            let mut cmd = if let Some((program, args)) = prefix.split_first() {
                let mut c = std::process::Command::new(program);
                c.args(args).arg(plain.get_program()).args(plain.get_args());
                for (key, value) in plain.get_envs() {
                    match value {
                        Some(value) => c.env(key, value),
                        None => c.env_remove(key),
                    };
                }
                c
            } else {
                plain
            };
            cmd.env("AWS_ACCESS_KEY_ID", seaweed::ACCESS_KEY)
                .env("AWS_SECRET_ACCESS_KEY", seaweed::SECRET_KEY)
                .env_remove("AWS_PROFILE")
                .env_remove("AWS_SHARED_CREDENTIALS_FILE");
            Process::spawn(
                cmd,
                &zone
                    .root
                    .join(format!("{}.backup-run.{tag}.log", zone.members[i].0)),
            )
        })
        .collect()
}

/// `etcdctl watch --prefix ""` on member 0 with its client certificate, output discarded;
/// started when it has run a second (its stream is open).
fn bare_watch(zone: &Zone) -> Result<Process> {
    let tls = zone.node_dir(0).join("state/tls/current");
    let mut cmd = std::process::Command::new(repo().join("bin/etcdctl"));
    cmd.arg(format!("--endpoints={}", zone.client_url(0)))
        .arg(format!("--cacert={}", tls.join("ca.crt").display()))
        .arg(format!("--cert={}", tls.join("client.crt").display()))
        .arg(format!("--key={}", tls.join("client.key").display()))
        .args(["watch", "--prefix", ""]);
    let mut watcher = Process::spawn(cmd, Path::new("/dev/null"))?;
    std::thread::sleep(Duration::from_secs(1));
    if !watcher.is_running() {
        return Err(
            "the bare `etcdctl watch` exited at once (fix: ./scripts/fetch-etcd.sh)".into(),
        );
    }
    Ok(watcher)
}

pub(super) struct Bench {
    pub(super) zone: Zone,
    pub(super) identities: Identities,
    pub(super) readers: Vec<ChainReader>,
    pub(super) load: Load,
    pub(super) active_kib: Vec<f64>,
    pub(super) idle_kib: Vec<f64>,
    pub(super) term_start_s: Vec<f64>,
    /// Share of one core used during a "with" window: the active run, each idle run,
    /// SeaweedFS.
    pub(super) active_cpu: Vec<f64>,
    pub(super) idle_cpu: Vec<f64>,
    pub(super) weed_cpu: Vec<f64>,
    pub(super) weed_pid: u32,
    /// The directory target's root.
    pub(super) usb: std::path::PathBuf,
    pub(super) client: TlsClient,
    /// etcd's extra writes per window: (phase, JSON of `cuts::extra_rates`).
    pub(super) extra: Vec<(u8, Value)>,
    /// The load average at the end of each round.
    pub(super) round_loads: Vec<Value>,
}

impl Bench {
    pub(super) fn refresh(&mut self) -> Result<()> {
        for r in &mut self.readers {
            r.refresh(&self.identities)?;
        }
        Ok(())
    }

    pub(super) fn sessions(&self) -> Vec<HashSet<String>> {
        self.readers
            .iter()
            .map(ChainReader::full_sessions)
            .collect()
    }

    /// Starts `backup run` on every member and waits until a new term's full snapshot is
    /// linked on every target (and, with `delta`, a delta after it); returns the runs and
    /// the active node.
    pub(super) fn start_term(
        &mut self,
        tag: &str,
        delta: bool,
        priority: Priority,
    ) -> Result<(Vec<Process>, String)> {
        let before = self.sessions();
        let spawned = Instant::now();
        let mut runs = backup_runs(&self.zone, tag, priority)?;
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
                    self.zone.root.display()
                ));
            }
            if Instant::now() > deadline {
                let mut seen = String::new();
                for (r, b) in self.readers.iter().zip(&before) {
                    let names: Vec<&String> = r.links.keys().collect();
                    seen.push_str(&format!(
                        "{}: {} links; a new full: {:?}; {names:?}\n",
                        r.name,
                        r.links.len(),
                        r.new_full(b)
                    ));
                }
                stacks(
                    &runs,
                    &seen,
                    &self.zone.root.join(format!("backup-run.{tag}.stacks.txt")),
                );
                return Err(format!(
                    "no new term's full snapshot on every target after 180 s: see {}/*.backup-run.{tag}.log",
                    self.zone.root.display()
                ));
            }
        }
    }

    /// Waits until every target holds a link cut after now (the shippers caught up).
    pub(super) fn catch_up(&mut self, limit: Duration) -> Result<()> {
        let after_ms = zone_backup::runner::writer::now_ms() + 1000;
        let deadline = Instant::now() + limit;
        loop {
            self.refresh()?;
            if self.readers.iter().all(|r| r.newest_time_ms() >= after_ms) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the targets did not catch up within {limit:?} after the store came back"
                ));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Records the peak memory of the runs: the active node's and the others'.
    pub(super) fn record_memory(&mut self, runs: &[Process], active: &str) {
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
    pub(super) fn window(&mut self, phase: u8, round: usize, seconds: u64) {
        let base = self.zone.client_url(0);
        let bases: Vec<String> = (0..self.zone.members.len())
            .map(|i| self.zone.client_url(i))
            .collect();
        let metrics0 = cuts::etcd_metrics(&self.client, &bases);
        let before = cuts::counters(&self.client, &base);
        let t0 = Instant::now();
        self.load.set(phase, round);
        std::thread::sleep(Duration::from_secs(seconds));
        self.load.set(IDLE, round);
        let elapsed = t0.elapsed().as_secs_f64();
        let after = cuts::counters(&self.client, &base);
        let metrics1 = cuts::etcd_metrics(&self.client, &bases);
        let puts = self
            .load
            .samples()
            .iter()
            .filter(|s| s.phase == phase && s.round as usize == round && s.acked.is_some())
            .count();
        let mut rates = cuts::extra_rates(before, after, puts, elapsed);
        if rates.is_object() {
            rates["etcd"] = cuts::metrics_rates(metrics0, metrics1, elapsed);
            rates["round"] = json!(round);
        }
        self.extra.push((phase, rates));
    }

    /// `rounds` ABBA rounds: `seconds` of the writer without `backup run`, and `seconds`
    /// with it active (after its term's start: its full snapshot and its first delta on
    /// every target, so the watch's catch-up from the snapshot's revision is part of the
    /// start, not of the window); each side of `sides` adds one, and odd
    /// rounds run them in reverse (ABCCBA); `offset` numbers the rounds.
    pub(super) fn latency_rounds(
        &mut self,
        rounds: usize,
        seconds: u64,
        offset: usize,
        sides: Sides,
    ) -> Result<()> {
        for round in offset..offset + rounds {
            let mut order = vec![WITHOUT, WITH];
            if sides.tmpfs {
                order.push(WITH_TMPFS);
            }
            if sides.nice {
                order.push(WITH_NICE);
            }
            if sides.away {
                order.extend([WITH_NO_S3, WITH_NO_TARGETS]);
            }
            if sides.idle {
                order.push(WITH_IDLE);
            }
            if sides.cpu_only {
                order.push(WITH_CPU_ONLY);
            }
            if sides.watch_only {
                order.push(WITH_WATCH_ONLY);
            }
            if sides.aa {
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
                if side == WITH_WATCH_ONLY {
                    let watcher = bare_watch(&self.zone)?;
                    self.window(side, round, seconds);
                    drop(watcher); // SIGKILL by PID
                    continue;
                }
                let mounted = if side == WITH_TMPFS || side == WITH_CPU_ONLY {
                    Some(LocalOnTmpfs::mount(&self.zone)?)
                } else {
                    None
                };
                self.load.set(START, round);
                let priority = match side {
                    WITH_NICE => Priority::Niced,
                    WITH_IDLE => Priority::Idle,
                    _ => Priority::Normal,
                };
                let (runs, active) =
                    self.start_term(&format!("r{round}s{side}"), true, priority)?;
                let pids: Vec<u32> = runs
                    .iter()
                    .map(Process::pid)
                    .chain([self.weed_pid])
                    .collect();
                let away = Away::start(side, self.weed_pid, &self.usb)?;
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
                if away.takes_any() {
                    // The store and the directory back, and every target caught up while
                    // the writer still runs: a request the stopped store held must not
                    // land after the next writer's takeover (it forked the S3 chain once).
                    drop(away);
                    self.catch_up(Duration::from_secs(90))?;
                } else {
                    drop(away);
                }
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

/// Every thread's stack of each run, by gdb, into `out`: what a run that stopped shipping
/// waits on (kept with the logs of a failed run).
fn stacks(runs: &[Process], seen: &str, out: &Path) {
    let mut text = seen.to_string();
    for run in runs {
        let pid = run.pid().to_string();
        let dump = std::process::Command::new("gdb")
            .args(["-p", &pid, "-batch", "-ex", "thread apply all bt"])
            .output();
        match dump {
            Ok(o) => text.push_str(&format!(
                "== {pid}\n{}\n",
                String::from_utf8_lossy(&o.stdout)
            )),
            Err(e) => text.push_str(&format!("== {pid}: gdb: {e}\n")),
        }
    }
    let _ = std::fs::write(out, text);
}
