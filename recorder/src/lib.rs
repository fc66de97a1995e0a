//! zone-recorder: records etcd histories against real zones, in the format zone-consistency
//! checks (its crate header; guide "Consistency histories (format)"), while faults are
//! done to the zone (issue 24).
//!
//! - [`record`]: the recorder proper: clients, watchers, the fence and the final reads,
//!   against any etcd endpoints with a client certificate; [`client`] one client's
//!   operations, [`watcher`] one watcher, [`sink`] the clock and the lines; [`shared`]
//!   what they and a fault share while one history is recorded, [`connect`] their
//!   connections.
//! - [`zone`]: a local zone made with the zone-etcd binary (bootstrap, launch, kill, stop),
//!   every process it starts killed by PID when it is dropped (zone-testkit's harness, the
//!   one the tests and the bench use); [`health`] what it says of itself (healthy, leader,
//!   status).
//! - [`scenarios`]: each fault, done to a zone while the recorder runs; [`faults`] the
//!   fault actions they are made of; [`net`] the network-namespace machines of the
//!   partition and latency scenarios (zone-testkit's), [`proxy`] the relays on the peer path that hold
//!   bytes back; [`recovery`] `backup run` failovers and `undo`.
//!
//! Invariants of every history written: its keys are fresh (a unique prefix per history)
//! and only its own operations write them; every value written is unique; every time is
//! from one monotonic clock; a client has one operation in flight and never retries; an
//! outcome is `unknown` unless the response arrived (`ok`) or the request definitely did
//! not take effect (`failed`).

#![forbid(unsafe_code)]

pub mod access;
pub mod client;
pub mod connect;
pub mod faults;
pub mod health;
pub mod membership;
pub mod net;
pub mod proxy;
pub mod record;
pub mod recovery;
pub mod rng;
pub mod scenarios;
pub mod shared;
pub mod sink;
pub mod versions;
pub mod watcher;
pub mod zone;
