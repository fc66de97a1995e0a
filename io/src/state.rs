//! A node's state directory (`state_dir`): leaves, the cached zone document, the etcd
//! version cache, etcd's data. Every writer of it holds [`lock`] while it writes, so a
//! launch, an `env` and a rotation of the same node never interleave; and so a temporary
//! file found in it by the lock's holder was left by a killed writer, and is removed.

use std::fs;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::Error;
use nix::fcntl::{Flock, FlockArg};

/// Takes the node's state lock (`<state>/lock`, flock), waiting for another launch or
/// rotation of the same node to finish. Released on drop; not inherited by etcd, whose
/// exec closes it (Rust opens files close-on-exec); `restore` hands it to its `etcdutl`
/// on purpose, so that it holds until that process has ended.
pub fn lock(state_dir: &Path) -> Result<Flock<fs::File>, Error> {
    crate::ensure_private_dir(state_dir)?;
    let path = state_dir.join("lock");
    // Never through a link: the lock file is created if missing.
    let file = fs::OpenOptions::new()
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| match e.raw_os_error() {
            Some(code) if code == nix::errno::Errno::ELOOP as i32 => {
                Error::new("is a symbolic link; zone-etcd never follows links it did not make")
                    .file(&path)
                    .fix(format!(
                        "remove {} (zone-etcd makes it again)",
                        path.display()
                    ))
            }
            _ => Error::io("open the state lock", &path, &e),
        })?;
    let lock = Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, errno)| Error::io("lock", &path, &std::io::Error::from(errno)))?;
    remove_abandoned_temps(state_dir);
    Ok(lock)
}

/// Removes the temporary files of atomic writes (`.tmp-*`, see
/// [`zone_io::write_atomic`]) that a writer killed mid-write left in the state
/// directory. Only the lock's holder may call it: no other writer is under way then.
fn remove_abandoned_temps(state_dir: &Path) {
    let Ok(entries) = fs::read_dir(state_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if is_file && entry.file_name().to_string_lossy().starts_with(".tmp-") {
            let _ = fs::remove_file(entry.path());
        }
    }
}
