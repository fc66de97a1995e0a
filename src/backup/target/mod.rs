//! Where backups go: S3-compatible object storage and plain directories, behind one
//! [`Target`] trait, so the chain code never knows which it writes to.
//!
//! - [`file`]: a directory (a mounted USB disk, a NAS): files under it, 0600 in 0700
//!   directories, every write atomic and durable, never a step through a symbolic link;
//! - [`s3`]: any S3-compatible store, path-style, requests presigned by rusty-s3 and sent
//!   by ureq, with timeouts, retries and multipart uploads;
//! - [`credentials`]: the node-local S3 keys, taken the way AWS tools take them;
//! - [`retry`]: timeouts, the backoff schedule, and which failures are worth retrying.
//!
//! Invariants every target keeps:
//! - object names are relative keys (`full/….snap.age`); [`check_name`] refuses `..`,
//!   hidden segments, empty segments and a leading `/`, so no name reaches outside the
//!   target;
//! - `put` and `put_file` are all-or-nothing: `list` and `get` never see a partial object;
//! - an error is one line naming the target URL and the object, and says whether trying
//!   again later may help ([`TargetError::retryable`]); it never holds a credential or a
//!   presigned URL's signature.

pub mod credentials;
pub mod file;
pub mod retry;
pub mod s3;

use std::fmt;
use std::io::Read;
use std::path::Path;

use zone_pki::Error;

use super::settings::{self, Location, TargetSpec};

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

/// The target a `[[backup.target]]` names. A relative `ca_file` is relative to `base_dir`
/// (the node config's directory); S3 credentials come from the environment.
pub fn open(spec: &TargetSpec, base_dir: &Path) -> Result<Box<dyn Target>, Error> {
    match &spec.location {
        Location::Dir(root) => Ok(Box::new(file::DirTarget::new(&spec.url, root))),
        Location::S3 { bucket, prefix } => {
            let region = spec.region.as_deref().unwrap_or(s3::DEFAULT_REGION);
            let endpoint = match &spec.endpoint {
                Some(endpoint) => endpoint.clone(),
                None => s3::aws_endpoint(region),
            };
            let ca_file = spec.ca_file.as_ref().map(|f| base_dir.join(f));
            let credentials = credentials::from_env()?;
            let store = s3::S3Target::new(
                &spec.url,
                &s3::Store {
                    bucket,
                    prefix,
                    endpoint: &endpoint,
                    region,
                    ca_file: ca_file.as_deref(),
                },
                credentials,
                s3::Options::default(),
            )?;
            Ok(Box::new(store))
        }
    }
}

/// The target at `url` on the owner's machine, where no zone file is at hand: the
/// endpoint and region are the arguments, else `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`
/// and `AWS_REGION` (then `AWS_DEFAULT_REGION`), as AWS tools read them.
pub fn open_url(
    url: &str,
    endpoint: Option<&str>,
    region: Option<&str>,
    ca_file: Option<&Path>,
) -> Result<Box<dyn Target>, Error> {
    let env = |key: &str| std::env::var(key).ok().filter(|v| !v.trim().is_empty());
    let location = settings::parse_location(url).map_err(|e| e.field("--from"))?;
    let (bucket, prefix) = match location {
        Location::Dir(root) => {
            if endpoint.is_some() || region.is_some() || ca_file.is_some() {
                return Err(
                    Error::new("--endpoint, --region and --ca-file are for s3:// targets")
                        .field("--from")
                        .fix("leave them out for a file:// target"),
                );
            }
            return Ok(Box::new(file::DirTarget::new(url, &root)));
        }
        Location::S3 { bucket, prefix } => (bucket, prefix),
    };
    let region = match region {
        Some(r) => r.to_string(),
        None => env("AWS_REGION")
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| s3::DEFAULT_REGION.to_string()),
    };
    let (endpoint, from) = match endpoint {
        Some(e) => (e.to_string(), "--endpoint"),
        None => match env("AWS_ENDPOINT_URL_S3") {
            Some(e) => (e, "AWS_ENDPOINT_URL_S3"),
            None => match env("AWS_ENDPOINT_URL") {
                Some(e) => (e, "AWS_ENDPOINT_URL"),
                None => (s3::aws_endpoint(&region), "--endpoint"),
            },
        },
    };
    let endpoint = endpoint.trim().trim_end_matches('/').to_string();
    settings::check_endpoint(&endpoint).map_err(|e| e.field(from))?;
    let credentials = credentials::from_env()?;
    let store = s3::S3Target::new(
        url,
        &s3::Store {
            bucket: &bucket,
            prefix: &prefix,
            endpoint: &endpoint,
            region: &region,
            ca_file,
        },
        credentials,
        s3::Options::default(),
    )?;
    Ok(Box::new(store))
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
