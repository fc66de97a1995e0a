//! Backups that outlive the house (issue 22): a continuous, encrypted, signed chain of
//! full snapshots and delta segments, shipped off the machine and restored every day.
//!
//! The family, kept apart the way restic keeps repository, backend and crypto apart:
//! - [`settings`]: the zone's `[backup]` table (pure);
//! - [`target`]: where backups go (S3-compatible stores, directories) behind one trait,
//!   with the node-local S3 credentials;

pub mod settings;
pub mod target;
