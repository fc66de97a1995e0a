//! The autopilot's decision, one change at a time (docs/design/autopilot.md, "What it
//! does"): given what the leader's keeper sees, nothing (and why), the removal of a dead
//! voter, or the promotion of the standby that replaces it.
//!
//! Invariants: pure; rules are taken in order and the first that holds decides: no
//! quorum or paused, nothing; a removal whose standby is still a learner, its promotion
//! (never another standby instead); a new voter not yet healthy for `stabilize`, nothing;
//! then a voter silent for `dead_after` (not away) is removed only when a standby is ready
//! and the healthy voters left are at least `min_quorum` and the new configuration's
//! quorum. Remove before promote, as seeds/002 orders it: the window between them needs
//! fewer machines up than the other order (2 of 2 against 3 of 4).

use std::time::Duration;

use super::{majority, Settings};

/// A voting member as the leader's keeper sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voter {
    pub node: String,
    pub id: u64,
    /// It answered the last look.
    pub healthy: bool,
    /// How long it has gone unanswered ([`super::silence`]).
    pub silent_for: Duration,
    /// The owner said it is away (`member away`) until a time not yet passed.
    pub away: bool,
}

/// A standby's learner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standby {
    pub node: String,
    pub id: u64,
    /// Its log is within a tenth of the leader's (etcd promotes it then).
    pub ready: bool,
}

/// The last change, from the decider's state record and the member list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Last {
    /// A dead voter was removed for `standby`, which is not promoted yet.
    Removed { standby: String },
    /// `node` became a voter `since` ago.
    Promoted { node: String, since: Duration },
}

/// What the leader's keeper sees.
#[derive(Debug, Clone)]
pub struct View<'a> {
    /// This member leads and a quorum of voters answers it.
    pub quorum: bool,
    pub paused: bool,
    pub voters: &'a [Voter],
    pub standbys: &'a [Standby],
    pub last: Option<Last>,
}

/// Why nothing is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wait {
    NoQuorum,
    Paused,
    /// A new voter not yet stable: `left` to go, or not healthy.
    Stabilizing {
        node: String,
        left: Duration,
    },
    AllHealthy,
    /// A voter is silent, not yet for `dead_after`.
    NotDeadYet {
        node: String,
        left: Duration,
    },
    /// Every silent voter is away.
    Away,
    /// A dead voter, and no standby ready to take its place.
    NoReadyStandby {
        dead: String,
    },
    /// Removing it would leave fewer healthy voters than `min_quorum` or the quorum.
    TooFewLeft {
        dead: String,
        healthy_after: usize,
        needed: usize,
    },
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Wait(Wait),
    Remove {
        node: String,
        id: u64,
        dead_for: Duration,
        standby: String,
    },
    Promote {
        node: String,
        id: u64,
    },
}

/// The one next step.
pub fn plan(view: &View, settings: &Settings) -> Decision {
    if !view.quorum {
        return Decision::Wait(Wait::NoQuorum);
    }
    if view.paused {
        return Decision::Wait(Wait::Paused);
    }
    match &view.last {
        Some(Last::Removed { standby }) => {
            if let Some(s) = view.standbys.iter().find(|s| s.node == *standby) {
                return Decision::Promote {
                    node: s.node.clone(),
                    id: s.id,
                };
            }
        }
        Some(Last::Promoted { node, since }) => {
            let healthy = view.voters.iter().any(|v| v.node == *node && v.healthy);
            if !healthy || *since < settings.stabilize {
                return Decision::Wait(Wait::Stabilizing {
                    node: node.clone(),
                    left: settings.stabilize.saturating_sub(*since),
                });
            }
        }
        None => {}
    }
    let silent: Vec<&Voter> = view.voters.iter().filter(|v| !v.healthy).collect();
    if silent.is_empty() {
        return Decision::Wait(Wait::AllHealthy);
    }
    let counted: Vec<&&Voter> = silent.iter().filter(|v| !v.away).collect();
    let Some(dead) = counted
        .iter()
        .filter(|v| v.silent_for >= settings.dead_after)
        .max_by(|a, b| a.silent_for.cmp(&b.silent_for).then(b.node.cmp(&a.node)))
    else {
        return Decision::Wait(match counted.iter().max_by_key(|v| v.silent_for) {
            Some(v) => Wait::NotDeadYet {
                node: v.node.clone(),
                left: settings.dead_after.saturating_sub(v.silent_for),
            },
            None => Wait::Away,
        });
    };
    let Some(standby) = view.standbys.iter().find(|s| s.ready) else {
        return Decision::Wait(Wait::NoReadyStandby {
            dead: dead.node.clone(),
        });
    };
    let healthy_after = view.voters.iter().filter(|v| v.healthy).count();
    let needed = settings
        .min_quorum
        .max(majority(view.voters.len().saturating_sub(1)));
    if healthy_after < needed {
        return Decision::Wait(Wait::TooFewLeft {
            dead: dead.node.clone(),
            healthy_after,
            needed,
        });
    }
    Decision::Remove {
        node: dead.node.clone(),
        id: dead.id,
        dead_for: dead.silent_for,
        standby: standby.node.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    fn settings() -> Settings {
        Settings {
            dead_after: S(300),
            min_quorum: 2,
            stabilize: S(30),
        }
    }

    fn voter(node: &str, silent: u64) -> Voter {
        Voter {
            node: node.into(),
            id: node.len() as u64,
            healthy: silent == 0,
            silent_for: S(silent),
            away: false,
        }
    }

    fn standby(node: &str, ready: bool) -> Standby {
        Standby {
            node: node.into(),
            id: 40,
            ready,
        }
    }

    fn decide(voters: &[Voter], standbys: &[Standby], last: Option<Last>) -> Decision {
        let view = View {
            quorum: true,
            paused: false,
            voters,
            standbys,
            last,
        };
        plan(&view, &settings())
    }

    #[test]
    fn a_voter_silent_for_dead_after_is_removed_for_a_ready_standby() {
        let voters = [voter("a", 0), voter("b", 300), voter("c", 0)];
        assert_eq!(
            decide(&voters, &[standby("d", false), standby("e", true)], None),
            Decision::Remove {
                node: "b".into(),
                id: 1,
                dead_for: S(300),
                standby: "e".into()
            }
        );
        // One second short: nothing yet, and how long to go.
        let voters = [voter("a", 0), voter("b", 299), voter("c", 0)];
        assert_eq!(
            decide(&voters, &[standby("d", true)], None),
            Decision::Wait(Wait::NotDeadYet {
                node: "b".into(),
                left: S(1)
            })
        );
    }

    #[test]
    fn nothing_without_a_quorum_while_paused_or_without_a_ready_standby() {
        let voters = [voter("a", 0), voter("b", 900), voter("c", 0)];
        let ready = [standby("d", true)];
        let mut view = View {
            quorum: false,
            paused: false,
            voters: &voters,
            standbys: &ready,
            last: None,
        };
        assert_eq!(plan(&view, &settings()), Decision::Wait(Wait::NoQuorum));
        view.quorum = true;
        view.paused = true;
        assert_eq!(plan(&view, &settings()), Decision::Wait(Wait::Paused));
        assert_eq!(
            decide(&voters, &[standby("d", false)], None),
            Decision::Wait(Wait::NoReadyStandby { dead: "b".into() })
        );
        assert_eq!(
            decide(&voters, &[], None),
            Decision::Wait(Wait::NoReadyStandby { dead: "b".into() })
        );
    }

    #[test]
    fn a_removal_never_leaves_fewer_healthy_voters_than_min_quorum_or_the_quorum() {
        // 5 voters, 2 silent: removing one leaves 3 healthy of 4 (quorum 3): done.
        let five = [
            voter("a", 0),
            voter("b", 900),
            voter("c", 0),
            voter("d", 400),
            voter("e", 0),
        ];
        assert!(matches!(
            decide(&five, &[standby("f", true)], None),
            Decision::Remove { ref node, .. } if node == "b"
        ));
        // 5 voters, 3 silent: no quorum in fact; the rule refuses even if asked (of two
        // equally silent, the first by name is the one named).
        let five = [
            voter("a", 0),
            voter("b", 900),
            voter("c", 900),
            voter("d", 400),
            voter("e", 0),
        ];
        assert_eq!(
            decide(&five, &[standby("f", true)], None),
            Decision::Wait(Wait::TooFewLeft {
                dead: "b".into(),
                healthy_after: 2,
                needed: 3
            })
        );
        // min_quorum above what is left.
        let three = [voter("a", 0), voter("b", 900), voter("c", 0)];
        let view = View {
            quorum: true,
            paused: false,
            voters: &three,
            standbys: &[standby("d", true)],
            last: None,
        };
        let strict = Settings {
            min_quorum: 3,
            ..settings()
        };
        assert_eq!(
            plan(&view, &strict),
            Decision::Wait(Wait::TooFewLeft {
                dead: "b".into(),
                healthy_after: 2,
                needed: 3
            })
        );
    }

    #[test]
    fn after_a_removal_its_standby_is_promoted_then_left_to_settle() {
        let voters = [voter("a", 0), voter("c", 0)];
        let last = Some(Last::Removed {
            standby: "d".into(),
        });
        // Promoted even while etcd still says it is catching up (it refuses until then),
        // and never another standby in its place.
        assert_eq!(
            decide(
                &voters,
                &[standby("d", false), standby("e", true)],
                last.clone()
            ),
            Decision::Promote {
                node: "d".into(),
                id: 40
            }
        );
        let voters = [voter("a", 0), voter("c", 0), voter("d", 0)];
        let settling = Some(Last::Promoted {
            node: "d".into(),
            since: S(10),
        });
        assert_eq!(
            decide(&voters, &[], settling),
            Decision::Wait(Wait::Stabilizing {
                node: "d".into(),
                left: S(20)
            })
        );
        // Stable: the next dead voter may be replaced.
        let voters = [voter("a", 0), voter("c", 600), voter("d", 0)];
        let stable = Some(Last::Promoted {
            node: "d".into(),
            since: S(30),
        });
        assert!(matches!(
            decide(&voters, &[standby("e", true)], stable),
            Decision::Remove { ref node, .. } if node == "c"
        ));
        // A new voter that is not healthy holds everything back.
        let voters = [voter("a", 0), voter("c", 600), voter("d", 5)];
        let unwell = Some(Last::Promoted {
            node: "d".into(),
            since: S(300),
        });
        assert!(matches!(
            decide(&voters, &[standby("e", true)], unwell),
            Decision::Wait(Wait::Stabilizing { .. })
        ));
    }

    #[test]
    fn an_away_voter_is_not_counted_dead_and_a_flapping_one_never_reaches_dead_after() {
        let mut away = voter("b", 900);
        away.away = true;
        let voters = [voter("a", 0), away, voter("c", 0)];
        assert_eq!(
            decide(&voters, &[standby("d", true)], None),
            Decision::Wait(Wait::Away)
        );
        // Flapping: silent 250 s, back, silent again: its silence restarted (silence.rs),
        // so the plan sees the short one.
        let voters = [voter("a", 0), voter("b", 40), voter("c", 0)];
        assert!(matches!(
            decide(&voters, &[standby("d", true)], None),
            Decision::Wait(Wait::NotDeadYet { .. })
        ));
        assert_eq!(
            decide(&[voter("a", 0), voter("b", 0)], &[], None),
            Decision::Wait(Wait::AllHealthy)
        );
    }
}
