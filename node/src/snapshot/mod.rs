//! Snapshots of the zone's data: what a snapshot file must hold, the manifest kept beside
//! it, their names, and which ones `prune` removes: pure here, so the rules are
//! unit-tested; the node's snapshot files (where a save writes, keeping, finding and
//! pruning them) are [`store`]'s, the calls to etcd `commands::snapshot`'s.
//!
//! Invariants:
//! - a snapshot is etcd's database as its Snapshot API streams it, *with* etcd's integrity
//!   hash: the stream ends with the SHA-256 of everything before it, which
//!   [`Integrity`](zone_etcd_kit::cluster_api::Integrity) checks while the file is written
//!   and `etcdutl snapshot restore` checks again; a snapshot whose hash does not match is
//!   never kept;
//! - the manifest (`<snapshot>.json`) names the zone, the cluster and member it came from,
//!   the revision, the time, the size and the SHA-256 of the whole file, so a restore can
//!   refuse another zone's snapshot or a changed file before touching anything;
//! - names sort by time: `<zone>-<YYYYMMDDTHHMMSSZ>-r<revision>.db`;
//! - a manifest is read leniently ([`Manifest::parse`]): a field a later release adds is
//!   ignored; a change a reader must not ignore raises its `format` (absent: 1, and 1 is
//!   never written, so zone-etcd 0.1.0, which refused any field it did not know, reads
//!   this release's manifests), and a higher one is refused in one line naming both.

pub mod store;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

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
            return Err(zone_model::format::unread_format(
                manifest.format,
                MANIFEST_FORMAT,
                crate::this_build::RELEASE,
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
