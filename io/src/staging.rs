//! Multi-file results (a bundle, a CA, a set of leaves) that appear whole or not at all.
//!
//! Invariants this module keeps:
//! - a [`Staging`] directory is built beside its target and renamed onto it as a whole, so a
//!   multi-file result (a bundle, a CA) appears completely or not at all; one a killed
//!   process left behind (it holds keys) is removed by the next staging of the same target;
//! - a staging directory is private (0700) from its creation, and held under a `flock`
//!   while in use, so a live one is never taken for an abandoned one;
//! - a staged tree is durable before its rename (an fsync of each of its files and
//!   directories, concurrently, and of nothing else: the cost does not follow what other
//!   programs write to the same file system), and the rename after it (an fsync of the
//!   parent).

use std::fs::{self, File, Permissions};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::dir::{ensure_private_dir, is_absent_or_empty, parent_of, sync_dir};
use crate::error::{Error, Result};
use crate::mode::PRIVATE_DIR_MODE;

/// A private directory built beside its target and renamed onto it when complete.
///
/// Dropped without [`Staging::commit`], it removes itself: a failed command leaves
/// nothing behind. A killed command cannot remove it, so the staging directory is named
/// after its target and locked (flock) while in use: the next staging of the same target
/// removes those nobody holds.
pub struct Staging {
    dir: Option<tempfile::TempDir>,
    /// The flock on the staging directory, held until it is committed or dropped.
    _lock: Flock<File>,
    target: PathBuf,
}

impl Staging {
    /// Starts building `target`, which must not exist or be an empty directory.
    pub fn new(target: &Path) -> Result<Self> {
        if !is_absent_or_empty(target)? {
            return Err(
                Error::new("directory exists and is not empty; refusing to overwrite it")
                    .file(target)
                    .fix("choose a new --out directory, or move the old one aside"),
            );
        }
        let parent = parent_of(target);
        fs::create_dir_all(parent).map_err(|e| Error::io("create directory", parent, &e))?;
        let prefix = format!(
            ".staging-{}.",
            target
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        );
        remove_abandoned(parent, &prefix);
        loop {
            let dir = tempfile::Builder::new()
                .prefix(&prefix)
                .permissions(Permissions::from_mode(PRIVATE_DIR_MODE))
                .tempdir_in(parent)
                .map_err(|e| Error::io("create a staging directory in", parent, &e))?;
            let lock = lock_dir(dir.path(), FlockArg::LockExclusive)
                .map_err(|e| Error::io("lock the staging directory", dir.path(), &e))?;
            // Another run clearing abandoned staging may have removed it before the lock.
            if lock.metadata().is_ok_and(|m| m.nlink() > 0) {
                return Ok(Staging {
                    dir: Some(dir),
                    _lock: lock,
                    target: target.to_path_buf(),
                });
            }
        }
    }

    /// Where to write the contents while staging.
    pub fn path(&self) -> &Path {
        match &self.dir {
            Some(d) => d.path(),
            None => &self.target,
        }
    }

    /// Makes a private subdirectory inside the staging directory.
    pub fn subdir(&self, rel: &Path) -> Result<PathBuf> {
        let dir = self.path().join(rel);
        ensure_private_dir(&dir)?;
        Ok(dir)
    }

    /// Syncs everything written and renames the staging directory onto the target.
    pub fn commit(mut self) -> Result<PathBuf> {
        let Some(dir) = self.dir.take() else {
            return Ok(self.target.clone());
        };
        sync_tree(dir.path())?;
        let staged = dir.keep();
        if let Err(e) = fs::rename(&staged, &self.target) {
            let _ = fs::remove_dir_all(&staged);
            return Err(Error::io(
                "move the finished directory into place at",
                &self.target,
                &e,
            )
            .fix("make sure the target is absent or an empty directory"));
        }
        sync_dir(parent_of(&self.target))?;
        Ok(self.target.clone())
    }
}

/// Opens a directory and takes its flock (`arg` says whether to wait).
fn lock_dir(dir: &Path, arg: FlockArg) -> std::io::Result<Flock<File>> {
    let file = File::open(dir)?;
    Flock::lock(file, arg).map_err(|(_, errno)| std::io::Error::from(errno))
}

/// Removes the staging directories named `prefix*` in `parent` that no live process
/// holds: what a killed run left. Best effort: one that cannot be removed stays hidden
/// and private, and the next run tries again.
fn remove_abandoned(parent: &Path, prefix: &str) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(prefix) {
            continue;
        }
        let path = entry.path();
        if let Ok(_lock) = lock_dir(&path, FlockArg::LockExclusiveNonblock) {
            let _ = fs::remove_dir_all(&path);
        }
    }
}

/// Makes everything written under `dir` durable: every file and directory of the staged
/// tree is fsynced, and only those. (A `syncfs` of the file system would also write out
/// every other program's dirty data: its cost followed the machine's other writers, 20 ms
/// quiet against 200-800 ms beside one writing gigabytes.) The fsyncs run concurrently,
/// so the file system commits them together in a few journal commits, not one each.
fn sync_tree(dir: &Path) -> Result<()> {
    let mut paths = vec![dir.to_path_buf()];
    let mut next = 0;
    while next < paths.len() {
        let current = paths[next].clone();
        next += 1;
        if !fs::symlink_metadata(&current)
            .map_err(|e| Error::io("read", &current, &e))?
            .is_dir()
        {
            continue;
        }
        for entry in
            fs::read_dir(&current).map_err(|e| Error::io("read directory", &current, &e))?
        {
            let entry = entry.map_err(|e| Error::io("read directory", &current, &e))?;
            paths.push(entry.path());
        }
    }
    let workers = paths.len().min(SYNC_WORKERS);
    let cursor = std::sync::atomic::AtomicUsize::new(0);
    let failure = std::sync::Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let at = cursor.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(path) = paths.get(at) else { break };
                if let Err(e) = File::open(path).and_then(|f| f.sync_all()) {
                    let mut slot = failure.lock().unwrap_or_else(|p| p.into_inner());
                    slot.get_or_insert_with(|| Error::io("sync", path, &e));
                }
            });
        }
    });
    match failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

/// fsyncs in flight at once while a staged tree is made durable: enough for the file
/// system to batch them into a few journal commits, few enough to start in microseconds.
const SYNC_WORKERS: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mode::test_support::mode;
    use crate::mode::{KEY_MODE, PUBLIC_MODE};
    use crate::write::write_new;

    #[test]
    fn staging_appears_whole_or_not_at_all() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("bundle");
        {
            let staging = Staging::new(&target).unwrap();
            write_new(&staging.path().join("a"), b"a", PUBLIC_MODE).unwrap();
            // dropped without commit
        }
        assert!(!target.exists());
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);

        let staging = Staging::new(&target).unwrap();
        let sub = staging.subdir(Path::new("pki")).unwrap();
        write_new(&sub.join("k"), b"k", KEY_MODE).unwrap();
        staging.commit().unwrap();
        assert_eq!(fs::read(target.join("pki/k")).unwrap(), b"k");
        assert_eq!(
            fs::read_dir(tmp.path()).unwrap().count(),
            1,
            "only the target"
        );
        assert_eq!(mode(&target), 0o700);
        assert_eq!(mode(&target.join("pki")), 0o700);
        assert!(Staging::new(&target).is_err(), "refuses a non-empty target");
    }

    #[test]
    fn abandoned_staging_of_the_same_target_is_removed_live_one_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("bundle");
        // What a killed run leaves: a staging directory nobody holds.
        let abandoned = tmp.path().join(".staging-bundle.killed");
        fs::create_dir(&abandoned).unwrap();
        fs::write(abandoned.join("node.key"), b"k").unwrap();
        // Another target's staging, and a live one of this target, stay.
        let other = tmp.path().join(".staging-other.x");
        fs::create_dir(&other).unwrap();
        let live = Staging::new(&target).unwrap();
        assert!(!abandoned.exists(), "abandoned staging removed");
        assert!(other.exists(), "another target's staging kept");
        let second = Staging::new(&target).unwrap();
        assert!(live.path().exists(), "a staging in use is kept");
        drop(second);
        live.commit().unwrap();
        assert!(target.exists());
    }
}
