//! Snapshots of the zone's data: what a snapshot file must hold, the manifest kept beside
//! it, their names, and which ones `prune` removes. Pure (the calls and files are in
//! `commands::snapshot`), so the rules are unit-tested.
//!
//! Invariants:
//! - a snapshot is etcd's database as its Snapshot API streams it, *with* etcd's integrity
//!   hash: the stream ends with the SHA-256 of everything before it, which
//!   [`Integrity`] checks while the file is written and `etcdutl snapshot restore` checks
//!   again; a snapshot whose hash does not match is never kept;
//! - the manifest (`<snapshot>.json`) names the zone, the cluster and member it came from,
//!   the revision, the time, the size and the SHA-256 of the whole file, so a restore can
//!   refuse another zone's snapshot or a changed file before touching anything;
//! - names sort by time: `<zone>-<YYYYMMDDTHHMMSSZ>-r<revision>.db`;
//! - a manifest is read leniently ([`Manifest::parse`]): a field a later release adds is
//!   ignored; a change a reader must not ignore raises its `format` (absent: 1, and 1 is
//!   never written, so zone-etcd 0.1.0, which refused any field it did not know, reads
//!   this release's manifests), and a higher one is refused in one line naming both.

use ring::digest::{Context, SHA256};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The length of etcd's trailing integrity hash (SHA-256).
pub const HASH_LEN: usize = 32;
/// What a snapshot file's name ends with; its manifest adds `.json`.
pub const EXTENSION: &str = ".db";

/// The manifest format this release writes and reads.
pub const MANIFEST_FORMAT: u32 = 1;

/// The manifest written beside a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The manifest's format: absent is 1, which is never written (see the module's
    /// invariants).
    #[serde(default = "first_format", skip_serializing_if = "is_first_format")]
    pub format: u32,
    pub zone: String,
    /// etcd's cluster ID (hex, as etcdctl prints it).
    pub cluster_id: String,
    /// The member that streamed it: its name and ID (hex).
    pub member: String,
    pub member_id: String,
    /// The store revision the snapshot holds (etcd's header when the stream started).
    pub revision: i64,
    /// RFC 3339, UTC.
    pub taken_at: String,
    pub size: u64,
    /// SHA-256 (hex) of the whole file, etcd's hash included.
    pub sha256: String,
    /// The etcd release of the member that streamed it.
    pub etcd_version: String,
}

fn first_format() -> u32 {
    1
}

fn is_first_format(format: &u32) -> bool {
    *format == 1
}

impl Manifest {
    /// Reads a manifest: fields this release does not know are ignored, a format newer
    /// than [`MANIFEST_FORMAT`] is refused (one line: both formats and the fix).
    pub fn parse(text: &str) -> Result<Manifest, String> {
        let manifest: Manifest =
            serde_json::from_str(text).map_err(|e| format!("not a snapshot manifest: {e}"))?;
        if manifest.format > MANIFEST_FORMAT {
            return Err(crate::this_build::unread_format(
                manifest.format,
                MANIFEST_FORMAT,
            ));
        }
        Ok(manifest)
    }
}

/// The file name of a snapshot of `zone` taken at `at`, at `revision`.
pub fn file_name(zone: &str, at: OffsetDateTime, revision: i64) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{zone}-{:04}{:02}{:02}T{:02}{:02}{:02}Z-r{revision}{EXTENSION}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// The manifest's path for a snapshot path: `<snapshot>.json`.
pub fn manifest_name(snapshot_name: &str) -> String {
    format!("{snapshot_name}.json")
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
        Ok((self.size, hex(whole.finish().as_ref())))
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Which snapshots `prune --keep K` removes: all but the newest `keep`, by the time in
/// their manifest (then by name). Returns the names to remove, oldest first.
pub fn to_prune(mut snapshots: Vec<(String, String)>, keep: usize) -> Vec<String> {
    // (name, taken_at): RFC 3339 UTC times sort as text.
    snapshots.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    let remove = snapshots.len().saturating_sub(keep);
    snapshots.into_iter().take(remove).map(|(n, _)| n).collect()
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
            assert_eq!(whole, hex(&sha(&file)));
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

    fn manifest() -> Manifest {
        Manifest {
            format: MANIFEST_FORMAT,
            zone: "example.zone".into(),
            cluster_id: "cdf818194e3a8c32".into(),
            member: "node1.example.zone".into(),
            member_id: "8e9e05c52164694d".into(),
            revision: 41,
            taken_at: "2026-11-27T00:00:00Z".into(),
            size: 20480,
            sha256: "ab".repeat(32),
            etcd_version: "3.6.15".into(),
        }
    }

    #[test]
    fn a_manifest_reads_past_added_fields_and_refuses_a_newer_format() {
        let text = serde_json::to_string_pretty(&manifest()).unwrap();
        // Format 1 is never written: zone-etcd 0.1.0 refused fields it did not know.
        assert!(!text.contains("format"), "{text}");
        assert_eq!(Manifest::parse(&text).unwrap(), manifest());
        // A later release's added field, as it might write it.
        let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
        value["compression_level"] = 3.into();
        assert_eq!(Manifest::parse(&value.to_string()).unwrap(), manifest());
        // A later release's new format: refused in one line naming both.
        value["format"] = 2.into();
        let err = Manifest::parse(&value.to_string()).unwrap_err();
        assert!(
            err.starts_with("format 2 is not one zone-etcd ") && err.contains("(it reads 1)"),
            "{err}"
        );
        let written = serde_json::to_string(&Manifest {
            format: 2,
            ..manifest()
        })
        .unwrap();
        assert!(written.starts_with("{\"format\":2,"), "{written}");
    }

    #[test]
    fn names_sort_by_time_and_prune_keeps_the_newest() {
        let at = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        assert_eq!(
            file_name("example.zone", at, 42),
            "example.zone-20270115T080000Z-r42.db"
        );
        let list = vec![
            ("c".to_string(), "2026-11-22T12:00:00Z".to_string()),
            ("a".to_string(), "2026-11-22T00:00:00Z".to_string()),
            ("b".to_string(), "2026-11-22T06:00:00Z".to_string()),
        ];
        assert_eq!(to_prune(list.clone(), 2), vec!["a".to_string()]);
        assert_eq!(to_prune(list.clone(), 1), vec!["a", "b"]);
        assert!(to_prune(list.clone(), 3).is_empty());
        assert!(to_prune(list, 5).is_empty());
    }
}
