//! The rules of a history file that span lines: one operation in flight per client and
//! none after an unknown outcome, unique written values, one description per watcher and
//! its lines in the order received, one final read per key.
//!
//! Invariants: run after every line parsed on its own; the first broken rule is a
//! `ParseError` naming the later of the lines involved, and the earlier one in words.

use crate::history::{Final, History, Op, Outcome, Watch};
use crate::malformed::{err, ParseError};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Every rule, in order.
pub fn check(h: &History) -> Result<(), ParseError> {
    validate_clients(&h.ops)?;
    validate_unique_values(&h.ops)?;
    validate_watchers(&h.watches)?;
    validate_finals(&h.finals)
}

/// One operation in flight per client, and none after an unknown outcome (the client
/// goes on under a new identity).
fn validate_clients(ops: &[Op]) -> Result<(), ParseError> {
    let mut by_client: BTreeMap<u64, Vec<&Op>> = BTreeMap::new();
    for op in ops {
        by_client.entry(op.client).or_default().push(op);
    }
    for (client, mut list) in by_client {
        list.sort_by_key(|o| (o.call_ns, o.line));
        for pair in list.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if a.outcome == Outcome::Unknown {
                return err(b.line, format!("client {client} has an operation after one of unknown outcome (line {}); a recorder goes on under a new client id", a.line));
            }
            if a.return_ns.unwrap_or(u64::MAX) > b.call_ns {
                return err(b.line, format!("client {client} calls this before its operation of line {} returned; one operation in flight per client", a.line));
            }
        }
    }
    Ok(())
}

/// No value is written twice to one key: a value names its write.
fn validate_unique_values(ops: &[Op]) -> Result<(), ParseError> {
    let mut seen: HashMap<(&str, &str), usize> = HashMap::new();
    for op in ops {
        if let Some(v) = &op.value {
            if let Some(first) = seen.insert((&op.key, v), op.line) {
                return err(op.line, format!("value {v:?} is written to key {:?} again (first at line {first}); every written value must be unique", op.key));
            }
        }
    }
    Ok(())
}

fn validate_watchers(watches: &[Watch]) -> Result<(), ParseError> {
    let mut first: HashMap<u64, &Watch> = HashMap::new();
    for w in watches {
        match first.get(&w.watcher) {
            None => {
                first.insert(w.watcher, w);
            }
            Some(f) => {
                if (f.key.as_str(), f.prefix, f.start_revision)
                    != (w.key.as_str(), w.prefix, w.start_revision)
                {
                    return err(w.line, format!("watcher {} watches key {:?} (prefix {}) from revision {} at line {}; every line of a watcher repeats the same key, prefix and start_revision", w.watcher, f.key, f.prefix, f.start_revision, f.line));
                }
            }
        }
    }
    let mut last_time: HashMap<u64, u64> = HashMap::new();
    for w in watches {
        let last = last_time.entry(w.watcher).or_insert(0);
        if w.time_ns < *last {
            return err(w.line, format!("watcher {}: `time_ns` goes back ({} after {}); a watcher's lines are in the order received", w.watcher, w.time_ns, last));
        }
        *last = w.time_ns;
    }
    Ok(())
}

fn validate_finals(finals: &[Final]) -> Result<(), ParseError> {
    let mut keys = HashSet::new();
    for f in finals {
        if !keys.insert(f.key.as_str()) {
            return err(
                f.line,
                format!("a second final read of key {:?}; one per key", f.key),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "wellformed_tests.rs"]
mod tests;
