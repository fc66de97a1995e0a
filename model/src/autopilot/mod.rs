//! The autopilot (issue 70, docs/design/autopilot.md): a dead voter replaced by a ready
//! standby without the owner, one change at a time, never without a quorum. This module
//! holds what is pure: the zone's `[autopilot]` settings ([`Settings`]), how long each
//! voter has been silent ([`silence`]), the decision ([`plan`]) and the records the
//! decider keeps in the zone ([`record`]). The decider itself (a keeper's duty on the
//! leader, fenced by a transaction on its state record) and `launch`'s refusal of a
//! replaced member are built on these.
//!
//! Invariants: every function here is pure (time comes in as a [`Duration`] since a start
//! the caller keeps); [`plan::plan`] never removes a voter without a quorum, while paused,
//! before the previous change is stable, without a ready standby to promote in its place,
//! or when the healthy voters left would be fewer than [`Settings::min_quorum`] or than
//! the new configuration's quorum.

use std::time::Duration;

pub mod plan;
pub mod record;
pub mod silence;

/// The least `dead_after` a zone may set: a machine's reboot takes longer, and a shorter
/// wait would replace members that only restart.
pub const MIN_DEAD_AFTER: Duration = Duration::from_secs(60);
/// The default `dead_after`: a home machine's reboot or a link's short outage is not a
/// death; planned longer absences use `zone-etcd member away`.
pub const DEFAULT_DEAD_AFTER: Duration = Duration::from_secs(600);
/// The least and the default `stabilize`: how long a new voter must stay healthy before
/// the next change.
pub const MIN_STABILIZE: Duration = Duration::from_secs(10);
pub const DEFAULT_STABILIZE: Duration = Duration::from_secs(30);

/// The zone's `[autopilot]` table, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// How long a voter must be silent, without a break, to be dead.
    pub dead_after: Duration,
    /// The fewest healthy voters a removal may leave.
    pub min_quorum: usize,
    /// How long a new voter must stay healthy before the next change.
    pub stabilize: Duration,
}

impl Settings {
    /// The defaults for a zone whose document lists `voters` voters: `min_quorum` a
    /// majority of them.
    pub fn defaults(voters: usize) -> Settings {
        Settings {
            dead_after: DEFAULT_DEAD_AFTER,
            min_quorum: majority(voters),
            stabilize: DEFAULT_STABILIZE,
        }
    }
}

/// The quorum of `voters` voting members.
pub fn majority(voters: usize) -> usize {
    voters / 2 + 1
}
