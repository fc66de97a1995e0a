//! What the autopilot keeps in the zone's own keys (docs/design/autopilot.md): its state
//! ([`State`] at [`STATE_KEY`], the fence every action's transaction compares, with the
//! last actions), each replaced member ([`Replaced`] at [`REPLACED_PREFIX`]`<node>`, what
//! a returning member's `launch` reads to refuse), each planned absence ([`Away`]), the
//! owner's pause ([`Paused`]) and each node made a standby after the document named it a
//! voter ([`StandbyRole`]).
//!
//! Invariants: a record reads whatever release wrote it (fields it does not know are
//! skipped, a later `format` is read as far as it goes); the text this release writes is
//! pinned by tests; the state keeps at most [`KEPT_ACTIONS`] actions, the newest last.

use serde::{Deserialize, Serialize};

pub const PREFIX: &str = "zone-etcd/autopilot/";
pub const STATE_KEY: &str = "zone-etcd/autopilot/state";
pub const PAUSED_KEY: &str = "zone-etcd/autopilot/paused";
pub const REPLACED_PREFIX: &str = "zone-etcd/autopilot/replaced/";
pub const AWAY_PREFIX: &str = "zone-etcd/autopilot/away/";
pub const STANDBY_PREFIX: &str = "zone-etcd/autopilot/standby/";
/// The format of the records this release writes.
pub const FORMAT: u32 = 1;
/// The actions the state keeps.
pub const KEPT_ACTIONS: usize = 20;

/// One action of the decider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    /// `remove` or `promote`.
    pub action: String,
    pub node: String,
    /// The member's ID, in hex as etcd prints it.
    pub member: String,
    /// For a removal, the standby chosen to replace it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standby: Option<String>,
    /// For a removal, how long it had been silent, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_for_seconds: Option<u64>,
    /// When (RFC 3339), and the member whose keeper decided.
    pub at: String,
    pub by: String,
}

/// The decider's state: the fence and the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub format: u32,
    /// The last actions, the newest last.
    pub actions: Vec<Action>,
}

impl State {
    pub fn new() -> State {
        State {
            format: FORMAT,
            actions: Vec::new(),
        }
    }

    /// The state with `action` recorded, the oldest dropped past [`KEPT_ACTIONS`].
    pub fn with(&self, action: Action) -> State {
        let mut actions = self.actions.clone();
        actions.push(action);
        let drop = actions.len().saturating_sub(KEPT_ACTIONS);
        actions.drain(..drop);
        State {
            format: FORMAT,
            actions,
        }
    }

    pub fn last(&self) -> Option<&Action> {
        self.actions.last()
    }

    pub fn render(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn parse(bytes: &[u8]) -> Result<State, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("not an autopilot state record: {e}"))
    }
}

impl Default for State {
    fn default() -> State {
        State::new()
    }
}

/// A member the autopilot removed, and who took its place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replaced {
    pub format: u32,
    pub node: String,
    /// Its member's ID, in hex.
    pub member: String,
    /// The standby promoted in its place.
    pub by_node: String,
    pub dead_for_seconds: u64,
    pub at: String,
    /// The member whose keeper decided.
    pub decided_by: String,
}

impl Replaced {
    pub fn key(&self) -> String {
        format!("{REPLACED_PREFIX}{}", self.node)
    }

    pub fn render(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn parse(bytes: &[u8]) -> Result<Replaced, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("not an autopilot replaced record: {e}"))
    }

    /// `node2's member 8e9e05c52164694d was replaced by node4 at … (silent for 5m12s)`.
    pub fn line(&self) -> String {
        let d = self.dead_for_seconds;
        format!(
            "{}'s member {} was replaced by {} at {} (silent for {}m{:02}s)",
            self.node,
            self.member,
            self.by_node,
            self.at,
            d / 60,
            d % 60
        )
    }
}

/// A planned absence: the node is not counted dead until `until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Away {
    pub format: u32,
    pub node: String,
    /// RFC 3339.
    pub until: String,
    pub at: String,
    pub by: String,
}

impl Away {
    pub fn key(&self) -> String {
        format!("{AWAY_PREFIX}{}", self.node)
    }

    pub fn render(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn parse(bytes: &[u8]) -> Result<Away, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("not an autopilot away record: {e}"))
    }
}

/// The owner's pause.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Paused {
    pub format: u32,
    pub at: String,
    /// The node whose identity paused it.
    pub by: String,
}

impl Paused {
    pub fn render(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn parse(bytes: &[u8]) -> Result<Paused, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("not an autopilot pause record: {e}"))
    }
}

/// A node made a standby again (`join --standby`) after the document named it a voter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StandbyRole {
    pub format: u32,
    pub node: String,
    pub at: String,
}

impl StandbyRole {
    pub fn key(&self) -> String {
        format!("{STANDBY_PREFIX}{}", self.node)
    }

    pub fn render(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn parse(bytes: &[u8]) -> Result<StandbyRole, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("not an autopilot standby record: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn removal(n: u32) -> Action {
        Action {
            action: "remove".into(),
            node: format!("node{n}.example.zone"),
            member: "8e9e05c52164694d".into(),
            standby: Some("node4.example.zone".into()),
            dead_for_seconds: Some(312),
            at: "2026-11-28T12:00:00Z".into(),
            by: "node1.example.zone".into(),
        }
    }

    #[test]
    fn the_state_this_release_writes_is_pinned_and_keeps_the_last_twenty() {
        let golden = r#"{"format":1,"actions":[{"action":"remove","node":"node2.example.zone","member":"8e9e05c52164694d","standby":"node4.example.zone","dead_for_seconds":312,"at":"2026-11-28T12:00:00Z","by":"node1.example.zone"},{"action":"promote","node":"node4.example.zone","member":"91bc3c398fb3c146","at":"2026-11-28T12:00:01Z","by":"node1.example.zone"}]}"#;
        let state = State::parse(golden.as_bytes()).unwrap();
        assert_eq!(state.render(), golden);
        assert_eq!(state.last().unwrap().action, "promote");
        assert_eq!(state.actions[1].standby, None);
        let mut long = State::new();
        for n in 0..25 {
            long = long.with(removal(n));
        }
        assert_eq!(long.actions.len(), KEPT_ACTIONS);
        assert_eq!(long.actions[0].node, "node5.example.zone");
        assert_eq!(long.last().unwrap().node, "node24.example.zone");
        // A later format's record is read as far as it goes.
        let later = r#"{"format":2,"actions":[],"term":7}"#;
        assert_eq!(State::parse(later.as_bytes()).unwrap().format, 2);
        assert!(State::parse(b"{}").is_err());
    }

    #[test]
    fn the_other_records_this_release_writes_are_pinned() {
        let golden = r#"{"format":1,"node":"node2.example.zone","member":"8e9e05c52164694d","by_node":"node4.example.zone","dead_for_seconds":312,"at":"2026-11-28T12:00:00Z","decided_by":"node1.example.zone"}"#;
        let replaced = Replaced::parse(golden.as_bytes()).unwrap();
        assert_eq!(replaced.render(), golden);
        assert_eq!(
            replaced.key(),
            "zone-etcd/autopilot/replaced/node2.example.zone"
        );
        assert_eq!(
            replaced.line(),
            "node2.example.zone's member 8e9e05c52164694d was replaced by node4.example.zone at 2026-11-28T12:00:00Z (silent for 5m12s)"
        );
        let golden = r#"{"format":1,"node":"nas.example.zone","until":"2026-11-28T20:00:00Z","at":"2026-11-28T12:00:00Z","by":"node1.example.zone"}"#;
        let away = Away::parse(golden.as_bytes()).unwrap();
        assert_eq!(
            (away.render().as_str(), away.key().as_str()),
            (golden, "zone-etcd/autopilot/away/nas.example.zone")
        );
        let golden = r#"{"format":1,"at":"2026-11-28T12:00:00Z","by":"node1.example.zone"}"#;
        assert_eq!(Paused::parse(golden.as_bytes()).unwrap().render(), golden);
        let golden = r#"{"format":1,"node":"node2.example.zone","at":"2026-11-28T12:10:00Z"}"#;
        let role = StandbyRole::parse(golden.as_bytes()).unwrap();
        assert_eq!(
            (role.render().as_str(), role.key().as_str()),
            (golden, "zone-etcd/autopilot/standby/node2.example.zone")
        );
        for bad in [&b"{}"[..], b"[]", b"not json"] {
            assert!(Replaced::parse(bad).is_err());
            assert!(Away::parse(bad).is_err());
            assert!(Paused::parse(bad).is_err());
            assert!(StandbyRole::parse(bad).is_err());
        }
    }
}
