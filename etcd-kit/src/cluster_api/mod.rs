//! The running cluster, seen through etcd's v3 API with this node's client certificate.
//!
//! The app's commands, the keepers beside each member (the agent) and launch's checks (a
//! restart's, and a first start's questions to the peer ports) talk to the cluster
//! through it, and so does zone-backup's `backup run`; the derivation in
//! [`zone_model::cluster`] never does. Every call has a deadline, so a member that
//! is down or silent costs at most [`CONNECT_TIMEOUT`] plus [`REQUEST_TIMEOUT`], never a
//! hang (a compaction or a defragmentation, which take as long as the database is big, get
//! [`COMPACTION_DEADLINE`] and [`DEFRAGMENT_DEADLINE`]). A failed call is an [`EtcdError`]:
//! a [`Kind`] the code decides by (never etcd's text), and one short line (etcd's message,
//! not the transport's layers) that callers put in one line with the endpoint.
//!
//! - `client`: connections, deadlines, credentials;
//! - [`error`]: etcd's failures as kinds, decided in one table from gRPC codes and etcd's
//!   error constants;
//! - `members`: the member list and its changes (add as learner, promote, remove);
//! - `health`: what each endpoint says of itself (status, a quorum read, the TLS
//!   handshake and etcd's versions), for `status` and the upgrade checks;
//! - `maintenance`: alarms, compaction, defragmentation, the cluster's downgrade;
//! - `snapshot`: the Snapshot API, its trailing integrity hash checked as it streams, a
//!   member that stops sending given up on;
//! - [`peer_port`]: what a member's peer port says before etcd's client port serves (its
//!   member list, or a launch waiting for the zone's first start);
//! - [`others`]: a restart's questions to the other members, answered by the first
//!   client port, or known to go unanswered;
//! - [`range`]: every key under a prefix at one revision, in pages.

mod client;
pub mod error;
mod health;
mod maintenance;
mod members;
pub mod others;
pub mod peer_port;
pub mod range;
mod snapshot;

pub use client::{
    ask, connect, connect_for, connect_many, describe, get_prefix, hex_id, host_port, listening,
    runtime, txn, within, within_for, Credentials, AUTH_RETRY_FOR, CALL_DEADLINE, CONNECT_TIMEOUT,
    REQUEST_TIMEOUT,
};
pub use error::{EtcdError, Kind, NoAnswer};
pub use health::{
    member_problem, member_releases, probe_all, probe_each, time_handshake, versions,
    EndpointReport, EndpointStatus, Versions,
};
pub use maintenance::{
    alarms, compact, defragment, disarm, downgrade, Alarm, Downgrade, COMPACTION_DEADLINE,
    DEFRAGMENT_DEADLINE,
};
pub use members::{add_learner, member_list, promote, remove, update_peer_urls, view, SETTLE};
pub use peer_port::{ask_peer, ask_peers};
pub use snapshot::{
    snapshot, snapshot_stalled_after, Integrity, Streamed, HASH_LEN, STALLED_AFTER,
};
