//! `<state>/member.json`: this node's data directory held a member once. Every launch
//! over existing data makes sure it is there (written only when it changes), so a later
//! launch that finds the data directory empty knows the data was lost, rather than never
//! made: such a member is refused at once, and never waits for a first start.
//!
//! Only a launch that saw the member's own log writes it: a launch whose etcd stopped
//! before it wrote any data (a port in use, a stand-in binary) leaves no record.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zone_io::Error;

use zone_etcd_kit::cluster_api::hex_id;
use zone_etcd_kit::wal::LocalMember;

pub const FILE: &str = "member.json";

/// What the record says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The member and cluster IDs (hex, as etcdctl prints them).
    pub member_id: String,
    pub cluster_id: String,
}

impl Record {
    /// What an unreadable record says: a member ran here, its IDs unknown.
    pub fn unknown() -> Record {
        Record {
            member_id: "?".into(),
            cluster_id: "?".into(),
        }
    }

    fn of(local: LocalMember) -> Record {
        Record {
            member_id: hex_id(local.member_id),
            cluster_id: hex_id(local.cluster_id),
        }
    }
}

pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE)
}

/// The record, if there is one. One that does not read still says a member ran here.
pub fn read(state_dir: &Path) -> Option<Record> {
    let path = path(state_dir);
    if std::fs::symlink_metadata(&path).is_err() {
        return None;
    }
    Some(
        zone_io::read_text(&path)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_else(Record::unknown),
    )
}

/// Records that the data directory holds `local` (a write only when that is news).
pub fn remember(state_dir: &Path, local: LocalMember) -> Result<(), Error> {
    let record = Record::of(local);
    if read(state_dir).as_ref() == Some(&record) {
        return Ok(());
    }
    let text = serde_json::to_string(&record)
        .map_err(|e| Error::new(format!("cannot write the member record: {e}")))?;
    // Under the state lock: its holders remove temporary files they find in the state
    // directory (left by killed writes), which would include this one.
    let _lock = zone_io::state::lock(state_dir)?;
    zone_io::write_atomic(
        &path(state_dir),
        format!("{text}\n").as_bytes(),
        zone_io::PUBLIC_MODE,
    )
}
