//! What a history establishes about values and revisions, gathered from every source:
//! ok writes (their header revision is the new mod revision), ok gets and final reads
//! (value and mod revision read), and watch events (value and mod revision delivered).
//!
//! Invariants, each sound for a correct etcd history of single-key operations with
//! unique values (so a value names its write, and a revision names one write of one
//! key):
//! - A value read or delivered was written to that key by an operation that did not fail
//!   (else `PhantomValue`: a failed write took effect, or nothing wrote it).
//! - A (key, value) has one mod revision, whatever the source; a revision belongs to one
//!   write (a put of one value, or a delete, of one key); a get's or final read's mod
//!   revision is at most its header revision (else `Revisions`).
//! - `events` is every write known to have happened, by key and revision: a write whose
//!   outcome was unknown is in it once anything observed its value with a revision.
//!   `value_rev` gives the per-key model the mod revision of unknown writes when known.

use crate::anomaly::{Anomaly, Rule};
use crate::history::{EventKind, History, OpKind, Outcome};
use std::collections::{BTreeMap, HashMap, HashSet};

/// A write known to have happened at a revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Known {
    Put(String),
    Delete,
}

/// The facts of one history.
#[derive(Debug, Default)]
pub struct Facts {
    /// (key, value) to the index in `History::ops` of the operation (not failed) that
    /// wrote it.
    pub writers: HashMap<(String, String), usize>,
    /// (key, value) to its mod revision, where some source says.
    pub value_rev: HashMap<(String, String), i64>,
    /// Every write known to have happened: key, then revision.
    pub events: BTreeMap<String, BTreeMap<i64, Known>>,
    /// (key, value) written by an operation of unknown outcome.
    pub unknown: HashSet<(String, String)>,
    /// (revision, time) pairs, by revision, each time the earliest at which a response
    /// showed that revision or a later one: sorted, times non-decreasing.
    existed: Vec<(i64, u64)>,
    /// (return time, revision) of ok responses, by time, revisions made running maxima.
    returned: Vec<(u64, i64)>,
}

impl Facts {
    pub fn rev_of(&self, key: &str, value: &str) -> Option<i64> {
        self.value_rev
            .get(&(key.to_string(), value.to_string()))
            .copied()
    }

    /// Written by an operation of unknown outcome, at a revision nothing tells.
    pub fn unresolved(&self, key: &str, value: &str) -> bool {
        let kv = (key.to_string(), value.to_string());
        self.unknown.contains(&kv) && !self.value_rev.contains_key(&kv)
    }

    /// A time by which revision `rev` certainly existed: the earliest return of an ok
    /// response with a header revision ≥ `rev`, or receipt of a watch response with a
    /// header or event revision ≥ `rev`. (A response is made at its header revision, so
    /// every revision up to it was committed before it arrived.)
    pub fn existed_by(&self, rev: i64) -> Option<u64> {
        let i = self.existed.partition_point(|&(r, _)| r < rev);
        self.existed.get(i).map(|&(_, t)| t)
    }

    /// The highest header revision among ok responses that returned strictly before `t`
    /// (0 if none): every revision up to it existed before `t`, so a write called at `t`
    /// gets a higher one.
    pub fn revision_before(&self, t: u64) -> i64 {
        let i = self.returned.partition_point(|&(r, _)| r < t);
        i.checked_sub(1).map_or(0, |i| self.returned[i].1)
    }

    /// The latest write to `key` known before revision `rev`.
    pub fn previous(&self, key: &str, rev: i64) -> Option<(i64, &Known)> {
        self.events
            .get(key)?
            .range(..rev)
            .next_back()
            .map(|(r, k)| (*r, k))
    }
}

/// Where a fact came from, for messages.
#[derive(Clone)]
struct Source {
    line: usize,
    time_ns: u64,
    subject: String,
}

struct Owner {
    key: String,
    known: Known,
    /// The delete operation, for a delete known from one.
    delete_op: Option<usize>,
    line: usize,
}

#[derive(Default)]
struct Gather {
    facts: Facts,
    failed: HashSet<(String, String)>,
    owners: HashMap<i64, Owner>,
    value_lines: HashMap<(String, String), usize>,
    anomalies: Vec<Anomaly>,
}

/// Gathers the facts of `h`, and the anomalies met on the way.
pub fn gather(h: &History) -> (Facts, Vec<Anomaly>) {
    let mut g = Gather::default();
    for (i, op) in h.ops.iter().enumerate() {
        if let Some(v) = &op.value {
            let kv = (op.key.clone(), v.clone());
            if op.outcome == Outcome::Failed {
                g.failed.insert(kv);
            } else {
                if op.outcome == Outcome::Unknown {
                    g.facts.unknown.insert(kv.clone());
                }
                g.facts.writers.insert(kv, i);
            }
        }
    }
    for (i, op) in h.ops.iter().enumerate() {
        if op.outcome != Outcome::Ok {
            continue;
        }
        let src = Source {
            line: op.line,
            time_ns: op.call_ns,
            subject: op.describe(),
        };
        let rev = op.revision.unwrap_or(0);
        match (op.op, &op.value, &op.result_value) {
            (OpKind::Put | OpKind::Cas, Some(v), _) if op.is_effective_ok_write() => {
                g.put(&op.key, v, rev, &src)
            }
            (OpKind::Delete, _, _) if op.is_effective_ok_write() => {
                g.claim(rev, &op.key, Known::Delete, Some(i), &src)
            }
            (OpKind::Get, _, Some(v)) => {
                let m = op.result_mod_revision.unwrap_or(0);
                g.read(&op.key, v, m, rev, &src);
            }
            _ => {}
        }
    }
    let mut existed: Vec<(i64, u64)> = h
        .ops
        .iter()
        .filter(|o| o.outcome == Outcome::Ok)
        .filter_map(|o| Some((o.revision?, o.return_ns?)))
        .collect();
    for w in &h.watches {
        let last_event = w.events.iter().map(|e| e.mod_revision).max().unwrap_or(0);
        existed.push((w.revision.max(last_event), w.time_ns));
    }
    existed.sort_unstable();
    for i in (1..existed.len()).rev() {
        existed[i - 1].1 = existed[i - 1].1.min(existed[i].1);
    }
    g.facts.existed = existed;
    let mut returned: Vec<(u64, i64)> = h
        .ops
        .iter()
        .filter(|o| o.outcome == Outcome::Ok)
        .filter_map(|o| Some((o.return_ns?, o.revision?)))
        .collect();
    returned.sort_unstable();
    for i in 1..returned.len() {
        returned[i].1 = returned[i].1.max(returned[i - 1].1);
    }
    g.facts.returned = returned;
    let end = h.end_ns();
    for f in &h.finals {
        if let Some(v) = &f.value {
            let src = Source {
                line: f.line,
                time_ns: end,
                subject: f.describe(),
            };
            g.read(&f.key, v, f.mod_revision, f.revision, &src);
        }
    }
    for w in &h.watches {
        let src = Source {
            line: w.line,
            time_ns: w.time_ns,
            subject: w.describe(),
        };
        for e in &w.events {
            match (&e.kind, &e.value) {
                (EventKind::Put, Some(v)) => {
                    if g.real(&e.key, v, &src) {
                        g.put(&e.key, v, e.mod_revision, &src);
                    }
                }
                _ => g.claim(e.mod_revision, &e.key, Known::Delete, None, &src),
            }
        }
    }
    (g.facts, g.anomalies)
}

impl Gather {
    fn anomaly(&mut self, rule: Rule, src: &Source, why: String) {
        self.anomalies.push(Anomaly {
            rule,
            line: src.line,
            time_ns: src.time_ns,
            subject: src.subject.clone(),
            why,
        });
    }

    /// A read of (value, mod revision) at header revision `header`.
    fn read(&mut self, key: &str, value: &str, m: i64, header: i64, src: &Source) {
        if m > header {
            let why = format!(
                "read {value:?} at mod revision {m}, above the response's header revision {header}"
            );
            self.anomaly(Rule::Revisions, src, why);
        }
        if self.real(key, value, src) {
            self.put(key, value, m, src);
        }
    }

    /// Whether `value` was written to `key` by an operation that did not fail.
    fn real(&mut self, key: &str, value: &str, src: &Source) -> bool {
        let kv = (key.to_string(), value.to_string());
        if self.facts.writers.contains_key(&kv) {
            return true;
        }
        let why = if self.failed.contains(&kv) {
            format!("value {value:?} of key {key:?} was written only by a put or cas that failed (failed: did not take effect)")
        } else {
            format!("value {value:?} of key {key:?} was never written")
        };
        self.anomaly(Rule::PhantomValue, src, why);
        false
    }

    /// (key, value) at mod revision `rev`.
    fn put(&mut self, key: &str, value: &str, rev: i64, src: &Source) {
        let kv = (key.to_string(), value.to_string());
        match self.facts.value_rev.get(&kv) {
            Some(&known) if known != rev => {
                let first = self.value_lines.get(&kv).copied().unwrap_or(0);
                let why = format!("value {value:?} of key {key:?} has mod revision {rev} here and {known} at line {first}");
                self.anomaly(Rule::Revisions, src, why);
                return;
            }
            Some(_) => {}
            None => {
                self.facts.value_rev.insert(kv.clone(), rev);
                self.value_lines.insert(kv, src.line);
            }
        }
        self.claim(rev, key, Known::Put(value.to_string()), None, src);
    }

    /// Revision `rev` is this write of `key`.
    fn claim(&mut self, rev: i64, key: &str, known: Known, delete_op: Option<usize>, src: &Source) {
        if let Some(o) = self.owners.get(&rev) {
            let same_delete = match (o.delete_op, delete_op) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            };
            if o.key != key || o.known != known || !same_delete {
                let why = format!(
                    "revision {rev} is {} here and {} at line {}; a revision is one write of one key",
                    describe(key, &known),
                    describe(&o.key, &o.known),
                    o.line
                );
                self.anomaly(Rule::Revisions, src, why);
            }
            return;
        }
        self.owners.insert(
            rev,
            Owner {
                key: key.to_string(),
                known: known.clone(),
                delete_op,
                line: src.line,
            },
        );
        self.facts
            .events
            .entry(key.to_string())
            .or_default()
            .insert(rev, known);
    }
}

/// `put "v" of key "k"` or `delete of key "k"`.
pub fn describe(key: &str, known: &Known) -> String {
    match known {
        Known::Put(v) => format!("put {v:?} of key {key:?}"),
        Known::Delete => format!("delete of key {key:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;

    fn facts(text: &str) -> (Facts, Vec<Anomaly>) {
        gather(&parse(text).unwrap())
    }

    const PUT: &str = r#"{"type":"op","client":1,"op":"put","key":"k","value":"a","call_ns":1,"return_ns":2,"outcome":"ok","revision":5}"#;

    #[test]
    fn resolves_unknown_writes_from_what_was_read() {
        let unknown = r#"{"type":"op","client":2,"op":"put","key":"k","value":"b","call_ns":1,"outcome":"unknown"}"#;
        let get = r#"{"type":"op","client":3,"op":"get","key":"k","call_ns":3,"return_ns":4,"outcome":"ok","revision":9,"result_value":"b","result_mod_revision":7}"#;
        let (f, a) = facts(&format!("{PUT}\n{unknown}\n{get}\n"));
        assert!(a.is_empty(), "{a:?}");
        assert_eq!(f.rev_of("k", "a"), Some(5));
        assert_eq!(f.rev_of("k", "b"), Some(7));
        assert_eq!(f.previous("k", 7), Some((5, &Known::Put("a".into()))));
        assert_eq!(f.previous("k", 5), None);
    }

    #[test]
    fn finds_phantoms_and_conflicts() {
        let failed = r#"{"type":"op","client":2,"op":"put","key":"k","value":"f","call_ns":1,"return_ns":2,"outcome":"failed"}"#;
        let get_f = r#"{"type":"op","client":3,"op":"get","key":"k","call_ns":3,"return_ns":4,"outcome":"ok","revision":9,"result_value":"f","result_mod_revision":6}"#;
        let (_, a) = facts(&format!("{PUT}\n{failed}\n{get_f}\n"));
        assert_eq!(a.len(), 1);
        assert_eq!((a[0].rule, a[0].line), (Rule::PhantomValue, 3));
        assert!(a[0].why.contains("failed"), "{}", a[0]);

        let get_a6 = r#"{"type":"op","client":3,"op":"get","key":"k","call_ns":3,"return_ns":4,"outcome":"ok","revision":9,"result_value":"a","result_mod_revision":6}"#;
        let (_, a) = facts(&format!("{PUT}\n{get_a6}\n"));
        assert_eq!(a[0].rule, Rule::Revisions);
        assert!(
            a[0].why.contains("mod revision 6 here and 5 at line 1"),
            "{}",
            a[0]
        );

        let other_key = r#"{"type":"op","client":2,"op":"put","key":"j","value":"x","call_ns":1,"return_ns":2,"outcome":"ok","revision":5}"#;
        let (_, a) = facts(&format!("{PUT}\n{other_key}\n"));
        assert!(
            a[0].why
                .contains("revision 5 is put \"x\" of key \"j\" here"),
            "{}",
            a[0]
        );

        let above = r#"{"type":"op","client":3,"op":"get","key":"k","call_ns":3,"return_ns":4,"outcome":"ok","revision":4,"result_value":"a","result_mod_revision":5}"#;
        let (_, a) = facts(&format!("{PUT}\n{above}\n"));
        assert!(a[0].why.contains("above the response's header"), "{}", a[0]);

        let event = r#"{"type":"watch","watcher":1,"key":"k","start_revision":1,"time_ns":5,"revision":9,"events":[{"kind":"delete","key":"k","mod_revision":5}]}"#;
        let (_, a) = facts(&format!("{PUT}\n{event}\n"));
        assert!(
            a[0].why.contains("revision 5 is delete of key \"k\" here"),
            "{}",
            a[0]
        );
    }
}
