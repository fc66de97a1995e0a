//! Bugs injected on purpose into a correct generated history, each the way a broken etcd
//! (or a broken launcher around it) would show it. Each returns None when the history
//! has no place for it (the tests then try the next seed), else the broken history and
//! a sentence saying what was done.

use super::sim::Generated;
use zone_consistency::{History, OpKind, Outcome};

/// A stale read: a get returns an older value of its key (with that value's real mod
/// revision) although a newer write was acknowledged before the get was called.
pub fn stale_read(g: &Generated) -> Option<(History, String)> {
    stale_read_after(g, 0)
}

/// A stale read as above, by a get called at `after_ns` or later.
pub fn stale_read_after(g: &Generated, after_ns: u64) -> Option<(History, String)> {
    let h = &g.history;
    for (gi, get) in h.ops.iter().enumerate() {
        if get.op != OpKind::Get || get.outcome != Outcome::Ok || get.call_ns < after_ns {
            continue;
        }
        // The newest write of the key acknowledged before the get was called...
        let acked = h
            .ops
            .iter()
            .filter(|w| w.key == get.key && w.is_effective_ok_write() && w.value.is_some())
            .filter(|w| w.return_ns.is_some_and(|r| r < get.call_ns))
            .max_by_key(|w| w.revision);
        let Some((acked, Some(newer))) = acked.map(|a| (a, a.revision)) else {
            continue;
        };
        // ...and an older put of the same key, from the store's log.
        let Some(older) = g
            .log
            .iter()
            .rev()
            .find(|a| a.key == get.key && a.rev < newer && a.value.is_some())
        else {
            continue;
        };
        let mut broken = h.clone();
        let o = &mut broken.ops[gi];
        o.result_value = older.value.clone();
        o.result_mod_revision = Some(older.rev);
        let what = format!("line {}: get of {:?} now returns {:?} (revision {}) though {} was acknowledged at revision {newer} before it was called", get.line, get.key, older.value, older.rev, acked.describe());
        return Some((broken, what));
    }
    None
}

/// A lost acknowledged write: an ok put whose value nobody ever sees; every get that read
/// it reads what the key held before it instead. Watch responses are dropped (a lost
/// write has no event; this isolates the read side).
pub fn lost_write(g: &Generated) -> Option<(History, String)> {
    let h = &g.history;
    for w in &h.ops {
        if w.op != OpKind::Put || w.outcome != Outcome::Ok {
            continue;
        }
        let (Some(v), Some(rev)) = (&w.value, w.revision) else {
            continue;
        };
        // Overwritten later (so the final read does not show it), and read after it was
        // acknowledged.
        let overwritten = g.log.iter().any(|a| a.key == w.key && a.rev > rev);
        let read_after = h.ops.iter().any(|r| {
            r.op == OpKind::Get
                && r.result_value.as_ref() == Some(v)
                && r.call_ns > w.return_ns.unwrap_or(u64::MAX)
        });
        if !overwritten || !read_after {
            continue;
        }
        let before = g.log.iter().rev().find(|a| a.key == w.key && a.rev < rev);
        let (pv, pm) = match before {
            Some(a) if a.value.is_some() => (a.value.clone(), a.rev),
            _ => (None, 0),
        };
        let mut broken = h.clone();
        broken.watches.clear();
        for r in broken
            .ops
            .iter_mut()
            .filter(|r| r.op == OpKind::Get && r.result_value.as_ref() == Some(v))
        {
            r.result_value = pv.clone();
            r.result_mod_revision = Some(pm);
        }
        return Some((
            broken,
            format!(
                "line {}: {} acknowledged at revision {rev}, never seen",
                w.line,
                w.describe()
            ),
        ));
    }
    None
}

/// A watch event dropped: one event, neither a watcher's first nor its last, of a write
/// acknowledged at that revision, removed from the watcher's stream.
pub fn drop_event(g: &Generated) -> Option<(History, String)> {
    let h = &g.history;
    let acked: std::collections::HashSet<i64> = h
        .ops
        .iter()
        .filter(|o| o.is_effective_ok_write())
        .filter_map(|o| o.revision)
        .collect();
    for (wi, w) in h.watches.iter().enumerate() {
        let all: Vec<i64> = h
            .watches
            .iter()
            .filter(|x| x.watcher == w.watcher)
            .flat_map(|x| x.events.iter().map(|e| e.mod_revision))
            .collect();
        let (Some(&first), Some(&last)) = (all.first(), all.last()) else {
            continue;
        };
        for (ei, e) in w.events.iter().enumerate() {
            if e.mod_revision != first && e.mod_revision != last && acked.contains(&e.mod_revision)
            {
                let mut broken = h.clone();
                let dropped = broken.watches[wi].events.remove(ei);
                return Some((
                    broken,
                    format!(
                        "line {}: watcher {} loses its event of {:?} at revision {}",
                        w.line, w.watcher, dropped.key, dropped.mod_revision
                    ),
                ));
            }
        }
    }
    None
}

/// A watch event reordered: two successive events of a watcher (of different revisions,
/// in one response or across two) swapped.
pub fn reorder_events(g: &Generated) -> Option<(History, String)> {
    let h = &g.history;
    for w in &h.watches {
        // Positions (response index, event index) of this watcher's events, in order.
        let positions: Vec<(usize, usize)> = h
            .watches
            .iter()
            .enumerate()
            .filter(|(_, x)| x.watcher == w.watcher)
            .flat_map(|(i, x)| (0..x.events.len()).map(move |e| (i, e)))
            .collect();
        for pair in positions.windows(2) {
            let ((ra, ea), (rb, eb)) = (pair[0], pair[1]);
            let (a, b) = (&h.watches[ra].events[ea], &h.watches[rb].events[eb]);
            if a.mod_revision != b.mod_revision {
                let mut broken = h.clone();
                let (a, b) = (a.clone(), b.clone());
                broken.watches[ra].events[ea] = b.clone();
                broken.watches[rb].events[eb] = a.clone();
                return Some((
                    broken,
                    format!(
                        "watcher {}: events at revisions {} and {} swapped (lines {} and {})",
                        w.watcher,
                        a.mod_revision,
                        b.mod_revision,
                        h.watches[ra].line,
                        h.watches[rb].line
                    ),
                ));
            }
        }
    }
    None
}
