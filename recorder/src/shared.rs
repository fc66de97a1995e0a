//! What the recorder, its clients and watchers, and a fault driver share while one
//! history is recorded: the [`Control`] flags and counters, and the [`Shared`] state of
//! the tasks.
//!
//! Invariants: every counter and flag is atomic (`SeqCst`), so a fault's thread and the
//! recorder's tasks agree on what ended; client and watcher ids are handed out once
//! each, from 1; at most 12 distinct error notes are kept, each cut to 400 characters.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::connect::CredFiles;
use crate::sink::Sink;

/// What a fault driver and the recorder share while a history is recorded.
#[derive(Debug, Default)]
pub struct Control {
    /// Operations ended so far (any outcome).
    pub ops_done: AtomicU64,
    /// The fault is over (the zone is whole again): clients may stop once `ops` ended.
    pub fault_done: AtomicBool,
    /// Clients send nothing while set (a restore quiesces the writes around its snapshot).
    pub paused: AtomicBool,
    /// Stop now (setup failed).
    pub abort: AtomicBool,
    /// The operations planned (set by the recorder when it starts).
    pub(crate) target: AtomicU64,
    /// Raised when the clients' credential files changed as a restarted service's would
    /// (the least-privilege move): each client drops its connection and makes a new one
    /// with the files as they are now.
    pub reconnect: AtomicU64,
}

impl Control {
    pub fn clients_should_stop(&self) -> bool {
        self.abort.load(Ordering::SeqCst)
            || (self.fault_done.load(Ordering::SeqCst)
                && self.ops_done.load(Ordering::SeqCst) >= self.target.load(Ordering::SeqCst))
    }

    /// Blocks (a fault's thread) until `fraction` of the planned operations ended, or
    /// `limit` passed: Err then.
    pub fn wait_ops(&self, fraction: f64, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        loop {
            let target = self.target.load(Ordering::SeqCst);
            let want = (target as f64 * fraction) as u64;
            if target > 0 && self.ops_done.load(Ordering::SeqCst) >= want {
                return Ok(());
            }
            if self.abort.load(Ordering::SeqCst) {
                return Err("the recorder stopped".into());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "only {} operations ended in {limit:?} (waiting for {want})",
                    self.ops_done.load(Ordering::SeqCst)
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The state every client and watcher task of one history shares.
pub struct Shared {
    pub sink: Arc<Sink>,
    pub control: Arc<Control>,
    pub creds: CredFiles,
    pub keys: Vec<String>,
    pub watch_prefix: String,
    pub op_timeout: Duration,
    pub(crate) next_client: AtomicU64,
    pub(crate) next_watcher: AtomicU64,
    pub(crate) notes: Mutex<Vec<String>>,
}

impl Shared {
    pub fn new_client_id(&self) -> u64 {
        self.next_client.fetch_add(1, Ordering::SeqCst)
    }
    pub fn new_watcher_id(&self) -> u64 {
        self.next_watcher.fetch_add(1, Ordering::SeqCst)
    }
    /// Keeps the first few distinct error messages, for the summary.
    pub fn note_error(&self, text: &str) {
        let mut notes = self.notes.lock().unwrap_or_else(|e| e.into_inner());
        let short: String = text.chars().take(400).collect();
        if notes.len() < 12 && !notes.contains(&short) {
            notes.push(short);
        }
    }
    pub fn note_watch_end(&self, text: String) {
        self.note_error(&text);
    }
}
