//! Private directories: made 0700 from the start, and durable once made.
//!
//! Invariants this module keeps:
//! - a directory this module creates is 0700 from its `mkdir(2)`, so no instant (nor a
//!   kill) leaves it open to others; one that existed is set to 0700;
//! - [`ensure_private_tree`] fsyncs the parent of each directory of the tree, so the
//!   tree survives a power cut once it returns, and stays inside its root (no absolute
//!   path, no `..`);
//! - [`sync_dir`] is how a rename or a creation inside a directory is made durable.

use std::fs::{self, File, Permissions};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};
use crate::mode::PRIVATE_DIR_MODE;

/// Creates `dir` (and its parents, with the default mode) if missing and makes it 0700.
/// `dir` is created 0700 from the start, so no instant (nor a kill) leaves it open.
pub fn ensure_private_dir(dir: &Path) -> Result<()> {
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| Error::io("create directory", parent, &e))?;
    }
    make_private(dir)
}

/// Creates `root/rel` one directory at a time, each 0700 (those that existed are made
/// 0700 too), and fsyncs each one's parent, `root` included, so the whole tree is
/// durable when it returns. `root` must exist; its own mode is left as it is. `rel` must
/// be relative and stay below `root` (no `..`). Returns `root/rel`.
pub fn ensure_private_tree(root: &Path, rel: &Path) -> Result<PathBuf> {
    // Checked whole before anything is made: a refused path creates nothing.
    if !rel
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(Error::new(format!(
            "{} is not a path below {}",
            rel.display(),
            root.display()
        ))
        .file(root)
        .fix("name a relative path without `..`"));
    }
    let mut dir = root.to_path_buf();
    for name in rel
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
    {
        let parent = dir.clone();
        dir.push(name);
        make_private(&dir)?;
        sync_dir(&parent)?;
    }
    Ok(dir)
}

/// `mkdir(dir, 0700)` unless it exists, then (either way) mode 0700.
fn make_private(dir: &Path) -> Result<()> {
    match fs::DirBuilder::new().mode(PRIVATE_DIR_MODE).create(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            return Err(Error::io("create directory", dir, &e))
        }
        _ => {}
    }
    fs::set_permissions(dir, Permissions::from_mode(PRIVATE_DIR_MODE))
        .map_err(|e| Error::io("set mode 0700 on directory", dir, &e))
}

/// fsyncs a directory so that a rename inside it survives a crash.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("sync directory", dir, &e))
}

/// The entries of `dir`, none when it does not exist (a directory not made yet is an
/// empty one to every reader here); a directory or entry that cannot be read is an error
/// naming `dir`.
pub fn entries(dir: &Path) -> Result<Vec<fs::DirEntry>> {
    let read = match fs::read_dir(dir) {
        Ok(read) => read,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("read directory", dir, &e)),
    };
    read.map(|entry| entry.map_err(|e| Error::io("read directory", dir, &e)))
        .collect()
}

/// True when `dir` does not exist or is an empty directory.
pub fn is_absent_or_empty(dir: &Path) -> Result<bool> {
    match fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(Error::io("read directory", dir, &e)),
    }
}

/// The directory that holds `path` (`.` for a bare file name).
pub(crate) fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mode::test_support::mode;

    #[test]
    fn entries_of_a_missing_directory_are_none_and_a_file_is_no_directory() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(entries(&tmp.path().join("not-yet")).unwrap().is_empty());
        fs::write(tmp.path().join("a"), b"").unwrap();
        fs::create_dir(tmp.path().join("b")).unwrap();
        let mut names: Vec<String> = entries(tmp.path())
            .unwrap()
            .iter()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["a", "b"]);
        let err = entries(&tmp.path().join("a")).unwrap_err();
        assert_eq!(err.file_path(), Some(tmp.path().join("a").as_path()));
    }

    #[test]
    fn private_dir_is_0700_new_or_old() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        ensure_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        fs::set_permissions(&dir, Permissions::from_mode(0o755)).unwrap();
        ensure_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
    }

    #[test]
    fn private_tree_makes_each_level_0700_and_stays_below_its_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("state");
        fs::create_dir(&root).unwrap();
        fs::set_permissions(&root, Permissions::from_mode(0o755)).unwrap();
        fs::create_dir(root.join("backup")).unwrap();
        fs::set_permissions(root.join("backup"), Permissions::from_mode(0o755)).unwrap();

        let made = ensure_private_tree(&root, Path::new("backup/./spool/full")).unwrap();
        assert_eq!(made, root.join("backup/spool/full"));
        for dir in ["backup", "backup/spool", "backup/spool/full"] {
            assert_eq!(mode(&root.join(dir)), 0o700, "{dir}");
        }
        assert_eq!(mode(&root), 0o755, "the root's own mode is left alone");
        // Again: nothing to create, nothing changes.
        ensure_private_tree(&root, Path::new("backup/spool/full")).unwrap();

        for bad in ["../out", "/etc", "a/../../b"] {
            let err = ensure_private_tree(&root, Path::new(bad)).unwrap_err();
            assert!(err.to_string().contains("not a path below"), "{bad}: {err}");
        }
        assert!(!tmp.path().join("out").exists());
        assert!(!root.join("a").exists(), "a refused path creates nothing");
        let missing = ensure_private_tree(&tmp.path().join("none"), Path::new("x"));
        assert!(missing.is_err(), "the root must exist");
    }

    #[test]
    fn absent_or_empty() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(is_absent_or_empty(&tmp.path().join("none")).unwrap());
        assert!(is_absent_or_empty(tmp.path()).unwrap());
        fs::write(tmp.path().join("f"), b"").unwrap();
        assert!(!is_absent_or_empty(tmp.path()).unwrap());
    }
}
