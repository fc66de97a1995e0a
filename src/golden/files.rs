//! The release directories under tests/golden/, and copies of them to read.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Where every release's directory is.
pub fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// A release, as a directory names it: its number and, for the work towards it, a
/// pre-release name (`v0.2.0-dev`), which sorts before the release itself.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Release {
    pub number: (u64, u64, u64),
    pub stage: Stage,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// Before the release: `-dev` and the like.
    Before(String),
    Released,
}

impl std::fmt::Display for Release {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (major, minor, patch) = self.number;
        write!(f, "{major}.{minor}.{patch}")?;
        match &self.stage {
            Stage::Before(name) => write!(f, "-{name}"),
            Stage::Released => Ok(()),
        }
    }
}

/// A release from its directory's name (`v0.1.0`, `v0.2.0-dev`).
pub fn release_of(name: &str) -> Option<Release> {
    let rest = name.strip_prefix('v')?;
    let (number, stage) = match rest.split_once('-') {
        Some((number, pre))
            if !pre.is_empty()
                && pre
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) =>
        {
            (number, Stage::Before(pre.to_string()))
        }
        Some(_) => return None,
        None => (rest, Stage::Released),
    };
    let mut parts = number.split('.');
    let mut next = || {
        let part = parts.next()?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse::<u64>().ok())?
    };
    let number = (next()?, next()?, next()?);
    parts.next().is_none().then_some(Release { number, stage })
}

/// Every release's directory, oldest first: (release, directory).
pub fn releases() -> Vec<(Release, PathBuf)> {
    let mut found: Vec<_> = fs::read_dir(golden_dir())
        .expect("tests/golden/")
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            Some((release_of(&name)?, entry.path()))
        })
        .collect();
    found.sort();
    found
}

/// A copy of `dir` in a temporary directory, every file private (0600) and every
/// directory 0700: git keeps no modes, and the readers refuse a key others can read.
pub fn private_copy(dir: &Path) -> tempfile::TempDir {
    fn copy(from: &Path, to: &Path) {
        fs::create_dir_all(to).unwrap();
        fs::set_permissions(to, fs::Permissions::from_mode(0o700)).unwrap();
        for entry in fs::read_dir(from).unwrap().flatten() {
            let kind = entry.file_type().unwrap();
            let target = to.join(entry.file_name());
            assert!(
                !kind.is_symlink(),
                "{}: golden files hold no links",
                entry.path().display()
            );
            if kind.is_dir() {
                copy(&entry.path(), &target);
            } else {
                fs::copy(entry.path(), &target).unwrap();
                fs::set_permissions(&target, fs::Permissions::from_mode(0o600)).unwrap();
            }
        }
    }
    let temp = tempfile::tempdir().unwrap();
    copy(dir, temp.path());
    temp
}

/// The files under `dir`, relative to it.
pub fn files_under(dir: &Path) -> BTreeSet<String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
        for entry in fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let relative = path.strip_prefix(root).unwrap();
                out.insert(relative.to_string_lossy().into_owned());
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(dir, dir, &mut out);
    out
}
