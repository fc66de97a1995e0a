//! Encryption of everything a node ships: age (age-encryption.org/v1, binary, not armored)
//! to the owner's X25519 recipients, so Debian's `age -d -i owner.key` reads it and no
//! node can read what it uploaded (the identity stays with the owner, offline).
//!
//! Invariants:
//! - files are streamed through age's 64 KiB chunks: memory stays constant whatever the
//!   size of a snapshot;
//! - an output file appears whole or not at all: it is written to a private (0600)
//!   temporary file beside its target, fsynced, renamed onto it, and the directory fsynced;
//!   a failure (a changed or truncated ciphertext, a full disk) removes the temporary file;
//! - every plaintext byte handed back has passed age's authentication: a decryption that
//!   fails part-way leaves nothing behind;
//! - no key material is ever printed: identities are named by their file only.

use std::fs::{File, Permissions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use age::x25519;
use zone_io::Error;
use zone_io::KEY_MODE;

/// An encrypted file as written: what a manifest records of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encrypted {
    /// Size of the ciphertext in bytes.
    pub size: u64,
    /// SHA-256 of the ciphertext, as `sha256sum` prints it of the file.
    pub sha256: [u8; 32],
}

/// The owner's identities, as read from their identity file.
pub type Identities = Vec<Box<dyn age::Identity + Send + Sync>>;

const BUFFER: usize = 64 * 1024;

/// Parses the `[backup] recipients` (`age1...` X25519 public keys).
pub fn parse_recipients(recipients: &[String]) -> Result<Vec<x25519::Recipient>, Error> {
    if recipients.is_empty() {
        return Err(Error::new("no recipients: backups are encrypted to the owner's age keys")
            .field("backup.recipients")
            .fix("add the owner's public key: recipients = [\"age1...\"] (age-keygen -y owner.key prints it)"));
    }
    recipients
        .iter()
        .enumerate()
        .map(|(n, text)| {
            text.trim().parse::<x25519::Recipient>().map_err(|_| {
                Error::new(format!("{text:?} is not an age X25519 recipient"))
                    .field(format!("backup.recipients[{n}]"))
                    .fix("write the owner's public key as age-keygen prints it (age1...)")
            })
        })
        .collect()
}

fn encryptor(recipients: &[x25519::Recipient]) -> Result<age::Encryptor, Error> {
    age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient)).map_err(
        |e| {
            Error::new(format!("cannot encrypt: {e}"))
                .field("backup.recipients")
                .fix("list at least one age X25519 recipient (age1...)")
        },
    )
}

/// Encrypts the file `src` into `dst` (replaced atomically, mode 0600), streaming.
pub fn encrypt_file(
    src: &Path,
    dst: &Path,
    recipients: &[x25519::Recipient],
) -> Result<Encrypted, Error> {
    let encryptor = encryptor(recipients)?;
    let mut input = File::open(src).map_err(|e| Error::io("read", src, &e))?;
    write_atomically(dst, |file| {
        let counted = Counting::new(BufWriter::with_capacity(BUFFER, file));
        let mut age = encryptor
            .wrap_output(counted)
            .map_err(|e| Error::io("write", dst, &e))?;
        copy(&mut input, &mut age, |e| Error::io("read", src, &e), dst)?;
        let counted = age.finish().map_err(|e| Error::io("write", dst, &e))?;
        let (mut buffered, encrypted) = counted.into_parts();
        buffered.flush().map_err(|e| Error::io("write", dst, &e))?;
        Ok(encrypted)
    })
}

/// Encrypts `plaintext` in memory (manifests, small objects).
pub fn encrypt_bytes(plaintext: &[u8], recipients: &[x25519::Recipient]) -> Result<Vec<u8>, Error> {
    let encryptor = encryptor(recipients)?;
    let mut out = Vec::with_capacity(plaintext.len() + 256);
    let internal = |e: io::Error| Error::new(format!("cannot encrypt in memory: {e}"));
    let mut age = encryptor.wrap_output(&mut out).map_err(internal)?;
    age.write_all(plaintext).map_err(internal)?;
    age.finish().map_err(internal)?;
    Ok(out)
}

/// Loads the owner's identities from a file as `age-keygen` writes it (comment lines and
/// `AGE-SECRET-KEY-1...` lines). The file must be private (0600), as a key file.
pub fn load_identities(path: &Path) -> Result<Identities, Error> {
    zone_io::check_key_mode(path)?;
    let mut bytes = zone_io::read_small_file(path, zone_io::Links::Follow)?;
    let parsed = age::IdentityFile::from_buffer(bytes.as_slice());
    bytes.fill(0);
    std::hint::black_box(&bytes);
    let fix =
        "point to the owner's identity file as age-keygen wrote it (AGE-SECRET-KEY-1... lines)";
    // age's messages name a line number, never the line: no key text can leak from here.
    let identities = parsed
        .map_err(|e| Error::new(format!("not an age identity file: {e}")))
        .and_then(|file| {
            file.into_identities()
                .map_err(|e| Error::new(format!("unusable age identity: {e}")))
        })
        .map_err(|e| e.file(path).fix(fix))?;
    if identities.is_empty() {
        return Err(
            Error::new("holds no age identity (no AGE-SECRET-KEY-1... line)")
                .file(path)
                .fix(fix),
        );
    }
    Ok(identities)
}

/// Decrypts the file `src` into `dst` (replaced atomically, mode 0600), streaming. A
/// ciphertext that was changed or truncated, or that is not for these identities, is
/// refused and nothing is written.
pub fn decrypt_file(
    src: &Path,
    dst: &Path,
    identities: &[Box<dyn age::Identity + Send + Sync>],
) -> Result<(), Error> {
    let input = File::open(src).map_err(|e| Error::io("read", src, &e))?;
    let decryptor = age::Decryptor::new_buffered(BufReader::with_capacity(BUFFER, input))
        .map_err(|e| decrypt_error(e).file(src))?;
    let mut plain = decryptor
        .decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity))
        .map_err(|e| decrypt_error(e).file(src))?;
    write_atomically(dst, |file| {
        let mut out = BufWriter::with_capacity(BUFFER, file);
        copy(&mut plain, &mut out, |e| stream_error(&e).file(src), dst)?;
        out.flush().map_err(|e| Error::io("write", dst, &e))
    })
}

/// Decrypts `ciphertext` in memory; refused whole if any byte was changed.
pub fn decrypt_bytes(
    ciphertext: &[u8],
    identities: &[Box<dyn age::Identity + Send + Sync>],
) -> Result<Vec<u8>, Error> {
    let decryptor = age::Decryptor::new_buffered(ciphertext).map_err(decrypt_error)?;
    let mut plain = decryptor
        .decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity))
        .map_err(decrypt_error)?;
    let mut out = Vec::with_capacity(ciphertext.len());
    plain.read_to_end(&mut out).map_err(|e| stream_error(&e))?;
    Ok(out)
}

const TAMPERED_FIX: &str =
    "take the object from another target or an older backup; this copy was changed or damaged";

fn decrypt_error(e: age::DecryptError) -> Error {
    use age::DecryptError as E;
    match e {
        E::NoMatchingKeys | E::KeyDecryptionFailed => {
            Error::new("cannot decrypt: it was not encrypted to any of the given identities")
                .fix("use the identity file of one of the zone's [backup] recipients")
        }
        E::InvalidHeader | E::UnknownFormat => {
            Error::new("cannot decrypt: not an age-encrypted file (age-encryption.org/v1)")
                .fix(TAMPERED_FIX)
        }
        E::InvalidMac | E::DecryptionFailed => {
            Error::new("cannot decrypt: the age header does not authenticate (changed or damaged)")
                .fix(TAMPERED_FIX)
        }
        E::Io(e) => stream_error(&e),
        other => Error::new(format!("cannot decrypt: {other}")).fix(TAMPERED_FIX),
    }
}

/// An error while reading the plaintext: age reports failed authentication as
/// `InvalidData`; anything else is the underlying read failing.
fn stream_error(e: &io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof => Error::new(
            "cannot decrypt: the data does not authenticate (changed or truncated); nothing was written",
        )
        .fix(TAMPERED_FIX),
        _ => Error::new(format!("cannot read the encrypted data: {e}"))
            .fix("check the file system (space, mounts, permissions)"),
    }
}

/// Copies `from` into `to` with a fixed buffer, telling read failures (`on_read`) from
/// write failures (on `dst`).
fn copy(
    from: &mut impl Read,
    to: &mut impl Write,
    on_read: impl Fn(io::Error) -> Error,
    dst: &Path,
) -> Result<(), Error> {
    let mut buffer = vec![0u8; BUFFER];
    loop {
        let n = match from.read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(on_read(e)),
        };
        to.write_all(&buffer[..n])
            .map_err(|e| Error::io("write", dst, &e))?;
    }
}

/// Writes `dst` through `write` into a 0600 temporary file beside it, then makes it
/// durable and renames it into place; on failure the temporary file is removed.
fn write_atomically<T>(
    dst: &Path,
    write: impl FnOnce(&mut File) -> Result<T, Error>,
) -> Result<T, Error> {
    let dir = match dst.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(Permissions::from_mode(KEY_MODE))
        .tempfile_in(dir)
        .map_err(|e| Error::io("create a temporary file in", dir, &e))?;
    let result = write(tmp.as_file_mut())?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| Error::io("write", dst, &e))?;
    tmp.persist(dst)
        .map_err(|e| Error::io("rename into place", dst, &e.error))?;
    zone_io::sync_dir(dir)?;
    Ok(result)
}

/// A writer that counts and hashes what passes through it.
struct Counting<W> {
    inner: W,
    size: u64,
    digest: ring::digest::Context,
}

impl<W: Write> Counting<W> {
    fn new(inner: W) -> Self {
        Counting {
            inner,
            size: 0,
            digest: ring::digest::Context::new(&ring::digest::SHA256),
        }
    }

    fn into_parts(self) -> (W, Encrypted) {
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(self.digest.finish().as_ref());
        let size = self.size;
        (self.inner, Encrypted { size, sha256 })
    }
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.size += n as u64;
        self.digest.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
#[path = "crypto_tests.rs"]
mod tests;
