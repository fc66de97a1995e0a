//! Unknown writes that nobody saw, on a key a watcher covered to the end: they took
//! effect after the final read, or never, so the per-key search can leave them out.
//!
//! A watcher covers key K for an operation called at time t when it watches K from an
//! explicit start revision S no higher than the first revision a write called at t can
//! get (`Facts::revision_before(t)` + 1), and its last event's revision L reaches K's
//! final read: L ≥ the final read's revision F, or K is present at the end and L ≥ its
//! mod revision (nothing wrote K after that up to F). By the watch guarantees (ordered,
//! reliable) its stream then holds every write of K with a revision in [S, F].
//!
//! Invariants: a put or cas of unknown outcome whose value no read, watch event or
//! previous value shows, on a covered key, wrote no revision in [S, F]: it took effect
//! after F (after every operation the search orders, the same as never) or not at all.
//! A delete of unknown outcome likewise, when no watcher shows a delete of K that no ok
//! delete accounts for. Sound for a correct etcd; if a stream were incomplete, this could
//! turn a missed event into a linearizability anomaly, an anomaly all the same (and one
//! the watch rules report for every write they know of).

use crate::facts::Facts;
use crate::history::{EventKind, History, Op, OpKind, Outcome, Watch};
use std::collections::{HashMap, HashSet};

/// What decides, per key.
#[derive(Debug, Default)]
pub struct Unseen<'h> {
    /// Key to the lowest start revision of a watcher that covers it to the end.
    covered_from: HashMap<&'h str, i64>,
    /// (key, value) shown by any read, event or previous value.
    shown: HashSet<(&'h str, &'h str)>,
    /// Keys with a delete event no ok delete accounts for.
    unexplained_deletes: HashSet<&'h str>,
}

impl<'h> Unseen<'h> {
    pub fn new(h: &'h History) -> Unseen<'h> {
        let mut u = Unseen::default();
        for o in h.ops.iter().filter(|o| o.outcome == Outcome::Ok) {
            if let Some(v) = &o.result_value {
                u.shown.insert((&o.key, v));
            }
        }
        let ok_deletes: HashSet<(&str, i64)> = h
            .ops
            .iter()
            .filter(|o| o.op == OpKind::Delete && o.is_effective_ok_write())
            .filter_map(|o| Some((o.key.as_str(), o.revision?)))
            .collect();
        // Per watcher: its first line (what it watches) and its highest event revision.
        let mut watchers: HashMap<u64, (&Watch, i64)> = HashMap::new();
        for w in &h.watches {
            for e in &w.events {
                for v in [&e.value, &e.prev_value].into_iter().flatten() {
                    u.shown.insert((&e.key, v));
                }
                if e.kind == EventKind::Delete
                    && !ok_deletes.contains(&(e.key.as_str(), e.mod_revision))
                {
                    u.unexplained_deletes.insert(&e.key);
                }
            }
            let reached = w.events.iter().map(|e| e.mod_revision).max().unwrap_or(0);
            let entry = watchers.entry(w.watcher).or_insert((w, 0));
            entry.1 = entry.1.max(reached);
        }
        for f in &h.finals {
            if let Some(v) = &f.value {
                u.shown.insert((&f.key, v));
            }
            for &(w, reached) in watchers.values() {
                let reaches =
                    reached >= f.revision || (f.value.is_some() && reached >= f.mod_revision);
                if w.start_revision > 0 && w.matches(&f.key) && reaches {
                    let from = u.covered_from.entry(&f.key).or_insert(w.start_revision);
                    *from = (*from).min(w.start_revision);
                }
            }
        }
        u
    }

    /// Whether `o` (of unknown outcome) wrote nothing before the final read.
    pub fn ruled_out(&self, o: &Op, facts: &Facts) -> bool {
        let Some(&from) = self.covered_from.get(o.key.as_str()) else {
            return false;
        };
        if o.outcome != Outcome::Unknown
            || from > facts.revision_before(o.call_ns).saturating_add(1)
        {
            return false;
        }
        match (o.op, &o.value) {
            (OpKind::Put | OpKind::Cas, Some(v)) => {
                !self.shown.contains(&(o.key.as_str(), v.as_str()))
            }
            (OpKind::Delete, _) => !self.unexplained_deletes.contains(o.key.as_str()),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::gather;
    use crate::parse::parse;

    const PUT: &str = r#"{"type":"op","client":1,"op":"put","key":"k","value":"a","call_ns":1,"return_ns":2,"outcome":"ok","revision":2}"#;
    const LOST: &str = r#"{"type":"op","client":2,"op":"put","key":"k","value":"u","call_ns":3,"outcome":"unknown"}"#;
    const DEL: &str =
        r#"{"type":"op","client":3,"op":"delete","key":"k","call_ns":3,"outcome":"unknown"}"#;
    const FINAL: &str = r#"{"type":"final","revision":2,"key":"k","value":"a","mod_revision":2}"#;

    fn watch(start: i64, events: &str) -> String {
        format!(
            r#"{{"type":"watch","watcher":1,"key":"","prefix":true,"start_revision":{start},"time_ns":9,"revision":2,"events":[{events}]}}"#
        )
    }

    /// Whether the unknown put (line 2) and delete (line 3) are ruled out.
    fn ruled(lines: &[&str]) -> (bool, bool) {
        let h = parse(&lines.join("\n")).unwrap();
        let (facts, _) = gather(&h);
        let u = Unseen::new(&h);
        (
            u.ruled_out(&h.ops[1], &facts),
            u.ruled_out(&h.ops[2], &facts),
        )
    }

    #[test]
    fn a_covering_watcher_rules_out_what_nobody_saw() {
        let put_event = r#"{"kind":"put","key":"k","value":"a","mod_revision":2}"#;
        assert_eq!(
            ruled(&[PUT, LOST, DEL, &watch(1, put_event), FINAL]),
            (true, true)
        );
        // Something saw the value: it took effect.
        let prev = r#"{"kind":"put","key":"k","value":"a","mod_revision":2,"prev_value":"u"}"#;
        assert!(!ruled(&[PUT, LOST, DEL, &watch(1, prev), FINAL]).0);
        // A delete event no ok delete explains: some unknown delete took effect.
        let del_event = r#"{"kind":"delete","key":"k","mod_revision":2}"#;
        let absent = r#"{"type":"final","revision":2,"key":"k","value":null,"mod_revision":0}"#;
        let get = r#"{"type":"op","client":1,"op":"get","key":"k","call_ns":1,"return_ns":2,"outcome":"ok","revision":1,"result_mod_revision":0}"#;
        assert_eq!(
            ruled(&[get, LOST, DEL, &watch(1, del_event), absent]),
            (true, false)
        );
    }

    #[test]
    fn only_a_watcher_that_covers_the_whole_stretch_counts() {
        let put_event = r#"{"kind":"put","key":"k","value":"a","mod_revision":2}"#;
        // No final read; a start revision above what a write called at 3 can get; from
        // now (0); a stream that stops before the key's last write.
        assert_eq!(
            ruled(&[PUT, LOST, DEL, &watch(1, put_event)]),
            (false, false)
        );
        assert_eq!(
            ruled(&[PUT, LOST, DEL, &watch(4, ""), FINAL]),
            (false, false)
        );
        assert_eq!(
            ruled(&[PUT, LOST, DEL, &watch(0, put_event), FINAL]),
            (false, false)
        );
        let later = r#"{"type":"final","revision":5,"key":"k","value":"z","mod_revision":5}"#;
        let z = r#"{"type":"op","client":9,"op":"put","key":"k","value":"z","call_ns":4,"return_ns":5,"outcome":"ok","revision":5}"#;
        assert_eq!(
            ruled(&[PUT, LOST, DEL, z, &watch(1, put_event), later]),
            (false, false)
        );
    }
}
