//! When the watched revisions become a delta segment. Pure, so the rules are unit-tested.
//!
//! A segment is cut every `delta_every` when revisions are waiting, at once when they
//! weigh [`MAX_SEGMENT_BYTES`], and every [`HEARTBEAT_EVERY`] when nothing changed (an
//! empty delta that says the chain is current up to its time, so an idle zone does not
//! look like a stalled backup).

use std::time::{Duration, Instant};

use crate::segment::{Event, Revision};

/// A segment is cut early at this many bytes of keys and values.
pub const MAX_SEGMENT_BYTES: usize = 8 << 20;
/// An idle zone still writes an empty delta this often.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(30);

pub struct Batch {
    every: Duration,
    revisions: Vec<Revision>,
    bytes: usize,
    last_cut: Instant,
}

impl Batch {
    pub fn new(every: Duration, now: Instant) -> Batch {
        Batch {
            every,
            revisions: Vec::new(),
            bytes: 0,
            last_cut: now,
        }
    }

    pub fn push(&mut self, revision: Revision) {
        self.bytes += revision
            .events
            .iter()
            .map(|e| e.key.len() + e.value.len() + 64)
            .sum::<usize>();
        self.revisions.push(revision);
    }

    /// Adds one watched event received at `time_ms`: to its revision's entry when the
    /// last one is that revision (a transaction's events arrive together), else a new one.
    pub fn push_event(&mut self, event: Event, time_ms: i64) {
        let revision = event.mod_revision;
        self.bytes += event.key.len() + event.value.len() + 64;
        match self.revisions.last_mut() {
            Some(last) if last.revision == revision => last.events.push(event),
            _ => self.revisions.push(Revision {
                revision,
                time_ms,
                events: vec![event],
            }),
        }
    }

    /// Whether a segment is due at `now`.
    pub fn due(&self, now: Instant) -> bool {
        let since = now.saturating_duration_since(self.last_cut);
        self.bytes >= MAX_SEGMENT_BYTES
            || (!self.revisions.is_empty() && since >= self.every)
            || since >= HEARTBEAT_EVERY.max(self.every)
    }

    /// When [`Batch::due`] will next be true if nothing is pushed.
    pub fn next_due(&self) -> Instant {
        let wait = if self.revisions.is_empty() {
            HEARTBEAT_EVERY.max(self.every)
        } else {
            self.every
        };
        self.last_cut + wait
    }

    /// Takes the waiting revisions (maybe none: a heartbeat) and restarts the clock.
    pub fn cut(&mut self, now: Instant) -> Vec<Revision> {
        self.last_cut = now;
        self.bytes = 0;
        std::mem::take(&mut self.revisions)
    }

    pub fn is_empty(&self) -> bool {
        self.revisions.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::EventKind;

    fn rev(n: i64, value_len: usize) -> Revision {
        Revision {
            revision: n,
            time_ms: 0,
            events: vec![Event {
                kind: EventKind::Put,
                key: b"k".to_vec(),
                value: vec![0; value_len],
                create_revision: n,
                mod_revision: n,
                version: 1,
                lease: 0,
            }],
        }
    }

    #[test]
    fn cuts_on_time_when_busy_on_size_at_once_and_heartbeats_when_idle() {
        let t0 = Instant::now();
        let every = Duration::from_secs(5);
        let mut b = Batch::new(every, t0);
        assert!(!b.due(t0 + Duration::from_secs(6)), "nothing to cut yet");
        b.push(rev(1, 10));
        assert!(!b.due(t0 + Duration::from_secs(4)));
        assert!(b.due(t0 + every));
        assert_eq!(b.next_due(), t0 + every);
        assert_eq!(b.cut(t0 + every).len(), 1);
        assert!(b.is_empty());
        let t1 = t0 + every;
        b.push(rev(2, MAX_SEGMENT_BYTES));
        assert!(b.due(t1), "a big batch is cut at once");
        b.cut(t1);
        assert!(!b.due(t1 + HEARTBEAT_EVERY - Duration::from_millis(1)));
        assert!(b.due(t1 + HEARTBEAT_EVERY), "an idle zone still heartbeats");
        assert!(b.cut(t1 + HEARTBEAT_EVERY).is_empty());
        // A transaction's events share one revision entry.
        let e = rev(7, 1).events.remove(0);
        b.push_event(e.clone(), 5);
        b.push_event(
            Event {
                key: b"other".to_vec(),
                ..e.clone()
            },
            6,
        );
        b.push_event(
            Event {
                mod_revision: 8,
                ..e
            },
            7,
        );
        let cut = b.cut(t1);
        assert_eq!(
            cut.iter()
                .map(|r| (r.revision, r.events.len(), r.time_ms))
                .collect::<Vec<_>>(),
            vec![(7, 2, 5), (8, 1, 7)]
        );
    }
}
