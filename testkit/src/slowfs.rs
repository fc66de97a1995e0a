//! A slow disk for a test: the `zone-slowfs` binary (slowfs/) mounting a FUSE passthrough
//! of a backing directory whose every fsync, fdatasync and directory sync waits a delay.
//!
//! Invariants:
//! - The binary is the one built with the running test (same target directory and
//!   profile), never one found on PATH.
//! - A [`SlowFs`] exists only once its mount is in /proc/self/mountinfo; it holds the
//!   binary as a [`Process`] (by PID, its output in `<mountpoint>.zone-slowfs.log`).
//! - Dropping it unmounts: SIGTERM to its PID (it unmounts itself), up to
//!   [`STOP_WAIT`]; then, if the mountpoint is still mounted, a lazy unmount
//!   (`MNT_DETACH`) and SIGKILL to its PID. Nothing is ever killed by name.
//! - It fails with one line (`Err(String)`), the log's tail included when the binary
//!   said something, never a panic.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::Process;

type Result<T> = std::result::Result<T, String>;

/// How long the mount may take to appear.
pub const MOUNT_WAIT: Duration = Duration::from_secs(10);
/// How long the binary may take to unmount and exit after SIGTERM.
pub const STOP_WAIT: Duration = Duration::from_secs(3);

/// A mounted zone-slowfs, unmounted when dropped.
#[derive(Debug)]
pub struct SlowFs {
    process: Process,
    mountpoint: PathBuf,
}

/// The `zone-slowfs` binary built with this program.
pub fn binary() -> Result<PathBuf> {
    crate::process::built_binary("zone-slowfs", "cargo build -p zone-slowfs")
}

impl SlowFs {
    /// Mounts `backing` (a directory) at `mountpoint` (an empty directory), each sync
    /// delayed by `fsync_delay`; waits up to [`MOUNT_WAIT`] for the mount.
    pub fn mount(backing: &Path, mountpoint: &Path, fsync_delay: Duration) -> Result<SlowFs> {
        let mountpoint = mountpoint
            .canonicalize()
            .map_err(|e| format!("mountpoint {}: {e}", mountpoint.display()))?;
        if is_mounted(&mountpoint) {
            return Err(format!("{} is already mounted", mountpoint.display()));
        }
        let mut cmd = Command::new(binary()?);
        cmd.arg(backing)
            .arg(&mountpoint)
            .arg("--fsync-delay-ms")
            .arg(fsync_delay.as_millis().to_string())
            .stdin(Stdio::null());
        let mut log = mountpoint.clone().into_os_string();
        log.push(".zone-slowfs.log");
        let mut process = Process::spawn(cmd, Path::new(&log))?;
        let deadline = Instant::now() + MOUNT_WAIT;
        loop {
            if is_mounted(&mountpoint) {
                return Ok(SlowFs {
                    process,
                    mountpoint,
                });
            }
            let exited = process.exit_status();
            if exited.is_some() || Instant::now() > deadline {
                let what = match exited {
                    Some(status) => format!("exited ({status})"),
                    None => format!("did not mount within {MOUNT_WAIT:?}"),
                };
                let tail = tail(&process.log());
                process.kill();
                return Err(format!(
                    "zone-slowfs at {}: {what}; its log: {tail}",
                    mountpoint.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Where the slow file system is mounted (canonical).
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// The binary's PID.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// What the binary said so far.
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// Unmounts now (as dropping it does) and returns how many syncs it delayed, from its
    /// last line `delayed K syncs`.
    pub fn unmount(mut self) -> Result<u64> {
        self.stop();
        let log = self.process.log();
        log.lines()
            .rev()
            .find_map(|l| {
                l.strip_prefix("delayed ")
                    .and_then(|rest| rest.strip_suffix(" syncs"))
                    .and_then(|k| k.parse().ok())
            })
            .ok_or_else(|| format!("zone-slowfs did not say its count; its log: {}", tail(&log)))
    }

    fn stop(&mut self) {
        let exited = self.process.stop(STOP_WAIT);
        if is_mounted(&self.mountpoint) {
            detach(&self.mountpoint);
        }
        if !exited {
            self.process.kill();
        }
    }
}

impl Drop for SlowFs {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Unmounts `mountpoint` lazily (`umount2(MNT_DETACH)`): gone from the namespace now,
/// whatever still holds files there. (libc through nix's re-export: nix's `mount` feature
/// would change nix's build for every crate that shares it.)
#[allow(unsafe_code)] // umount2: nix's safe wrapper is behind a feature (see above)
fn detach(mountpoint: &Path) {
    let Ok(path) = CString::new(mountpoint.as_os_str().as_bytes()) else {
        return;
    };
    // SAFETY: `path` is a NUL-terminated string alive for the call.
    unsafe {
        nix::libc::umount2(path.as_ptr(), nix::libc::MNT_DETACH);
    }
}

/// Whether `mountpoint` (canonical) is a FUSE mount point in this mount namespace.
pub fn is_mounted(mountpoint: &Path) -> bool {
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let wanted = mountpoint.to_string_lossy();
    mountinfo.lines().any(|line| {
        // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPER
        let mut fields = line.split(' ');
        let at = fields.nth(4).map(unescape);
        let kind = line.split(" - ").nth(1).and_then(|s| s.split(' ').next());
        at.as_deref() == Some(&*wanted) && kind.is_some_and(|k| k.starts_with("fuse"))
    })
}

/// A mountinfo field with its octal escapes (`\040` a space) undone.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            let d = std::str::from_utf8(d).ok()?;
            u8::from_str_radix(d, 8).ok()
        });
        match (bytes[i], octal) {
            (b'\\', Some(b)) => {
                out.push(b);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The last lines of a log, on one line.
fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(5);
    match lines[start..].join(" | ") {
        t if t.is_empty() => "(empty)".to_string(),
        t => t,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_fields_are_unescaped() {
        assert_eq!(unescape(r"/tmp/a\040b"), "/tmp/a b");
        assert_eq!(unescape(r"/x\\y"), r"/x\\y");
        assert_eq!(unescape("/plain"), "/plain");
        assert_eq!(tail("a\n\nb\n"), "a | b");
        assert_eq!(tail(""), "(empty)");
    }

    #[test]
    fn a_mount_waits_its_syncs_and_is_gone_once_dropped() {
        if let Err(missing) = binary() {
            eprintln!("SKIPPED: {missing}");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let (backing, mnt) = (dir.path().join("backing"), dir.path().join("mnt"));
        std::fs::create_dir(&backing).unwrap();
        std::fs::create_dir(&mnt).unwrap();
        let slow = SlowFs::mount(&backing, &mnt, Duration::from_millis(30)).unwrap();
        assert!(is_mounted(slow.mountpoint()));
        assert!(SlowFs::mount(&backing, &mnt, Duration::ZERO)
            .unwrap_err()
            .contains("already mounted"));
        let file = std::fs::File::create(slow.mountpoint().join("f")).unwrap();
        let started = Instant::now();
        file.sync_all().unwrap();
        assert!(started.elapsed() >= Duration::from_millis(30));
        drop(file);
        let mountpoint = slow.mountpoint().to_path_buf();
        assert_eq!(slow.unmount(), Ok(1));
        assert!(!is_mounted(&mountpoint));

        // Dropped while a file is still open there: detached all the same.
        let slow = SlowFs::mount(&backing, &mnt, Duration::ZERO).unwrap();
        let held = std::fs::File::open(slow.mountpoint().join("f")).unwrap();
        drop(slow);
        assert!(!is_mounted(&mountpoint));
        drop(held);

        let missing = dir.path().join("missing");
        assert!(SlowFs::mount(&missing, &mnt, Duration::ZERO)
            .unwrap_err()
            .contains("exited"));
    }
}
