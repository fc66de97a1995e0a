//! zone-consistency: checks recorded etcd histories against etcd's promises. It knows
//! nothing of the launcher: a history file in, anomalies out.
//!
//! # The history format (JSON Lines)
//!
//! One JSON object per line (blank lines are skipped), its `"type"` one of `op`, `watch`,
//! `final`. Unknown fields are errors. Times are nanoseconds from one monotonic clock
//! shared by every client and watcher of the history. Every key is absent when the
//! history starts (a recorder uses fresh keys), and only the history's own operations
//! write its keys, each a single-key request.
//!
//! **`op`**: one operation of one client, written when it ends.
//! - `client` (u64): the client; one operation in flight per client, no retries, and
//!   after an `unknown` outcome the client goes on under a new id.
//! - `op`: `get`, `put`, `delete` or `cas`; `key` (string).
//! - `value` (string; put and cas only): the value written. No value is written twice
//!   to one key (make them unique: a value names its write).
//! - `expect_mod_revision` (i64; cas only): the transaction compares the key's
//!   mod_revision with it (0: the key is absent) and puts `value` if equal.
//! - `call_ns` (u64): just before the request was sent; `return_ns` (u64): just after
//!   its response or error arrived; required unless `outcome` is `unknown`, where it
//!   may say when the client gave up and is ignored (taken as +infinity).
//! - `outcome`: `ok` (a response), `failed` (definitely did not take effect), `unknown`
//!   (may or may not have taken effect: timeout, connection lost; it may take effect at
//!   any time after its call, or never).
//! - Only with `ok` (and then required as they apply): `revision` (i64): the
//!   response header's revision (for a put, a successful cas, or a delete that deleted:
//!   the write's own revision); get: `result_value` (string, null or omitted when the key
//!   is absent) and `result_mod_revision` (i64, 0 when absent); cas: `succeeded` (bool,
//!   whether the compare held); delete: `deleted` (0 or 1).
//!
//! **`watch`**: one watch response as received (watching with `prev_kv`), in the order
//! received for each watcher.
//! - `watcher` (u64); `key` (string) and `prefix` (bool, default false: the key alone;
//!   true: every key starting with `key`); `start_revision` (i64, 0: from now); all
//!   three the same on every line of a watcher.
//! - `time_ns` (u64): when it was received; `revision` (i64): the response header's
//!   revision; `compacted`, `canceled` (bool, default false): the watch ended.
//! - `events`: in the order delivered, each `{"kind": "put"|"delete", "key", "value"
//!   (string, put only), "mod_revision" (i64), "create_revision" and "version" (i64,
//!   optional, recorded for other checkers), "prev_value" (string; null or omitted when
//!   the response had no previous key-value)}`.
//!
//! **`final`** (optional, one per key at most): a linearizable read after every
//! operation returned: `revision` (header), `key`, `value` (null when absent),
//! `mod_revision` (0 when absent).
//!
//! # What is checked
//!
//! Malformed input (`parse.rs`) stops the check. Then, each rule sound (no anomaly on a
//! correct etcd history, since etcd's default reads and all writes are linearizable):
//! value and revision facts (`facts.rs`), real-time revision order across clients and
//! keys (`cross.rs`), linearizability of each key (`etcd_model.rs` and `keys.rs` on
//! `wgl/`; `unseen.rs` leaves out unknown writes nobody saw on a key that a watcher from
//! an explicit start revision covered to the final read), and the watch guarantees
//! (`watch.rs`). `jepsen.rs` and `models.rs` read Jepsen's
//! cas-register logs, to prove the search on published histories. A malformed history
//! is a `malformed.rs` error.

#![forbid(unsafe_code)]

pub mod anomaly;
pub mod check;
pub mod cross;
pub mod etcd_model;
pub mod facts;
pub mod history;
pub mod jepsen;
pub mod keys;
pub mod malformed;
pub mod models;
pub mod parse;
pub mod unseen;
pub mod watch;
pub mod wellformed;
pub mod wgl;

pub use anomaly::{Anomaly, Rule};
pub use check::{check_file, check_history, FileError, Report};
pub use history::{Event, EventKind, Final, History, Line, Op, OpKind, Outcome, Watch};
pub use parse::{parse, ParseError};
