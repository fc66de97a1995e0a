//! The record `restore` leaves in the state directory (`restored.json`): which cluster the
//! restored data directory holds, from which snapshot, and where the old data went. A
//! launch reads it to tell a restore done on purpose from a member of another cluster.
//!
//! Invariant: a record counts only for the cluster it names: one left from an earlier
//! restore (another cluster ID), or one that does not parse, is no record.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use zone_etcd_kit::cluster_api::hex_id;

/// The record of a restore, in the state directory.
pub const RECORD_FILE: &str = "restored.json";

/// What `restore` leaves in `<state>/restored.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Restored {
    /// The restored cluster's ID (hex): the data directory holds a member of it.
    pub cluster_id: String,
    pub snapshot: String,
    pub sha256: String,
    pub revision: i64,
    /// Where the data directory before the restore went, if there was one.
    pub moved_aside: Option<PathBuf>,
    pub restored_at: String,
}

/// The record of the restore that made this node's data, if its cluster is `cluster_id`.
pub fn restored_record(state_dir: &Path, cluster_id: u64) -> Option<Restored> {
    let text = zone_io::read_text(&state_dir.join(RECORD_FILE)).ok()?;
    let record: Restored = serde_json::from_str(&text).ok()?;
    (record.cluster_id == hex_id(cluster_id)).then_some(record)
}
