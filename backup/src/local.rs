//! The node's own copy of the chain, under `<state_dir>/backup/` (0700, files 0600):
//! - `chain/`: exactly what goes to the targets (encrypted objects and signed manifests,
//!   under the names of [`crate::chain`]); the shippers read from here;
//! - `plain/`: the same objects unencrypted (the node cannot decrypt what it uploads), for
//!   the daily restore drill: the newest full snapshot and the deltas after it.
//!
//! Invariants: every file is written atomically (temp file, rename), an object before its
//! manifest; a chain that does not continue the targets' is moved aside
//! (`chain.stale-<time>`), never deleted. Full snapshots, their manifests and adopted
//! manifests are durable when written (fsync of the file and of its directory). A delta's
//! three files (plain copy, encrypted object, manifest) are not fsynced
//! ([`LocalChain::write_soon`]): their six fsyncs a cut were most of what a writer felt at
//! `delta_every = "1s"` (BENCHMARKS.md, issue 37), and the kernel writes them back within
//! about half a minute. Before the first such write of a boot, the boot is recorded
//! durably ([`crate::torn`]); after the machine restarts, every link is checked
//! before anything reads or continues the chain, and a torn chain is moved aside (the
//! targets hold what was shipped; etcd's history, what was not).
//!
//! The manifests' names are listed from the directory once and then kept in memory, up to
//! date with every manifest this process writes or removes through [`LocalChain`] (the
//! only writer: one `backup run` per node holds its lock), and listed again every
//! [`RELIST_EVERY`] and after a move aside. A listing costs 70 ms for 7 days of deltas at
//! 5 s and 370 ms at 1 s (600,000 names), and each shipper asked for one every second:
//! most of a core (BENCHMARKS.md, issue 37). [`LocalChain::manifests_after`] gives only
//! the newest names, in time proportional to how many.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use zone_io::Error;
use zone_io::{ensure_private_dir, sync_dir, write_atomic, Links, KEY_MODE};

use super::chain::{manifest_seq, SEQ_DIGITS};

/// A manifest file as stored: its name, bytes and the SHA-256 (hex) of the bytes.
#[derive(Debug, Clone)]
pub struct Stored {
    pub name: String,
    pub bytes: Vec<u8>,
    pub sha256: String,
}

/// The record of the boot whose unsynced files the chain holds (`<state>/backup/`).
pub const BOOT_FILE: &str = "unsynced-boot";

/// This boot's ID; a constant where the kernel does not tell (then no restart is seen).
pub fn current_boot() -> String {
    fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|id| id.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// The most a manifest may weigh (a few KiB in practice).
pub const MAX_MANIFEST_BYTES: u64 = 64 << 10;

/// The names in memory are listed from the directory again this often (a safety net:
/// nothing else writes the local chain while `backup run` holds its lock).
pub const RELIST_EVERY: Duration = Duration::from_secs(300);

pub struct LocalChain {
    root: PathBuf,
    /// The manifests' names and when they were listed; `None`: list at the next ask.
    listed: Mutex<Option<(BTreeSet<String>, Instant)>>,
    /// This boot is recorded as the one whose unsynced writes the chain holds.
    boot_recorded: AtomicBool,
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
        Ok(LocalChain {
            root,
            listed: Mutex::new(None),
            boot_recorded: AtomicBool::new(false),
        })
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
        write_atomic(path, bytes, KEY_MODE)?;
        self.learn(path);
        Ok(())
    }

    /// Writes a delta link's file as [`LocalChain::write`] does, but without fsyncs
    /// ([`zone_io::write_atomic_unsynced`]), once this boot is recorded as the one whose
    /// unsynced files the chain holds. Refused while the chain holds another boot's,
    /// not checked yet ([`crate::torn`]).
    pub fn write_soon(&self, path: &Path, bytes: &[u8]) -> Result<(), Error> {
        if !self.boot_recorded.load(Ordering::SeqCst) {
            self.record_boot()?;
            self.boot_recorded.store(true, Ordering::SeqCst);
        }
        zone_io::write_atomic_unsynced(path, bytes, KEY_MODE)?;
        self.learn(path);
        Ok(())
    }

    /// The boot whose unsynced files the chain holds, when it is not this one.
    pub fn earlier_boot(&self) -> Option<String> {
        let recorded = fs::read_to_string(self.root.join(BOOT_FILE)).ok()?;
        let recorded = recorded.trim().to_string();
        (recorded != current_boot()).then_some(recorded)
    }

    /// Records, durably, that the chain holds unsynced files of this boot; refuses when
    /// it holds another boot's, not checked yet (the record is never overwritten).
    fn record_boot(&self) -> Result<(), Error> {
        let path = self.root.join(BOOT_FILE);
        if let Some(earlier) = self.earlier_boot() {
            return Err(Error::new(format!(
                "the local backup chain holds files written before this machine restarted (boot {earlier}), not checked yet"
            ))
            .file(&path)
            .fix("restart `backup run` (systemctl restart zone-etcd-backup): it checks the chain first"));
        }
        if path.exists() {
            return Ok(());
        }
        write_atomic(&path, format!("{}\n", current_boot()).as_bytes(), KEY_MODE)
    }

    /// Removes the record, durably, once the chain it speaks of was checked.
    pub fn forget_boot(&self) -> Result<(), Error> {
        let path = self.root.join(BOOT_FILE);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::io("remove", &path, &e))
            }
            _ => {}
        }
        sync_dir(&self.root)
    }

    /// Adds the name of a manifest just written at `path` to the names in memory.
    fn learn(&self, path: &Path) {
        let Some(file) = path.file_name().and_then(|n| n.to_str()) else {
            return;
        };
        let name = format!("chain/{file}");
        if path.parent() != Some(&self.root.join("chain/chain")) || manifest_seq(&name).is_none() {
            return;
        }
        if let Some((names, _)) = self.lock().as_mut() {
            names.insert(name);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(BTreeSet<String>, Instant)>> {
        self.listed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the names, listed from the directory first when not in memory or older
    /// than [`RELIST_EVERY`].
    fn with_names<T>(&self, f: impl FnOnce(&BTreeSet<String>) -> T) -> Result<T, Error> {
        let mut listed = self.lock();
        if listed
            .as_ref()
            .is_none_or(|(_, at)| at.elapsed() >= RELIST_EVERY)
        {
            let at = Instant::now();
            *listed = Some((self.list_manifests()?, at));
        }
        match listed.as_ref() {
            Some((names, _)) => Ok(f(names)),
            None => Ok(f(&BTreeSet::new())),
        }
    }

    fn list_manifests(&self) -> Result<BTreeSet<String>, Error> {
        let dir = self.root.join("chain/chain");
        Ok(fs::read_dir(&dir)
            .map_err(|e| Error::io("read directory", &dir, &e))?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .map(|n| format!("chain/{n}"))
            .filter(|n| manifest_seq(n).is_some())
            .collect())
    }

    /// The manifests kept, in chain order (their names sort by sequence).
    pub fn manifests(&self) -> Result<Vec<String>, Error> {
        self.with_names(|names| names.iter().cloned().collect())
    }

    /// The manifests whose sequence is above `seq`, in chain order.
    pub fn manifests_after(&self, seq: u64) -> Result<Vec<String>, Error> {
        let from = format!("chain/{:0w$}", seq.saturating_add(1), w = SEQ_DIGITS);
        self.with_names(|names| names.range(from..).cloned().collect())
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
        *self.lock() = None;
        LocalChain::open(self.root.parent().unwrap_or(Path::new(".")))?;
        Ok(aside)
    }

    /// Removes a link's files (retention: only links the policy no longer keeps): its
    /// manifest first, so a manifest never names a missing object. An absent file is not
    /// an error.
    pub fn remove_link(&self, manifest: &str, object: Option<&str>) -> Result<(), Error> {
        if let Some((names, _)) = self.lock().as_mut() {
            names.remove(manifest);
        }
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
    zone_io::hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::{manifest_name, Kind};

    fn manifest(local: &LocalChain, seq: u64) -> String {
        let name = manifest_name(seq, "abcd1234", Kind::Delta);
        local.write(&local.object_path(&name), b"{}").unwrap();
        name
    }

    #[test]
    fn the_names_in_memory_follow_every_write_and_removal() {
        let dir = tempfile::tempdir().unwrap();
        let local = LocalChain::open(dir.path()).unwrap();
        let names: Vec<String> = (1..=5).map(|seq| manifest(&local, seq)).collect();
        assert_eq!(local.manifests().unwrap(), names);
        assert_eq!(local.manifests_after(3).unwrap(), names[3..].to_vec());
        local.remove_link(&names[3], None).unwrap();
        let sixth = manifest(&local, 6);
        assert_eq!(
            local.manifests_after(3).unwrap(),
            vec![names[4].clone(), sixth.clone()]
        );
        assert!(local.manifests_after(6).unwrap().is_empty());
        // Kept in memory: a file put there behind the chain's back is not listed again
        // at every ask (that listing is what cost most of a core at 1 s deltas)...
        let behind = manifest_name(7, "abcd1234", Kind::Delta);
        fs::write(local.object_path(&behind), b"{}").unwrap();
        assert!(local.manifests_after(6).unwrap().is_empty());
        // ...and a chain opened anew lists the directory.
        let again = LocalChain::open(dir.path()).unwrap();
        assert_eq!(again.manifests_after(6).unwrap(), vec![behind]);
        // Moved aside: the next ask lists the new, empty chain.
        local.move_aside().unwrap();
        assert!(local.manifests().unwrap().is_empty());
    }
}
