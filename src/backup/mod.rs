//! Backups that outlive the house (issue 22): a continuous, encrypted, signed chain of
//! full snapshots and delta segments, shipped off the machine and restored every day.
//!
//! The family, kept apart the way restic keeps repository, backend and crypto apart:
//! - [`settings`]: the zone's `[backup]` table (pure);
//! - [`crypto`]: age encryption to the owner's recipients, streamed, written atomically;
//! - [`signing`]: manifests signed by the node's backup signer, verified up to the zone CA;

pub mod crypto;
pub mod settings;
pub mod signing;
