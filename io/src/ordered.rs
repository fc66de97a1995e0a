//! Several small files made durable together, in stages: what one step of an append-only
//! log writes (an object, a copy of it, then the record that names them), with as few
//! journal commits as the order allows.
//!
//! Invariants this module keeps:
//! - every file is written as [`crate::write_atomic`] writes one: a hidden temp file in its
//!   directory with its final mode, fsynced, renamed onto its name, the directory fsynced;
//!   a failure leaves no temp file, and the files of the stages not yet renamed absent;
//! - stage by stage: no file of a stage is renamed into place before every file of the
//!   stages before it is renamed **and** its directory fsynced, so after a crash a file of
//!   stage k+1 is never there without every file of stages <= k, whole;
//! - the fsyncs of one kind run concurrently: all the temp files at once (before the
//!   first rename, as their contents do not depend on it), then each stage's directories
//!   at once. A journaling file system commits concurrent fsyncs together, so two stages
//!   of three files cost about three journal commits instead of six one after the other
//!   (measured in BENCHMARKS.md, "Backups a writer cannot feel (issue 37)").

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use crate::dir::parent_of;
use crate::error::{Error, Result};

/// Writes every file of `stages` durably, stage after stage (see the module's invariants),
/// each with `mode`. `proceed(k)` is asked just before stage `k` is renamed into place; an
/// error stops there (the stages not renamed are left absent, their temp files removed).
pub fn write_atomic_staged(
    stages: &[&[(&Path, &[u8])]],
    mode: u32,
    proceed: impl Fn(usize) -> Result<()>,
) -> Result<()> {
    let mut temps: Vec<Vec<(NamedTempFile, &Path)>> = Vec::with_capacity(stages.len());
    for stage in stages {
        let mut written = Vec::with_capacity(stage.len());
        for (path, contents) in stage.iter() {
            let mut tmp = crate::write::temp_beside(path, mode)?;
            tmp.write_all(contents)
                .map_err(|e| Error::io("write", tmp.path(), &e))?;
            written.push((tmp, *path));
        }
        temps.push(written);
    }
    let files: Vec<(&File, &Path)> = temps
        .iter()
        .flatten()
        .map(|(tmp, _)| (tmp.as_file(), tmp.path()))
        .collect();
    sync_all(
        &files,
        |(file, _)| file.sync_all(),
        |(_, path)| path,
        "write",
    )?;
    for (k, stage) in temps.into_iter().enumerate() {
        proceed(k)?;
        let mut dirs: Vec<PathBuf> = Vec::new();
        for (tmp, path) in stage {
            tmp.persist(path)
                .map_err(|e| Error::io("rename into place", path, &e.error))?;
            let dir = parent_of(path).to_path_buf();
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        sync_all(
            &dirs,
            |dir| File::open(dir).and_then(|d| d.sync_all()),
            |dir| dir.as_path(),
            "sync directory",
        )?;
    }
    Ok(())
}

/// Runs `sync` on every item at once (one thread each beyond the first: a stage holds a
/// few files); the first failure, named by `what` and the item's path.
fn sync_all<T: Sync>(
    items: &[T],
    sync: impl Fn(&T) -> std::io::Result<()> + Sync,
    path: impl Fn(&T) -> &Path + Sync,
    what: &str,
) -> Result<()> {
    let results: Vec<std::io::Result<()>> = std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .iter()
            .skip(1)
            .map(|item| scope.spawn(|| sync(item)))
            .collect();
        let mut results: Vec<_> = items.first().map(&sync).into_iter().collect();
        results.extend(handles.into_iter().map(|h| {
            h.join()
                .unwrap_or_else(|_| Err(std::io::Error::other("an fsync thread panicked")))
        }));
        results
    });
    for (item, result) in items.iter().zip(results) {
        result.map_err(|e| Error::io(what, path(item), &e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mode::{test_support::mode, KEY_MODE};
    use std::fs;

    #[test]
    fn writes_every_stage_whole_with_its_mode_and_leaves_no_temp_file() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        fs::create_dir_all(&a).unwrap();
        fs::create_dir_all(&b).unwrap();
        let (obj, copy, record) = (a.join("obj"), b.join("copy"), a.join("record"));
        write_atomic_staged(
            &[
                &[(obj.as_path(), b"object"), (copy.as_path(), b"copy")],
                &[(record.as_path(), b"record")],
            ],
            KEY_MODE,
            |_| Ok(()),
        )
        .unwrap();
        assert_eq!(fs::read(&obj).unwrap(), b"object");
        assert_eq!(fs::read(&copy).unwrap(), b"copy");
        assert_eq!(fs::read(&record).unwrap(), b"record");
        assert_eq!(mode(&record), KEY_MODE);
        let names: Vec<_> = fs::read_dir(&a)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "no temp file left: {names:?}");
    }

    #[test]
    fn a_failed_stage_leaves_the_later_stages_absent() {
        let tmp = tempfile::tempdir().unwrap();
        let obj = tmp.path().join("obj");
        let record = tmp.path().join("record");
        // The first stage cannot be renamed into place: a directory holds its name.
        fs::create_dir_all(obj.join("occupied")).unwrap();
        let failed = write_atomic_staged(
            &[
                &[(obj.as_path(), b"object")],
                &[(record.as_path(), b"record")],
            ],
            KEY_MODE,
            |_| Ok(()),
        );
        assert!(failed.is_err());
        assert!(!record.exists(), "the record never names what is not there");
        let names: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["obj".to_string()], "no temp file left");
    }

    #[test]
    fn a_refusal_before_a_stage_leaves_it_and_the_later_ones_absent() {
        let tmp = tempfile::tempdir().unwrap();
        let (obj, record) = (tmp.path().join("obj"), tmp.path().join("record"));
        let refused = write_atomic_staged(
            &[
                &[(obj.as_path(), b"object")],
                &[(record.as_path(), b"record")],
            ],
            KEY_MODE,
            |k| {
                if k == 1 {
                    Err(Error::new("the lease expired"))
                } else {
                    Ok(())
                }
            },
        );
        assert!(refused.is_err());
        assert_eq!(fs::read(&obj).unwrap(), b"object");
        assert!(!record.exists());
        assert_eq!(
            fs::read_dir(tmp.path()).unwrap().count(),
            1,
            "no temp file left"
        );
    }
}
