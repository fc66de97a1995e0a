//! zone-backup: backups that outlive the house (issue 22): a continuous, encrypted,
//! signed chain of full snapshots and delta segments, shipped off the machine and
//! restored every day.
//!
//! The family, kept apart the way restic keeps repository, backend and crypto apart:
//! - `zone_model::backup`: the zone's `[backup]` table and its durations (pure);
//! - [`chain`]: the links of a backup chain, their names and the rules that make it
//!   trustworthy (pure);
//! - [`segment`]: a delta segment's encoding (gzip'd JSON lines) and its checks (pure);
//! - [`crypto`]: age encryption to the owner's recipients, streamed, written atomically;
//! - [`signing`]: manifests signed by the node's backup signer, verified up to the zone CA;
//! - [`manifest`]: verifying a stored manifest into a link;
//! - [`head`]: the head record on each target: where its chain ends, in five to eight
//!   requests however long the chain;
//! - [`local`]: the node's own copy of the chain (encrypted, and plain for the drill);
//!   [`torn`]: its delta files, written without fsyncs, checked after the machine restarts;
//! - [`retention`]: which links a chain keeps (pure); [`prune`]: deleting the others from
//!   the local chain and a target;
//! - [`runner`]: `backup run`: the election, the watch, the writer and the shippers;
//!   [`coverage`]: what each writer's own chain covers, recorded in etcd for `undo`;
//! - [`report`]: what `backup status` reports and when it fails (pure);
//! - [`scratch`]: a scratch etcd the drills and [`pitr`] restore into and replay, on
//!   loopback ports below the kernel's ephemeral range ([`ports`]);
//! - [`pitr`]: the zone at any point of the chain (`backup export`, `undo`);
//! - [`fork`]: late links, a writer's that is out landing after the takeover (pure);
//! - [`verify`]: checking a stored chain, its manifests and objects (the drills);
//! - [`destination`]: where backups go (S3-compatible stores, directories) behind one
//!   trait ([`destination::Target`]), with the node-local S3 credentials.
//!
//! Its layer (`tests/module_circles/layers.rs` holds it to this): above `zone-io`,
//! `zone-pki`, `zone-model` and `zone-etcd-kit`, below the app (`zone-etcd`), which it
//! never imports. What it needs of a node it takes as plain inputs (names, paths,
//! credentials, the etcd binary, the node CA), which zone-node makes from its loaded node
//! (`node/src/backup_node.rs`).

pub mod chain;
pub mod coverage;
pub mod crypto;
pub mod destination;
pub mod fork;
pub mod head;
pub mod local;
pub mod manifest;
pub mod pitr;
pub mod ports;
pub mod prune;
pub mod report;
pub mod retention;
pub mod runner;
pub mod scratch;
pub mod segment;
pub mod signing;
#[cfg(test)]
pub mod test_zone;
pub mod torn;
pub mod verify;

/// The release this crate belongs to (the workspace's version, the app's): the stores see
/// it in the user agent, and a refusal of a newer format names it.
pub const RELEASE: &str = env!("CARGO_PKG_VERSION");
