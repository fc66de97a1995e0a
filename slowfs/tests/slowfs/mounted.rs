//! A zone-slowfs mount for one test: the real binary (`CARGO_BIN_EXE_zone-slowfs`) on a
//! backing directory and a mountpoint in a temporary directory of its own.
//!
//! Invariants: [`Mounted::new`] returns only once the mount is in /proc/self/mountinfo;
//! the binary is held by its child handle (its PID), never found by name; dropping a
//! [`Mounted`] (also while a failed test unwinds) unmounts: SIGTERM, up to 5 s, then a
//! lazy unmount and SIGKILL, before the temporary directory goes.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::mount::{umount2, MntFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

pub struct Mounted {
    pub backing: PathBuf,
    pub mnt: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    // Last: removed once the mount is gone (held for its drop only).
    _dir: tempfile::TempDir,
}

impl Mounted {
    /// zone-slowfs mounted with `--fsync-delay-ms delay_ms`.
    pub fn new(delay_ms: u64) -> Mounted {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let backing = dir.path().join("backing");
        let mnt = dir.path().join("mnt");
        fs::create_dir(&backing).unwrap();
        fs::create_dir(&mnt).unwrap();
        let log = dir.path().join("zone-slowfs.log");
        let out = File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_zone-slowfs"))
            .arg(&backing)
            .arg(&mnt)
            .args(["--fsync-delay-ms", &delay_ms.to_string()])
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("zone-slowfs starts");
        let mut mounted = Mounted {
            backing,
            mnt: mnt.canonicalize().unwrap(),
            log,
            child: Some(child),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !is_mounted(&mounted.mnt) {
            let exited = mounted
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "zone-slowfs did not mount ({exited:?}): {}",
                mounted.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        mounted
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM; waits for its exit (status 0) and returns its log.
    pub fn stop(&mut self) -> String {
        let mut child = self.child.take().expect("still running");
        kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
        let status = wait(&mut child, Duration::from_secs(10));
        assert!(
            status.is_some_and(|s| s.success()),
            "zone-slowfs exited {status:?}: {}",
            self.log()
        );
        assert!(!is_mounted(&self.mnt), "still mounted after exit");
        self.log()
    }

    /// The K of its last line `delayed K syncs`, once stopped.
    pub fn delayed(&mut self) -> u64 {
        let log = self.stop();
        log.lines()
            .rev()
            .find_map(|l| {
                l.strip_prefix("delayed ")?
                    .strip_suffix(" syncs")?
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no count in its log: {log}"))
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        let exited = wait(&mut child, Duration::from_secs(5)).is_some();
        if is_mounted(&self.mnt) {
            let _ = umount2(&self.mnt, MntFlags::MNT_DETACH);
        }
        if !exited {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn wait(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => return None,
        }
    }
}

/// Whether `mnt` (canonical, without spaces) is a FUSE mount point here, and which type.
pub fn mount_type(mnt: &Path) -> Option<String> {
    let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let wanted = mnt.to_str()?;
    info.lines().find_map(|line| {
        let at = line.split(' ').nth(4)?;
        let kind = line.split(" - ").nth(1)?.split(' ').next()?;
        (at == wanted && kind.starts_with("fuse")).then(|| kind.to_string())
    })
}

pub fn is_mounted(mnt: &Path) -> bool {
    mount_type(mnt).is_some()
}
