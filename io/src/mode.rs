//! The permission modes of the files and directories zone-etcd writes, and the check of
//! a key file's mode.
//!
//! Invariants: a private key is [`KEY_MODE`] (0600) and lives in a [`PRIVATE_DIR_MODE`]
//! (0700) directory; public material (certificates, configs) is [`PUBLIC_MODE`] (0644);
//! [`check_key_mode`] refuses a key group or others can access, naming the chmod. Nothing
//! here writes.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::error::{Error, Result};

/// Mode of every directory that holds keys.
pub const PRIVATE_DIR_MODE: u32 = 0o700;
/// Mode of every private key file.
pub const KEY_MODE: u32 = 0o600;
/// Mode of certificates and configs (public material).
pub const PUBLIC_MODE: u32 = 0o644;

/// Refuses a key file that group or others can read or write, naming the chmod that fixes it.
pub fn check_key_mode(path: &Path) -> Result<()> {
    let meta = fs::metadata(path).map_err(|e| Error::io("read", path, &e))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::new(format!(
            "private key file has mode {mode:04o}: group or others can access it"
        ))
        .file(path)
        .fix(format!("chmod 600 {}", path.display())));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod test_support {
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    /// The permission bits of `path`.
    pub fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }
}
