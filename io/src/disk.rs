//! The disk a directory lives on: what it is ([`device_of`]: an SSD, a rotating disk, an
//! SD card or eMMC, memory, a network file system) and how fast it makes a small write
//! durable ([`probe`]): appends of [`WRITE_BYTES`] bytes to a file laid out beforehand,
//! each followed by fdatasync, timed one by one. That is how etcd writes its WAL (a record,
//! then fdatasync, in a preallocated segment) and what etcd's own hardware advice measures
//! with `fio --rw=write --ioengine=sync --fdatasync=1 --bs=2300`; the figure compared with
//! etcd's guidance is the fdatasync alone, as etcd's `wal_fsync_duration_seconds` is.
//!
//! Invariants: the probe writes only a file of its own, made new (never an existing
//! file) in the directory and removed on every path, error or not (a probe killed
//! meanwhile leaves it, and the next probe in the directory removes it); it writes at most
//! [`Limits::max_writes`] × [`WRITE_BYTES`] bytes and stops after [`Limits::most`] even
//! when the disk is so slow that fewer than [`Limits::min_writes`] were timed. Reading
//! what the device is never fails: what sysfs does not say is [`Kind::Unknown`].

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::Error;

/// The size of one write: what etcd's guide gives fio (`--bs=2300`), about a WAL record of
/// a small write with its raft framing.
pub const WRITE_BYTES: usize = 2300;

/// How long a probe writes, and how much.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Writing stops once this long has passed and `min_writes` were timed.
    pub enough: Duration,
    /// Writing stops after this long whatever was timed (a disk taking a second per sync).
    pub most: Duration,
    pub min_writes: usize,
    pub max_writes: usize,
}

impl Limits {
    /// About two seconds on a usable disk, at most ten, at most 4.6 MB written.
    pub const CHECK: Limits = Limits {
        enough: Duration::from_secs(2),
        most: Duration::from_secs(10),
        min_writes: 200,
        max_writes: 2000,
    };
}

/// What a probe measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    /// Writes timed, each [`WRITE_BYTES`] bytes and one fdatasync.
    pub writes: usize,
    /// Bytes written.
    pub bytes: u64,
    /// How long the probe wrote.
    pub took: Duration,
    /// The fdatasync latencies' median, 99th percentile and worst.
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

/// Times appends of [`WRITE_BYTES`] bytes, each followed by fdatasync, in a file of its own
/// in `dir` (removed on return), within `limits`.
pub fn probe(dir: &Path, limits: Limits) -> Result<Figures, Error> {
    remove_abandoned(dir);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let path = dir.join(format!("{PROBE_PREFIX}{}-{nanos}", std::process::id()));
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| Error::io("cannot make the disk probe's file", &path, &e))?;
    let _removed = Removed(path.clone());
    let mut file = file;
    // Laid out beforehand, as etcd preallocates each WAL segment: a sync then writes the
    // data, not the file's growth. A file system without fallocate still gets timed.
    let _ = nix::fcntl::posix_fallocate(&file, 0, (limits.max_writes * WRITE_BYTES) as i64);
    file.sync_all()
        .map_err(|e| Error::io("cannot sync the disk probe's file", &path, &e))?;
    let block = [0x5au8; WRITE_BYTES];
    let mut syncs = Vec::with_capacity(limits.max_writes);
    let started = Instant::now();
    while syncs.len() < limits.max_writes {
        let took = started.elapsed();
        if took >= limits.most || (took >= limits.enough && syncs.len() >= limits.min_writes) {
            break;
        }
        file.write_all(&block)
            .map_err(|e| Error::io("cannot write the disk probe's file", &path, &e))?;
        let at = Instant::now();
        file.sync_data()
            .map_err(|e| Error::io("cannot sync the disk probe's file", &path, &e))?;
        syncs.push(at.elapsed());
    }
    let took = started.elapsed();
    syncs.sort_unstable();
    Ok(Figures {
        writes: syncs.len(),
        bytes: (syncs.len() * WRITE_BYTES) as u64,
        took,
        p50: percentile(&syncs, 50),
        p99: percentile(&syncs, 99),
        max: syncs.last().copied().unwrap_or_default(),
    })
}

/// The name of a probe's file begins so.
pub const PROBE_PREFIX: &str = ".zone-etcd-disk-probe-";

/// Removes the files of probes killed before they removed their own: a probe writes for
/// at most [`Limits::most`], so a file older than ten minutes is no running probe's.
fn remove_abandoned(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|at| at.elapsed().is_ok_and(|age| age > Duration::from_secs(600)));
        if old
            && entry
                .file_name()
                .to_string_lossy()
                .starts_with(PROBE_PREFIX)
        {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Removes the probe's file when dropped.
struct Removed(PathBuf);

impl Drop for Removed {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// The `pct`th percentile of `sorted` (nearest rank: the smallest value that at least
/// `pct`% of the values do not exceed); zero for no values.
pub fn percentile(sorted: &[Duration], pct: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (sorted.len() * pct).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

/// What kind of storage a directory is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A block device that does not rotate: an SSD, NVMe, a virtual machine's disk.
    Solid,
    /// A rotating disk.
    Rotating,
    /// An SD card.
    SdCard,
    /// eMMC soldered on the board.
    Emmc,
    /// Memory (tmpfs): lost at every reboot.
    Memory,
    /// A network file system (NFS, SMB).
    Network,
    /// Not told by the kernel (a FUSE, overlay or ZFS file system, no sysfs).
    Unknown,
}

/// The storage under a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub kind: Kind,
    /// The block device's name (`sda`, `nvme0n1`, `mmcblk0`), when there is one.
    pub name: Option<String>,
    /// The file system's type (`ext4`, `tmpfs`, ...), or its magic number in hex.
    pub fs: String,
}

/// The storage under `dir` (its nearest existing ancestor when it does not exist yet).
pub fn device_of(dir: &Path) -> Device {
    let existing = dir.ancestors().find(|d| d.exists()).unwrap_or(dir);
    let fs = nix::sys::statfs::statfs(existing)
        .map(|s| fs_name(s.filesystem_type()))
        .unwrap_or_else(|_| "unknown".to_string());
    let block = fs::metadata(existing).ok().and_then(|meta| {
        let dev = meta.dev();
        let (major, minor) = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev));
        disk_in_sysfs(Path::new(&format!("/sys/dev/block/{major}:{minor}")))
    });
    let (name, rotational, mmc_type) = match &block {
        Some(disk) => (
            disk.file_name().map(|n| n.to_string_lossy().into_owned()),
            fs::read_to_string(disk.join("queue/rotational")).ok(),
            fs::read_to_string(disk.join("device/type")).ok(),
        ),
        None => (None, None, None),
    };
    Device {
        kind: kind(
            &fs,
            name.as_deref(),
            rotational.as_deref(),
            mmc_type.as_deref(),
        ),
        name,
        fs,
    }
}

/// The whole disk behind a sysfs block device: a partition's parent, and under
/// device-mapper (LVM, LUKS) the first device it maps onto.
fn disk_in_sysfs(dev: &Path) -> Option<PathBuf> {
    let mut at = fs::canonicalize(dev).ok()?;
    for _ in 0..4 {
        if at.join("partition").exists() {
            at = at.parent()?.to_path_buf();
            continue;
        }
        let under = fs::read_dir(at.join("slaves"))
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| e.ok())
            .and_then(|e| fs::canonicalize(e.path()).ok());
        match under {
            Some(next) => at = next,
            None => return Some(at),
        }
    }
    Some(at)
}

/// What a directory's storage is, from its file system's type, its disk's name and what
/// sysfs says of the disk (`queue/rotational`, and `device/type` of an MMC device).
pub fn kind(
    fs: &str,
    disk: Option<&str>,
    rotational: Option<&str>,
    mmc_type: Option<&str>,
) -> Kind {
    match fs {
        "tmpfs" | "ramfs" => return Kind::Memory,
        "nfs" | "smb" | "cifs" | "smb2" | "0xff534d42" | "0xfe534d42" => return Kind::Network,
        _ => {}
    }
    let Some(disk) = disk else {
        return Kind::Unknown;
    };
    if disk.starts_with("mmcblk") {
        return match mmc_type.map(str::trim) {
            Some("MMC") => Kind::Emmc,
            _ => Kind::SdCard,
        };
    }
    match rotational.map(str::trim) {
        Some("1") => Kind::Rotating,
        Some("0") => Kind::Solid,
        _ => Kind::Unknown,
    }
}

/// A file system type's name.
fn fs_name(magic: nix::sys::statfs::FsType) -> String {
    use nix::sys::statfs::*;
    let known = [
        (EXT4_SUPER_MAGIC, "ext4"),
        (XFS_SUPER_MAGIC, "xfs"),
        (BTRFS_SUPER_MAGIC, "btrfs"),
        (F2FS_SUPER_MAGIC, "f2fs"),
        (TMPFS_MAGIC, "tmpfs"),
        (NFS_SUPER_MAGIC, "nfs"),
        (SMB_SUPER_MAGIC, "smb"),
        (FUSE_SUPER_MAGIC, "fuse"),
        (OVERLAYFS_SUPER_MAGIC, "overlay"),
        (MSDOS_SUPER_MAGIC, "vfat"),
    ];
    known
        .iter()
        .find(|(m, _)| *m == magic)
        .map_or_else(|| format!("{:#x}", magic.0), |(_, name)| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|v| Duration::from_millis(*v)).collect()
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let hundred: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&hundred, 50), Duration::from_millis(50));
        assert_eq!(percentile(&hundred, 99), Duration::from_millis(99));
        // Ten values: the 99th percentile is the worst, the median the fifth.
        let ten = ms(&[1, 1, 1, 1, 2, 2, 2, 2, 2, 40]);
        assert_eq!(percentile(&ten, 99), Duration::from_millis(40));
        assert_eq!(percentile(&ten, 50), Duration::from_millis(2));
        assert_eq!(percentile(&ms(&[7]), 99), Duration::from_millis(7));
        assert_eq!(percentile(&[], 99), Duration::ZERO);
    }

    #[test]
    fn the_kind_comes_from_the_file_system_then_the_disk() {
        assert_eq!(kind("tmpfs", None, None, None), Kind::Memory);
        assert_eq!(kind("nfs", Some("sda"), Some("0"), None), Kind::Network);
        assert_eq!(
            kind("ext4", Some("mmcblk0"), Some("0"), Some("SD\n")),
            Kind::SdCard
        );
        assert_eq!(
            kind("ext4", Some("mmcblk0"), Some("0"), Some("MMC\n")),
            Kind::Emmc
        );
        // An MMC device whose type sysfs does not give is taken as a card (the worse).
        assert_eq!(kind("ext4", Some("mmcblk1"), None, None), Kind::SdCard);
        assert_eq!(kind("ext4", Some("sda"), Some("1\n"), None), Kind::Rotating);
        assert_eq!(kind("xfs", Some("nvme0n1"), Some("0\n"), None), Kind::Solid);
        assert_eq!(kind("fuse", None, None, None), Kind::Unknown);
        assert_eq!(kind("ext4", Some("sdb"), None, None), Kind::Unknown);
    }

    #[test]
    fn a_probe_times_its_writes_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let limits = Limits {
            enough: Duration::from_millis(50),
            most: Duration::from_secs(5),
            min_writes: 20,
            max_writes: 40,
        };
        let figures = probe(dir.path(), limits).unwrap();
        assert!((20..=40).contains(&figures.writes), "{figures:?}");
        assert_eq!(figures.bytes, (figures.writes * WRITE_BYTES) as u64);
        assert!(figures.p50 <= figures.p99 && figures.p99 <= figures.max);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_killed_probes_file_is_removed_by_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let abandoned = dir.path().join(format!("{PROBE_PREFIX}1-2"));
        let running = dir.path().join(format!("{PROBE_PREFIX}3-4"));
        let other = dir.path().join("member");
        for file in [&abandoned, &running, &other] {
            fs::write(file, b"x").unwrap();
        }
        let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
        for file in [&abandoned, &other] {
            fs::File::options()
                .write(true)
                .open(file)
                .unwrap()
                .set_modified(hour_ago)
                .unwrap();
        }
        let quick = Limits {
            enough: Duration::ZERO,
            most: Duration::from_secs(5),
            min_writes: 1,
            max_writes: 1,
        };
        probe(dir.path(), quick).unwrap();
        assert!(!abandoned.exists());
        assert!(running.exists() && other.exists());
    }

    #[test]
    fn a_probe_where_it_cannot_write_is_one_line_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("gone");
        let e = probe(&missing, Limits::CHECK).unwrap_err().to_string();
        assert!(e.contains("cannot make the disk probe's file"), "{e}");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn this_machines_temporary_directory_is_told() {
        let dir = tempfile::tempdir().unwrap();
        let device = device_of(&dir.path().join("not/yet"));
        assert!(!device.fs.is_empty());
    }
}
