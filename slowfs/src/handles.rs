//! Open handles: the backing file or directory behind each FUSE file handle.
//!
//! Invariants:
//! - A handle is made by open, create or opendir and lives until its release or
//!   releasedir; its number is never reused while this process runs.
//! - Each holds its backing file as an `Arc<File>`: a sync still waiting when the handle is
//!   released keeps the file open until it has synced and replied.
//! - A directory handle holds the listing read when it was opened (`.` and `..` first), so
//!   readdir's offsets index one fixed list however the directory changes meanwhile.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use fuser::{Errno, FileHandle, FileType};

/// One entry of a directory's listing.
#[derive(Debug, Clone)]
pub struct DirEntry {
    /// The backing `st_ino` (readdir's `d_ino`; it is the node id when that was free).
    pub ino: u64,
    pub kind: FileType,
    pub name: OsString,
}

#[derive(Debug)]
struct Handle {
    ino: u64,
    file: Arc<File>,
    listing: Option<Arc<Vec<DirEntry>>>,
}

/// The table of open handles, shared by the session's threads.
#[derive(Debug)]
pub struct Handles {
    table: Mutex<HashMap<u64, Handle>>,
    next: AtomicU64,
}

impl Default for Handles {
    fn default() -> Handles {
        Handles {
            table: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
        }
    }
}

impl Handles {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Handle>> {
        // Each change is one insert or remove: a poisoned table is still whole.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new handle on `file` for node `ino` (a directory's with its `listing`).
    pub fn open(&self, ino: u64, file: File, listing: Option<Vec<DirEntry>>) -> FileHandle {
        let fh = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(
            fh,
            Handle {
                ino,
                file: Arc::new(file),
                listing: listing.map(Arc::new),
            },
        );
        FileHandle(fh)
    }

    /// The backing file of `fh`; EBADF when it is not open.
    pub fn file(&self, fh: FileHandle) -> Result<Arc<File>, Errno> {
        self.lock()
            .get(&fh.0)
            .map(|h| Arc::clone(&h.file))
            .ok_or(Errno::EBADF)
    }

    /// The listing of directory handle `fh`; EBADF when it is not an open directory.
    pub fn listing(&self, fh: FileHandle) -> Result<Arc<Vec<DirEntry>>, Errno> {
        self.lock()
            .get(&fh.0)
            .and_then(|h| h.listing.clone())
            .ok_or(Errno::EBADF)
    }

    /// Any open file of node `ino`: how a node whose names are all gone is still stat'ed.
    pub fn any_of(&self, ino: u64) -> Option<Arc<File>> {
        self.lock()
            .values()
            .find(|h| h.ino == ino)
            .map(|h| Arc::clone(&h.file))
    }

    /// Closes `fh` (the file itself closes once no waiting sync holds it).
    pub fn release(&self, fh: FileHandle) {
        self.lock().remove(&fh.0);
    }
}
