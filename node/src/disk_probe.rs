//! The disk probe: this machine's data disk measured by zone-etcd itself
//! ([`zone_io::disk::probe`] in the data directory, or its nearest existing parent before
//! the first start), judged against etcd's guidance ([`findings`]: a WAL fdatasync p99
//! under [`WAL_FSYNC_P99_MS`], no SD card, no memory, no network file system), and kept in
//! the state directory (`disk-probe.json`). A member's disk as its own etcd saw it, in its
//! links record, is the disk minute ([`zone_model::disk_minute`]), not this.
//!
//! `check` (text and JSON) and `join` measure again when the kept figure is
//! older than [`FRESH`] or was taken elsewhere; `check --format prometheus` (the package's
//! metrics timer, every 5 minutes) only reports the kept figure and never writes: the
//! probe writes a few megabytes and competes with etcd's own syncs for two seconds, which
//! an SD card should not get every 5 minutes.
//!
//! Invariants: the kept file carries `format` ([`FORMAT`]); a file this release cannot
//! read (another format, damaged) is measured over, as it is a measurement, not a record
//! anyone needs; it is written atomically under the state lock, 0600, and only into a
//! state directory that exists (a `check` before the first start writes nothing).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use zone_io::disk::{self, Kind, Limits};
use zone_io::Error;
use zone_model::disk_minute::WAL_FSYNC_P99_MS;

/// The kept file's format.
pub const FORMAT: u32 = 1;
/// How long a kept measurement stands for `check` and `join`.
pub const FRESH: Duration = Duration::from_secs(3600);
/// The kept file's name in the state directory.
pub const FILE: &str = "disk-probe.json";

/// One measurement of a data disk (the kept file, and `check --json`'s `disk`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    pub format: u32,
    /// The directory the probe wrote in.
    pub dir: String,
    /// `ssd`, `rotating`, `sd card`, `emmc`, `memory`, `network` or `unknown`.
    pub kind: String,
    /// The block device (`sda`, `mmcblk0`), empty when there is none.
    pub device: String,
    pub fs: String,
    pub writes: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub fdatasync_p50_ms: f64,
    pub fdatasync_p99_ms: f64,
    pub fdatasync_max_ms: f64,
    /// When it was measured (RFC 3339, UTC).
    pub at: String,
}

/// What a measurement means for etcd, and its fix.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub what: String,
    pub fix: String,
}

/// Where a member's probe writes: its data directory, or the nearest existing parent.
pub fn probe_dir(data_dir: &Path) -> PathBuf {
    data_dir
        .ancestors()
        .find(|d| d.is_dir())
        .unwrap_or(data_dir)
        .to_path_buf()
}

/// The kept measurement of `data_dir` when it is younger than [`FRESH`], else a new one
/// (kept for the next).
pub fn measure_or_kept(state_dir: &Path, data_dir: &Path) -> Result<Measured, Error> {
    measure_or_kept_within(state_dir, data_dir, Limits::CHECK)
}

fn measure_or_kept_within(
    state_dir: &Path,
    data_dir: &Path,
    limits: Limits,
) -> Result<Measured, Error> {
    let dir = probe_dir(data_dir);
    if let Some(kept) = kept(state_dir) {
        if kept.dir == dir.display().to_string() && age(&kept, OffsetDateTime::now_utc()) < FRESH {
            return Ok(kept);
        }
    }
    let measured = measure_within(&dir, limits)?;
    keep(state_dir, &measured);
    Ok(measured)
}

/// Logs the data disk's measurement (kept or new) and what it means, as `join` does
/// before the new member's first start; a probe that fails is a warning, never a refusal.
pub fn tell(state_dir: &Path, data_dir: &Path) {
    match measure_or_kept(state_dir, data_dir) {
        Ok(m) => {
            tracing::info!("{}", line(&m));
            for f in findings(&m) {
                tracing::warn!("{} (fix: {})", f.what, f.fix);
            }
        }
        Err(e) => tracing::warn!("data disk: not measured: {e}"),
    }
}

/// Measures the disk under `dir` now.
pub fn measure(dir: &Path) -> Result<Measured, Error> {
    measure_within(dir, Limits::CHECK)
}

fn measure_within(dir: &Path, limits: Limits) -> Result<Measured, Error> {
    let device = disk::device_of(dir);
    let figures = disk::probe(dir, limits)?;
    let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
    Ok(Measured {
        format: FORMAT,
        dir: dir.display().to_string(),
        kind: kind_name(&device.kind).to_string(),
        device: device.name.unwrap_or_default(),
        fs: device.fs,
        writes: figures.writes as u64,
        bytes: figures.bytes,
        seconds: (figures.took.as_secs_f64() * 100.0).round() / 100.0,
        fdatasync_p50_ms: ms(figures.p50),
        fdatasync_p99_ms: ms(figures.p99),
        fdatasync_max_ms: ms(figures.max),
        at: OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .unwrap_or_default(),
    })
}

/// The measurement kept in `state_dir`, when this release reads it.
pub fn kept(state_dir: &Path) -> Option<Measured> {
    let text = std::fs::read_to_string(state_dir.join(FILE)).ok()?;
    serde_json::from_str::<Measured>(&text)
        .ok()
        .filter(|m| m.format == FORMAT)
}

/// Keeps `measured` in `state_dir` (under the state lock) when the state directory is
/// there already: `check` before the node's first start changes nothing on disk. A
/// failure only costs the next `check` a new measurement, so it is not an error.
fn keep(state_dir: &Path, measured: &Measured) {
    if !state_dir.is_dir() {
        return;
    }
    let Ok(text) = serde_json::to_string_pretty(measured) else {
        return;
    };
    if let Ok(_lock) = zone_io::state::lock(state_dir) {
        let _ = zone_io::write_atomic(&state_dir.join(FILE), text.as_bytes(), 0o600);
    }
}

/// How long ago `measured` was taken (forever when its time does not read).
pub fn age(measured: &Measured, now: OffsetDateTime) -> Duration {
    OffsetDateTime::parse(&measured.at, &Rfc3339)
        .ok()
        .and_then(|at| Duration::try_from(now - at).ok())
        .unwrap_or(Duration::MAX)
}

fn kind_name(kind: &Kind) -> &'static str {
    match kind {
        Kind::Solid => "ssd",
        Kind::Rotating => "rotating",
        Kind::SdCard => "sd card",
        Kind::Emmc => "emmc",
        Kind::Memory => "memory",
        Kind::Network => "network",
        Kind::Unknown => "unknown",
    }
}

/// The line `check` and `join` print.
pub fn line(m: &Measured) -> String {
    let what = match m.kind.as_str() {
        "ssd" => "an SSD",
        "rotating" => "a disk the kernel reports as rotating",
        "sd card" => "an SD card",
        "emmc" => "eMMC",
        "memory" => "memory (tmpfs)",
        "network" => "a network file system",
        _ => "storage the kernel does not describe",
    };
    let device = if m.device.is_empty() {
        m.fs.clone()
    } else {
        format!("{}, {}", m.device, m.fs)
    };
    format!(
        "data disk: {} on {what} ({device}): fdatasync p50 {} ms, p99 {} ms ({} writes of {} bytes in {} s, at {})",
        m.dir,
        m.fdatasync_p50_ms,
        m.fdatasync_p99_ms,
        m.writes,
        zone_io::disk::WRITE_BYTES,
        m.seconds,
        m.at
    )
}

/// What `m` means for a member's etcd, each with its fix (none: the disk is fine).
pub fn findings(m: &Measured) -> Vec<Finding> {
    let mut found = Vec::new();
    let move_to_ssd = "put data_dir (node.toml) on an SSD, then move the data there while the member is stopped (on a Raspberry Pi, a USB SSD)";
    match m.kind.as_str() {
        "sd card" | "emmc" => found.push(Finding {
            what: format!(
                "the data directory is on {}: etcd syncs its WAL at every write, which wears a card out and stalls it (k3s users' Raspberry Pi clusters lost their leader so)",
                if m.kind == "emmc" { "eMMC" } else { "an SD card" }
            ),
            fix: move_to_ssd.to_string(),
        }),
        "memory" => found.push(Finding {
            what: "the data directory is in memory (tmpfs): this member loses its data at every reboot and must then be rebuilt".to_string(),
            fix: "put data_dir (node.toml) on a disk; after a reboot rebuild the member with `zone-etcd join --replace`".to_string(),
        }),
        "network" => found.push(Finding {
            what: "the data directory is on a network file system: every sync of etcd's WAL waits on the network, and a stall of the server stalls the member".to_string(),
            fix: "put data_dir (node.toml) on a local SSD".to_string(),
        }),
        _ => {}
    }
    if m.fdatasync_p99_ms > WAL_FSYNC_P99_MS && m.kind != "memory" {
        found.push(Finding {
            what: format!(
                "fdatasync p99 is {} ms, over etcd's guidance of {WAL_FSYNC_P99_MS} ms: each write waits on the disk and, under load, the leader misses heartbeats and elections follow",
                m.fdatasync_p99_ms
            ),
            fix: if m.kind == "network" {
                "put data_dir (node.toml) on a local SSD".to_string()
            } else {
                format!("{move_to_ssd}; a disk shared with a busy workload slows down too")
            },
        });
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(kind: &str, p99: f64) -> Measured {
        Measured {
            format: FORMAT,
            dir: "/var/lib/zone-etcd/data".into(),
            kind: kind.into(),
            device: "sda".into(),
            fs: "ext4".into(),
            writes: 2000,
            bytes: 4_600_000,
            seconds: 1.2,
            fdatasync_p50_ms: p99 / 2.0,
            fdatasync_p99_ms: p99,
            fdatasync_max_ms: p99 * 2.0,
            at: "2026-11-26T23:00:00Z".into(),
        }
    }

    /// The kept file as this release writes it: later releases read it, and this one reads
    /// it back (golden text).
    #[test]
    fn the_kept_file_reads_as_it_was_written() {
        let golden = r#"{
  "format": 1,
  "dir": "/var/lib/zone-etcd/data",
  "kind": "sd card",
  "device": "mmcblk0",
  "fs": "ext4",
  "writes": 312,
  "bytes": 717600,
  "seconds": 10.0,
  "fdatasync_p50_ms": 21.5,
  "fdatasync_p99_ms": 95.2,
  "fdatasync_max_ms": 140.1,
  "at": "2026-11-26T23:00:00Z"
}"#;
        let m: Measured = serde_json::from_str(golden).unwrap();
        assert_eq!(m.kind, "sd card");
        assert_eq!(serde_json::to_string_pretty(&m).unwrap(), golden);
    }

    #[test]
    fn a_fast_ssd_has_no_finding_and_a_slow_one_is_told_with_its_fix() {
        assert!(findings(&measured("ssd", 2.0)).is_empty());
        assert!(findings(&measured("rotating", 9.9)).is_empty());
        let slow = findings(&measured("rotating", 18.0));
        assert_eq!(slow.len(), 1);
        assert!(slow[0]
            .what
            .contains("p99 is 18 ms, over etcd's guidance of 10 ms"));
        assert!(slow[0].fix.contains("SSD"));
    }

    #[test]
    fn a_card_memory_or_network_is_told_whatever_its_figures() {
        let card = findings(&measured("sd card", 3.0));
        assert_eq!(card.len(), 1);
        assert!(card[0].what.contains("an SD card"));
        let emmc = findings(&measured("emmc", 40.0));
        assert_eq!(emmc.len(), 2, "{emmc:?}");
        assert!(emmc[0].what.contains("eMMC"));
        let memory = findings(&measured("memory", 0.01));
        assert!(memory[0].what.contains("tmpfs"));
        assert!(memory[0].fix.contains("join --replace"));
        let network = findings(&measured("network", 30.0));
        assert_eq!(network.len(), 2);
        assert!(network.iter().all(|f| f.fix.contains("local SSD")));
    }

    #[test]
    fn a_kept_measurement_stands_for_an_hour_of_the_same_directory() {
        let quick = Limits {
            enough: Duration::ZERO,
            most: Duration::from_secs(5),
            min_writes: 10,
            max_writes: 10,
        };
        let measure_or_kept =
            |state: &Path, data: &Path| measure_or_kept_within(state, data, quick);
        let state = tempfile::tempdir().unwrap();
        let data = state.path().join("data");
        let first = measure_or_kept(state.path(), &data).unwrap();
        assert_eq!(first.dir, state.path().display().to_string());
        assert!(first.writes >= 1);
        assert_eq!(kept(state.path()), Some(first.clone()));
        // Again within the hour: the kept figure, nothing written.
        assert_eq!(measure_or_kept(state.path(), &data).unwrap(), first);
        // Taken an hour ago: measured again.
        let mut old = first.clone();
        old.at = "2026-01-01T00:00:00Z".into();
        keep(state.path(), &old);
        let again = measure_or_kept(state.path(), &data).unwrap();
        assert_ne!(again.at, old.at);
        // A file of another format is measured over.
        std::fs::write(state.path().join(FILE), r#"{"format":2}"#).unwrap();
        assert!(kept(state.path()).is_none());
        assert_eq!(measure_or_kept(state.path(), &data).unwrap().format, FORMAT);
    }

    #[test]
    fn the_line_names_the_disk_and_its_figures() {
        let text = line(&measured("sd card", 95.0));
        assert!(text.starts_with("data disk: /var/lib/zone-etcd/data on an SD card (sda, ext4): fdatasync p50 47.5 ms, p99 95 ms"), "{text}");
    }
}
