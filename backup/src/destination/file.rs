//! A directory as a target (a mounted USB disk, a NAS): object `full/x` is the file
//! `ROOT/full/x`.
//!
//! Invariants:
//! - the root must exist: a missing one is most likely an unmounted disk, and writing into
//!   the empty mount point would fill the wrong file system (a retryable error says so);
//! - below the root every step is taken with `openat(O_NOFOLLOW)` from the directory
//!   before it, so no symbolic link (even one swapped in meanwhile) leads outside it;
//! - directories are created 0700, files 0600; a write is a hidden temporary file in the
//!   same directory, fsync, rename, fsync of the directory: a reader sees the old object
//!   or the new one, never part of one, and a crash leaves at most a `.tmp-` file, which
//!   `list` skips.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, renameat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, mkdirat, Mode, SFlag};
use nix::unistd::{fsync, unlinkat, UnlinkatFlags};

use super::object::{
    check_name, check_prefix, write_local_atomic, ObjectInfo, Target, TargetError, Tracked,
};
use super::retry::Failure;

const TMP_PREFIX: &str = ".tmp-";

/// A directory of backup objects.
pub struct DirTarget {
    url: String,
    root: PathBuf,
}

impl DirTarget {
    /// The directory `root` (absolute), named `url` in messages.
    pub fn new(url: &str, root: &Path) -> DirTarget {
        DirTarget {
            url: url.to_string(),
            root: root.to_path_buf(),
        }
    }

    fn error(&self, object: &str, failure: Failure) -> TargetError {
        TargetError::new(&self.url, object, failure.problem, failure.retryable)
    }

    /// The root, which may itself be a link (the operator's choice, e.g. to a mount).
    fn open_root(&self) -> Result<OwnedFd, Failure> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        nix::fcntl::open(&self.root, flags, Mode::empty()).map_err(|e| match e {
            Errno::ENOENT => Failure::retry(format!(
                "the directory {} does not exist (fix: mount the disk that holds it, or create it: mkdir -m 700 {})",
                self.root.display(),
                self.root.display()
            )),
            other => failure(&format!("open {}", self.root.display()), other),
        })
    }

    /// The directory `ROOT/a/b` for `["a", "b"]`: created (0700) on the way if `create`,
    /// else `None` if a step is missing.
    fn open_dir(&self, steps: &[&str], create: bool) -> Result<Option<OwnedFd>, Failure> {
        let mut dir = self.open_root()?;
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        for step in steps {
            let next = match openat(&dir, *step, flags, Mode::empty()) {
                Err(Errno::ENOENT) if create => {
                    match mkdirat(&dir, *step, Mode::S_IRWXU) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(failure(&format!("create the directory {step}"), e)),
                    }
                    fsync(&dir).map_err(|e| failure("sync a directory", e))?;
                    openat(&dir, *step, flags, Mode::empty())
                }
                Err(Errno::ENOENT) => return Ok(None),
                other => other,
            };
            dir = next.map_err(|e| failure(&format!("open the directory {step}"), e))?;
        }
        Ok(Some(dir))
    }

    /// The regular file `name`, or `None` if it is absent.
    fn open_object(&self, name: &str) -> Result<Option<File>, Failure> {
        let (steps, leaf) = split(name);
        let Some(dir) = self.open_dir(&steps, false)? else {
            return Ok(None);
        };
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
        let file = match openat(&dir, leaf, flags, Mode::empty()) {
            Err(Errno::ENOENT) => return Ok(None),
            other => File::from(other.map_err(|e| failure("open", e))?),
        };
        let meta = file.metadata().map_err(|e| io_failure("read", &e))?;
        if !meta.is_file() {
            return Err(Failure::fatal(
                "is not a regular file (fix: move it out of the backup directory)",
            ));
        }
        Ok(Some(file))
    }

    /// Writes `name` from `reader` atomically and durably.
    fn write(&self, name: &str, reader: &mut dyn Read) -> Result<(), Failure> {
        let (steps, leaf) = split(name);
        let dir = self.open_dir(&steps, true)?.expect("created");
        let tmp = temporary_name();
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mode = Mode::S_IRUSR | Mode::S_IWUSR;
        let fd = openat(&dir, tmp.as_str(), flags, mode)
            .map_err(|e| failure("create a temporary file", e))?;
        let mut file = File::from(fd);
        let mut source = Tracked::new(reader);
        let written = std::io::copy(&mut source, &mut file)
            .and_then(|_| file.flush())
            .and_then(|()| file.sync_all());
        let result = match written {
            Err(e) if source.failed => Err(Failure::fatal(format!("cannot read the source: {e}"))),
            Err(e) => Err(io_failure("write", &e)),
            Ok(()) => renameat(&dir, tmp.as_str(), &dir, leaf)
                .map_err(|e| failure("rename into place", e))
                .and_then(|()| fsync(&dir).map_err(|e| failure("sync the directory", e))),
        };
        if result.is_err() {
            let _ = unlinkat(&dir, tmp.as_str(), UnlinkatFlags::NoRemoveDir);
        }
        result
    }

    /// Every regular file below `dir` (named from `at`) whose name starts with `prefix`,
    /// depth first; links and hidden temporary files are skipped. An entry that cannot
    /// match is skipped before it is looked at, so a narrow prefix costs one read of the
    /// directory, not a `stat` of each of its (maybe 100,000) files.
    fn walk(
        &self,
        dir: OwnedFd,
        at: &str,
        prefix: &str,
        out: &mut Vec<ObjectInfo>,
    ) -> Result<(), Failure> {
        let mut entries = Vec::new();
        let mut listing =
            nix::dir::Dir::from_fd(dir.try_clone().map_err(|e| io_failure("list", &e))?)
                .map_err(|e| failure("list", e))?;
        for entry in listing.iter() {
            let entry = entry.map_err(|e| failure("list", e))?;
            let Ok(name) = entry.file_name().to_str() else {
                continue; // not UTF-8: not an object name this program writes
            };
            let full = format!("{at}{name}");
            let may_match = full.starts_with(prefix) || prefix.starts_with(&format!("{full}/"));
            if name != "." && name != ".." && !name.starts_with(TMP_PREFIX) && may_match {
                entries.push(name.to_string());
            }
        }
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        for name in entries {
            let stat = match fstatat(&dir, name.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
                Err(Errno::ENOENT) => continue, // deleted meanwhile
                other => other.map_err(|e| failure("list", e))?,
            };
            let kind = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT;
            let full = format!("{at}{name}");
            if kind == SFlag::S_IFDIR {
                match openat(&dir, name.as_str(), flags, Mode::empty()) {
                    Err(Errno::ENOENT | Errno::ELOOP | Errno::ENOTDIR) => continue,
                    other => {
                        let sub = other.map_err(|e| failure("list", e))?;
                        self.walk(sub, &format!("{full}/"), prefix, out)?;
                    }
                }
            } else if kind == SFlag::S_IFREG {
                out.push(ObjectInfo {
                    name: full,
                    size: u64::try_from(stat.st_size).unwrap_or(0),
                });
            }
        }
        Ok(())
    }
}

impl Target for DirTarget {
    fn url(&self) -> &str {
        &self.url
    }

    fn put(&self, name: &str, data: &[u8]) -> Result<(), TargetError> {
        check_name(&self.url, name)?;
        self.write(name, &mut &data[..])
            .map_err(|f| self.error(name, f))
    }

    fn put_file(&self, name: &str, path: &Path) -> Result<(), TargetError> {
        check_name(&self.url, name)?;
        let mut file = File::open(path).map_err(|e| {
            self.error(
                name,
                Failure::fatal(format!("cannot read {}: {e}", path.display())),
            )
        })?;
        self.write(name, &mut file).map_err(|f| self.error(name, f))
    }

    fn get(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>, TargetError> {
        check_name(&self.url, name)?;
        let too_big = || {
            let problem = format!("the object is larger than the {limit} bytes expected");
            self.error(name, Failure::fatal(problem))
        };
        let Some(file) = self.open_object(name).map_err(|f| self.error(name, f))? else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        file.take(limit.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| self.error(name, io_failure("read", &e)))?;
        if bytes.len() as u64 > limit {
            return Err(too_big());
        }
        Ok(Some(bytes))
    }

    fn get_to_file(&self, name: &str, path: &Path) -> Result<bool, TargetError> {
        check_name(&self.url, name)?;
        let Some(file) = self.open_object(name).map_err(|f| self.error(name, f))? else {
            return Ok(false);
        };
        let mut source = Tracked::new(file);
        match write_local_atomic(path, &mut source) {
            Ok(_) => Ok(true),
            Err(e) if source.failed => Err(self.error(name, io_failure("read", &e))),
            Err(e) => Err(self.error(
                name,
                Failure::fatal(format!("cannot write {}: {e}", path.display())),
            )),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, TargetError> {
        check_prefix(&self.url, prefix)?;
        let object = format!("list {prefix:?}");
        let (start, steps) = match prefix.rfind('/') {
            Some(at) => (&prefix[..=at], prefix[..at].split('/').collect()),
            None => ("", Vec::new()),
        };
        let mut found = Vec::new();
        let dir = self
            .open_dir(&steps, false)
            .map_err(|f| self.error(&object, f))?;
        if let Some(dir) = dir {
            self.walk(dir, start, prefix, &mut found)
                .map_err(|f| self.error(&object, f))?;
        }
        found.retain(|o| o.name.starts_with(prefix));
        found.sort();
        Ok(found)
    }

    fn delete(&self, name: &str) -> Result<(), TargetError> {
        check_name(&self.url, name)?;
        let (steps, leaf) = split(name);
        let deleted = (|| {
            let Some(dir) = self.open_dir(&steps, false)? else {
                return Ok(());
            };
            match unlinkat(&dir, leaf, UnlinkatFlags::NoRemoveDir) {
                Ok(()) => fsync(&dir).map_err(|e| failure("sync the directory", e)),
                Err(Errno::ENOENT) => Ok(()),
                Err(e) => Err(failure("delete", e)),
            }
        })();
        deleted.map_err(|f| self.error(name, f))
    }
}

/// `a/b/c` as (`["a", "b"]`, `c`); the name was checked.
fn split(name: &str) -> (Vec<&str>, &str) {
    let mut steps: Vec<&str> = name.split('/').collect();
    let leaf = steps.pop().expect("a checked name has a segment");
    (steps, leaf)
}

/// A failed system call: a link, a permission or a read-only file system need a person;
/// anything else (a full or failing disk, a vanished mount) may pass.
fn failure(action: &str, errno: Errno) -> Failure {
    let problem = format!("cannot {action}: {}", errno.desc());
    match errno {
        Errno::ELOOP | Errno::ENOTDIR => Failure::fatal(format!(
            "cannot {action}: a symbolic link or a file stands where a directory should; links are never followed below the target (fix: move it out of the backup directory)"
        )),
        Errno::EACCES | Errno::EPERM | Errno::EROFS => Failure::fatal(format!(
            "{problem} (fix: let the user zone-etcd runs as write the directory, or mount it read-write)"
        )),
        _ => Failure::retry(problem),
    }
}

fn io_failure(action: &str, e: &std::io::Error) -> Failure {
    match e.raw_os_error() {
        Some(code) => failure(action, Errno::from_raw(code)),
        None => Failure::retry(format!("cannot {action}: {e}")),
    }
}

/// A temporary name no other writer picks: this process, a counter, random bits.
fn temporary_name() -> String {
    use ring::rand::SecureRandom;
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut bytes = [0u8; 8];
    let _ = ring::rand::SystemRandom::new().fill(&mut bytes);
    let random: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{TMP_PREFIX}{}-{n}-{random}", std::process::id())
}
