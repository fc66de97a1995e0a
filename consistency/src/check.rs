//! The whole check of one history: facts, cross-key rules, the per-key linearizability
//! search (keys in parallel), the watch rules; and reading a file for it.
//!
//! Invariants: a history is clean iff `Report::anomalies` is empty; anomalies come sorted
//! by (time, line, rule), so the first is the first in time; every rule runs on every
//! history (a failure of one does not hide another's findings). Reading a file never
//! panics on its content: unreadable or malformed input is a `FileError` naming the line.

use crate::anomaly::Anomaly;
use crate::history::History;
use crate::keys::{check_key, per_key, KeyHistory};
use crate::parse::{parse, ParseError};
use crate::{cross, facts, watch};
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// What a check found, and the size of what it checked.
#[derive(Debug, Default)]
pub struct Report {
    pub anomalies: Vec<Anomaly>,
    pub ops: usize,
    pub keys: usize,
    pub watch_responses: usize,
}

/// Checks a parsed history.
pub fn check_history(h: &History) -> Report {
    let (facts, mut anomalies) = facts::gather(h);
    anomalies.extend(cross::check(h));
    let keys = per_key(h, &facts);
    anomalies.extend(search_keys(h, &keys));
    anomalies.extend(watch::check(h, &facts));
    anomalies.sort_by_key(|a| (a.time_ns, a.line, a.rule));
    Report {
        anomalies,
        ops: h.ops.len(),
        keys: keys.len(),
        watch_responses: h.watches.len(),
    }
}

/// The per-key searches, on as many threads as there are cores.
fn search_keys(h: &History, keys: &[KeyHistory]) -> Vec<Anomaly> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(keys.len());
    let next = AtomicUsize::new(0);
    let found = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(k) = keys.get(i) else { break };
                if let Some(a) = check_key(h, k) {
                    found.lock().unwrap_or_else(|e| e.into_inner()).push(a);
                }
            });
        }
    });
    found.into_inner().unwrap_or_else(|e| e.into_inner())
}

/// Why a file could not be checked.
#[derive(Debug)]
pub enum FileError {
    Read(std::io::Error),
    Malformed(ParseError),
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileError::Read(e) => write!(f, "cannot read it: {e}"),
            FileError::Malformed(e) => write!(f, "malformed history: {e}"),
        }
    }
}

/// Reads, parses and checks one history file.
pub fn check_file(path: &Path) -> Result<Report, FileError> {
    let bytes = std::fs::read(path).map_err(FileError::Read)?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let line = e.as_bytes()[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        FileError::Malformed(ParseError {
            line,
            message: "not UTF-8".to_string(),
        })
    })?;
    let h = parse(&text).map_err(FileError::Malformed)?;
    Ok(check_history(&h))
}
