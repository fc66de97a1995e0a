//! Back to any second (issue 23), measured: a 3-member zone holding about 1 GiB (64 KiB
//! values) with `backup run` shipping to SeaweedFS (`delta_every` 5 s), then "an hour of
//! deltas": `--pitr-writes` small unique writes (default 360,000: an hour at 100 writes a
//! second), written by 8 concurrent clients as fast as the zone takes them (the chain
//! records revisions, not the hour). Once the chain holds the last write:
//!
//! - `backup export --from s3://… --revision <last>` (everything replayed) against the
//!   same export at the full snapshot's own revision (nothing replayed): the difference
//!   is the replay, and gives the replay rate in revisions per second;
//! - from the exported file to a healthy 3-member zone (`restore` + `launch` on each
//!   member, as the guide says), and the whole way (export + that);
//! - against etcd by hand from the same target: the newest full snapshot downloaded and
//!   decrypted with Debian's `age`, then etcd's recovery guide (`etcdutl snapshot
//!   restore` on each member, etcd started on it), which loses every write after it.
//!
//! Zone on `addresses::BENCH_PITR` .1-3, SeaweedFS on its .100.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use zone_backup::chain::Kind;
use zone_backup::destination::Target;

use crate::seaweed::{self, Seaweed};
use crate::support::*;
use zone_testkit::addresses;

const ZONE: &str = "pitr.zone";
const SUBNET: u8 = addresses::BENCH_PITR.subnet();
const BIG_BYTES: usize = 64 * 1024;
const SMALL_BYTES: usize = 100;
const CLIENTS: u64 = 8;

pub struct Settings {
    /// How many 64 KiB values make the database (16,384: 1 GiB).
    pub big_values: usize,
    /// How many small writes make the deltas.
    pub writes: u64,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn put(agent: &ureq::Agent, base: &str, key: &str, value: &[u8]) -> Result<i64> {
    let body = format!(
        "{{\"key\":\"{}\",\"value\":\"{}\"}}",
        b64(key.as_bytes()),
        b64(value)
    );
    let text = agent
        .post(&format!("{base}/v3/kv/put"))
        .content_type("application/json")
        .send(&body)
        .map_err(|e| e.to_string())?
        .body_mut()
        .read_to_string()
        .map_err(|e| e.to_string())?;
    serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v["header"]["revision"].as_str()?.parse().ok())
        .ok_or_else(|| format!("put {key}: {text}"))
}

/// `count` puts of `bytes`-byte values under `prefix`, spread over `CLIENTS` threads and
/// the three members; the highest revision given.
pub(crate) fn write_many(
    zone: &Zone,
    client: &TlsClient,
    prefix: &str,
    count: u64,
    bytes: usize,
) -> Result<i64> {
    let next = Arc::new(AtomicU64::new(0));
    let top = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|t| {
            let (next, top) = (next.clone(), top.clone());
            let agent = client.agent();
            let base = zone.client_url(t as usize % 3);
            let prefix = prefix.to_string();
            std::thread::spawn(move || -> Result<()> {
                let value = vec![b'v'; bytes];
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= count {
                        return Ok(());
                    }
                    let revision = put(&agent, &base, &format!("{prefix}/{n:09}"), &value)?;
                    top.fetch_max(revision as u64, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in threads {
        t.join()
            .map_err(|_| "a writer thread panicked".to_string())??;
    }
    Ok(top.load(Ordering::Relaxed) as i64)
}

/// The newest (full revision, delta last revision) the target's manifest names hold.
fn newest(target: &dyn Target) -> Result<(i64, i64)> {
    let mut full = 0;
    let mut delta = 0;
    for o in target.list("chain/").map_err(|e| e.to_string())? {
        let Some(bytes) = target.get(&o.name, 1 << 16).map_err(|e| e.to_string())? else {
            continue;
        };
        let link = zone_backup::manifest::body_unverified(&bytes)?;
        let last = link.last_revision;
        match link.kind {
            Kind::Full => full = full.max(last),
            Kind::Delta => delta = delta.max(last),
            Kind::Gap => {}
        }
    }
    Ok((full, delta))
}

pub fn run(dir: &Path, opts: &Settings) -> Result<Value> {
    let root = dir.join("pitr");
    std::fs::create_dir_all(&root).map_err(|e| e.to_string())?;
    let owner_key = root.join("owner.key");
    output({
        let mut c = Command::new("age-keygen");
        c.arg("-o").arg(&owner_key);
        c
    })
    .map_err(|e| format!("{e} (fix: ./scripts/need.sh age)"))?;
    let recipient = output({
        let mut c = Command::new("age-keygen");
        c.arg("-y").arg(&owner_key);
        c
    })?
    .trim()
    .to_string();
    let weed = Seaweed::start(&root.join("weed"), &addresses::BENCH_PITR.ip(100))?;
    let s3_url = format!("s3://{}/zones/{ZONE}", seaweed::BUCKET);
    let extra = format!(
        "\n[backup]\nrecipients = [\"{recipient}\"]\ndelta_every = \"5s\"\n\n[[backup.target]]\nurl = \"{s3_url}\"\nendpoint = \"{}\"\n",
        weed.endpoint()
    );
    let zone = Zone::bootstrap_with(&root.join("zone"), ZONE, SUBNET, 3, &extra)?;
    let members: Vec<Process> = (0..3).map(|i| zone.launch(i)).collect::<Result<_>>()?;
    let client = zone.client(0).or_else(|_| {
        std::thread::sleep(Duration::from_secs(1));
        zone.client(0)
    })?;
    zone.wait_healthy(&client, Instant::now())?;
    let s3 = seaweed::s3_target(&weed, ZONE)?;

    eprintln!("  pitr: {} values of 64 KiB", opts.big_values);
    let filled = Instant::now();
    write_many(&zone, &client, "big", opts.big_values as u64, BIG_BYTES)?;
    let fill_s = filled.elapsed().as_secs_f64();
    let runs: Vec<Process> = (0..3)
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
            Process::spawn(cmd, &zone.root.join(format!("backup-run-{i}.log")))
        })
        .collect::<Result<_>>()?;
    let wait_for = |what: &str, done: &dyn Fn((i64, i64)) -> bool| -> Result<(i64, i64)> {
        let deadline = Instant::now() + Duration::from_secs(900);
        loop {
            let seen = newest(&s3)?;
            if done(seen) {
                return Ok(seen);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "pitr: no {what} on the target after 15 minutes ({seen:?})"
                ));
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    };
    let (full_revision, _) = wait_for("full snapshot", &|(f, _)| f > 0)?;
    eprintln!(
        "  pitr: full snapshot at revision {full_revision} shipped; {} small writes",
        opts.writes
    );
    let wrote = Instant::now();
    let last = write_many(&zone, &client, "small", opts.writes, SMALL_BYTES)?;
    let writes_per_s = opts.writes as f64 / wrote.elapsed().as_secs_f64();
    wait_for("delta with the last write", &|(_, d)| d >= last)?;
    drop(runs);
    drop(members); // SIGKILL: the house burned down

    // Export: the newest point (everything replayed) and the full's own revision.
    let exports = root.join("exports");
    std::fs::create_dir_all(&exports).map_err(|e| e.to_string())?;
    let export = |revision: i64, name: &str| -> Result<f64> {
        let out = exports.join(name);
        let mut cmd = zone_etcd(&[
            "backup",
            "export",
            "--from",
            &s3_url,
            "--endpoint",
            &weed.endpoint(),
            "--revision",
            &revision.to_string(),
            "--out",
            &out.to_string_lossy(),
            "--ca",
            &zone.root.join("ca").to_string_lossy(),
            "--identity",
            &owner_key.to_string_lossy(),
        ])?;
        cmd.env("AWS_ACCESS_KEY_ID", seaweed::ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", seaweed::SECRET_KEY);
        let started = Instant::now();
        let said = output(cmd)?;
        let took = started.elapsed().as_secs_f64();
        eprintln!("  pitr: {}", said.lines().next().unwrap_or_default());
        Ok(took)
    };
    eprintln!("  pitr: export at revision {last} and at the full's {full_revision}");
    let export_last_s = export(last, "last.db")?;
    let export_full_s = export(full_revision, "full.db")?;
    let replayed = (last - full_revision) as f64;
    let replay_s = (export_last_s - export_full_s).max(0.001);

    // From the file to a healthy zone.
    let restore_s = crate::snapshots::restore_ours(&zone, &exports.join("last.db"))? / 1000.0;
    // By hand: the newest full snapshot, downloaded, decrypted, recovery guide.
    let argv: Vec<Vec<String>> = (0..3).map(|i| zone.etcd_argv(i)).collect::<Result<_>>()?;
    let by_hand = Instant::now();
    let full_object = s3
        .list("full/")
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|o| o.name)
        .max()
        .ok_or("pitr: no full snapshot on the target")?;
    let encrypted = root.join("full.db.age");
    s3.get_to_file(&full_object, &encrypted)
        .map_err(|e| e.to_string())?;
    let plain = root.join("full-by-hand.db");
    output({
        let mut c = Command::new("age");
        c.arg("-d")
            .arg("-i")
            .arg(&owner_key)
            .arg("-o")
            .arg(&plain)
            .arg(&encrypted);
        c
    })?;
    let fetch_s = by_hand.elapsed().as_secs_f64();
    let manual_s =
        crate::snapshots::restore_manual(&zone, &plain, &argv, &root.join("manual"))? / 1000.0;
    let database = std::fs::metadata(&plain).map_err(|e| e.to_string())?.len();
    eprintln!(
        "  pitr: export {export_last_s:.1} s ({replayed:.0} revisions replayed at {:.0}/s), restore {restore_s:.1} s; by hand {:.1} s (losing them)",
        replayed / replay_s,
        fetch_s + manual_s
    );
    Ok(json!({
        "database_bytes": database,
        "big_values": opts.big_values,
        "fill_s": round(fill_s),
        "delta_writes": opts.writes,
        "delta_writes_per_s": round(writes_per_s),
        "full_revision": full_revision,
        "last_revision": last,
        "export_newest_s": round(export_last_s),
        "export_at_full_s": round(export_full_s),
        "replay_revisions_per_s": round(replayed / replay_s),
        "restore_to_healthy_s": round(restore_s),
        "total_s": round(export_last_s + restore_s),
        "by_hand": { "fetch_and_decrypt_s": round(fetch_s), "recovery_guide_s": round(manual_s),
                     "total_s": round(fetch_s + manual_s), "writes_lost": last - full_revision },
        "ratio_total": round((export_last_s + restore_s) / (fetch_s + manual_s)),
    }))
}
