//! Snapshots and restores of a 100 MB database, against etcd's own tools in the same run:
//! - `zone-etcd snapshot save --out` against `etcdctl snapshot save`, same member, same
//!   certificate, alternating;
//! - the time from the first `restore` to a healthy 3-member zone (`zone-etcd restore` +
//!   `zone-etcd launch` on each member) against etcd's recovery guide done by hand
//!   (`etcdutl snapshot restore` with the initial cluster and a token on each member, then
//!   etcd started on the restored data with the same flags), same snapshot, alternating.
//!
//! Zone on `addresses::BENCH_SNAPSHOTS` .1-3.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

use crate::support::*;
use zone_testkit::addresses;

/// The database to snapshot: 1,600 values of 64 KiB by default (`--snapshot-values`).
pub const VALUES: usize = 1600;
const VALUE_BYTES: usize = 64 * 1024;

fn bundled(tool: &str) -> PathBuf {
    repo().join("bin").join(tool)
}

fn fill(zone: &Zone, client: &TlsClient, values: usize) -> Result<()> {
    let agent = client.agent();
    let url = format!("{}/v3/kv/put", zone.client_url(0));
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let value = b64(&vec![b'x'; VALUE_BYTES]);
    for i in 0..values {
        let body = format!(
            "{{\"key\":\"{}\",\"value\":\"{value}\"}}",
            b64(format!("big/{i:05}").as_bytes())
        );
        let mut response = agent
            .post(&url)
            .content_type("application/json")
            .send(&body)
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("put {i}: HTTP {}", response.status()));
        }
        let _ = response.body_mut().read_to_string();
    }
    Ok(())
}

fn etcdctl_save(zone: &Zone, out: &Path) -> Result<Command> {
    let tls = zone.node_dir(0).join("state/tls/current");
    let mut cmd = Command::new(bundled("etcdctl"));
    cmd.arg(format!("--endpoints={}", zone.client_url(0)))
        .arg(format!("--cacert={}", tls.join("ca.crt").display()))
        .arg(format!("--cert={}", tls.join("client.crt").display()))
        .arg(format!("--key={}", tls.join("client.key").display()))
        .args(["snapshot", "save"])
        .arg(out);
    Ok(cmd)
}

pub fn run(dir: &Path, runs: usize, values: usize) -> Result<Value> {
    let zone = Zone::bootstrap(
        &dir.join("snapshots"),
        "snap.zone",
        addresses::BENCH_SNAPSHOTS.subnet(),
        3,
    )?;
    let members: Vec<Process> = (0..3).map(|i| zone.launch(i)).collect::<Result<_>>()?;
    let client = zone.client(0).or_else(|_| {
        std::thread::sleep(Duration::from_secs(1));
        zone.client(0)
    })?;
    zone.wait_healthy(&client, Instant::now())?;
    fill(&zone, &client, values)?;
    let config = zone.config(0);
    let config = config.to_string_lossy().into_owned();
    let out = dir.join("snapshot-files");
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;

    // Save: zone-etcd and etcdctl alternate (ABBA).
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let mut size = 0;
    for run in 0..runs {
        let a = out.join(format!("zone-etcd-{run}.db"));
        let b = out.join(format!("etcdctl-{run}.db"));
        let save_ours = || -> Result<f64> {
            Ok(ms(timed(zone_etcd(&[
                "snapshot",
                "save",
                "--config",
                &config,
                "--out",
                &a.to_string_lossy(),
            ])?)?))
        };
        let save_theirs = || -> Result<f64> { Ok(ms(timed(etcdctl_save(&zone, &b)?)?)) };
        if run % 2 == 0 {
            ours.push(save_ours()?);
            theirs.push(save_theirs()?);
        } else {
            theirs.push(save_theirs()?);
            ours.push(save_ours()?);
        }
        size = std::fs::metadata(&a).map_err(|e| e.to_string())?.len();
    }
    let snapshot = out.join("zone-etcd-0.db");
    eprintln!(
        "  snapshot save of {:.0} MB: zone-etcd {:.0} ms, etcdctl {:.0} ms",
        size as f64 / 1e6,
        median(&ours),
        median(&theirs)
    );

    // Restore to a healthy zone: zone-etcd against the recovery guide by hand.
    drop(members); // SIGKILL: the zone lost every member
    let argv: Vec<Vec<String>> = (0..3).map(|i| zone.etcd_argv(i)).collect::<Result<_>>()?;
    let (mut ours_restore, mut manual) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let a = || restore_ours(&zone, &snapshot);
        let b = || restore_manual(&zone, &snapshot, &argv, &dir.join(format!("manual-{run}")));
        if run % 2 == 0 {
            ours_restore.push(a()?);
            manual.push(b()?);
        } else {
            manual.push(b()?);
            ours_restore.push(a()?);
        }
    }
    eprintln!(
        "  restore to a healthy 3-member zone: zone-etcd {:.0} ms, by hand {:.0} ms",
        median(&ours_restore),
        median(&manual)
    );
    Ok(json!({
        "database_bytes": size,
        "save_ms": { "zone_etcd": summary(&ours), "etcdctl": summary(&theirs),
                     "ratio": round(median(&ours) / median(&theirs)) },
        "restore_to_healthy_ms": { "zone_etcd": summary(&ours_restore), "manual": summary(&manual),
                     "ratio": round(median(&ours_restore) / median(&manual)) },
    }))
}

/// `restore` + `launch` on each member, from the first restore until all are healthy.
pub(crate) fn restore_ours(zone: &Zone, snapshot: &Path) -> Result<f64> {
    let started = Instant::now();
    let mut members = Vec::new();
    let mut steps = Vec::new();
    for i in 0..3 {
        let config = zone.config(i);
        let step = Instant::now();
        output(zone_etcd(&[
            "restore",
            "--config",
            &config.to_string_lossy(),
            "--from",
            &snapshot.to_string_lossy(),
        ])?)?;
        steps.push(ms(step.elapsed()));
        members.push(zone.launch(i)?);
    }
    let last_start = Instant::now();
    let client = zone.client(0)?;
    zone.wait_healthy(&client, started)?;
    let took = ms(started.elapsed());
    phases("zone-etcd restore", &steps, ms(last_start.elapsed()), took);
    drop(members);
    Ok(took)
}

/// Where one restore's time went: each member's restore command, then the wait from
/// the last start to a healthy zone.
fn phases(what: &str, steps: &[f64], tail: f64, took: f64) {
    let steps: Vec<String> = steps.iter().map(|s| format!("{s:.0}")).collect();
    eprintln!(
        "    {what}: {} ms per member, then {tail:.0} ms to healthy; {took:.0} ms in all",
        steps.join(" + ")
    );
}

/// etcd's recovery guide: `etcdutl snapshot restore` on each member with the initial
/// cluster and a new token, then etcd on the restored data with the member's flags.
pub(crate) fn restore_manual(
    zone: &Zone,
    snapshot: &Path,
    argv: &[Vec<String>],
    dir: &Path,
) -> Result<f64> {
    let flag = |args: &[String], name: &str| -> String {
        args.iter()
            .find_map(|a| a.strip_prefix(&format!("--{name}=")))
            .unwrap_or_default()
            .to_string()
    };
    let started = Instant::now();
    let mut members = Vec::new();
    let mut steps = Vec::new();
    for (i, args) in argv.iter().enumerate() {
        let data = dir.join(format!("member{i}"));
        let step = Instant::now();
        output({
            let mut cmd = Command::new(bundled("etcdutl"));
            cmd.args(["snapshot", "restore"])
                .arg(snapshot)
                .arg(format!("--name={}", flag(args, "name")))
                .arg(format!(
                    "--initial-cluster={}",
                    flag(args, "initial-cluster")
                ))
                .arg("--initial-cluster-token=snap-zone-restored-by-hand")
                .arg(format!(
                    "--initial-advertise-peer-urls={}",
                    flag(args, "initial-advertise-peer-urls")
                ))
                .arg(format!("--data-dir={}", data.display()));
            cmd
        })?;
        steps.push(ms(step.elapsed()));
        let mut etcd = Command::new(&args[0]);
        etcd.args(args[1..].iter().map(|a| {
            if a.starts_with("--data-dir=") {
                format!("--data-dir={}", data.display())
            } else {
                a.clone()
            }
        }));
        members.push(Process::spawn(
            etcd,
            &dir.with_extension(format!("{i}.log")),
        )?);
    }
    let last_start = Instant::now();
    let client = zone.client(0)?;
    zone.wait_healthy(&client, started)?;
    let took = ms(started.elapsed());
    phases("etcdutl by hand", &steps, ms(last_start.elapsed()), took);
    drop(members);
    Ok(took)
}
