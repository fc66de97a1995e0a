//! A target that counts the requests made to another: what a takeover, a listing or a
//! shipping round costs a store, in requests, for the tests and the benchmark program.
//!
//! Invariant: every call is passed through unchanged and counted once, whatever it
//! returns (a failed request costs the store as much as one that worked).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::{ObjectInfo, Target, TargetError};

/// How many calls of each kind a [`Counting`] target passed on.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub put: u64,
    pub get: u64,
    pub list: u64,
    pub delete: u64,
    /// The names the listings returned, all together.
    pub listed: u64,
}

impl Counts {
    /// Every request but the listings' extra pages (a listing counts once).
    pub fn requests(&self) -> u64 {
        self.put + self.get + self.list + self.delete
    }
}

pub struct Counting {
    inner: Arc<dyn Target>,
    put: AtomicU64,
    get: AtomicU64,
    list: AtomicU64,
    delete: AtomicU64,
    listed: AtomicU64,
}

impl Counting {
    pub fn new(inner: Arc<dyn Target>) -> Counting {
        Counting {
            inner,
            put: AtomicU64::new(0),
            get: AtomicU64::new(0),
            list: AtomicU64::new(0),
            delete: AtomicU64::new(0),
            listed: AtomicU64::new(0),
        }
    }

    pub fn counts(&self) -> Counts {
        Counts {
            put: self.put.load(Ordering::SeqCst),
            get: self.get.load(Ordering::SeqCst),
            list: self.list.load(Ordering::SeqCst),
            delete: self.delete.load(Ordering::SeqCst),
            listed: self.listed.load(Ordering::SeqCst),
        }
    }

    /// The counts so far, and zero again.
    pub fn take(&self) -> Counts {
        let counts = self.counts();
        for c in [&self.put, &self.get, &self.list, &self.delete, &self.listed] {
            c.store(0, Ordering::SeqCst);
        }
        counts
    }
}

impl Target for Counting {
    fn url(&self) -> &str {
        self.inner.url()
    }
    fn put(&self, name: &str, data: &[u8]) -> Result<(), TargetError> {
        self.put.fetch_add(1, Ordering::SeqCst);
        self.inner.put(name, data)
    }
    fn put_file(&self, name: &str, path: &Path) -> Result<(), TargetError> {
        self.put.fetch_add(1, Ordering::SeqCst);
        self.inner.put_file(name, path)
    }
    fn get(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>, TargetError> {
        self.get.fetch_add(1, Ordering::SeqCst);
        self.inner.get(name, limit)
    }
    fn get_to_file(&self, name: &str, path: &Path) -> Result<bool, TargetError> {
        self.get.fetch_add(1, Ordering::SeqCst);
        self.inner.get_to_file(name, path)
    }
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, TargetError> {
        self.list.fetch_add(1, Ordering::SeqCst);
        let listed = self.inner.list(prefix)?;
        self.listed.fetch_add(listed.len() as u64, Ordering::SeqCst);
        Ok(listed)
    }
    fn delete(&self, name: &str) -> Result<(), TargetError> {
        self.delete.fetch_add(1, Ordering::SeqCst);
        self.inner.delete(name)
    }
}
