//! Reading files: small ones whole and bounded, large ones as a stream of chunks.
//!
//! Invariants this module keeps:
//! - a small read ([`read_small_file`], [`read_text`]) never holds more than
//!   [`MAX_FILE_BYTES`] in memory, whatever the path names: a directory, a FIFO or a
//!   device (`/dev/zero`) is refused without waiting on it or reading it, a larger file
//!   before it is read, and one that grows while it is read when it passes the bound;
//! - with [`Links::Refuse`], a symbolic link at the path itself is refused, not followed;
//! - a streamed read ([`for_each_chunk`], [`sha256_file`]) holds one buffer of
//!   [`CHUNK_BYTES`], whatever the size of the file;
//! - every failure names the file it happened on.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use ring::digest::{Context, SHA256};

use crate::error::{Error, Result};

/// The largest PEM, key, config or zone document zone-etcd reads: real ones are a few
/// kilobytes, so anything bigger is a mistake (or hostile) and is refused before it is
/// read into memory.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// The buffer of a streamed read or copy (1 MiB): large enough that a read costs little
/// per byte, small enough to hold anywhere.
pub const CHUNK_BYTES: usize = 1 << 20;

/// Whether [`read_small_file`] follows a symbolic link at the path itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    Follow,
    /// For files zone-etcd makes itself (the state directory): a link there was put by
    /// someone else and may lead anywhere.
    Refuse,
}

/// Reads a regular file of at most [`MAX_FILE_BYTES`]. A FIFO or device (`/dev/zero`) is
/// refused without waiting on it, a directory or a huge file before it is read.
pub fn read_small_file(path: &Path, links: Links) -> Result<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut flags = nix::fcntl::OFlag::O_NONBLOCK; // opening a FIFO must not wait for a writer
    if links == Links::Refuse {
        flags |= nix::fcntl::OFlag::O_NOFOLLOW;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits())
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(code) if code == nix::errno::Errno::ELOOP as i32 && links == Links::Refuse => {
                Error::new("is a symbolic link; zone-etcd never follows links it did not make")
                    .file(path)
                    .fix(format!(
                        "remove {} (zone-etcd writes it again)",
                        path.display()
                    ))
            }
            _ => Error::io("read", path, &e),
        })?;
    let meta = file.metadata().map_err(|e| Error::io("read", path, &e))?;
    if meta.is_dir() {
        return Err(Error::new("is a directory, not a file")
            .file(path)
            .fix("point to the file itself (for a bundle: <dir>/node.toml)"));
    }
    if !meta.is_file() {
        return Err(
            Error::new("is not a regular file (a FIFO, socket or device)")
                .file(path)
                .fix("point to a regular file"),
        );
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_big(path, meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io("read", path, &e))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_big(path, bytes.len() as u64)); // it grew while we read it
    }
    Ok(bytes)
}

fn too_big(path: &Path, len: u64) -> Error {
    Error::new(format!(
        "file is {len} bytes; zone-etcd reads files of at most {MAX_FILE_BYTES}"
    ))
    .file(path)
    .fix("point to the right file")
}

/// Reads a small text file (PEM or config), naming the file on failure.
pub fn read_text(path: &Path) -> Result<String> {
    let bytes = read_small_file(path, Links::Follow)?;
    String::from_utf8(bytes).map_err(|_| {
        Error::new("file is not UTF-8 text")
            .file(path)
            .fix("point to a PEM file (text starting with -----BEGIN)")
    })
}

/// Reads `reader` to its end in chunks of at most [`CHUNK_BYTES`], handing each to
/// `each` in order; returns the number of bytes read. A read failure is named after
/// `source` (the file the reader reads); a failure of `each` stops the read and is
/// returned as it is.
pub fn for_each_chunk(
    reader: &mut impl Read,
    source: &Path,
    each: impl FnMut(&[u8]) -> Result<()>,
) -> Result<u64> {
    read_chunks(reader, |e| Error::io("read", source, &e), each)
}

/// [`for_each_chunk`] with the read failure made by `read_error`.
pub(crate) fn read_chunks(
    reader: &mut impl Read,
    read_error: impl Fn(std::io::Error) -> Error,
    mut each: impl FnMut(&[u8]) -> Result<()>,
) -> Result<u64> {
    let mut buf = vec![0u8; CHUNK_BYTES];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_error(e)),
        };
        each(&buf[..n])?;
        total += n as u64;
    }
}

/// The size and SHA-256 of a file of any size, read once, in chunks.
pub fn sha256_file(path: &Path) -> Result<(u64, [u8; 32])> {
    let mut file = File::open(path).map_err(|e| Error::io("open", path, &e))?;
    let mut hash = Context::new(&SHA256);
    let size = for_each_chunk(&mut file, path, |chunk| {
        hash.update(chunk);
        Ok(())
    })?;
    Ok((size, digest_bytes(hash)))
}

/// The 32 bytes of a finished SHA-256.
pub(crate) fn digest_bytes(hash: Context) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(hash.finish().as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_reads_refuse_directories_fifos_links_and_big_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir_err = read_small_file(tmp.path(), Links::Follow).unwrap_err();
        assert!(dir_err.to_string().contains("is a directory"), "{dir_err}");

        let fifo = tmp.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let fifo_err = read_small_file(&fifo, Links::Follow).unwrap_err();
        assert!(
            fifo_err.to_string().contains("not a regular file"),
            "{fifo_err}"
        );

        let file = tmp.path().join("f");
        std::fs::write(&file, b"text").unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert_eq!(read_small_file(&link, Links::Follow).unwrap(), b"text");
        let link_err = read_small_file(&link, Links::Refuse).unwrap_err();
        assert!(link_err.to_string().contains("symbolic link"), "{link_err}");

        let big = tmp.path().join("big");
        std::fs::write(&big, vec![b'x'; MAX_FILE_BYTES as usize + 1]).unwrap();
        let big_err = read_small_file(&big, Links::Follow).unwrap_err();
        assert!(big_err.to_string().contains("at most"), "{big_err}");
        assert_eq!(big_err.file_path(), Some(big.as_path()));
    }

    #[test]
    fn read_text_refuses_what_is_not_utf8() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("f.pem");
        std::fs::write(&file, [0xff, 0xfe]).unwrap();
        let err = read_text(&file).unwrap_err().to_string();
        assert!(err.contains("not UTF-8"), "{err}");
    }

    #[test]
    fn sha256_file_equals_rings_hash_of_the_content() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("data");
        // More than one chunk, and not a multiple of it.
        let content: Vec<u8> = (0..CHUNK_BYTES * 2 + 12345).map(|i| i as u8).collect();
        std::fs::write(&file, &content).unwrap();
        let (size, hash) = sha256_file(&file).unwrap();
        assert_eq!(size, content.len() as u64);
        assert_eq!(hash, ring::digest::digest(&SHA256, &content).as_ref());

        let empty = tmp.path().join("empty");
        std::fs::write(&empty, b"").unwrap();
        let (size, hash) = sha256_file(&empty).unwrap();
        assert_eq!(size, 0);
        assert_eq!(hash, ring::digest::digest(&SHA256, b"").as_ref());

        let missing = sha256_file(&tmp.path().join("missing")).unwrap_err();
        assert_eq!(
            missing.file_path(),
            Some(tmp.path().join("missing").as_path())
        );
    }

    #[test]
    fn for_each_chunk_stops_at_the_first_failure() {
        let mut reader: &[u8] = b"abc";
        let err =
            for_each_chunk(&mut reader, Path::new("r"), |_| Err(Error::new("full"))).unwrap_err();
        assert_eq!(err.problem(), "full");

        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("device gone"))
            }
        }
        let err = for_each_chunk(&mut Failing, Path::new("/dev/x"), |_| Ok(())).unwrap_err();
        assert_eq!(err.to_string().split(':').next(), Some("/dev/x"));
    }
}
