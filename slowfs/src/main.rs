//! zone-slowfs: a disk made slow for tests. `zone-slowfs BACKING_DIR MOUNTPOINT
//! --fsync-delay-ms N` mounts a FUSE passthrough of BACKING_DIR at MOUNTPOINT (file
//! system type `fuse.zone-slowfs`, source `zone-slowfs`) in which every fsync, fdatasync
//! and directory sync waits N ms and then really syncs; everything else goes straight
//! through. Run as root: it mounts with the mount syscall itself (no fusermount).
//!
//! Invariants:
//! - A bad argument is one line on stderr naming it, and exit status 2; a mount that
//!   fails is one line and exit status 1. Nothing the user passes makes it panic.
//! - `mounted MOUNTPOINT` is printed on stdout once the mount is there and answering.
//! - SIGTERM and SIGINT are blocked in every thread and taken by the main thread alone
//!   (sigwait): on either it unmounts (detaching the mount when it is still busy or does
//!   not end within [`UNMOUNT_WAIT`]), says `delayed K syncs` on stderr and exits 0.
//! - The process's umask is 0: the modes the kernel sends (the caller's umask already
//!   applied) are the backing files' modes.

mod attr;
mod fs;
mod handles;
mod inodes;
mod ops;
mod sync;

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Duration;

use fuser::{BackgroundSession, Config, MountOption, Session};
use nix::mount::{umount2, MntFlags};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::stat::{umask, Mode};

const USAGE: &str = "usage: zone-slowfs BACKING_DIR MOUNTPOINT --fsync-delay-ms N";

/// How long an unmount may take (in-flight requests answered, the session's threads
/// ended) before the mount is detached.
const UNMOUNT_WAIT: Duration = Duration::from_secs(5);

/// Session threads reading requests: a request waiting on the backing disk does not hold
/// up the others.
const SESSION_THREADS: usize = 4;

#[derive(Debug, PartialEq)]
struct Args {
    backing: PathBuf,
    mountpoint: PathBuf,
    delay: Duration,
}

/// The arguments, or the one line that names the bad one.
fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Args, String> {
    const FLAG: &str = "--fsync-delay-ms";
    let mut positional = Vec::new();
    let mut delay = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let text = arg.to_string_lossy().into_owned();
        if text == FLAG {
            let value = args
                .next()
                .ok_or_else(|| format!("{FLAG}: missing its value N (milliseconds); {USAGE}"))?;
            delay = Some(millis(&value.to_string_lossy())?);
        } else if let Some(value) = text.strip_prefix("--fsync-delay-ms=") {
            delay = Some(millis(value)?);
        } else if text.starts_with('-') && text.len() > 1 {
            return Err(format!("{text:?}: unknown flag; {USAGE}"));
        } else {
            positional.push(PathBuf::from(arg));
        }
    }
    let mut positional = positional.into_iter();
    let (Some(backing), Some(mountpoint)) = (positional.next(), positional.next()) else {
        return Err(format!(
            "BACKING_DIR and MOUNTPOINT are both needed; {USAGE}"
        ));
    };
    if let Some(extra) = positional.next() {
        return Err(format!(
            "{:?}: one argument too many; {USAGE}",
            extra.display()
        ));
    }
    let delay = delay.ok_or_else(|| format!("{FLAG} N is needed; {USAGE}"))?;
    Ok(Args {
        backing,
        mountpoint,
        delay,
    })
}

fn millis(value: &str) -> Result<Duration, String> {
    match value.parse::<u64>() {
        Ok(ms) if ms <= 3_600_000 => Ok(Duration::from_millis(ms)),
        _ => Err(format!(
            "--fsync-delay-ms {value:?}: not a whole number of milliseconds up to 3600000"
        )),
    }
}

/// `path` as a directory, canonical; or the line naming it.
fn directory(what: &str, path: &Path) -> Result<PathBuf, String> {
    match path.canonicalize() {
        Ok(dir) if dir.is_dir() => Ok(dir),
        Ok(_) => Err(format!("{what} {:?}: not a directory", path.display())),
        Err(e) => Err(format!("{what} {:?}: {e}", path.display())),
    }
}

fn main() {
    std::process::exit(run());
}

fn run() -> i32 {
    let args = match parse(std::env::args_os().skip(1)) {
        Ok(args) => args,
        Err(line) => {
            eprintln!("zone-slowfs: {line}");
            return 2;
        }
    };
    let (backing, mountpoint) = match (
        directory("BACKING_DIR", &args.backing),
        directory("MOUNTPOINT", &args.mountpoint),
    ) {
        (Ok(b), Ok(m)) => (b, m),
        (Err(line), _) | (_, Err(line)) => {
            eprintln!("zone-slowfs: {line}");
            return 2;
        }
    };
    umask(Mode::empty());
    // Before any thread starts, so every thread inherits the mask.
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGTERM);
    signals.add(Signal::SIGINT);
    if let Err(e) = signals.thread_block() {
        eprintln!("zone-slowfs: blocking SIGTERM and SIGINT: {e}");
        return 1;
    }

    let filesystem = match fs::SlowFs::new(backing.clone(), args.delay) {
        Ok(fs) => fs,
        Err(e) => {
            eprintln!("zone-slowfs: BACKING_DIR {:?}: {e}", backing.display());
            return 1;
        }
    };
    let synced = filesystem.synced();
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName("zone-slowfs".to_string()),
        // The kernel's own option: /proc/self/mountinfo says `fuse.zone-slowfs`.
        MountOption::CUSTOM("subtype=zone-slowfs".to_string()),
    ];
    config.n_threads = Some(SESSION_THREADS);
    let session = match Session::new(filesystem, &mountpoint, &config).and_then(Session::spawn) {
        Ok(session) => session,
        Err(e) => {
            eprintln!("zone-slowfs: mounting {:?}: {e}", mountpoint.display());
            return 1;
        }
    };
    println!("mounted {}", args.mountpoint.display());
    let _ = std::io::stdout().flush();

    match signals.wait() {
        Ok(signal) => eprintln!("zone-slowfs: {signal}: unmounting {}", mountpoint.display()),
        Err(e) => eprintln!("zone-slowfs: sigwait: {e}; unmounting"),
    }
    unmount(session, &mountpoint);
    eprintln!("delayed {} syncs", synced.load(Ordering::Relaxed));
    0
}

/// Unmounts and waits for the session's end; detaches the mount when it is busy (a file
/// still open there) or the end does not come within [`UNMOUNT_WAIT`]. The process's exit
/// then closes /dev/fuse, which ends what is left.
fn unmount(session: BackgroundSession, mountpoint: &Path) {
    let (done, ended) = mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("slowfs-unmount".to_string())
        .spawn(move || {
            let _ = done.send(session.umount_and_join());
        });
    let problem = match spawned {
        Err(e) => Some(format!("cannot wait for the unmount: {e}")),
        Ok(_) => match ended.recv_timeout(UNMOUNT_WAIT) {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some(format!("not ended after {UNMOUNT_WAIT:?}")),
        },
    };
    if let Some(problem) = problem {
        eprintln!(
            "zone-slowfs: unmounting {}: {problem}; detaching it",
            mountpoint.display()
        );
        if let Err(e) = umount2(mountpoint, MntFlags::MNT_DETACH) {
            // EINVAL: it is no longer mounted.
            if e != nix::errno::Errno::EINVAL {
                eprintln!("zone-slowfs: detaching {}: {e}", mountpoint.display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &[&str]) -> Result<Args, String> {
        parse(line.iter().map(OsString::from))
    }

    #[test]
    fn arguments_parse_and_a_bad_one_is_named() {
        let parsed = args(&["/b", "/m", "--fsync-delay-ms", "40"]).unwrap();
        assert_eq!(parsed.delay, Duration::from_millis(40));
        assert_eq!(parsed.mountpoint, PathBuf::from("/m"));
        assert_eq!(
            args(&["--fsync-delay-ms=0", "/b", "/m"]).unwrap().delay,
            Duration::ZERO
        );
        assert!(args(&["/b", "/m", "--fsync-delay-ms", "x"])
            .unwrap_err()
            .contains("\"x\""));
        assert!(args(&["/b", "/m", "--fsync-delay-ms"])
            .unwrap_err()
            .contains("missing"));
        assert!(args(&["/b", "/m", "--fast"])
            .unwrap_err()
            .contains("--fast"));
        assert!(args(&["/b", "--fsync-delay-ms", "1"]).is_err());
        assert!(args(&["/b", "/m", "/x", "--fsync-delay-ms", "1"])
            .unwrap_err()
            .contains("/x"));
        assert!(args(&["/b", "/m"])
            .unwrap_err()
            .contains("--fsync-delay-ms"));
    }
}
