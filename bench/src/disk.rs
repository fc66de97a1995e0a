//! The data disk's measurement (issue 51, item 1): what `check` and `join` run
//! ([`zone_io::disk::probe`] with [`Limits::CHECK`]) against `fio` as etcd's own hardware
//! advice runs it (`--rw=write --ioengine=sync --fdatasync=1 --bs=2300`), on the same file
//! systems in the same run: this machine's disk (the work directory), memory
//! (`/dev/shm`, tmpfs), and the slow disk of the suite's test (zone-slowfs over tmpfs,
//! every sync held back [`SLOW_SYNC`]). Each run times the probe, then fio writing as many bytes as the
//! probe wrote (so both see the same file size and the disk the same load), alternating;
//! the figures are the medians over the runs of each one's p50 and p99 fdatasync latency.
//! The probe's own cost is its wall time and the bytes it wrote.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use zone_io::disk::{self, Limits, WRITE_BYTES};

use crate::support::{median, Result};

/// The `disk` section: `runs` alternating runs of the probe and fio per file system.
pub fn run(dir: &Path, runs: usize) -> Result<Value> {
    let mut sections = serde_json::Map::new();
    // The slow disk of the suite's test: zone-slowfs over tmpfs, every sync held back
    // SLOW_SYNC, so what both measure there is the delay.
    let slow_root = tempfile::tempdir_in("/dev/shm").map_err(|e| format!("/dev/shm: {e}"))?;
    let (backing, mountpoint) = (slow_root.path().join("b"), slow_root.path().join("m"));
    for d in [&backing, &mountpoint] {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    let slow = zone_testkit::slowfs::SlowFs::mount(&backing, &mountpoint, SLOW_SYNC)?;
    for (name, root) in [
        ("disk", dir.to_path_buf()),
        ("tmpfs", "/dev/shm".into()),
        ("slowfs", slow.mountpoint().to_path_buf()),
    ] {
        let work = tempfile::tempdir_in(&root).map_err(|e| format!("{}: {e}", root.display()))?;
        let device = disk::device_of(work.path());
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let figures = disk::probe(work.path(), Limits::CHECK).map_err(|e| e.to_string())?;
            let fio = fio(work.path(), figures.bytes)?;
            ours.push(figures);
            theirs.push(fio);
        }
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let p50 = median(&ours.iter().map(|f| ms(f.p50)).collect::<Vec<_>>());
        let p99 = median(&ours.iter().map(|f| ms(f.p99)).collect::<Vec<_>>());
        let fio_p50 = median(&theirs.iter().map(|f| f.0).collect::<Vec<_>>());
        let fio_p99 = median(&theirs.iter().map(|f| f.1).collect::<Vec<_>>());
        eprintln!(
            "disk {name} ({:?} {}): probe p50 {p50:.3} ms p99 {p99:.3} ms; fio p50 {fio_p50:.3} ms p99 {fio_p99:.3} ms",
            device.kind, device.fs
        );
        sections.insert(
            name.to_string(),
            json!({
                "kind": format!("{:?}", device.kind),
                "device": device.name,
                "fs": device.fs,
                "probe_p50_ms": p50,
                "probe_p99_ms": p99,
                "fio_p50_ms": fio_p50,
                "fio_p99_ms": fio_p99,
                "p99_ratio_probe_to_fio": p99 / fio_p99,
                "probe_seconds": median(&ours.iter().map(|f| f.took.as_secs_f64()).collect::<Vec<_>>()),
                "probe_bytes": median(&ours.iter().map(|f| f.bytes as f64).collect::<Vec<_>>()),
                "probe_writes": median(&ours.iter().map(|f| f.writes as f64).collect::<Vec<_>>()),
            }),
        );
    }
    drop(slow);
    Ok(Value::Object(sections))
}

/// What zone-slowfs holds each sync back in the `slowfs` row (the suite's slow-disk test
/// holds 100 ms; a shorter delay keeps the row's runs short).
const SLOW_SYNC: Duration = Duration::from_millis(20);

/// fio writing `bytes` in appends of [`WRITE_BYTES`], each followed by fdatasync, in
/// `dir`: its fdatasync latency's (p50, p99) in ms.
fn fio(dir: &Path, bytes: u64) -> Result<(f64, f64)> {
    let out = Command::new("fio")
        .args([
            "--name=etcd",
            "--rw=write",
            "--ioengine=sync",
            "--fdatasync=1",
            &format!("--bs={WRITE_BYTES}"),
            &format!("--size={bytes}"),
            &format!("--directory={}", dir.display()),
            "--output-format=json",
        ])
        .output()
        .map_err(|e| format!("fio: {e} (scripts/bench.sh installs it)"))?;
    if !out.status.success() {
        return Err(format!("fio: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let report: Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("fio's JSON: {e}"))?;
    let percentiles = &report["jobs"][0]["sync"]["lat_ns"]["percentile"];
    let at = |p: &str| {
        percentiles[p]
            .as_f64()
            .map(|ns| ns / 1e6)
            .ok_or_else(|| format!("fio's JSON has no sync latency percentile {p}: {percentiles}"))
    };
    let _ = std::fs::remove_file(dir.join("etcd.0.0"));
    Ok((at("50.000000")?, at("99.000000")?))
}
