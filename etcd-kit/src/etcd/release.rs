//! An etcd release's number, as `etcd --version` prints it and as etcd's cluster and
//! storage versions count: parsing and order only, nothing of what a release can do.

use std::fmt;

/// An etcd release, as `etcd --version` prints it (`etcd Version: 3.5.30`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl Version {
    pub const fn new(major: u32, minor: u32, patch: u32) -> Version {
        Version {
            major,
            minor,
            patch,
        }
    }

    /// `3.5.30`, `3.5.30-rc.0` or `3.5` (a cluster version): the numbers in front; a missing
    /// patch reads as 0, anything after a `-` or `+` is ignored.
    pub fn parse(text: &str) -> Option<Version> {
        let core = text.trim().split(['-', '+']).next()?;
        let mut parts = core.split('.');
        let number = |part: Option<&str>| -> Option<u32> {
            let part = part?;
            (!part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
                .then(|| part.parse().ok())
                .flatten()
        };
        let major = number(parts.next())?;
        let minor = number(parts.next())?;
        let patch = match parts.next() {
            None => 0,
            some => number(some)?,
        };
        parts
            .next()
            .is_none()
            .then_some(Version::new(major, minor, patch))
    }

    /// The minor series (`3.5`), what etcd's cluster version counts in.
    pub fn series(self) -> (u32, u32) {
        (self.major, self.minor)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Reads the version from `etcd --version` output: the line `etcd Version: X.Y.Z`.
pub fn from_version_output(output: &str) -> Option<Version> {
    output
        .lines()
        .find_map(|line| line.trim().strip_prefix("etcd Version:"))
        .and_then(Version::parse)
}
