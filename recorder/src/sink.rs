//! The history being recorded: one monotonic clock for every client and watcher, and the
//! lines they produce.
//!
//! Invariants: every time is nanoseconds since the recorder's start on one
//! `std::time::Instant` (monotonic, shared); a watcher's responses are kept in the order
//! they were pushed (one task per watcher pushes them as received); the file is written
//! whole with a rename, so a history file is never half written.

use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;
use zone_consistency::{Final, History, Op, Watch};

pub struct Sink {
    start: Instant,
    history: Mutex<History>,
}

impl Default for Sink {
    fn default() -> Self {
        Sink::new()
    }
}

impl Sink {
    pub fn new() -> Sink {
        Sink {
            start: Instant::now(),
            history: Mutex::new(History::default()),
        }
    }

    /// Nanoseconds since the start, on the shared monotonic clock.
    pub fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    fn with<T>(&self, f: impl FnOnce(&mut History) -> T) -> T {
        f(&mut self.history.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn op(&self, op: Op) {
        self.with(|h| h.ops.push(op));
    }

    pub fn watch(&self, w: Watch) {
        self.with(|h| h.watches.push(w));
    }

    pub fn final_read(&self, f: Final) {
        self.with(|h| h.finals.push(f));
    }

    /// A copy of what was recorded so far.
    pub fn history(&self) -> History {
        self.with(|h| h.clone())
    }

    /// Writes the history as JSON Lines to `path` (through a temporary file and a rename).
    pub fn write(&self, path: &Path) -> Result<(), String> {
        let text = self.with(|h| h.to_jsonl());
        let tmp = path.with_extension("partial");
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| format!("{}: cannot write the history: {e}", path.display()))
    }
}
