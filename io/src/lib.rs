//! zone-io: the house error type and the generic file I/O every zone-etcd crate shares;
//! nothing of certificates, etcd or a command line.
//!
//! - [`error`]: [`Error`], one line naming the file and field at fault and the fix.
//! - [`hex()`]: bytes as lowercase hex (the SHA-256 sums the formats write).
//! - [`read`]: bounded reads of small files (PEM, configs, records), streamed reads and
//!   SHA-256 of large ones.
//! - [`write`](mod@write): atomic, durable writes (temp file, fsync, rename, fsync of the
//!   directory), from memory or streamed from a reader.
//! - [`mode`]: the modes of private and public files, and the check of a key's mode.
//! - [`dir`]: private (0700) directories and trees, directory fsyncs.
//! - [`disk`]: the storage under a directory, and how fast it makes a small write durable.
//! - [`staging`]: multi-file results built aside and renamed into place whole.
//! - [`state`]: the lock every writer of a node's state directory holds.
//!
//! What holds across them: a failed write leaves nothing half-written where a reader
//! looks (the old file, or none, and no temp file; a staging directory goes whole); a key is never readable by others, not even for an
//! instant; a small read never reads more than [`MAX_FILE_BYTES`]; a streamed one holds
//! one buffer of [`CHUNK_BYTES`].
//!
//! The bottom layer: it must never import another crate of the workspace, nor the network,
//! etcd, certificates or a command line (`tests/module_circles/layers.rs` holds it to
//! its list: ring, tempfile, nix).

#![forbid(unsafe_code)]

pub mod dir;
pub mod disk;
pub mod error;
mod hex;
pub mod mode;
pub mod read;
pub mod staging;
pub mod state;
pub mod write;

pub use dir::{ensure_private_dir, ensure_private_tree, entries, is_absent_or_empty, sync_dir};
pub use error::{Error, Result};
pub use hex::hex;
pub use mode::{check_key_mode, KEY_MODE, PRIVATE_DIR_MODE, PUBLIC_MODE};
pub use read::{
    for_each_chunk, read_small_file, read_text, sha256_file, Links, CHUNK_BYTES, MAX_FILE_BYTES,
};
pub use staging::Staging;
pub use write::{copy_durable, write_atomic, write_atomic_from, write_atomic_unsynced, write_new};
