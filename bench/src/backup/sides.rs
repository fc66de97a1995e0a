//! What a diagnostic side changes for its window (issue 37): the store stopped, the
//! directory target away, the local chain on a tmpfs. Each is put back when dropped.

use std::path::Path;

use super::shape::{WITH_CPU_ONLY, WITH_NO_S3, WITH_NO_TARGETS};
use crate::support::*;

/// What a diagnostic side takes away for its window once the term has started: the store
/// stopped (SIGSTOP by its PID: the S3 shipper's request waits, using no CPU), and the
/// directory target's root moved away (its shipper finds no root and backs off). Put back
/// when dropped, after the runs are killed; the next term ships what these did not.
pub(super) struct Away {
    stopped: Option<u32>,
    moved: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

impl Away {
    pub(super) fn start(side: u8, weed_pid: u32, usb: &Path) -> Result<Away> {
        use nix::sys::signal::{kill, Signal};
        use nix::unistd::Pid;
        let mut away = Away {
            stopped: None,
            moved: None,
        };
        let targets_away = side == WITH_NO_TARGETS || side == WITH_CPU_ONLY;
        if side == WITH_NO_S3 || targets_away {
            kill(Pid::from_raw(weed_pid as i32), Signal::SIGSTOP)
                .map_err(|e| format!("SIGSTOP SeaweedFS ({weed_pid}): {e}"))?;
            away.stopped = Some(weed_pid);
        }
        if targets_away {
            let aside = usb.with_extension("away");
            std::fs::rename(usb, &aside).map_err(|e| format!("{}: {e}", usb.display()))?;
            away.moved = Some((usb.to_path_buf(), aside));
        }
        Ok(away)
    }
}

impl Away {
    pub(super) fn takes_any(&self) -> bool {
        self.stopped.is_some() || self.moved.is_some()
    }
}

impl Drop for Away {
    fn drop(&mut self) {
        use nix::sys::signal::{kill, Signal};
        if let Some(pid) = self.stopped {
            let _ = kill(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGCONT);
        }
        if let Some((usb, aside)) = &self.moved {
            let _ = std::fs::rename(aside, usb);
        }
    }
}

/// A directory removed when dropped.
pub(super) struct RemoveOnDrop(pub(super) std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Every member's local chain (`<state>/backup`) bind-mounted on a fresh tmpfs directory
/// while it lives (the bench runs as root); unmounted and removed when dropped, after
/// the `backup run` processes are killed.
pub(super) struct LocalOnTmpfs {
    pub(super) mounts: Vec<std::path::PathBuf>,
    pub(super) shm: std::path::PathBuf,
}

impl LocalOnTmpfs {
    pub(super) fn mount(zone: &Zone) -> Result<LocalOnTmpfs> {
        use std::os::unix::fs::DirBuilderExt;
        let shm = Path::new("/dev/shm").join(format!("zone-etcd-bench-{}", std::process::id()));
        let mut on = LocalOnTmpfs {
            mounts: Vec::new(),
            shm: shm.clone(),
        };
        for i in 0..zone.members.len() {
            let from = shm.join(&zone.members[i].0);
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&from)
                .map_err(|e| format!("{}: {e}", from.display()))?;
            let to = zone.node_dir(i).join("state/backup");
            output({
                let mut c = std::process::Command::new("mount");
                c.arg("--bind").arg(&from).arg(&to);
                c
            })
            .map_err(|e| format!("{e} (the tmpfs side needs root)"))?;
            on.mounts.push(to);
        }
        Ok(on)
    }
}

impl Drop for LocalOnTmpfs {
    fn drop(&mut self) {
        for m in &self.mounts {
            let _ = std::process::Command::new("umount").arg(m).status();
        }
        let _ = std::fs::remove_dir_all(&self.shm);
    }
}
