//! A node's state directory (`state_dir`): leaves, the cached zone document, etcd's data.
//! Every writer of it holds [`lock`] while it writes, so a launch, an `env` and a rotation
//! of the same node never interleave.

use std::fs;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};
use zone_pki::private_files;
use zone_pki::Error;

/// Takes the node's state lock (`<state>/lock`, flock), waiting for another launch or
/// rotation of the same node to finish. Released on drop; not inherited by etcd, whose
/// exec closes it (Rust opens files close-on-exec).
pub fn lock(state_dir: &Path) -> Result<Flock<fs::File>, Error> {
    private_files::ensure_private_dir(state_dir)?;
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
    Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, errno)| Error::io("lock", &path, &std::io::Error::from(errno)))
}
