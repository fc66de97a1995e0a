//! zone-etcd-bench: every figure of BENCHMARKS.md, measured in one run, side by side.
//!
//! Run it in release from the repository (`scripts/bench.sh` does): it drives the
//! release `zone-etcd` built beside it, the bundled etcd in bin/, openssl, and for the
//! backup section SeaweedFS's `weed` and Debian's `age-keygen`, for the etcd section
//! Debian's etcd 3.5.30 (`scripts/fetch-etcd.sh --compat`); zones run on the address
//! registry's `addresses::BENCH_*` blocks (`zone_testkit::addresses`), none of which a
//! test uses (the suite and a benchmark may run at once). It prints a table and writes `results.json` and `pki-scaling.csv` into
//! `--out` (default bench/results). Figures are medians of repeated runs; the two sides
//! of every comparison alternate, so the machine's noise hits both.
//!
//! usage: zone-etcd-bench [--runs N] [--out DIR] [--only pki,launch,etcd,rotation,memory,maintain,churn,snapshot,backup,pitr,access,quota,takeover,crl,scale,disk] [--churn-seconds S] [--backup-seconds S] [--backup-kills K] [--backup-delta-every S,S..] [--backup-busy-rounds N] [--backup-tmpfs-side] [--backup-aa-side] [--backup-nice-side] [--backup-away-sides] [--backup-idle-side] [--backup-cpu-only-side] [--backup-watch-side] [--backup-weed-nice] [--backup-targets-off-disk] [--pitr-values N] [--pitr-writes N] [--snapshot-values N] [--etcd-snapshot-count N]
//!
//! With `--only`, the other sections of an existing results.json are kept.

#![forbid(unsafe_code)]

mod access;
mod backup;
mod crl;
mod disk;
mod launch;
mod maintenance;
mod pitr;
mod pki;
mod quota;
mod rotation;
mod seaweed;
mod snapshots;
mod support;
mod takeover;
mod versions;
mod writer;

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::{json, Value};

use support::{loadavg, machine, repo, Result};

const SECTIONS: [&str; 16] = [
    "pki", "launch", "etcd", "rotation", "memory", "maintain", "churn", "snapshot", "backup",
    "pitr", "access", "quota", "takeover", "crl", "scale", "disk",
];

const USAGE: &str = "usage: zone-etcd-bench [--runs N] [--out DIR] [--only pki,launch,etcd,rotation,memory,maintain,churn,snapshot,backup,pitr,access,quota,takeover,crl,scale,disk] [--churn-seconds S] [--backup-seconds S] [--backup-kills K] [--backup-delta-every S,S..] [--backup-busy-rounds N] [--backup-tmpfs-side] [--backup-aa-side] [--backup-nice-side] [--backup-away-sides] [--backup-idle-side] [--backup-cpu-only-side] [--backup-watch-side] [--backup-weed-nice] [--backup-targets-off-disk] [--pitr-values N] [--pitr-writes N] [--snapshot-values N] [--etcd-snapshot-count N]";

struct Args {
    runs: usize,
    churn_seconds: u64,
    backup_seconds: u64,
    backup_kills: Option<usize>,
    /// The zones' `delta_every` values, in seconds: one backup section each.
    backup_delta_every: Vec<u64>,
    backup_busy_rounds: Option<usize>,
    backup_tmpfs_side: bool,
    backup_nice_side: bool,
    backup_away_sides: bool,
    backup_idle_side: bool,
    backup_cpu_only_side: bool,
    backup_watch_side: bool,
    backup_weed_nice: bool,
    backup_aa_side: bool,
    backup_targets_off_disk: bool,
    pitr_values: usize,
    snapshot_values: usize,
    pitr_writes: u64,
    /// `[settings] snapshot_count` for both releases of the etcd section (etcd's own
    /// defaults when unset: 100,000 in 3.5, 10,000 in 3.6).
    etcd_snapshot_count: Option<u64>,
    out: PathBuf,
    only: Vec<String>,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        runs: 5,
        churn_seconds: 1800,
        backup_seconds: 12,
        backup_kills: None,
        backup_delta_every: vec![5],
        backup_busy_rounds: None,
        backup_tmpfs_side: false,
        backup_nice_side: false,
        backup_away_sides: false,
        backup_idle_side: false,
        backup_cpu_only_side: false,
        backup_watch_side: false,
        backup_weed_nice: false,
        backup_aa_side: false,
        backup_targets_off_disk: false,
        pitr_values: 16384,
        snapshot_values: snapshots::VALUES,
        pitr_writes: 360_000,
        etcd_snapshot_count: None,
        out: repo().join("bench/results"),
        only: SECTIONS.iter().map(|s| s.to_string()).collect(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .ok_or_else(|| format!("{name}: missing value (fix: {name} <value>)"))
        };
        match arg.as_str() {
            "--runs" => {
                args.runs = value("--runs")?
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or("--runs: not a positive number (fix: e.g. --runs 5)")?
            }
            "--out" => args.out = PathBuf::from(value("--out")?),
            "--churn-seconds" => {
                args.churn_seconds = value("--churn-seconds")?
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or(
                        "--churn-seconds: not a positive number (fix: e.g. --churn-seconds 1800)",
                    )?
            }
            "--backup-seconds" => {
                args.backup_seconds = value("--backup-seconds")?
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or(
                        "--backup-seconds: not a positive number (fix: e.g. --backup-seconds 12)",
                    )?
            }
            "--snapshot-values" => {
                args.snapshot_values = value("--snapshot-values")?
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or("--snapshot-values: not a positive number (fix: e.g. --snapshot-values 16000)")?;
            }
            "--backup-delta-every" => {
                args.backup_delta_every = value("--backup-delta-every")?
                    .split(',')
                    .map(|n| n.trim().parse().ok().filter(|n| *n > 0))
                    .collect::<Option<Vec<u64>>>()
                    .ok_or("--backup-delta-every: not a list of positive seconds (fix: e.g. --backup-delta-every 5,1)")?
            }
            "--backup-busy-rounds" => {
                args.backup_busy_rounds = Some(value("--backup-busy-rounds")?.parse().map_err(
                    |_| "--backup-busy-rounds: not a number (fix: e.g. --backup-busy-rounds 0)",
                )?)
            }
            "--backup-tmpfs-side" => args.backup_tmpfs_side = true,
            "--backup-nice-side" => args.backup_nice_side = true,
            "--backup-away-sides" => args.backup_away_sides = true,
            "--backup-idle-side" => args.backup_idle_side = true,
            "--backup-cpu-only-side" => args.backup_cpu_only_side = true,
            "--backup-watch-side" => args.backup_watch_side = true,
            "--backup-weed-nice" => args.backup_weed_nice = true,
            "--backup-aa-side" => args.backup_aa_side = true,
            "--backup-targets-off-disk" => args.backup_targets_off_disk = true,
            "--pitr-values" => {
                args.pitr_values = value("--pitr-values")?
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or("--pitr-values: not a positive number (fix: e.g. --pitr-values 16384)")?
            }
            "--etcd-snapshot-count" => {
                args.etcd_snapshot_count = Some(
                    value("--etcd-snapshot-count")?
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or("--etcd-snapshot-count: not a positive number (fix: e.g. --etcd-snapshot-count 100000)")?,
                )
            }
            "--pitr-writes" => {
                args.pitr_writes = value("--pitr-writes")?
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or(
                        "--pitr-writes: not a positive number (fix: e.g. --pitr-writes 360000)",
                    )?
            }
            "--backup-kills" => {
                args.backup_kills = Some(
                    value("--backup-kills")?
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or(
                            "--backup-kills: not a positive number (fix: e.g. --backup-kills 10)",
                        )?,
                )
            }
            "--only" => {
                args.only = value("--only")?.split(',').map(str::to_string).collect();
                if let Some(bad) = args.only.iter().find(|s| !SECTIONS.contains(&s.as_str())) {
                    return Err(format!(
                        "--only: unknown section {bad:?} (fix: choose from {SECTIONS:?})"
                    ));
                }
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (fix: see --help)")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zone-etcd-bench: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let args = parse_args()?;
    let work = tempfile::Builder::new()
        .prefix("zone-etcd-bench-")
        .tempdir()
        .map_err(|e| format!("temporary directory: {e}"))?;
    let outcome = sections(&args, &work);
    if outcome.is_err() {
        // The error names logs in it: keep them.
        let kept = work.keep();
        eprintln!("zone-etcd-bench: the logs are kept in {}", kept.display());
    }
    outcome
}

fn sections(args: &Args, work: &tempfile::TempDir) -> Result<()> {
    let wants = |s: &str| args.only.iter().any(|o| o == s);
    // A subset updates its sections of the last results and keeps the others.
    let previous = (args.only.len() < SECTIONS.len())
        .then(|| std::fs::read_to_string(args.out.join("results.json")).ok())
        .flatten()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok());
    let mut results = previous.unwrap_or_else(|| json!({}));
    results["machine"] = machine();
    results["runs"] = json!(args.runs);
    results["load_before"] = json!(loadavg());
    eprintln!(
        "zone-etcd-bench: {} runs per figure; load {}",
        args.runs,
        loadavg()
    );
    if wants("pki") {
        results["pki"] = pki::run(args.runs)?;
    }
    if wants("launch") {
        results["launch"] = launch::run(work.path(), args.runs)?;
    }
    if wants("etcd") {
        results["etcd"] = versions::run(work.path(), args.runs, args.etcd_snapshot_count)?;
    }
    if wants("rotation") {
        results["rotation"] = rotation::run(work.path(), args.runs)?;
    }
    if wants("memory") {
        results["memory"] = launch::memory(work.path(), args.runs)?;
    }
    if wants("maintain") {
        results["maintain"] = maintenance::latency(work.path(), args.runs)?;
    }
    if wants("snapshot") {
        results["snapshot"] = snapshots::run(work.path(), args.runs, args.snapshot_values)?;
    }
    if wants("backup") {
        // The default (5 s) under "backup", as before; another delta_every beside it.
        for every in &args.backup_delta_every {
            let key = if *every == 5 {
                "backup".to_string()
            } else {
                format!("backup_delta_{every}s")
            };
            results[key.as_str()] = backup::run(
                work.path(),
                &backup::Settings {
                    runs: args.runs,
                    seconds: args.backup_seconds,
                    kills: args.backup_kills.unwrap_or(2 * args.runs),
                    delta_every: std::time::Duration::from_secs(*every),
                    busy_rounds: args.backup_busy_rounds.unwrap_or(args.runs.div_ceil(2)),
                    tmpfs_side: args.backup_tmpfs_side,
                    nice_side: args.backup_nice_side,
                    away_sides: args.backup_away_sides,
                    idle_side: args.backup_idle_side,
                    cpu_only_side: args.backup_cpu_only_side,
                    watch_side: args.backup_watch_side,
                    weed_nice: args.backup_weed_nice,
                    aa_side: args.backup_aa_side,
                    targets_off_disk: args.backup_targets_off_disk,
                },
            )?;
        }
    }
    if wants("pitr") {
        results["pitr"] = pitr::run(
            work.path(),
            &pitr::Settings {
                big_values: args.pitr_values,
                writes: args.pitr_writes,
            },
        )?;
    }
    if wants("access") {
        results["access"] = access::run(work.path(), args.runs)?;
    }
    if wants("quota") {
        results["quota"] = quota::run(work.path(), args.runs)?;
    }
    if wants("takeover") {
        results["takeover"] = takeover::run(work.path(), args.runs)?;
    }
    if wants("crl") {
        results["crl"] = crl::run(work.path(), args.runs)?;
    }
    if wants("scale") {
        results["scale"] = access::scale::run(work.path())?;
    }
    if wants("disk") {
        results["disk"] = disk::run(work.path(), args.runs)?;
    }
    if wants("churn") {
        results["churn"] = maintenance::churn(work.path(), args.churn_seconds)?;
    }
    results["load_after"] = json!(loadavg());
    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    let json_path = args.out.join("results.json");
    let text = serde_json::to_string_pretty(&results).map_err(|e| e.to_string())?;
    support::write(&json_path, &(text + "\n"))?;
    if wants("pki") {
        support::write(&args.out.join("pki-scaling.csv"), &scaling_csv(&results))?;
    }
    if wants("access") {
        // The section on its own too, with the machine and its load.
        let access = json!({
            "machine": results["machine"],
            "runs": args.runs,
            "load_before": results["load_before"],
            "load_after": results["load_after"],
            "access": results["access"],
        });
        let text = serde_json::to_string_pretty(&access).map_err(|e| e.to_string())?;
        support::write(&args.out.join("access.json"), &(text + "\n"))?;
    }
    print!("{}", table(&results));
    eprintln!("results in {}", json_path.display());
    Ok(())
}

/// certificates, then zone-etcd and openssl milliseconds per medium, for the plot.
fn scaling_csv(results: &Value) -> String {
    let mut out = String::from("medium,certificates,zone_etcd_ms,openssl_ms\n");
    for row in results["pki"]["processes"].as_array().into_iter().flatten() {
        out += &format!(
            "{},{},{},{}\n",
            row["medium"].as_str().unwrap_or_default(),
            row["certificates"],
            row["zone_etcd_ms"]["median"],
            row["openssl_ms"]["median"]
        );
    }
    out
}

/// The summary table: figure, zone-etcd, the alternative, ratio, goal.
fn table(r: &Value) -> String {
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let mut rows: Vec<[String; 5]> = Vec::new();
    for row in r["pki"]["processes"].as_array().into_iter().flatten() {
        let speedup = f(&row["speedup"]);
        rows.push([
            format!(
                "PKI {} ({})",
                row["case"].as_str().unwrap_or_default(),
                row["medium"].as_str().unwrap_or_default()
            ),
            format!("{:.1} ms", f(&row["zone_etcd_ms"]["median"])),
            format!("openssl {:.1} ms", f(&row["openssl_ms"]["median"])),
            format!("x{speedup:.1}"),
            format!(">= x20: {}", if speedup >= 20.0 { "met" } else { "MISSED" }),
        ]);
    }
    // Beside a concurrent writer against the same case on the quiet disk.
    let processes = r["pki"]["processes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for busy in processes.iter().filter(|p| p["medium"] == "disk-busy") {
        let Some(quiet) = processes
            .iter()
            .find(|p| p["medium"] == "disk" && p["case"] == busy["case"])
        else {
            continue;
        };
        let ratio = f(&busy["zone_etcd_ms"]["median"]) / f(&quiet["zone_etcd_ms"]["median"]);
        rows.push([
            format!(
                "PKI {} beside a 4 GiB writer / quiet",
                busy["case"].as_str().unwrap_or_default()
            ),
            format!("{:.1} ms", f(&busy["zone_etcd_ms"]["median"])),
            format!("quiet {:.1} ms", f(&quiet["zone_etcd_ms"]["median"])),
            format!("x{ratio:.2}"),
            format!("<= x1.5: {}", if ratio <= 1.5 { "met" } else { "MISSED" }),
        ]);
    }
    if let Some(p) = r["pki"].get("in_process") {
        for (what, key) in [("node CA", "node_ca_ms"), ("leaf", "leaf_ms")] {
            let v = f(&p[key]["median"]);
            rows.push([
                format!("PKI in-process, per {what} certificate"),
                format!("{v:.3} ms"),
                String::new(),
                String::new(),
                format!("< 1 ms: {}", if v < 1.0 { "met" } else { "MISSED" }),
            ]);
        }
    }
    for (key, what, goal) in [
        ("overhead", "etcd version known", Some(5.0)),
        ("overhead_version_unknown", "etcd version unknown", None),
    ] {
        if let Some(o) = r["launch"].get(key) {
            let v = f(&o["overhead_ms"]["median"]);
            rows.push([
                format!("launch to exec, overhead ({what})"),
                format!("{:.2} ms", f(&o["launcher_ms"]["median"])),
                format!("direct {:.2} ms", f(&o["direct_ms"]["median"])),
                format!("+{v:.2} ms"),
                match goal {
                    Some(goal) => {
                        format!("< {goal} ms: {}", if v < goal { "met" } else { "MISSED" })
                    }
                    None => "once per binary change".into(),
                },
            ]);
        }
    }
    for what in ["listening", "healthy"] {
        if let Some(h) = r["launch"]["zone_start"].get(what) {
            let ratio = f(&h["ratio"]);
            rows.push([
                format!("3-member zone {what}"),
                format!("{:.0} ms", f(&h["launcher_ms"]["median"])),
                format!("direct {:.0} ms", f(&h["direct_ms"]["median"])),
                format!("x{ratio:.3}"),
                // Time to healthy adds etcd's randomised election (0.3-3 s a start) to
                // both sides alike; 20 starts cannot resolve 5% of it (BENCHMARKS.md).
                match what {
                    "listening" => format!(
                        "within 5%: {}",
                        if ratio <= 1.05 { "met" } else { "MISSED" }
                    ),
                    _ => "election noise: see BENCHMARKS.md".to_string(),
                },
            ]);
        }
    }
    if let Some(e) = r.get("etcd") {
        let (new, old, ratio) = (
            &e["releases"]["3.6.15"]["medians"],
            &e["releases"]["3.5.30"]["medians"],
            &e["ratios"],
        );
        let mb = |v: &Value| f(v) / 1024.0;
        let keys = format!("{} keys of {} B", e["keys"], e["value_bytes"]);
        for (what, key) in [
            (
                format!("etcd 3.6.15 RSS of a member, {keys}"),
                "rss_member_kib",
            ),
            (
                format!("etcd 3.6.15 RSS of 3 members, {keys}"),
                "rss_sum_kib",
            ),
            (
                "etcd 3.6.15 RSS of a member, empty".to_string(),
                "rss_empty_member_kib",
            ),
        ] {
            rows.push([
                what,
                format!("{:.1} MB", mb(&new[key])),
                format!("3.5.30 {:.1} MB", mb(&old[key])),
                format!("x{:.3}", f(&ratio[key])),
                "ratio, same run".into(),
            ]);
        }
        rows.push([
            "etcd 3.6.15 writer p50/p99, steady load".into(),
            format!("{:.2}/{:.2} ms", f(&new["p50_ms"]), f(&new["p99_ms"])),
            format!(
                "3.5.30 {:.2}/{:.2} ms",
                f(&old["p50_ms"]),
                f(&old["p99_ms"])
            ),
            format!("x{:.3}/x{:.3}", f(&ratio["p50_ms"]), f(&ratio["p99_ms"])),
            "ratio, same run".into(),
        ]);
        rows.push([
            format!("etcd 3.6.15 {keys}, 8 clients"),
            format!("{:.0} writes/s", f(&new["fill_writes_per_s"])),
            format!("3.5.30 {:.0} writes/s", f(&old["fill_writes_per_s"])),
            format!("x{:.3}", f(&ratio["fill_writes_per_s"])),
            "ratio, same run".into(),
        ]);
        rows.push([
            "etcd 3.6.15 3-member zone launch to healthy".into(),
            format!("{:.0} ms", f(&new["healthy_ms"])),
            format!("3.5.30 {:.0} ms", f(&old["healthy_ms"])),
            format!("x{:.3}", f(&ratio["healthy_ms"])),
            "election noise".into(),
        ]);
    }
    if let Some(rot) = r.get("rotation") {
        let failed = rot["failed"].as_u64().unwrap_or(u64::MAX);
        rows.push([
            "rotate one member, under load".into(),
            format!("{:.1} ms", f(&rot["rotate_ms"]["median"])),
            format!("{} requests", rot["requests"]),
            format!("{failed} failed"),
            format!("0 failed: {}", if failed == 0 { "met" } else { "MISSED" }),
        ]);
        if rot.get("rotate_busy_ms").is_some() {
            let ratio = f(&rot["busy_over_quiet"]);
            rows.push([
                "rotate one member, beside a 4 GiB writer".into(),
                format!("{:.1} ms", f(&rot["rotate_busy_ms"]["median"])),
                format!("quiet {:.1} ms", f(&rot["rotate_ms"]["median"])),
                format!("x{ratio:.2}"),
                format!("<= x1.5: {}", if ratio <= 1.5 { "met" } else { "MISSED" }),
            ]);
        }
    }
    if let Some(m) = r.get("memory") {
        let kib = f(&m["launch_issue_kib"]["max"]).max(f(&m["launch_reuse_kib"]["max"]));
        rows.push([
            "peak memory of launch (max)".into(),
            format!("{:.1} MB", kib / 1024.0),
            format!("/bin/true {:.1} MB", f(&m["bin_true_kib"]["max"]) / 1024.0),
            String::new(),
            format!(
                "< 10 MB: {}",
                if kib < 10.0 * 1024.0 { "met" } else { "MISSED" }
            ),
        ]);
    }
    if let Some(c) = r.get("churn") {
        rows.push([
            format!("database after {} rewrites of 1 KiB", c["rewrites"]),
            format!("{} MiB", c["zone_etcd_mib"]),
            format!("etcd defaults {} MiB", c["etcd_defaults_mib"]),
            format!("x{}", c["ratio"]),
            format!("after maintain {} MiB", c["zone_etcd_after_maintain_mib"]),
        ]);
    }
    if let Some(l) = r.get("maintain") {
        let (with, without) = (&l["with_maintain"], &l["without"]);
        let failed = with["failed"].as_u64().unwrap_or(u64::MAX);
        rows.push([
            "writer p50/p99 during maintain".into(),
            format!("{}/{} ms", with["p50_ms"], with["p99_ms"]),
            format!("without {}/{} ms", without["p50_ms"], without["p99_ms"]),
            format!("{failed} failed"),
            format!("0 failed: {}", if failed == 0 { "met" } else { "MISSED" }),
        ]);
    }
    if let Some(sn) = r.get("snapshot") {
        let (save, restore) = (&sn["save_ms"], &sn["restore_to_healthy_ms"]);
        let ratio = f(&save["ratio"]);
        rows.push([
            format!("snapshot save, {:.0} MB", f(&sn["database_bytes"]) / 1e6),
            format!("{:.0} ms", f(&save["zone_etcd"]["median"])),
            format!("etcdctl {:.0} ms", f(&save["etcdctl"]["median"])),
            format!("x{ratio:.3}"),
            format!(
                "within 10%: {}",
                if ratio <= 1.10 { "met" } else { "MISSED" }
            ),
        ]);
        rows.push([
            "restore to a healthy 3-member zone".into(),
            format!("{:.0} ms", f(&restore["zone_etcd"]["median"])),
            format!("by hand {:.0} ms", f(&restore["manual"]["median"])),
            format!("x{:.3}", f(&restore["ratio"])),
            String::new(),
        ]);
    }
    if let Some(b) = r.get("backup") {
        let delta = f(&b["delta_every_s"]);
        for (key, what) in [
            ("latency", "writer p50/p99, `backup run` active"),
            ("latency_busy", "the same beside a 4 GiB writer"),
        ] {
            let l = &b[key];
            let (with, without) = (&l["with_active"], &l["without"]);
            let ratio = f(&l["p99_ratio"]);
            rows.push([
                format!("{what} (delta {delta} s)"),
                format!("{}/{} ms", with["p50_ms"], with["p99_ms"]),
                format!("without {}/{} ms", without["p50_ms"], without["p99_ms"]),
                format!("p99 x{ratio:.3}"),
                format!(
                    "p99 within 5%: {}",
                    if ratio <= 1.05 { "met" } else { "MISSED" }
                ),
            ]);
        }
        let goal = f(&b["rpo"]["goal_s"]);
        for target in ["s3", "dir"] {
            let t = &b["rpo"]["targets"][target];
            let (missing, newest) = (&t["oldest_missing_s"], &t["newest_in_chain_s"]);
            let p99 = f(&missing["p99"]);
            rows.push([
                format!(
                    "RPO after {} SIGKILLs of all, {target} (oldest lost write, p50/p99/max)",
                    b["rpo"]["kills"]
                ),
                format!(
                    "{:.2}/{:.2}/{:.2} s",
                    f(&missing["p50"]),
                    p99,
                    f(&missing["max"])
                ),
                format!(
                    "newest write in chain {:.2}/{:.2} s old",
                    f(&newest["p50"]),
                    f(&newest["p99"])
                ),
                format!("{} lost for good", t["lost_writes"]),
                format!(
                    "p99 <= {goal} s: {}",
                    if p99 <= goal { "met" } else { "MISSED" }
                ),
            ]);
        }
        let s3 = &b["bytes"]["targets"]["s3"];
        rows.push([
            format!(
                "bytes shipped per write ({} B key + value)",
                b["bytes"]["raw_key_and_value_bytes"]
            ),
            format!(
                "deltas {:.0} B",
                f(&s3["delta_and_manifest_bytes_per_write"])
            ),
            format!("fulls {:.0} B", f(&s3["full_bytes_per_write"])),
            format!("{} fulls", s3["full_objects"]),
            String::new(),
        ]);
        let m = &b["memory_kib"];
        rows.push([
            "peak memory of `backup run` (max), active / idle".into(),
            format!("{:.1} MB", f(&m["active"]["max"]) / 1024.0),
            format!("idle {:.1} MB", f(&m["idle"]["max"]) / 1024.0),
            String::new(),
            String::new(),
        ]);
    }
    if let Some(a) = r.get("access") {
        for op in ["write", "read"] {
            let (on, off) = (&a["auth_on"][op], &a["auth_off"][op]);
            let ratio = f(&a["ratios"][&format!("{op}_p99_ms")]);
            rows.push([
                format!("{op} p50/p99, etcd auth on (service identity)"),
                format!("{:.2}/{:.2} ms", f(&on["p50_ms"]), f(&on["p99_ms"])),
                format!(
                    "auth off {:.2}/{:.2} ms",
                    f(&off["p50_ms"]),
                    f(&off["p99_ms"])
                ),
                format!("p99 x{ratio:.3}"),
                format!(
                    "p99 within 5%: {}",
                    if ratio <= 1.05 { "met" } else { "MISSED" }
                ),
            ]);
        }
        let p = &a["policy_change"];
        rows.push([
            "signed policy change -> every member applied".into(),
            format!(
                "median {:.0} ms, worst {:.0} ms",
                f(&p["wall_ms"]["median"]),
                f(&p["wall_ms"]["max"])
            ),
            format!(
                "unchanged file {:.0} ms",
                f(&a["policy_unchanged"]["wall_ms"]["median"])
            ),
            format!("{} publishes", p["publishes"]),
            String::new(),
        ]);
    }
    if let Some(q) = r.get("quota") {
        rows.extend(quota::rows(q));
    }
    let widths: Vec<usize> = (0..5)
        .map(|c| rows.iter().map(|row| row[c].len()).max().unwrap_or(0))
        .collect();
    let m = &r["machine"];
    let mut out = format!(
        "\nzone-etcd {} on {} x {} ({} GiB), Linux {}, {}; load {} -> {}\n\n",
        m["commit"].as_str().unwrap_or_default(),
        m["nproc"],
        m["cpu"].as_str().unwrap_or_default(),
        m["memory_gib"],
        m["kernel"].as_str().unwrap_or_default(),
        m["openssl"].as_str().unwrap_or_default(),
        r["load_before"].as_str().unwrap_or_default(),
        r["load_after"].as_str().unwrap_or_default(),
    );
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:w$}"))
            .collect();
        out += cells.join("  ").trim_end();
        out += "\n";
    }
    out
}
