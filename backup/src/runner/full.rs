//! A full snapshot for the chain: streamed from a member with etcd's Snapshot API (the
//! same call and integrity check as `snapshot save`), its revision read by `etcdutl`,
//! then encrypted to the owner's recipients. Runs beside the watch, so a large database
//! never holds up the deltas.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;

use zone_io::Error;

use super::writer::{now_ms, FullReady};
use crate::crypto;
use crate::local::LocalChain;
use zone_etcd_kit::cluster_api::{self, Credentials, Integrity};

/// What a full snapshot needs.
pub struct FullSource {
    pub endpoints: Vec<String>,
    pub creds: Arc<Credentials>,
    pub etcdutl: PathBuf,
    pub local: Arc<LocalChain>,
    pub recipients: Vec<age::x25519::Recipient>,
}

/// Streams, checks and encrypts a full snapshot from the first member that sends one.
pub async fn take(source: &FullSource) -> Result<FullReady, Error> {
    let mut problems = Vec::new();
    for endpoint in &source.endpoints {
        match take_from(source, endpoint).await {
            Ok(full) => return Ok(full),
            Err(problem) => problems.push(format!("{endpoint}: {problem}")),
        }
    }
    Err(Error::new(format!(
        "no member sent a whole snapshot ({})",
        problems.join("; ")
    ))
    .fix("check the members' health with `zone-etcd status`"))
}

async fn take_from(source: &FullSource, endpoint: &str) -> Result<FullReady, String> {
    let mut plain = source
        .local
        .temporary("plain/full")
        .map_err(|e| e.to_string())?;
    let taken_ms = now_ms();
    let mut integrity = Integrity::default();
    {
        let mut writer = BufWriter::with_capacity(1 << 20, plain.as_file_mut());
        cluster_api::snapshot(endpoint, &source.creds, &mut writer, |chunk| {
            integrity.update(chunk)
        })
        .await?;
        writer
            .flush()
            .map_err(|e| format!("cannot write the snapshot: {e}"))?;
    }
    integrity
        .finish()
        .map_err(|p| format!("the snapshot is not whole: {p}"))?;
    plain
        .as_file()
        .sync_all()
        .map_err(|e| format!("cannot write the snapshot: {e}"))?;
    let etcdutl = source.etcdutl.clone();
    let local = source.local.clone();
    let recipients = source.recipients.clone();
    tokio::task::spawn_blocking(move || -> Result<FullReady, String> {
        let revision = zone_etcd_kit::etcd::etcdutl::snapshot_revision(&etcdutl, plain.path())
            .map_err(|e| e.to_string())?;
        let pending = local.root().join("chain/full").join(format!(
            ".pending-{}-r{revision}.age",
            super::writer::new_session()
        ));
        let encrypted =
            crypto::encrypt_file(plain.path(), &pending, &recipients).map_err(|e| e.to_string())?;
        Ok(FullReady {
            encrypted: pending,
            plain,
            revision,
            taken_ms,
            size: encrypted.size,
            sha256: zone_io::hex(&encrypted.sha256),
        })
    })
    .await
    .map_err(|e| format!("the encryption task failed: {e}"))?
}
