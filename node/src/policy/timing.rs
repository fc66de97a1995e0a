//! Where a keeper's round spends its time: each phase's wall time and the etcd calls it
//! made, logged as one line per apply (issue 48 item 7: measured before changing it).
//!
//! Pure bookkeeping: nothing here talks to etcd; the callers count their own calls.

use std::time::{Duration, Instant};

/// The phases of one round, in the order they ran.
#[derive(Debug)]
pub struct Phases {
    started: Instant,
    last: Instant,
    parts: Vec<(&'static str, Duration, usize)>,
}

impl Default for Phases {
    fn default() -> Phases {
        Phases::new()
    }
}

impl Phases {
    pub fn new() -> Phases {
        let now = Instant::now();
        Phases {
            started: now,
            last: now,
            parts: Vec::new(),
        }
    }

    /// Ends phase `name`, which made `calls` etcd calls, now.
    pub fn mark(&mut self, name: &'static str, calls: usize) {
        let now = Instant::now();
        self.parts.push((name, now - self.last, calls));
        self.last = now;
    }

    /// The phases of `other` (an apply's), as though they ran here (they did: the time
    /// since this one's last mark is theirs).
    pub fn absorb(&mut self, other: Phases) {
        self.parts.extend(other.parts);
        self.last = Instant::now();
    }

    /// The time from the start to the last mark.
    pub fn took(&self) -> Duration {
        self.last - self.started
    }

    /// The etcd calls of every phase.
    pub fn calls(&self) -> usize {
        self.parts.iter().map(|(_, _, c)| c).sum()
    }

    /// `<total> ms, <calls> etcd call(s): <phase> <ms> ms (<calls>), …`.
    pub fn line(&self) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let parts: Vec<String> = self
            .parts
            .iter()
            .map(|(name, took, calls)| format!("{name} {:.0} ms ({calls})", ms(*took)))
            .collect();
        format!(
            "{:.0} ms, {} etcd call(s): {}",
            ms(self.took()),
            self.calls(),
            parts.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_add_up_their_calls_in_order() {
        let mut round = Phases::new();
        round.mark("policy", 1);
        let mut apply = Phases::new();
        apply.mark("read", 4602);
        apply.mark("ops", 1);
        round.absorb(apply);
        round.mark("record", 3);
        assert_eq!(round.calls(), 4607);
        let line = round.line();
        assert!(
            line.contains("4607 etcd call(s): policy ")
                && line.contains("(1), read ")
                && line.ends_with("(3)"),
            "{line}"
        );
    }
}
