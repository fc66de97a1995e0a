//! etcd's maintenance calls on the running cluster: its alarms (NOSPACE when a member's
//! database reached its quota, CORRUPT when the members' data disagree).

use etcd_client::{AlarmAction, AlarmType};

use super::{connect, describe, Credentials};

/// One active alarm: the member that raised it and its kind (`NOSPACE`, `CORRUPT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alarm {
    pub member_id: u64,
    pub kind: String,
}

/// The cluster's active alarms, as `endpoint` reports them (alarms are replicated: any
/// member answers for the whole cluster).
pub async fn alarms(endpoint: &str, creds: &Credentials) -> Result<Vec<Alarm>, String> {
    super::within(alarms_call(endpoint, creds)).await
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
/// serves no request meanwhile. Returns once done (or failed).
pub async fn defragment(endpoint: &str, creds: &Credentials) -> Result<(), String> {
    super::within(defragment_call(endpoint, creds)).await
}

async fn defragment_call(endpoint: &str, creds: &Credentials) -> Result<(), String> {
    let mut client = connect(endpoint, creds).await?;
    client
        .defragment()
        .await
        .map(|_| ())
        .map_err(|e| describe(&e))
}

/// Compacts the cluster's history up to `revision` (replicated through the leader), and
/// waits until the compaction is applied on the member asked.
pub async fn compact(endpoint: &str, creds: &Credentials, revision: i64) -> Result<(), String> {
    super::within(compact_call(endpoint, creds, revision)).await
}

async fn compact_call(endpoint: &str, creds: &Credentials, revision: i64) -> Result<(), String> {
    let mut client = connect(endpoint, creds).await?;
    match client
        .compact(
            revision,
            Some(etcd_client::CompactionOptions::new().with_physical()),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if describe(&e).contains("already been compacted") => Ok(()),
        Err(e) => Err(describe(&e)),
    }
}

/// Deactivates one alarm.
pub async fn disarm(endpoint: &str, creds: &Credentials, alarm: &Alarm) -> Result<(), String> {
    super::within(disarm_call(endpoint, creds, alarm)).await
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
