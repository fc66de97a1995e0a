//! The one error type of the project: a problem located in a file and a field, with a fix.
//!
//! Every failure an operator sees is one line built from these parts, so each constructor
//! site must say *where* (file, field) and *what to do* (fix), not only what went wrong.
//!
//! Invariants:
//! - [`Display`](fmt::Display) is one line: file, field, problem, fix; never the cause's
//!   own text a second time (the problem already says it in the operator's words);
//! - the lower-level failure, when there is one, stays reachable through
//!   [`std::error::Error::source`] for programs and logs that walk the chain;
//! - two errors are equal when what the operator reads is equal (the cause is not compared).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The lower-level failure behind an [`Error`].
pub type Cause = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// A failure that names the file and field at fault and how to fix it.
#[derive(Debug, Clone)]
pub struct Error {
    problem: String,
    file: Option<PathBuf>,
    field: Option<String>,
    fix: Option<String>,
    permanent: bool,
    cause: Option<Cause>,
}

impl PartialEq for Error {
    fn eq(&self, other: &Self) -> bool {
        (
            &self.problem,
            &self.file,
            &self.field,
            &self.fix,
            self.permanent,
        ) == (
            &other.problem,
            &other.file,
            &other.field,
            &other.fix,
            other.permanent,
        )
    }
}

impl Eq for Error {}

impl Error {
    /// A problem not yet tied to a file; add `.file()`, `.field()` and `.fix()` as known.
    pub fn new(problem: impl Into<String>) -> Self {
        Error {
            problem: problem.into(),
            file: None,
            field: None,
            fix: None,
            permanent: false,
            cause: None,
        }
    }

    /// Keeps `cause` as this error's [`source`](std::error::Error::source) (the first one
    /// set stays: the deepest layer knows best).
    #[must_use]
    pub fn caused_by(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        if self.cause.is_none() {
            self.cause = Some(Arc::new(cause));
        }
        self
    }

    /// Marks a failure that running the same command again cannot cure: a person must
    /// act first (fix the file, move the data aside). A supervisor should not retry it.
    #[must_use]
    pub fn permanent(mut self) -> Self {
        self.permanent = true;
        self
    }

    /// True when retrying cannot help (see [`Error::permanent`]).
    pub fn is_permanent(&self) -> bool {
        self.permanent
    }

    /// The file at fault (kept if one was already set by a deeper layer).
    #[must_use]
    pub fn file(mut self, path: impl AsRef<Path>) -> Self {
        if self.file.is_none() {
            self.file = Some(path.as_ref().to_path_buf());
        }
        self
    }

    /// The field (key, argument or entry) at fault.
    #[must_use]
    pub fn field(mut self, field: impl Into<String>) -> Self {
        if self.field.is_none() {
            self.field = Some(field.into());
        }
        self
    }

    /// What the operator can do about it.
    #[must_use]
    pub fn fix(mut self, fix: impl Into<String>) -> Self {
        if self.fix.is_none() {
            self.fix = Some(fix.into());
        }
        self
    }

    pub fn problem(&self) -> &str {
        &self.problem
    }

    pub fn file_path(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    pub fn field_name(&self) -> Option<&str> {
        self.field.as_deref()
    }

    pub fn fix_text(&self) -> Option<&str> {
        self.fix.as_deref()
    }

    /// Wraps an I/O failure on `path` with a hint that fits its kind.
    pub fn io(action: &str, path: &Path, err: &std::io::Error) -> Self {
        use std::io::ErrorKind;
        let fix = match err.kind() {
            ErrorKind::NotFound => "check the path; create the file or point to the right one",
            ErrorKind::PermissionDenied => "check the file's owner and mode, or run as its owner",
            ErrorKind::AlreadyExists => "move it aside or choose another path",
            ErrorKind::StorageFull => {
                "free space on the file system that holds it (see `df`), then run the command again"
            }
            _ => "check the file system (space, mounts, permissions)",
        };
        // io::Error is not Clone: keep its kind and OS code, which is what callers test.
        let cause = match err.raw_os_error() {
            Some(code) => std::io::Error::from_raw_os_error(code),
            None => std::io::Error::new(err.kind(), err.to_string()),
        };
        Error::new(format!("cannot {action}: {}", io_reason(err)))
            .file(path)
            .fix(fix)
            .caused_by(cause)
    }
}

/// The OS reason without Rust's "(os error N)" suffix.
fn io_reason(err: &std::io::Error) -> String {
    let text = err.to_string();
    match text.find(" (os error") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}: ", file.display())?;
        }
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        // One line, always: a problem text from a parser may carry newlines.
        write!(f, "{}", self.problem.replace('\n', " "))?;
        if let Some(fix) = &self.fix {
            write!(f, " (fix: {fix})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_deref()
            .map(|c| c as &(dyn std::error::Error + 'static))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_file_field_problem_and_fix_on_one_line() {
        let err = Error::new("bad\nvalue")
            .file("/z/zone.toml")
            .field("etcd[1].peer_port")
            .fix("use 1-65535");
        assert_eq!(
            err.to_string(),
            "/z/zone.toml: etcd[1].peer_port: bad value (fix: use 1-65535)"
        );
    }

    #[test]
    fn an_io_failure_keeps_its_cause_but_prints_one_line() {
        use std::error::Error as _;
        let os = std::io::Error::from_raw_os_error(libc_enoent());
        let err = Error::io("read", Path::new("/z/node.toml"), &os);
        assert_eq!(
            err.to_string(),
            "/z/node.toml: cannot read: No such file or directory \
             (fix: check the path; create the file or point to the right one)"
        );
        let cause = err.source().expect("the io::Error is its source");
        let io = cause.downcast_ref::<std::io::Error>().unwrap();
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
        assert_eq!(io.raw_os_error(), Some(libc_enoent()));
        // Equality is what the operator reads: the same line without a cause is equal.
        let same = Error::new("cannot read: No such file or directory")
            .file("/z/node.toml")
            .fix("check the path; create the file or point to the right one");
        assert_eq!(err, same);
        assert!(same.source().is_none());
    }

    fn libc_enoent() -> i32 {
        2 // ENOENT on Linux
    }

    #[test]
    fn the_innermost_location_wins() {
        let err = Error::new("x")
            .field("inner")
            .field("outer")
            .file("a")
            .file("b");
        assert_eq!(err.to_string(), "a: inner: x");
    }
}
