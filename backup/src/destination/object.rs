//! What every target is: the [`Target`] trait, one object of a listing, the one-line
//! [`TargetError`], the rules of object names, and the local writes and counted reads
//! both kinds of target share.
//!
//! Invariants: an object name that could leave the target, mean two things or hide is
//! refused ([`check_name`], [`check_prefix`]); an error is one line naming the target URL
//! and the object, and says whether trying again may help; a local file written for a
//! target is whole or absent (`write_local_atomic`).

use std::fmt;
use std::io::Read;
use std::path::Path;

/// One object of a listing: its name relative to the target, and its size in bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectInfo {
    pub name: String,
    pub size: u64,
}

/// A failed operation on a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetError {
    /// One line: the target URL, the object, what went wrong and, where known, the fix.
    pub message: String,
    /// True when the same operation may succeed later without anyone acting (the store
    /// is down, slow or overloaded, the disk is not mounted yet).
    pub retryable: bool,
}

impl TargetError {
    /// `url: object: problem`.
    pub fn new(url: &str, object: &str, problem: impl fmt::Display, retryable: bool) -> Self {
        TargetError {
            message: format!("{url}: {object}: {problem}"),
            retryable,
        }
    }
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message.replace(['\n', '\r'], " "))
    }
}

impl std::error::Error for TargetError {}

/// A place that holds backup objects.
pub trait Target: Send + Sync {
    /// The target as written in the zone file (or on the command line).
    fn url(&self) -> &str;
    /// Stores an object all-or-nothing: a reader (list/get) never sees a partial object.
    fn put(&self, name: &str, data: &[u8]) -> Result<(), TargetError>;
    /// Stores the file at `path`, streamed (snapshots can be GiBs): S3 uploads it in parts
    /// above the part size, with one PUT below.
    fn put_file(&self, name: &str, path: &Path) -> Result<(), TargetError>;
    /// The object's bytes, `None` if it is absent; an error if it is larger than `limit`.
    fn get(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>, TargetError>;
    /// Writes the object to `path` atomically (a temporary file beside it, fsync, rename);
    /// `false`, and `path` untouched, if the object is absent.
    fn get_to_file(&self, name: &str, path: &Path) -> Result<bool, TargetError>;
    /// Every object whose name starts with `prefix`, sorted by name.
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, TargetError>;
    /// Removes an object; an absent one is not an error.
    fn delete(&self, name: &str) -> Result<(), TargetError>;
}

/// Refuses an object name that could leave the target, mean two things or hide: empty,
/// a leading or trailing `/`, an empty segment or one starting with `.` (`.`, `..`, and
/// the hidden names a directory target keeps for its temporary files), a control
/// character or a backslash.
pub fn check_name(url: &str, name: &str) -> Result<(), TargetError> {
    let bad = name.is_empty()
        || name.starts_with('/')
        || name.ends_with('/')
        || name.split('/').any(|s| s.is_empty() || s.starts_with('.'))
        || name.chars().any(|c| c.is_control() || c == '\\');
    if bad {
        return Err(TargetError::new(
            url,
            &format!("{name:?}"),
            "not a usable object name (relative segments only: no leading \"/\", no empty segment, none starting with \".\")",
            false,
        ));
    }
    Ok(())
}

/// Refuses a listing prefix that could leave the target: like [`check_name`], but empty
/// and a trailing `/` are fine (`""` lists everything, `"full/"` a folder).
pub fn check_prefix(url: &str, prefix: &str) -> Result<(), TargetError> {
    match prefix.strip_suffix('/').unwrap_or(prefix) {
        "" if prefix.is_empty() => Ok(()),
        inner => check_name(url, inner),
    }
}

/// Writes everything `reader` gives to `path` atomically: a private temporary file beside
/// it, fsync, rename, fsync of the directory. On failure `path` is untouched and the
/// temporary file is gone. The reader's own errors come back as they are.
pub(crate) fn write_local_atomic(path: &Path, reader: &mut dyn Read) -> std::io::Result<u64> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    let written = std::io::copy(reader, &mut tmp)?;
    tmp.flush()?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(written)
}

/// A reader that remembers whether it failed, to tell a broken download from a local
/// write error.
pub(crate) struct Tracked<R> {
    inner: R,
    pub(crate) failed: bool,
}

impl<R> Tracked<R> {
    pub(crate) fn new(inner: R) -> Self {
        Tracked {
            inner,
            failed: false,
        }
    }
}

impl<R: Read> Read for Tracked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf);
        self.failed |= read.is_err();
        read
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_inside_the_target() {
        for good in [
            "full/0000000000000000123.snap.age",
            "manifest/x",
            "a",
            "a.b/c..d",
        ] {
            assert!(check_name("file:///b", good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a/./b",
            "a//b",
            "a/",
            ".",
            "..",
            "a\\b",
            "a\nb",
        ] {
            let e = check_name("file:///b", bad).unwrap_err();
            assert!(!e.retryable, "{bad}");
            assert!(e.to_string().starts_with("file:///b: "), "{e}");
        }
        assert!(check_prefix("u", "").is_ok());
        assert!(check_prefix("u", "full/").is_ok());
        assert!(check_prefix("u", "full/000").is_ok());
        assert!(check_prefix("u", "/").is_err());
        assert!(check_prefix("u", "../").is_err());
        assert!(check_prefix("u", "a//").is_err());
    }

    #[test]
    fn an_error_is_one_line_naming_url_and_object() {
        let e = TargetError::new("s3://b/p", "full/1", "broken\npipe", true);
        assert_eq!(e.to_string(), "s3://b/p: full/1: broken pipe");
    }
}
