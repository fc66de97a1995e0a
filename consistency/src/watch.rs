//! The watch guarantees, as etcd's robustness suite states them
//! (tests/robustness/validate/watch.go), per watcher over its responses in the order
//! received.
//!
//! Invariants (rules), each sound for a correct etcd:
//! - Filter: every event is on the watched key (or under the watched prefix).
//! - Ordered: event revisions never decrease along the watcher's events, and none is
//!   below the watch's start revision (when it gave one).
//! - Unique: no (key, revision) is delivered twice.
//! - Atomic: the events of one revision come in one response: a response's first event
//!   is not at the revision of the previous response's last event.
//! - Reliable: between the first revision the watcher covers (its start revision, else
//!   its first event's) and its last event's revision, it received every write known to
//!   have happened on keys it watches (`facts.rs`: ok writes, reads, every watcher's
//!   events, final reads). A watcher that received no event covers nothing.
//! - Previous value: an event's `prev_value`, when given, is the value of the key's
//!   previous known write (the latest known below the event's revision), or a value
//!   written by an operation of unknown outcome that nothing placed. A missing or null
//!   `prev_value` is not checked: after a compaction etcd may omit it (as the suite does).
//! - Event: no event's revision is above its response's header revision, and nothing
//!   comes after a response with `compacted` or `canceled` (they end a watch). That an
//!   event's value and revision agree with the writes is `facts.rs` (one mod revision per
//!   value, one write per revision).

use crate::anomaly::{Anomaly, Rule};
use crate::facts::{describe, Facts, Known};
use crate::history::{History, Watch};
use std::collections::{BTreeMap, HashSet};

/// Checks every watcher of `h`.
pub fn check(h: &History, facts: &Facts) -> Vec<Anomaly> {
    let mut watchers: BTreeMap<u64, Vec<&Watch>> = BTreeMap::new();
    for w in &h.watches {
        watchers.entry(w.watcher).or_default().push(w);
    }
    let mut by_rev: BTreeMap<i64, Vec<(&str, &Known)>> = BTreeMap::new();
    for (key, events) in &facts.events {
        for (rev, known) in events {
            by_rev.entry(*rev).or_default().push((key, known));
        }
    }
    let mut out = Vec::new();
    for responses in watchers.values() {
        out.extend(check_watcher(responses, facts, &by_rev));
    }
    out
}

fn anomaly(r: &Watch, rule: Rule, why: String) -> Anomaly {
    Anomaly {
        rule,
        line: r.line,
        time_ns: r.time_ns,
        subject: r.describe(),
        why,
    }
}

fn check_watcher(
    responses: &[&Watch],
    facts: &Facts,
    by_rev: &BTreeMap<i64, Vec<(&str, &Known)>>,
) -> Vec<Anomaly> {
    let mut out = Vec::new();
    let mut ended: Option<usize> = None;
    let mut last_rev = 0;
    let mut previous_response_last = None;
    let mut seen: HashSet<(&str, i64)> = HashSet::new();
    let mut first_event = None;
    for r in responses {
        if let Some(line) = ended {
            out.push(anomaly(
                r,
                Rule::WatchEvent,
                format!("a response after the watch ended (compacted or canceled at line {line})"),
            ));
        }
        if let (Some(first), Some(prev)) = (r.events.first(), previous_response_last) {
            if first.mod_revision == prev {
                let why = format!("its first event is at revision {prev}, the revision of the previous response's last event: one revision split over two responses");
                out.push(anomaly(r, Rule::WatchAtomic, why));
            }
        }
        for e in &r.events {
            let (key, rev) = (e.key.as_str(), e.mod_revision);
            first_event.get_or_insert(rev);
            if !r.matches(key) {
                let what = if r.prefix { "prefix" } else { "key" };
                out.push(anomaly(r, Rule::WatchFilter, format!("an event of key {key:?} at revision {rev}, outside the watched {what} {:?}", r.key)));
            }
            if r.start_revision > 0 && rev < r.start_revision {
                out.push(anomaly(
                    r,
                    Rule::WatchOrdered,
                    format!(
                        "an event at revision {rev}, below the watch's start revision {}",
                        r.start_revision
                    ),
                ));
            }
            if rev < last_rev {
                out.push(anomaly(r, Rule::WatchOrdered, format!("an event of key {key:?} at revision {rev} after one at revision {last_rev}")));
            }
            if !seen.insert((key, rev)) {
                out.push(anomaly(
                    r,
                    Rule::WatchUnique,
                    format!("the event of key {key:?} at revision {rev} delivered twice"),
                ));
            }
            if !r.compacted && rev > r.revision {
                out.push(anomaly(
                    r,
                    Rule::WatchEvent,
                    format!(
                        "an event at revision {rev}, above the response's header revision {}",
                        r.revision
                    ),
                ));
            }
            if let Some(p) = &e.prev_value {
                let previous = facts.previous(key, rev);
                let fine = matches!(previous, Some((_, Known::Put(w))) if w == p)
                    || facts.unresolved(key, p);
                if !fine {
                    let known = match previous {
                        Some((at, k)) => format!("{} at revision {at}", describe(key, k)),
                        None => "none".to_string(),
                    };
                    let why = format!("the event of key {key:?} at revision {rev} has prev_value {p:?}, but the key's previous write is {known}");
                    out.push(anomaly(r, Rule::WatchPrevValue, why));
                }
            }
            last_rev = last_rev.max(rev);
        }
        if let Some(last) = r.events.last() {
            previous_response_last = Some(last.mod_revision);
        }
        if r.compacted || r.canceled {
            ended.get_or_insert(r.line);
        }
    }
    let (Some(first_event), Some(w)) = (first_event, responses.first()) else {
        return out;
    };
    let first = if w.start_revision > 0 {
        w.start_revision
    } else {
        first_event
    };
    if first > last_rev {
        // Every event below the start revision: reported above as out of order.
        return out;
    }
    for (&rev, writes) in by_rev.range(first..=last_rev) {
        for &(key, known) in writes {
            if w.matches(key) && !seen.contains(&(key, rev)) {
                // Reported at the first response past the gap.
                let at = responses
                    .iter()
                    .find(|r| r.events.iter().any(|e| e.mod_revision > rev))
                    .unwrap_or(w);
                let why = format!(
                    "it skipped revision {rev} ({}), inside the revisions it covered ({first} to its last event at {last_rev})",
                    describe(key, known)
                );
                out.push(anomaly(at, Rule::WatchReliable, why));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::gather;
    use crate::parse::parse;

    /// Puts a, b, c on key "k" at revisions 2, 3, 4, all ok but `unknown` (of unknown
    /// outcome, revision not given); then the watch lines.
    fn run(watch_lines: &[&str], unknown: &str) -> Vec<Anomaly> {
        let mut lines: Vec<String> = [("a", 2), ("b", 3), ("c", 4)]
            .iter()
            .map(|(v, rev)| {
                let call = 2 * rev;
                if *v == unknown {
                    format!(r#"{{"type":"op","client":{rev},"op":"put","key":"k","value":"{v}","call_ns":{call},"outcome":"unknown"}}"#)
                } else {
                    format!(r#"{{"type":"op","client":{rev},"op":"put","key":"k","value":"{v}","call_ns":{call},"return_ns":{},"outcome":"ok","revision":{rev}}}"#, call + 1)
                }
            })
            .collect();
        lines.extend(watch_lines.iter().map(|l| l.to_string()));
        let h = parse(&lines.join("\n")).unwrap();
        let (facts, found) = gather(&h);
        assert!(found.is_empty(), "{found:?}");
        check(&h, &facts)
    }

    fn resp(watcher: u64, time: u64, events: &[(i64, &str, Option<&str>)]) -> String {
        let events: Vec<String> = events
            .iter()
            .map(|(rev, v, prev)| {
                let prev = prev.map_or(String::new(), |p| format!(r#","prev_value":"{p}""#));
                format!(r#"{{"kind":"put","key":"k","value":"{v}","mod_revision":{rev}{prev}}}"#)
            })
            .collect();
        format!(
            r#"{{"type":"watch","watcher":{watcher},"key":"k","start_revision":2,"time_ns":{time},"revision":4,"events":[{}]}}"#,
            events.join(",")
        )
    }

    fn rules(a: &[Anomaly]) -> Vec<Rule> {
        a.iter().map(|a| a.rule).collect()
    }

    #[test]
    fn a_complete_ordered_stream_is_clean() {
        let r1 = resp(1, 10, &[(2, "a", None), (3, "b", Some("a"))]);
        let r2 = resp(1, 11, &[(4, "c", Some("b"))]);
        assert!(run(&[&r1, &r2], "").is_empty());
        // No prev_value: not checked.
        let r = resp(1, 10, &[(2, "a", None), (3, "b", None), (4, "c", None)]);
        assert!(run(&[&r], "").is_empty());
    }

    #[test]
    fn finds_reordered_duplicated_split_and_skipped_events() {
        let r = resp(1, 10, &[(3, "b", None), (2, "a", None), (4, "c", None)]);
        assert_eq!(rules(&run(&[&r], "")), [Rule::WatchOrdered]);
        let r1 = resp(1, 10, &[(2, "a", None), (3, "b", None)]);
        let r2 = resp(1, 11, &[(3, "b", None), (4, "c", None)]);
        assert_eq!(
            rules(&run(&[&r1, &r2], "")),
            [Rule::WatchAtomic, Rule::WatchUnique]
        );
        // Revision 3 skipped: an ok write; reported at the response past the gap.
        let r1 = resp(1, 10, &[(2, "a", None)]);
        let r2 = resp(1, 11, &[(4, "c", None)]);
        let a = run(&[&r1, &r2], "");
        assert_eq!(rules(&a), [Rule::WatchReliable]);
        assert_eq!(a[0].time_ns, 11);
        assert!(
            a[0].why
                .contains("skipped revision 3 (put \"b\" of key \"k\")"),
            "{}",
            a[0]
        );
        // Known from another watcher only (b's put of unknown outcome): still a gap.
        let other = resp(2, 12, &[(2, "a", None), (3, "b", None), (4, "c", None)]);
        let mine = resp(1, 12, &[(2, "a", None), (4, "c", None)]);
        assert!(run(&[&other, &other.replace(":2,", ":1,")], "b").is_empty());
        let a = run(&[&other, &mine], "b");
        assert_eq!(rules(&a), [Rule::WatchReliable]);
        // Before the start revision.
        let r = r#"{"type":"watch","watcher":1,"key":"k","start_revision":3,"time_ns":10,"revision":4,"events":[{"kind":"put","key":"k","value":"a","mod_revision":2}]}"#;
        assert!(rules(&run(&[r], "")).contains(&Rule::WatchOrdered));
    }

    #[test]
    fn checks_previous_values() {
        let r = resp(1, 10, &[(2, "a", None), (3, "b", Some("c"))]);
        let a = run(&[&r], "");
        assert_eq!(rules(&a), [Rule::WatchPrevValue]);
        assert!(
            a[0].why
                .contains("previous write is put \"a\" of key \"k\" at revision 2"),
            "{}",
            a[0]
        );
        let r = resp(1, 10, &[(2, "a", Some("b"))]);
        assert!(run(&[&r], "")[0].why.contains("previous write is none"));
        // A value written with unknown outcome and never placed may be the previous one.
        let r = resp(1, 10, &[(2, "a", None), (3, "b", Some("c"))]);
        let lines = [r.as_str()];
        let found = run(&lines, "c");
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn filters_and_endings() {
        let r = r#"{"type":"watch","watcher":1,"key":"j","start_revision":0,"time_ns":10,"revision":4,"events":[{"kind":"put","key":"k","value":"a","mod_revision":2}]}"#;
        assert_eq!(rules(&run(&[r], "")), [Rule::WatchFilter]);
        let prefix = r#"{"type":"watch","watcher":1,"key":"","prefix":true,"start_revision":0,"time_ns":10,"revision":4,"events":[{"kind":"put","key":"k","value":"b","mod_revision":3}]}"#;
        assert!(run(&[prefix], "").is_empty());
        let ended = r#"{"type":"watch","watcher":1,"key":"k","start_revision":0,"time_ns":9,"revision":4,"compacted":true}"#;
        let after = r#"{"type":"watch","watcher":1,"key":"k","start_revision":0,"time_ns":10,"revision":4,"events":[{"kind":"put","key":"k","value":"b","mod_revision":3}]}"#;
        assert_eq!(rules(&run(&[ended, after], "")), [Rule::WatchEvent]);
        let above = r#"{"type":"watch","watcher":1,"key":"k","start_revision":0,"time_ns":10,"revision":3,"events":[{"kind":"put","key":"k","value":"c","mod_revision":4}]}"#;
        assert_eq!(rules(&run(&[above], "")), [Rule::WatchEvent]);
    }
}
