//! Which etcd member and cluster a data directory belongs to, read from etcd's own log.
//!
//! etcd records both IDs in the metadata record at the head of every write-ahead-log file
//! (`<data>/member/wal/*.wal`), and nowhere readable without starting it. Reading them
//! lets launch and join tell "this data is a member of the running cluster" from "this data
//! is left over from another cluster" before etcd starts and fails in a loop.
//!
//! The format (etcd `server/storage/wal`): frames of an 8-byte little-endian length word
//! (low 56 bits: record size; if the top bit is set, bits 56..59 give the padding after
//! it), each holding a `walpb.Record` protobuf. The first records of a file are a CRC
//! record and then the metadata record (type 1) holding `etcdserverpb.Metadata`.

use std::fs;
use std::io::Read;
use std::path::Path;

use prost::Message;
use zone_io::Error;

mod frames;
mod replay;

pub use replay::{entries_before_3_6, replay, Replay};

/// `etcdserverpb.Metadata`.
#[derive(Clone, PartialEq, Message)]
struct Metadata {
    #[prost(uint64, tag = "1")]
    node_id: u64,
    #[prost(uint64, tag = "2")]
    cluster_id: u64,
}

/// The metadata record comes within the first few records; a file whose head is larger
/// than this is not a WAL.
const HEAD_LIMIT: u64 = 64 * 1024;

/// The member a data directory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalMember {
    pub member_id: u64,
    pub cluster_id: u64,
}

/// The member in `data_dir`, or `None` when it holds no member yet (no `member/wal`).
pub fn local_member(data_dir: &Path) -> Result<Option<LocalMember>, Error> {
    let files = frames::wal_files(data_dir)?;
    let Some(first) = files.first() else {
        return Ok(None);
    };
    let mut head = Vec::new();
    fs::File::open(first)
        .and_then(|f| f.take(HEAD_LIMIT).read_to_end(&mut head))
        .map_err(|e| Error::io("read etcd's log", first, &e))?;
    metadata_of(&head).map(Some).ok_or_else(|| {
        Error::new("etcd's log has no member metadata (damaged, or not an etcd data directory)")
            .file(first)
            .fix(format!(
                "move {} aside and join the zone again, or point data_dir elsewhere",
                data_dir.display()
            ))
    })
}

/// The member and cluster IDs in the head of a WAL file, if its records parse.
pub fn metadata_of(head: &[u8]) -> Option<LocalMember> {
    let record = frames::records(head).find(|r| r.kind == frames::METADATA_RECORD)?;
    let meta = Metadata::decode(record.data.as_slice()).ok()?;
    (meta.node_id != 0 && meta.cluster_id != 0).then_some(LocalMember {
        member_id: meta.node_id,
        cluster_id: meta.cluster_id,
    })
}

#[cfg(test)]
mod tests {
    use super::frames::{Record, METADATA_RECORD};
    use super::*;

    fn frame(record: &Record, padding: usize) -> Vec<u8> {
        let body = record.encode_to_vec();
        let mut length = body.len() as u64;
        if padding > 0 {
            length |= (0x80 | padding as u64) << 56;
        }
        let mut out = length.to_le_bytes().to_vec();
        out.extend_from_slice(&body);
        out.extend(std::iter::repeat_n(0u8, padding));
        out
    }

    fn head(padding: usize) -> Vec<u8> {
        let crc = Record {
            kind: 4,
            crc: 0,
            data: Vec::new(),
        };
        let meta = Record {
            kind: METADATA_RECORD,
            crc: 1234,
            data: Metadata {
                node_id: 0x8e9e05c52164694d,
                cluster_id: 0xcdf818194e3a8c32,
            }
            .encode_to_vec(),
        };
        let mut out = frame(&crc, padding);
        out.extend(frame(&meta, padding));
        out
    }

    #[test]
    fn reads_ids_after_the_crc_record_with_or_without_padding() {
        for padding in [0, 3, 7] {
            assert_eq!(
                metadata_of(&head(padding)),
                Some(LocalMember {
                    member_id: 0x8e9e05c52164694d,
                    cluster_id: 0xcdf818194e3a8c32,
                })
            );
        }
    }

    #[test]
    fn truncated_or_foreign_bytes_give_nothing() {
        let whole = head(0);
        for cut in 0..whole.len() {
            assert_eq!(metadata_of(&whole[..cut]), None, "cut at {cut}");
        }
        assert_eq!(metadata_of(b"not a write-ahead log at all"), None);
        assert_eq!(metadata_of(&[0xff; 64]), None);
    }

    #[test]
    fn a_directory_without_a_log_holds_no_member() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(local_member(dir.path()).unwrap(), None);
        fs::create_dir_all(dir.path().join("member/wal")).unwrap();
        assert_eq!(local_member(dir.path()).unwrap(), None);
        fs::write(dir.path().join("member/wal/0.wal"), b"garbage").unwrap();
        let err = local_member(dir.path()).unwrap_err().to_string();
        assert!(err.contains("0.wal") && err.contains("move"), "{err}");
    }
}
