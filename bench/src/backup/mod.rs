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
//! Zone on `addresses::BENCH_BACKUP` .1-3, SeaweedFS on its .100 (a block no test uses)
//! (ports 11800.., see seaweed.rs).
//!
//! Modules: [`load`] the writer, [`reader`] the chains read back as an owner would,
//! [`rounds`] the with/without windows, [`kills`] the recovery point, [`report`] the
//! figures, [`cuts`] where the tail goes against the cut instants.

mod cuts;
mod kills;
mod load;
mod reader;
mod report;
mod rounds;
mod shape;
mod sides;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use zone_backup::chain::Kind;
use zone_backup::crypto;
use zone_backup::destination::file::DirTarget;
use zone_backup::destination::Target;

use crate::seaweed::{self, Seaweed};
use crate::support::*;
use load::{key, Load};
use reader::ChainReader;
use report::{compare, timed};
use rounds::{Bench, Priority, Sides};
use shape::*;
use sides::RemoveOnDrop;
use zone_testkit::addresses;

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
    /// Adds a side with `backup run` at a lower CPU and I/O priority.
    pub nice_side: bool,
    /// Adds two sides: SeaweedFS stopped during the window, and also the directory
    /// target's root moved away (what the uploads cost, measured apart from the cut).
    pub away_sides: bool,
    /// Adds a side with `backup run` under SCHED_IDLE.
    pub idle_side: bool,
    /// Adds a side with both targets away and the local chain on a tmpfs (the cut's CPU
    /// alone; root).
    pub cpu_only_side: bool,
    /// Adds a side with a bare watcher of every key instead of `backup run`.
    pub watch_side: bool,
    /// Runs SeaweedFS at nice 19: its CPU off the zone's, as a store elsewhere.
    pub weed_nice: bool,
    /// Keeps the targets' storage (SeaweedFS's data, the directory target) on a tmpfs:
    /// off etcd's disk, as a store off the machine and a USB disk are in service.
    pub targets_off_disk: bool,
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
    let weed = Seaweed::start_niced(
        &storage.join("weed"),
        &addresses::BENCH_BACKUP.ip(100),
        opts.weed_nice.then_some(19),
    )?;
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
    let (mut members, client) = zone.launch_all()?;
    let zone_client = zone.client(0)?;
    let s3 = seaweed::s3_target(&weed, ZONE)?;
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
        weed_pid: weed.pid().ok_or("SeaweedFS is not running")?,
        usb: usb.clone(),
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
    let sides = Sides {
        tmpfs: opts.tmpfs_side,
        aa: opts.aa_side,
        nice: opts.nice_side,
        away: opts.away_sides,
        idle: opts.idle_side,
        cpu_only: opts.cpu_only_side,
        watch_only: opts.watch_side,
    };
    b.latency_rounds(quiet_rounds, seconds, 0, sides)?;

    // 5. The same beside the 4 GiB writer.
    let busy_rounds = opts.busy_rounds;
    let mut dd_rounds = 0;
    if busy_rounds > 0 {
        eprintln!("  backup: {busy_rounds} rounds beside a 4 GiB dd writer");
        let dd = crate::writer::Writer::start(dir)?;
        let busy = b.latency_rounds(busy_rounds, seconds, quiet_rounds, Sides::default());
        dd_rounds = dd.stop();
        busy?;
    }

    // 2. The recovery point after SIGKILL of everything at once.
    eprintln!(
        "  backup: {} kills of every member and every `backup run`",
        opts.kills
    );
    b.load.set(IDLE, 0);
    let (kills, settled) =
        kills::recovery_points(&mut b, &mut members, &client, opts.kills, delta_every)?;
    // Catch up once more so the byte counts cover a whole chain.
    let (runs, active) = b.start_term("end", true, Priority::Normal)?;
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
    let with_sides = DIAGNOSTIC
        .iter()
        .filter(|(phase, _, _)| *phase != WITHOUT_AGAIN)
        .map(|(phase, _, name)| (*name, *phase));
    for (name, phase) in [("with_active", WITH)]
        .into_iter()
        .chain(with_sides.clone())
    {
        let t = timed(&samples, phase, 0..quiet_rounds);
        if !t.is_empty() {
            cuts.insert(name.into(), cuts::around_cuts(&cut_ms, &t, without_p99));
        }
    }
    let mut seconds_in = serde_json::Map::new();
    for (name, phase) in [
        ("without", WITHOUT),
        ("with_active", WITH),
        ("without_again", WITHOUT_AGAIN),
    ] {
        seconds_in.insert(
            name.into(),
            report::by_second_of_window(&samples, phase, 0..quiet_rounds, without_p99),
        );
    }
    let mut extra = serde_json::Map::new();
    for (name, phase) in [("without", WITHOUT), ("with_active", WITH)]
        .into_iter()
        .chain(with_sides)
    {
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
    let rpo_json = kills::per_target(&b.readers, &kills, &samples, settled);
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
        "seaweedfs_nice": if opts.weed_nice { 19 } else { 0 },
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
        // Requests over the "without" p99 by the second of their window.
        "latency_by_second_of_window": seconds_in,
        "etcd_commits_per_window": extra,
        "round_loads": b.round_loads,
        "latency_busy": busy,
        "term_start_s": spread(&b.term_start_s, ""),
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
