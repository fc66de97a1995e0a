//! The release directories under tests/golden/, and copies of them to read.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Where every release's directory is.
pub fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// A release's number, from its directory's name (`v0.1.0`).
pub fn release_of(name: &str) -> Option<(u64, u64, u64)> {
    let mut parts = name.strip_prefix('v')?.split('.');
    let mut next = || parts.next()?.parse::<u64>().ok();
    let release = (next()?, next()?, next()?);
    parts.next().is_none().then_some(release)
}

/// Every release's directory, oldest first: (release, directory).
pub fn releases() -> Vec<((u64, u64, u64), PathBuf)> {
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
