//! Backups that outlive the house (issue 22): a continuous, encrypted, signed chain of
//! full snapshots and delta segments, shipped off the machine and restored every day.
//!
//! The family, kept apart the way restic keeps repository, backend and crypto apart:
//! - `zone_model::backup`: the zone's `[backup]` table and its durations (pure);
//! - [`chain`]: the links of a backup chain, their names and the rules that make it
//!   trustworthy (pure);
//! - [`segment`]: a delta segment's encoding (gzip'd JSON lines) and its checks (pure);
//! - [`crypto`]: age encryption to the owner's recipients, streamed, written atomically;
//! - [`signing`]: manifests signed by the node's backup signer, verified up to the zone CA;
//! - [`manifest`]: verifying a stored manifest into a link;
//! - [`head`]: the head record on each target: where its chain ends, in three requests;
//! - [`local`]: the node's own copy of the chain (encrypted, and plain for the drill);
//!   [`torn`]: its delta files, written without fsyncs, checked after the machine restarts;
//! - [`retention`]: which links a chain keeps (pure); [`prune`]: deleting the others from
//!   the local chain and a target;
//! - [`runner`]: `backup run`: the election, the watch, the writer and the shippers;
//! - [`report`]: what `backup status` reports and when it fails (pure);
//! - [`scratch`]: a scratch etcd the drills and [`pitr`] restore into and replay;
//! - [`pitr`]: the zone at any point of the chain (`backup export`, `undo`);
//! - [`fork`]: late links, a writer's that is out landing after the takeover (pure);
//! - [`verify`]: checking a stored chain, its manifests and objects (the drills);
//! - [`target`]: where backups go (S3-compatible stores, directories) behind one trait,
//!   with the node-local S3 credentials;

pub mod chain;
pub mod coverage;
pub mod crypto;
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
pub mod target;
#[cfg(test)]
pub mod test_zone;
pub mod torn;
pub mod verify;
