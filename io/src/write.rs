//! Writing files so that a crash or a failure never leaves a half-written one.
//!
//! Invariants this module keeps:
//! - a file is replaced by `rename(2)` of a fully written, fsynced temp file created in the
//!   same directory, and the directory is fsynced after, so readers see old or new, never a
//!   mix, even across a power cut;
//! - the temp file has its final mode *before* the secret is written into it, so a key is
//!   never readable by others, not even for an instant;
//! - a failed write (the source fails, the disk fills) leaves the old file, if any, and
//!   no temp file: the temp file is removed when the write gives up;
//! - a streamed write ([`write_atomic_from`], [`copy_durable`]) holds one buffer, whatever
//!   the size, and returns the SHA-256 of exactly the bytes that reached the file;
//! - [`write_new`] never replaces a file: it is for inside a staged directory
//!   ([`crate::Staging`]), whose rename provides the atomicity;
//! - [`write_atomic_unsynced`] is the one write without fsyncs: atomic while the machine
//!   runs, not across a power cut; its caller must tell a torn file and recover.

use std::fs::{File, OpenOptions, Permissions};
use std::io::{BufWriter, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use ring::digest::{Context, SHA256};
use tempfile::NamedTempFile;

use crate::dir::{parent_of, sync_dir};
use crate::error::{Error, Result};
use crate::read::{digest_bytes, read_chunks, CHUNK_BYTES};

/// Atomically replaces (or creates) `path` with `contents`, with `mode`.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let mut tmp = temp_beside(path, mode)?;
    tmp.write_all(contents)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| Error::io("write", tmp.path(), &e))?;
    persist(tmp, path)
}

/// Replaces (or creates) `path` with `contents`, with `mode`, by the same rename of a
/// whole temp file, but without asking the disk to flush: while the machine runs, readers
/// see the old file or the new one, never a mix, and the kernel writes it back within
/// about half a minute. After a power cut or a crash of the machine, the file may be
/// missing, empty or partly written: only for files whose reader can tell (a hash, a
/// checksum) and whose writer can make them again or do without.
pub fn write_atomic_unsynced(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let mut tmp = temp_beside(path, mode)?;
    tmp.write_all(contents)
        .map_err(|e| Error::io("write", tmp.path(), &e))?;
    tmp.persist(path)
        .map_err(|e| Error::io("rename into place", path, &e.error))?;
    Ok(())
}

/// Atomically replaces (or creates) `path` with everything `reader` gives, with `mode`
/// (exactly: the umask does not narrow it). Returns the number of bytes written and their
/// SHA-256. On any failure `path` is left as it was and the temp file is removed.
pub fn write_atomic_from(
    path: &Path,
    reader: &mut impl Read,
    mode: u32,
) -> Result<(u64, [u8; 32])> {
    write_stream(path, reader, mode, |e| {
        Error::io("read the data to write to", path, &e)
    })
}

/// Copies `src` onto `dst` as [`write_atomic_from`] writes: `dst` is replaced whole and
/// durably, with `mode`. Returns the size and SHA-256 of what was copied.
pub fn copy_durable(src: &Path, dst: &Path, mode: u32) -> Result<(u64, [u8; 32])> {
    let mut file = File::open(src).map_err(|e| Error::io("open", src, &e))?;
    write_stream(dst, &mut file, mode, |e| Error::io("read", src, &e))
}

/// [`write_atomic_from`], with read failures made by `read_error`.
fn write_stream(
    path: &Path,
    reader: &mut impl Read,
    mode: u32,
    read_error: impl Fn(std::io::Error) -> Error,
) -> Result<(u64, [u8; 32])> {
    let mut tmp = temp_beside(path, mode)?;
    let tmp_path = tmp.path().to_path_buf();
    let write_error = |e: std::io::Error| Error::io("write", &tmp_path, &e);
    // The umask may have cleared bits we asked for; make the mode exact.
    tmp.as_file()
        .set_permissions(Permissions::from_mode(mode))
        .map_err(|e| Error::io("set the mode of", &tmp_path, &e))?;
    let mut hash = Context::new(&SHA256);
    let mut writer = BufWriter::with_capacity(CHUNK_BYTES, tmp.as_file_mut());
    let size = read_chunks(reader, read_error, |chunk| {
        hash.update(chunk);
        writer.write_all(chunk).map_err(&write_error)
    })?;
    writer.flush().map_err(&write_error)?;
    drop(writer);
    tmp.as_file().sync_all().map_err(write_error)?;
    persist(tmp, path)?;
    Ok((size, digest_bytes(hash)))
}

/// A hidden temp file (`.tmp-*`) with `mode`, in the directory of `path`, so that the
/// rename onto `path` stays within one file system. Dropped, it removes itself.
fn temp_beside(path: &Path, mode: u32) -> Result<NamedTempFile> {
    let dir = parent_of(path);
    tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(Permissions::from_mode(mode))
        .tempfile_in(dir)
        .map_err(|e| Error::io("create a temporary file in", dir, &e))
}

/// Renames a written and fsynced temp file onto `path`, then fsyncs the directory.
fn persist(tmp: NamedTempFile, path: &Path) -> Result<()> {
    tmp.persist(path)
        .map_err(|e| Error::io("rename into place", path, &e.error))?;
    sync_dir(parent_of(path))
}

/// Writes a new file with `mode` directly, for use inside a [`crate::Staging`] directory:
/// its final rename provides the atomicity, and its commit makes the whole tree durable
/// (the fsyncs of all its files at once). Refuses to replace an existing file.
pub fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| Error::io("create", path, &e))?;
    // The umask may have cleared bits we asked for; make the mode exact.
    file.set_permissions(Permissions::from_mode(mode))
        .map_err(|e| Error::io("set the mode of", path, &e))?;
    file.write_all(contents)
        .map_err(|e| Error::io("write", path, &e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mode::{check_key_mode, test_support::mode, KEY_MODE, PUBLIC_MODE};
    use std::fs;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// A reader that gives `good` bytes, then fails.
    struct FailsAfter {
        good: Vec<u8>,
    }

    impl Read for FailsAfter {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.good.is_empty() {
                return Err(std::io::Error::other("connection reset"));
            }
            let n = buf.len().min(self.good.len());
            buf[..n].copy_from_slice(&self.good[..n]);
            self.good.drain(..n);
            Ok(n)
        }
    }

    #[test]
    fn atomic_write_sets_mode_and_replaces() {
        let tmp = tempfile::tempdir().unwrap();
        let key = tmp.path().join("k.key");
        write_atomic(&key, b"one", KEY_MODE).unwrap();
        write_atomic(&key, b"two", KEY_MODE).unwrap();
        assert_eq!(fs::read(&key).unwrap(), b"two");
        assert_eq!(mode(&key), 0o600);
        let leftovers: Vec<_> = fs::read_dir(tmp.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temp file left behind");
    }

    #[test]
    fn key_mode_check_names_the_chmod() {
        let tmp = tempfile::tempdir().unwrap();
        let key = tmp.path().join("k.key");
        write_atomic(&key, b"x", 0o640).unwrap();
        let err = check_key_mode(&key).unwrap_err().to_string();
        assert!(err.contains("mode 0640"), "{err}");
        assert!(
            err.contains(&format!("chmod 600 {}", key.display())),
            "{err}"
        );
        fs::set_permissions(&key, Permissions::from_mode(0o600)).unwrap();
        check_key_mode(&key).unwrap();
    }

    #[test]
    fn streamed_write_returns_size_and_rings_hash_with_the_mode() {
        let tmp = tempfile::tempdir().unwrap();
        let content: Vec<u8> = (0..CHUNK_BYTES + 777).map(|i| (i * 7) as u8).collect();
        let out = tmp.path().join("full.age");
        let (size, hash) = write_atomic_from(&out, &mut content.as_slice(), KEY_MODE).unwrap();
        assert_eq!(size, content.len() as u64);
        assert_eq!(hash, ring::digest::digest(&SHA256, &content).as_ref());
        assert_eq!(fs::read(&out).unwrap(), content);
        assert_eq!(mode(&out), 0o600);
        // Replaces, with another mode, exactly.
        let (size, _) = write_atomic_from(&out, &mut &b"short"[..], PUBLIC_MODE).unwrap();
        assert_eq!(size, 5);
        assert_eq!(fs::read(&out).unwrap(), b"short");
        assert_eq!(mode(&out), 0o644);
        assert_eq!(names(tmp.path()), ["full.age"], "no temp file left behind");
    }

    #[test]
    fn a_failed_streamed_write_leaves_no_file_and_no_temp_file() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("new");
        let mut reader = FailsAfter {
            good: vec![1; CHUNK_BYTES + 1],
        };
        let err = write_atomic_from(&out, &mut reader, KEY_MODE).unwrap_err();
        assert!(err.to_string().contains("connection reset"), "{err}");
        assert_eq!(err.file_path(), Some(out.as_path()));
        assert!(names(tmp.path()).is_empty(), "{:?}", names(tmp.path()));

        // Over an existing file: the old content stays.
        fs::write(&out, b"old").unwrap();
        let mut reader = FailsAfter { good: vec![2; 10] };
        write_atomic_from(&out, &mut reader, KEY_MODE).unwrap_err();
        assert_eq!(fs::read(&out).unwrap(), b"old");
        assert_eq!(names(tmp.path()), ["new"]);
    }

    #[test]
    fn durable_copy_copies_and_hashes() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        fs::write(&src, b"snapshot bytes").unwrap();
        let dst = tmp.path().join("dst");
        let (size, hash) = copy_durable(&src, &dst, KEY_MODE).unwrap();
        assert_eq!(size, 14);
        assert_eq!(hash, crate::sha256_file(&src).unwrap().1);
        assert_eq!(fs::read(&dst).unwrap(), b"snapshot bytes");
        assert_eq!(mode(&dst), 0o600);

        // A source that cannot be read is named, and nothing is written.
        let err = copy_durable(tmp.path(), &tmp.path().join("dst2"), KEY_MODE).unwrap_err();
        assert_eq!(err.file_path(), Some(tmp.path()));
        let missing = tmp.path().join("missing");
        let err = copy_durable(&missing, &tmp.path().join("dst2"), KEY_MODE).unwrap_err();
        assert_eq!(err.file_path(), Some(missing.as_path()));
        assert_eq!(names(tmp.path()), ["dst", "src"]);
    }

    #[test]
    fn write_new_refuses_to_replace_and_sets_the_exact_mode() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("ca.crt");
        write_new(&file, b"a", PUBLIC_MODE).unwrap();
        assert_eq!(mode(&file), 0o644);
        assert!(write_new(&file, b"b", PUBLIC_MODE).is_err());
        assert_eq!(fs::read(&file).unwrap(), b"a");
    }
}
