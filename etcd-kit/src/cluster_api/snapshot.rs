//! etcd's Snapshot API: one member streams its whole database, ending with etcd's
//! integrity hash.

use std::io::Write;
use std::time::Duration;

use super::client::{describe, Credentials};

/// A snapshot streams for as long as the database takes to send; a member that stops
/// sending for this long has failed.
const STREAM_TIMEOUT: Duration = Duration::from_secs(600);

/// Who streamed a snapshot (etcd's header of a status asked just before).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Streamed {
    pub cluster_id: u64,
    pub member_id: u64,
}

/// Streams a snapshot from the member at `endpoint` into `out`, chunk by chunk, each one
/// also handed to `seen` (the integrity check).
pub async fn snapshot(
    endpoint: &str,
    creds: &Credentials,
    out: &mut impl Write,
    mut seen: impl FnMut(&[u8]),
) -> Result<Streamed, String> {
    let mut client = super::client::connect_for(endpoint, creds, STREAM_TIMEOUT).await?;
    // etcd's snapshot messages carry no header: ask who this is first.
    let status =
        super::client::within(async { client.status().await.map_err(|e| describe(&e)) }).await?;
    let header = status
        .header()
        .ok_or_else(|| "the member's status has no header".to_string())?;
    let streamed = Streamed {
        cluster_id: header.cluster_id(),
        member_id: header.member_id(),
    };
    let mut stream = client.snapshot().await.map_err(|e| describe(&e))?;
    let mut any = false;
    while let Some(message) = stream.message().await.map_err(|e| describe(&e))? {
        out.write_all(message.blob())
            .map_err(|e| format!("cannot write the snapshot: {e}"))?;
        seen(message.blob());
        any = true;
    }
    if !any {
        return Err("the member sent no snapshot".into());
    }
    Ok(streamed)
}
