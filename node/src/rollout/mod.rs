//! A zone's move between etcd releases, by one owner action: `zone-etcd upgrade-etcd --to
//! VERSION` records the release the zone runs at [`TARGET_KEY`] in the zone's own etcd,
//! and each member's keeper (`zone_agent`) moves its member there, one step and one member
//! at a time.
//!
//! The record lives in etcd, not in the signed zone document: every member sees it at
//! once, a restarted member reads it again, and it is written only by a node whose client
//! certificate the cluster accepts (the zone's nodes). The steps are etcd's
//! ([`zone_etcd_kit::etcd::step`]), the binaries this machine's ([`zone_etcd_kit::etcd::shelf`]).
//!
//! Invariants:
//! - one member moves at a time: a keeper moves only while it holds [`TURN_KEY`], made
//!   only when absent and bound to a lease of [`TURN_TTL`] (a member that never comes back
//!   frees it when the lease expires); the member's next keeper deletes it once its member
//!   serves again;
//! - a keeper moves only while every member of the cluster answers healthy, and only to a
//!   release its own preflight would admit (so the start after the move is never refused);
//! - a move is a stop: the keeper writes the step file, then sends etcd SIGTERM (etcd
//!   hands over leadership and stops cleanly); the supervisor starts `launch` again, which
//!   runs the step's binary (systemd: `RestartForceExitStatus=SIGTERM`).

pub mod downgrade;

use etcd_client::Client;
use serde::{Deserialize, Serialize};

/// The release the zone's owner chose (JSON [`Target`]).
pub const TARGET_KEY: &str = "zone-etcd/etcd/target";
/// The member moving now (JSON [`Turn`]), under a lease.
pub const TURN_KEY: &str = "zone-etcd/etcd/turn";
/// How long a turn lasts when its member does not come back to end it (seconds).
pub const TURN_TTL: i64 = 120;
/// Under it, `<member name>`: what a member's move waits for (JSON [`Waiting`]), put by its
/// keeper when that changes and deleted once it no longer waits: what `status` shows.
pub const WAITING_PREFIX: &str = "zone-etcd/etcd/waiting/";

/// The owner's choice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// The release (`3.7.2`).
    pub to: String,
    /// When it was set (Unix seconds).
    pub set_at: u64,
    /// The node that set it.
    pub by: String,
}

/// The member moving now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Turn {
    pub member: String,
    /// The release it restarts on.
    pub to: String,
    pub since: u64,
}

/// What a member's next step waits for: etcd 3.6 to take a snapshot past the entries etcd
/// 3.5 wrote (at index `snapshot` + `count` + 1), before etcd `to` may replay its log.
/// `format` 1; a reader ignores fields it does not know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    pub format: u32,
    pub member: String,
    /// The release of the step that waits (`3.7.2`).
    pub to: String,
    /// The last entry etcd 3.5 wrote past the log's last snapshot.
    pub last_v2: u64,
    /// The index of the log's last snapshot.
    pub snapshot: u64,
    /// The `--snapshot-count` the member's etcd runs with.
    pub count: u64,
}

impl Waiting {
    /// What it waits for, in words; `applied`: the member's index now, if known.
    pub fn describe(&self, applied: Option<u64>) -> String {
        zone_etcd_kit::etcd::path::snapshot_wait(self.last_v2, self.snapshot, self.count, applied)
    }
}

/// Every member's [`Waiting`] record (unreadable ones left out).
pub async fn waiting(client: &mut Client) -> Result<Vec<Waiting>, String> {
    let got = client
        .get(
            WAITING_PREFIX,
            Some(etcd_client::GetOptions::new().with_prefix()),
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(got
        .kvs()
        .iter()
        .filter_map(|kv| serde_json::from_slice(kv.value()).ok())
        .collect())
}

/// The record at `key`, `None` when absent (or not one: a damaged record is no target).
pub async fn read<T: for<'de> Deserialize<'de>>(
    client: &mut Client,
    key: &str,
) -> Result<Option<(T, i64)>, String> {
    let got = client.get(key, None).await.map_err(|e| e.to_string())?;
    Ok(got.kvs().first().and_then(|kv| {
        serde_json::from_slice(kv.value())
            .ok()
            .map(|t| (t, kv.mod_revision()))
    }))
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The target, the turn and the members' waits, from the first of `endpoints` that
/// answers: what `status` shows.
pub async fn standing(
    endpoints: &[String],
    creds: &zone_etcd_kit::cluster_api::Credentials,
) -> Option<(Option<Target>, Option<Turn>, Vec<Waiting>)> {
    for endpoint in endpoints {
        let Ok(mut client) = zone_etcd_kit::cluster_api::connect(endpoint, creds).await else {
            continue;
        };
        let (Ok(target), Ok(turn), Ok(waits)) = (
            read::<Target>(&mut client, TARGET_KEY).await,
            read::<Turn>(&mut client, TURN_KEY).await,
            waiting(&mut client).await,
        ) else {
            continue;
        };
        return Some((target.map(|(t, _)| t), turn.map(|(t, _)| t), waits));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The record as this release writes it, and as a later release may (a field added):
    /// both read.
    #[test]
    fn the_waiting_record_is_read_as_written_and_with_fields_added() {
        let golden = r#"{"format":1,"member":"node2.example.zone","to":"3.7.2","last_v2":4211,"snapshot":0,"count":100}"#;
        let waiting = Waiting {
            format: 1,
            member: "node2.example.zone".into(),
            to: "3.7.2".into(),
            last_v2: 4211,
            snapshot: 0,
            count: 100,
        };
        assert_eq!(serde_json::to_string(&waiting).unwrap(), golden);
        let later = golden.replace("}", r#","eta_seconds":30}"#);
        assert_eq!(serde_json::from_str::<Waiting>(&later).unwrap(), waiting);
        assert!(waiting.describe(Some(60)).contains("index 101"));
    }
}
