//! The lines of a history file, as Rust types (the format itself is documented in the
//! crate's header, `lib.rs`).
//!
//! Invariants: these types are exactly the JSON objects of the format: every field of
//! the format is a field here, under the same name, and nothing else is accepted
//! (`deny_unknown_fields`), so a typo in a recorder is an error and not a silently
//! ignored field. Optional fields are omitted when serialized. The `line` fields are not
//! part of the format: the parser fills them with the 1-based line number, for messages.
//! What the values must satisfy beyond their JSON types is checked in `parse.rs`.

use serde::{Deserialize, Serialize};

/// What a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpKind {
    #[default]
    Get,
    Put,
    Delete,
    Cas,
}

impl OpKind {
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Get => "get",
            OpKind::Put => "put",
            OpKind::Delete => "delete",
            OpKind::Cas => "cas",
        }
    }
}

/// How an operation ended, as far as its client knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The response arrived.
    #[default]
    Ok,
    /// Definitely did not take effect (an error etcd returns before doing anything).
    Failed,
    /// May have taken effect at any time after its call, or never (timeout, lost
    /// connection); its return time is taken as +infinity.
    Unknown,
}

/// One operation of one client: `{"type":"op",...}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Op {
    #[serde(skip)]
    pub line: usize,
    pub client: u64,
    pub op: OpKind,
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_mod_revision: Option<i64>,
    pub call_ns: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_ns: Option<u64>,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_mod_revision: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub succeeded: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<i64>,
}

impl Op {
    /// An ok operation that made a new revision: a put, a cas whose compare held, a
    /// delete that deleted the key.
    pub fn is_effective_ok_write(&self) -> bool {
        self.outcome == Outcome::Ok
            && match self.op {
                OpKind::Put => true,
                OpKind::Cas => self.succeeded == Some(true),
                OpKind::Delete => self.deleted.unwrap_or(0) > 0,
                OpKind::Get => false,
            }
    }
    /// "client 3 get key "k" called at 120 ns", for messages.
    pub fn describe(&self) -> String {
        format!(
            "client {} {} key {:?} called at {} ns",
            self.client,
            self.op.name(),
            self.key,
            self.call_ns
        )
    }
}

/// The kind of a watch event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Put,
    Delete,
}

/// One event of a watch response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    pub kind: EventKind,
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub mod_revision: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_revision: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_value: Option<String>,
}

/// One watch response as received: `{"type":"watch",...}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Watch {
    #[serde(skip)]
    pub line: usize,
    pub watcher: u64,
    pub key: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub prefix: bool,
    pub start_revision: i64,
    pub time_ns: u64,
    pub revision: i64,
    #[serde(default, skip_serializing_if = "is_false")]
    pub compacted: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub canceled: bool,
    #[serde(default)]
    pub events: Vec<Event>,
}

impl Watch {
    /// Whether an event on `key` is one this watcher asked for.
    pub fn matches(&self, key: &str) -> bool {
        if self.prefix {
            key.starts_with(&self.key)
        } else {
            key == self.key
        }
    }
    pub fn describe(&self) -> String {
        format!("watcher {} response at {} ns", self.watcher, self.time_ns)
    }
}

/// A read of one key after the run: `{"type":"final",...}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Final {
    #[serde(skip)]
    pub line: usize,
    pub revision: i64,
    pub key: String,
    #[serde(default)]
    pub value: Option<String>,
    pub mod_revision: i64,
}

impl Final {
    pub fn describe(&self) -> String {
        format!("final read of key {:?}", self.key)
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One line of a history file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Line {
    Op(Op),
    Watch(Watch),
    Final(Final),
}

/// A whole history file, its lines sorted by kind, each kind in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    pub ops: Vec<Op>,
    pub watches: Vec<Watch>,
    pub finals: Vec<Final>,
}

impl History {
    /// A time after every operation's call and return: when the final reads happen.
    pub fn end_ns(&self) -> u64 {
        let last = self
            .ops
            .iter()
            .map(|o| o.call_ns.max(o.return_ns.unwrap_or(0)))
            .max();
        last.unwrap_or(0).saturating_add(1)
    }

    /// The history as JSON Lines, ops, then watch responses, then final reads.
    pub fn to_jsonl(&self) -> String {
        let mut out = String::new();
        let lines = self
            .ops
            .iter()
            .cloned()
            .map(Line::Op)
            .chain(self.watches.iter().cloned().map(Line::Watch))
            .chain(self.finals.iter().cloned().map(Line::Final));
        for line in lines {
            // Serializing these plain structs cannot fail.
            out.push_str(&serde_json::to_string(&line).unwrap_or_default());
            out.push('\n');
        }
        out
    }
}
