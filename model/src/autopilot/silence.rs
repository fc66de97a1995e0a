//! How long each voter has gone unanswered, as the decider saw it: a voter is silent from
//! the first look that found it unreachable after one that found it answering (or from the
//! decider's first look, when it never answered since): conservative, since a new leader's
//! decider has seen nothing yet and starts every count again.
//!
//! Invariants: pure; any answer resets a voter's silence to zero, so a voter that flaps
//! (back within `dead_after`) never reaches it; time only moves forward (an earlier
//! `now` than the last look counts as the last look).

use std::collections::BTreeMap;
use std::time::Duration;

/// Each voter's last answer, by node name; `now` is time since a start the caller keeps.
#[derive(Debug, Default, Clone)]
pub struct Silence {
    /// When each node was first seen silent since its last answer (absent: answering).
    silent_since: BTreeMap<String, Duration>,
    last_look: Duration,
}

impl Silence {
    /// One look at `node`: whether it answered, at `now`.
    pub fn look(&mut self, node: &str, answered: bool, now: Duration) {
        let now = now.max(self.last_look);
        self.last_look = now;
        if answered {
            self.silent_since.remove(node);
        } else {
            self.silent_since.entry(node.to_string()).or_insert(now);
        }
    }

    /// How long `node` has been silent at `now` (zero while it answers).
    pub fn silent_for(&self, node: &str, now: Duration) -> Duration {
        self.silent_since
            .get(node)
            .map_or(Duration::ZERO, |since| now.saturating_sub(*since))
    }

    /// Forgets nodes that are no longer voters.
    pub fn keep_only(&mut self, voters: &[&str]) {
        self.silent_since
            .retain(|n, _| voters.contains(&n.as_str()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn silence_counts_from_the_first_unanswered_look_and_an_answer_resets_it() {
        let mut s = Silence::default();
        s.look("a", true, S(0));
        assert_eq!(s.silent_for("a", S(5)), S(0));
        s.look("a", false, S(10));
        s.look("a", false, S(20));
        assert_eq!(s.silent_for("a", S(70)), S(60));
        // Back for one look: the count starts again.
        s.look("a", true, S(71));
        s.look("a", false, S(72));
        assert_eq!(s.silent_for("a", S(100)), S(28));
        // Never answered since the decider began: counted from its first look.
        s.look("b", false, S(80));
        assert_eq!(s.silent_for("b", S(100)), S(20));
        // A look dated before the last one counts as the last one.
        s.look("c", false, S(5));
        assert_eq!(s.silent_for("c", S(100)), S(20));
        s.keep_only(&["a"]);
        assert_eq!(s.silent_for("b", S(100)), S(0));
        assert_eq!(s.silent_for("a", S(100)), S(28));
    }
}
