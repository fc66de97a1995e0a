//! etcd's Snapshot API: one member streams its whole database, ending with etcd's
//! integrity hash, which [`Integrity`] checks as the stream goes by.
//!
//! Invariant: a snapshot is whole only when its trailing [`HASH_LEN`] bytes are the
//! SHA-256 of everything before them (what `etcdutl snapshot restore` checks again); a
//! stream too short to hold the hash, or whose hash does not match, is refused.

use std::io::Write;
use std::time::Duration;

use ring::digest::{Context, SHA256};

use super::client::{describe, Credentials};

/// The deadline of the call itself (until etcd's answer starts): a channel's timeout
/// ends at the response's headers, not at the end of a stream.
const STREAM_TIMEOUT: Duration = Duration::from_secs(600);

/// A snapshot streams for as long as the database takes to send; a member that stops
/// sending for this long has failed (asked of each message: the stream itself has no
/// deadline, and a stalled one held a backup writer's term with nothing written).
pub const STALLED_AFTER: Duration = Duration::from_secs(60);

/// The length of etcd's trailing integrity hash (SHA-256).
pub const HASH_LEN: usize = 32;

/// Who streamed a snapshot (etcd's header of a status asked just before).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Streamed {
    pub cluster_id: u64,
    pub member_id: u64,
}

/// Streams a snapshot from the member at `endpoint` into `out`, chunk by chunk, each one
/// also handed to `seen` (the integrity check). A member that sends nothing for
/// [`STALLED_AFTER`] fails the snapshot.
pub async fn snapshot(
    endpoint: &str,
    creds: &Credentials,
    out: &mut impl Write,
    seen: impl FnMut(&[u8]),
) -> Result<Streamed, String> {
    snapshot_stalled_after(endpoint, creds, out, seen, STALLED_AFTER).await
}

/// [`snapshot`], failed when the member sends nothing for `stalled_after`.
pub async fn snapshot_stalled_after(
    endpoint: &str,
    creds: &Credentials,
    out: &mut impl Write,
    mut seen: impl FnMut(&[u8]),
    stalled_after: Duration,
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
    while let Some(message) = tokio::time::timeout(stalled_after, stream.message())
        .await
        .map_err(|_| format!("the member sent nothing for {stalled_after:?}: stalled"))?
        .map_err(|e| describe(&e))?
    {
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

/// Checks etcd's integrity hash while a snapshot streams by, and hashes the whole file for
/// the manifest. Feed every chunk in order, then [`Integrity::finish`].
///
/// One SHA-256 pass serves both: the whole file is the database followed by its
/// [`HASH_LEN`]-byte hash, so the database's digest is the running digest just before the
/// tail, and the whole file's is the same state fed the tail.
pub struct Integrity {
    /// SHA-256 of the database part: everything but the last [`HASH_LEN`] bytes seen.
    database: Context,
    /// The last bytes seen (at most [`HASH_LEN`]), not yet known to be database rather
    /// than the trailing hash.
    tail: Vec<u8>,
    size: u64,
}

impl Default for Integrity {
    fn default() -> Self {
        Integrity {
            database: Context::new(&SHA256),
            tail: Vec::with_capacity(2 * HASH_LEN),
            size: 0,
        }
    }
}

impl Integrity {
    pub fn update(&mut self, chunk: &[u8]) {
        self.size += chunk.len() as u64;
        // Everything but the last HASH_LEN bytes is database.
        if chunk.len() >= HASH_LEN {
            self.database.update(&self.tail);
            let (body, tail) = chunk.split_at(chunk.len() - HASH_LEN);
            self.database.update(body);
            self.tail.clear();
            self.tail.extend_from_slice(tail);
        } else {
            self.tail.extend_from_slice(chunk);
            if self.tail.len() > HASH_LEN {
                let excess = self.tail.len() - HASH_LEN;
                self.database.update(&self.tail[..excess]);
                self.tail.drain(..excess);
            }
        }
    }

    /// The size and the SHA-256 (hex) of the whole stream, if its trailing hash matches.
    pub fn finish(self) -> Result<(u64, String), String> {
        if self.tail.len() < HASH_LEN {
            return Err(format!(
                "only {} bytes: too short for a snapshot with etcd's integrity hash",
                self.size
            ));
        }
        let computed = self.database.clone().finish();
        if computed.as_ref() != self.tail.as_slice() {
            return Err(format!(
                "etcd's integrity hash at the end of the file does not match its {} bytes of data (truncated or changed)",
                self.size - HASH_LEN as u64
            ));
        }
        let mut whole = self.database;
        whole.update(&self.tail);
        Ok((self.size, zone_io::hex(whole.finish().as_ref())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(bytes: &[u8]) -> Vec<u8> {
        ring::digest::digest(&SHA256, bytes).as_ref().to_vec()
    }

    fn stream(data: &[u8], chunks: &[usize]) -> Result<(u64, String), String> {
        let mut check = Integrity::default();
        let mut rest = data;
        for &size in chunks.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (chunk, next) = rest.split_at(size.min(rest.len()));
            check.update(chunk);
            rest = next;
        }
        check.finish()
    }

    #[test]
    fn the_trailing_hash_is_checked_whatever_the_chunks() {
        let database: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut file = database.clone();
        file.extend_from_slice(&sha(&database));
        for chunks in [&[1][..], &[31], &[32], &[33], &[4096], &[5, 100, 1, 64]] {
            let (size, whole) = stream(&file, chunks).unwrap();
            assert_eq!(size, file.len() as u64);
            assert_eq!(whole, zone_io::hex(&sha(&file)));
        }
        // A flipped byte, a truncation, no hash at all, too short.
        let mut flipped = file.clone();
        flipped[100] ^= 1;
        assert!(stream(&flipped, &[4096])
            .unwrap_err()
            .contains("does not match"));
        assert!(stream(&file[..file.len() - 1], &[64]).is_err());
        assert!(stream(&database, &[64]).is_err());
        assert!(stream(&file[..10], &[64])
            .unwrap_err()
            .contains("too short"));
    }
}
