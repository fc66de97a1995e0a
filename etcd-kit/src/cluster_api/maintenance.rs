//! etcd's maintenance calls on the running cluster: its alarms (NOSPACE when a member's
//! database reached its quota, CORRUPT when the members' data disagree), compaction,
//! defragmentation, and the cluster's downgrade.

use std::time::Duration;

use etcd_client::{AlarmAction, AlarmType, DowngradeOptions};

use super::client::{connect, connect_for, describe, within_for, Credentials};
use super::error::{EtcdError, Kind};

/// The most a compaction may take on one member: it deletes the old revisions in batches,
/// a few seconds for a database of hundreds of megabytes.
pub const COMPACTION_DEADLINE: Duration = Duration::from_secs(120);

/// The most a defragmentation may take: it rewrites the whole database file, about a
/// minute for a 2 GiB one on a slow disk.
pub const DEFRAGMENT_DEADLINE: Duration = Duration::from_secs(300);

/// One active alarm: the member that raised it and its kind (`NOSPACE`, `CORRUPT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alarm {
    pub member_id: u64,
    pub kind: String,
}

/// The cluster's active alarms, as `endpoint` reports them (alarms are replicated: any
/// member answers for the whole cluster).
pub async fn alarms(endpoint: &str, creds: &Credentials) -> Result<Vec<Alarm>, String> {
    super::client::within(alarms_call(endpoint, creds)).await
}

async fn alarms_call(endpoint: &str, creds: &Credentials) -> Result<Vec<Alarm>, String> {
    let mut client = connect(endpoint, creds).await?;
    let response = client
        .alarm(AlarmAction::Get, AlarmType::None, None)
        .await
        .map_err(|e| describe(&e))?;
    Ok(response
        .alarms()
        .iter()
        .map(|a| Alarm {
            member_id: a.member_id(),
            kind: alarm_name(a.alarm()).to_string(),
        })
        .collect())
}

fn alarm_name(kind: AlarmType) -> &'static str {
    match kind {
        AlarmType::Nospace => "NOSPACE",
        AlarmType::Corrupt => "CORRUPT",
        AlarmType::None => "NONE",
    }
}

/// Defragments one member: it rewrites its database file without the free pages, and
/// serves no request meanwhile. Returns once done (or failed, or after
/// [`DEFRAGMENT_DEADLINE`]).
pub async fn defragment(endpoint: &str, creds: &Credentials) -> Result<(), String> {
    within_for(DEFRAGMENT_DEADLINE, defragment_call(endpoint, creds)).await
}

async fn defragment_call(endpoint: &str, creds: &Credentials) -> Result<(), String> {
    let mut client = connect_for(endpoint, creds, DEFRAGMENT_DEADLINE).await?;
    client
        .defragment()
        .await
        .map(|_| ())
        .map_err(|e| describe(&e))
}

/// Compacts the cluster's history up to `revision` (replicated through the leader), and
/// waits until the member asked has applied it and deleted the old revisions (a
/// "physical" compaction). Each member compacts on its own, when it applies the request:
/// the others may not have finished yet.
///
/// Asked again of another member, for a revision already compacted, etcd answers "already
/// compacted" only once that member has finished every compaction it had started (etcd
/// queues a barrier behind them, and a physical request waits on it): so this call, made
/// to each member in turn, returns when each one's figures show the compaction.
pub async fn compact(endpoint: &str, creds: &Credentials, revision: i64) -> Result<(), String> {
    within_for(COMPACTION_DEADLINE, compact_call(endpoint, creds, revision)).await
}

async fn compact_call(endpoint: &str, creds: &Credentials, revision: i64) -> Result<(), String> {
    let mut client = connect_for(endpoint, creds, COMPACTION_DEADLINE).await?;
    match client
        .compact(
            revision,
            Some(etcd_client::CompactionOptions::new().with_physical()),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if EtcdError::of(&e).kind() == Kind::Compacted => Ok(()),
        Err(e) => Err(describe(&e)),
    }
}

/// Deactivates one alarm.
pub async fn disarm(endpoint: &str, creds: &Credentials, alarm: &Alarm) -> Result<(), String> {
    super::client::within(disarm_call(endpoint, creds, alarm)).await
}

async fn disarm_call(endpoint: &str, creds: &Credentials, alarm: &Alarm) -> Result<(), String> {
    let mut client = connect(endpoint, creds).await?;
    let kind = match alarm.kind.as_str() {
        "NOSPACE" => AlarmType::Nospace,
        "CORRUPT" => AlarmType::Corrupt,
        other => return Err(format!("unknown alarm {other}")),
    };
    let mut options = etcd_client::AlarmOptions::new();
    options.with_member(alarm.member_id);
    client
        .alarm(AlarmAction::Deactivate, kind, Some(options))
        .await
        .map(|_| ())
        .map_err(|e| describe(&e))
}

/// A step of etcd's downgrade (3.6 and later): check that the cluster can go to a minor
/// version, go there (the cluster version drops at once; members then run the older
/// binary one at a time, and etcd ends the downgrade once all do), or call it off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Downgrade {
    Validate(String),
    Enable(String),
    Cancel,
}

/// Sends one downgrade step to `endpoint`; returns the cluster version it answered with.
pub async fn downgrade(
    endpoint: &str,
    creds: &Credentials,
    step: Downgrade,
) -> Result<String, String> {
    super::within(async {
        let client = connect(endpoint, creds).await?;
        let options = match step {
            Downgrade::Validate(to) => DowngradeOptions::Validate(to),
            Downgrade::Enable(to) => DowngradeOptions::Enable(to),
            Downgrade::Cancel => DowngradeOptions::Cancel,
        };
        let response = client
            .maintenance_client()
            .downgrade(options)
            .await
            .map_err(|e| describe(&e))?;
        Ok(response.version().to_string())
    })
    .await
}
