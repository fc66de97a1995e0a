//! Launch: what the launcher costs before etcd runs.
//!
//! - Overhead: `zone-etcd launch` with valid leaves in place, its etcd_bin set to a
//!   stand-in (a shell script that answers `--version` by running the bundled etcd's
//!   `--version`, and otherwise exits 0 like /bin/true), against the stand-in started
//!   directly with the same argv (from `launch --dry-run`): the difference is everything the
//!   launcher does before its exec. Twice: with the etcd version known (the launcher's
//!   cache in the state directory matches the binary), and unknown (the cache removed
//!   before each launch, as after a binary change: the launcher runs `--version` first).
//! - Time to a 3-member zone: three `zone-etcd launch` against the three etcd argvs of
//!   `launch --dry-run` started directly, fresh data directories each time, `4 x runs`
//!   starts each way; until all listen on their peer ports, and until all are healthy.
//! - Peak memory: `/usr/bin/time -f %M` (ru_maxrss) of launch. Linux keeps a process's
//!   peak RSS across exec (the old image's high-water mark is folded into it), so with
//!   etcd_bin = the stand-in the figure is max(launcher, sh); /bin/true alone is measured
//!   too, and `--dry-run` (no exec at all) cross-checks it.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use serde_json::{json, Value};

use crate::support::*;
use zone_testkit::addresses;

/// The launcher's version cache in a node's state directory.
const VERSION_CACHE: &str = "state/etcd-versions.json";

/// Member 1 of `zone` copied into `<zone>/true-node` with etcd_bin = the stand-in, its
/// leaves issued (and the stand-in's version remembered) by a first launch.
fn true_node(zone: &Zone) -> Result<std::path::PathBuf> {
    let src = zone.node_dir(0);
    let dst = zone.root.join("true-node");
    fs::create_dir_all(dst.join("pki")).map_err(|e| e.to_string())?;
    for file in ["pki/ca.crt", "pki/node.crt", "pki/node.key"] {
        fs::copy(src.join(file), dst.join(file)).map_err(|e| format!("{file}: {e}"))?;
    }
    let text = fs::read_to_string(src.join("node.toml")).map_err(|e| e.to_string())?;
    let config = dst.join("node.toml");
    let stand_in = zone.root.join("stand-in-etcd");
    let etcd = repo().join("bin/etcd");
    write(
        &stand_in,
        &format!(
            "#!/bin/sh\n[ \"$1\" = --version ] && exec {} --version\nexit 0\n",
            etcd.display()
        ),
    )?;
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&stand_in, fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
    write(
        &config,
        &format!("etcd_bin = \"{}\"\n{text}", stand_in.display()),
    )?;
    output(zone_etcd(&[
        "launch",
        "--config",
        &config.to_string_lossy(),
    ])?)?;
    Ok(config)
}

/// Launch overhead and time to a healthy zone.
pub fn run(dir: &Path, runs: usize) -> Result<Value> {
    let zone = Zone::bootstrap(
        &dir.join("launch"),
        "launch.zone",
        addresses::BENCH_LAUNCH.subnet(),
        3,
    )?;
    // The overhead is measured on the member of a one-member zone: a member of a larger
    // zone whose stand-in etcd never writes data would wait for the zone's first start.
    let solo = Zone::bootstrap(
        &dir.join("launch-solo"),
        "solo.zone",
        addresses::BENCH_SOLO.subnet(),
        1,
    )?;
    let config = true_node(&solo)?;
    let config_arg = config.to_string_lossy().to_string();
    let argv: Vec<String> = output(zone_etcd(&[
        "launch",
        "--config",
        &config_arg,
        "--dry-run",
    ])?)?
    .lines()
    .map(str::to_string)
    .collect();
    if !argv.first().is_some_and(|b| b.ends_with("stand-in-etcd")) {
        return Err(format!(
            "dry run of {config_arg} does not name the stand-in: {argv:?}"
        ));
    }
    let cache = solo.root.join("true-node").join(VERSION_CACHE);
    if !cache.exists() {
        return Err(format!(
            "the first launch did not remember the version in {}",
            cache.display()
        ));
    }
    let known = overhead(&config_arg, &argv, runs, None)?;
    let unknown = overhead(&config_arg, &argv, runs, Some(&cache))?;
    Ok(json!({
        "overhead": known,
        "overhead_version_unknown": unknown,
        "zone_start": healthy(&zone, runs)?,
    }))
}

/// Launch to exec through the launcher against the stand-in run directly, paired runs in
/// alternating order; with `forget`, the version cache is removed before each launch.
fn overhead(
    config_arg: &str,
    argv: &[String],
    runs: usize,
    forget: Option<&Path>,
) -> Result<Value> {
    let (mut launcher, mut direct, mut paired) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..runs * 40 {
        let through = || -> Result<f64> {
            if let Some(cache) = forget {
                fs::remove_file(cache).map_err(|e| format!("{}: {e}", cache.display()))?;
            }
            Ok(ms(timed(zone_etcd(&["launch", "--config", config_arg])?)?))
        };
        let straight = || -> Result<f64> {
            let mut cmd = Command::new(&argv[0]);
            cmd.args(&argv[1..]);
            Ok(ms(timed(cmd)?))
        };
        let (a, b) = if i % 2 == 0 {
            (through()?, straight()?)
        } else {
            let b = straight()?;
            (through()?, b)
        };
        launcher.push(a);
        direct.push(b);
        paired.push(a - b);
    }
    eprintln!(
        "  launch to exec (etcd version {}): launcher {:.2} ms, stand-in direct {:.2} ms, overhead {:.2} ms (median of paired differences)",
        if forget.is_some() { "unknown" } else { "known" },
        median(&launcher),
        median(&direct),
        median(&paired)
    );
    Ok(json!({
        "launcher_ms": summary(&launcher),
        "direct_ms": summary(&direct),
        "overhead_ms": summary(&paired),
        "argv_len": argv.len(),
    }))
}

/// Time from starting three members to all three listening on their client ports (etcd
/// runs: through the launcher, after the zone's first-start rendezvous), and to all three
/// answering /health with true (which waits for etcd's randomised election).
fn healthy(zone: &Zone, runs: usize) -> Result<Value> {
    // Leaves first (rotate writes a set with no etcd running), so both ways reuse them.
    for i in 0..3 {
        output(zone_etcd(&[
            "rotate",
            "--config",
            &zone.config(i).to_string_lossy(),
        ])?)?;
    }
    let argvs: Vec<Vec<String>> = (0..3).map(|i| zone.etcd_argv(i)).collect::<Result<_>>()?;
    let client = zone.client(0)?;
    let (mut launcher, mut direct) = ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()]);
    // One start varies from 0.3 to 3 s with etcd's election: many starts each way, ABBA.
    for run in 0..runs * 8 {
        let through = (run % 4 == 0) || (run % 4 == 3);
        for i in 0..3 {
            let data = zone.node_dir(i).join("state/data");
            let _ = fs::remove_dir_all(&data);
        }
        let started = Instant::now();
        let mut members: Vec<Process> = (0..3)
            .map(|i| {
                if through {
                    zone.launch(i)
                } else {
                    let mut cmd = Command::new(&argvs[i][0]);
                    cmd.args(&argvs[i][1..]);
                    Process::spawn(cmd, &zone.root.join(format!("direct-{i}.log")))
                }
            })
            .collect::<Result<_>>()?;
        let (listening, healthy) = zone.wait_healthy(&client, started)?;
        if !members.iter_mut().all(Process::is_running) {
            return Err("a member exited during the measurement".into());
        }
        drop(members);
        let side = if through { &mut launcher } else { &mut direct };
        side[0].push(ms(listening));
        side[1].push(ms(healthy));
    }
    let mut out = json!({});
    for (k, what) in ["listening", "healthy"].iter().enumerate() {
        let ratio = median(&launcher[k]) / median(&direct[k]);
        eprintln!(
            "  3-member zone {what}: launcher {:.0} ms, direct {:.0} ms, ratio {ratio:.3}",
            median(&launcher[k]),
            median(&direct[k])
        );
        let samples = |v: &[f64]| v.iter().map(|x| x.round()).collect::<Vec<_>>();
        out[*what] = json!({
            "launcher_ms": summary(&launcher[k]),
            "direct_ms": summary(&direct[k]),
            "ratio": round(ratio),
            "launcher_samples_ms": samples(&launcher[k]),
            "direct_samples_ms": samples(&direct[k]),
        });
    }
    Ok(out)
}

/// Peak resident memory (KiB) of launch, as /usr/bin/time reports it.
pub fn memory(dir: &Path, runs: usize) -> Result<Value> {
    let zone = Zone::bootstrap(
        &dir.join("memory"),
        "memory.zone",
        addresses::BENCH_MEMORY.subnet(),
        1,
    )?;
    let config = true_node(&zone)?;
    let config = config.to_string_lossy().to_string();
    let tls = zone.root.join("true-node/state/tls");
    let peak = |args: &[&str], fresh: bool| -> Result<Vec<f64>> {
        (0..runs * 4)
            .map(|_| {
                if fresh {
                    fs::remove_dir_all(&tls).map_err(|e| e.to_string())?;
                }
                let mut cmd = Command::new("/usr/bin/time");
                cmd.arg("-f").arg("maxrss_kib=%M");
                cmd.args(args).env("PATH", zone.tools.path_with_bundle());
                let out = cmd.output().map_err(|e| format!("/usr/bin/time: {e}"))?;
                let stderr = String::from_utf8_lossy(&out.stderr);
                if !out.status.success() {
                    return Err(format!("{args:?} failed: {stderr}"));
                }
                stderr
                    .lines()
                    .filter_map(|l| l.strip_prefix("maxrss_kib="))
                    .next_back()
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .ok_or_else(|| format!("no maxrss in {stderr:?}"))
            })
            .collect()
    };
    let bin = zone_etcd_bin()?;
    let bin = bin.to_string_lossy();
    let reuse = peak(&[&bin, "launch", "--config", &config], false)?;
    let issue = peak(&[&bin, "launch", "--config", &config], true)?;
    let dry = peak(&[&bin, "launch", "--config", &config, "--dry-run"], false)?;
    let alone = peak(&["/bin/true"], false)?;
    let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    eprintln!(
        "  peak memory: launch {:.0} KiB (reusing leaves), {:.0} KiB (issuing), dry run {:.0} KiB, /bin/true {:.0} KiB",
        max(&reuse),
        max(&issue),
        max(&dry),
        max(&alone)
    );
    Ok(json!({
        "launch_reuse_kib": summary(&reuse),
        "launch_issue_kib": summary(&issue),
        "dry_run_kib": summary(&dry),
        "bin_true_kib": summary(&alone),
    }))
}
