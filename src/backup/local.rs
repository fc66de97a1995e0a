//! The node's own copy of the chain, under `<state_dir>/backup/` (0700, files 0600):
//! - `chain/`: exactly what goes to the targets (encrypted objects and signed manifests,
//!   under the names of [`crate::backup::chain`]); the shippers read from here;
//! - `plain/`: the same objects unencrypted (the node cannot decrypt what it uploads), for
//!   the daily restore drill: the newest full snapshot and the deltas after it.
//!
//! Invariants: every file is written atomically (temp file, fsync, rename, fsync of the
//! directory), an object before its manifest; a chain that does not continue the targets'
//! is moved aside (`chain.stale-<time>`), never deleted.

use std::fs;
use std::path::{Path, PathBuf};

use zone_io::{ensure_private_dir, sync_dir, write_atomic, Links, KEY_MODE};
use zone_pki::Error;

use super::chain::manifest_seq;

/// A manifest file as stored: its name, bytes and the SHA-256 (hex) of the bytes.
#[derive(Debug, Clone)]
pub struct Stored {
    pub name: String,
    pub bytes: Vec<u8>,
    pub sha256: String,
}

/// The most a manifest may weigh (a few KiB in practice).
pub const MAX_MANIFEST_BYTES: u64 = 64 << 10;

pub struct LocalChain {
    root: PathBuf,
}

impl LocalChain {
    /// The local chain of a node whose state directory is `state_dir`, created 0700.
    pub fn open(state_dir: &Path) -> Result<LocalChain, Error> {
        let root = state_dir.join("backup");
        ensure_private_dir(&root)?;
        for dir in [
            "chain",
            "chain/chain",
            "chain/full",
            "chain/delta",
            "plain",
            "plain/full",
            "plain/delta",
        ] {
            ensure_private_dir(&root.join(dir))?;
        }
        Ok(LocalChain { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the encrypted object or manifest `name` is kept.
    pub fn object_path(&self, name: &str) -> PathBuf {
        self.root.join("chain").join(name)
    }

    /// Where the plaintext of object `name` is kept (its name without `.age`).
    pub fn plain_path(&self, name: &str) -> PathBuf {
        self.root
            .join("plain")
            .join(name.strip_suffix(".age").unwrap_or(name))
    }

    /// A temporary file beside the objects, for an object being made (renamed into place
    /// by [`LocalChain::place`]).
    pub fn temporary(&self, under: &str) -> Result<tempfile::NamedTempFile, Error> {
        let dir = self.root.join(under);
        tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(&dir)
            .map_err(|e| Error::io("create a temporary file in", &dir, &e))
    }

    /// Moves a finished temporary file to `path`, durably.
    pub fn place(tmp: tempfile::NamedTempFile, path: &Path) -> Result<(), Error> {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(KEY_MODE))
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(|e| Error::io("write", tmp.path(), &e))?;
        tmp.persist(path)
            .map_err(|e| Error::io("rename into place", path, &e.error))?;
        sync_dir(path.parent().unwrap_or(Path::new(".")))
    }

    /// Renames a whole file into place, durably.
    pub fn rename(from: &Path, to: &Path) -> Result<(), Error> {
        fs::rename(from, to).map_err(|e| Error::io("rename into place", to, &e))?;
        sync_dir(to.parent().unwrap_or(Path::new(".")))
    }

    pub fn write(&self, path: &Path, bytes: &[u8]) -> Result<(), Error> {
        write_atomic(path, bytes, KEY_MODE)
    }

    /// The manifests kept, in chain order (their names sort by sequence).
    pub fn manifests(&self) -> Result<Vec<String>, Error> {
        let dir = self.root.join("chain/chain");
        let mut names: Vec<String> = fs::read_dir(&dir)
            .map_err(|e| Error::io("read directory", &dir, &e))?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .map(|n| format!("chain/{n}"))
            .filter(|n| manifest_seq(n).is_some())
            .collect();
        names.sort();
        Ok(names)
    }

    /// Reads one manifest file.
    pub fn read_manifest(&self, name: &str) -> Result<Stored, Error> {
        let path = self.object_path(name);
        let bytes = zone_io::read_small_file(&path, Links::Refuse).and_then(|b| {
            if b.len() as u64 > MAX_MANIFEST_BYTES {
                Err(Error::new("is larger than a manifest can be").file(&path))
            } else {
                Ok(b)
            }
        })?;
        Ok(Stored {
            name: name.to_string(),
            sha256: sha256_hex(&bytes),
            bytes,
        })
    }

    /// Moves the whole chain aside (it does not continue the targets' chain), keeping it
    /// for inspection; the next writes start a new local chain.
    pub fn move_aside(&self) -> Result<PathBuf, Error> {
        let stamp = time::OffsetDateTime::now_utc().unix_timestamp();
        let aside = self.root.join(format!("chain.stale-{stamp}"));
        for dir in ["chain", "plain"] {
            let from = self.root.join(dir);
            let to = self.root.join(format!("{dir}.stale-{stamp}"));
            fs::rename(&from, &to).map_err(|e| Error::io("move aside", &from, &e))?;
        }
        sync_dir(&self.root)?;
        LocalChain::open(self.root.parent().unwrap_or(Path::new(".")))?;
        Ok(aside)
    }

    /// Removes a link's files (retention: only links the policy no longer keeps): its
    /// manifest first, so a manifest never names a missing object. An absent file is not
    /// an error.
    pub fn remove_link(&self, manifest: &str, object: Option<&str>) -> Result<(), Error> {
        let mut paths = vec![self.object_path(manifest)];
        if let Some(object) = object {
            paths.push(self.object_path(object));
            paths.push(self.plain_path(object));
        }
        for path in paths {
            match fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::io("remove", &path, &e))
                }
                _ => {}
            }
        }
        Ok(())
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    crate::snapshot::hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}
