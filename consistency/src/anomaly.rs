//! What the checker reports: one broken rule, where (the line, and the operation or watch
//! response in words), and why.
//!
//! Invariants: `time_ns` is the call time of the operation at fault (a watch response's
//! receive time; a final read's is after every operation), so sorting anomalies by
//! (time, line) puts the first one in time first; `Display` is one line.

use std::fmt;

/// The rules, each a promise of etcd's (see the crate's header for their exact wording).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// A value read that no operation wrote, or only a failed one.
    PhantomValue,
    /// A value with two mod revisions, or a revision with two writes.
    Revisions,
    /// A response's header revision lower than one that returned before it was called.
    HeaderRevision,
    /// A key's mod revision lower than one observed before this was called.
    ModRevision,
    /// No order of a key's operations explains their results.
    Linearizable,
    /// A watch event for a key the watcher did not ask for.
    WatchFilter,
    /// Watch events out of revision order, or before the watch's start revision.
    WatchOrdered,
    /// A watch event delivered twice.
    WatchUnique,
    /// The events of one revision split over two watch responses.
    WatchAtomic,
    /// A watch skipped an event inside the revisions it covered.
    WatchReliable,
    /// A watch event whose previous value is not the key's previous value.
    WatchPrevValue,
    /// A watch event after the watch was compacted or canceled, or above its header.
    WatchEvent,
}

impl Rule {
    pub fn name(self) -> &'static str {
        match self {
            Rule::PhantomValue => "phantom value",
            Rule::Revisions => "revisions",
            Rule::HeaderRevision => "header revision went back",
            Rule::ModRevision => "mod revision went back",
            Rule::Linearizable => "not linearizable",
            Rule::WatchFilter => "watch filter",
            Rule::WatchOrdered => "watch ordered",
            Rule::WatchUnique => "watch unique",
            Rule::WatchAtomic => "watch atomic",
            Rule::WatchReliable => "watch reliable",
            Rule::WatchPrevValue => "watch prev_value",
            Rule::WatchEvent => "watch event",
        }
    }
}

/// One anomaly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anomaly {
    pub rule: Rule,
    /// The history line at fault (1-based).
    pub line: usize,
    pub time_ns: u64,
    /// The operation or response at fault, e.g. `client 3 get key "k" called at 120 ns`.
    pub subject: String,
    pub why: String,
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}: {}: {}: {}",
            self.line,
            self.subject,
            self.rule.name(),
            self.why
        )
    }
}
