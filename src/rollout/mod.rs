//! A zone's move between etcd releases, by one owner action: `zone-etcd upgrade-etcd --to
//! VERSION` records the release the zone runs at [`TARGET_KEY`] in the zone's own etcd,
//! and each member's keeper ([`crate::agent`]) moves its member there, one step and one member
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

use etcd_client::Client;
use serde::{Deserialize, Serialize};

/// The release the zone's owner chose (JSON [`Target`]).
pub const TARGET_KEY: &str = "zone-etcd/etcd/target";
/// The member moving now (JSON [`Turn`]), under a lease.
pub const TURN_KEY: &str = "zone-etcd/etcd/turn";
/// How long a turn lasts when its member does not come back to end it (seconds).
pub const TURN_TTL: i64 = 120;

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

/// The target and the turn, from the first of `endpoints` that answers: what `status`
/// shows.
pub async fn standing(
    endpoints: &[String],
    creds: &zone_etcd_kit::cluster_api::Credentials,
) -> Option<(Option<Target>, Option<Turn>)> {
    for endpoint in endpoints {
        let Ok(mut client) = zone_etcd_kit::cluster_api::connect(endpoint, creds).await else {
            continue;
        };
        let (Ok(target), Ok(turn)) = (
            read::<Target>(&mut client, TARGET_KEY).await,
            read::<Turn>(&mut client, TURN_KEY).await,
        ) else {
            continue;
        };
        return Some((target.map(|(t, _)| t), turn.map(|(t, _)| t)));
    }
    None
}
