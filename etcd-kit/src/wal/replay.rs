//! Whether etcd 3.7 can replay a member's log: 3.7 dropped the v2 store, and panics on a
//! v2 request it finds among the entries it replays at start ("unmarshal should never
//! fail"; seen with etcd 3.7.2 over data that etcd 3.5 wrote and 3.6 ran on). etcd 3.5
//! proposed v2 requests (the leader's `SYNC` every half second, among others); 3.6 no
//! longer does. A restart replays the log after the last snapshot, so such entries stay a
//! danger until etcd 3.6 has taken a snapshot past them.
//!
//! Invariants: read-only; only the written part of each WAL file is read; an entry is a
//! v2 request when its data is a protobuf without the `header` field (100) that every
//! `InternalRaftRequest` since 3.0 carries.

use std::path::Path;

use prost::Message;
use zone_io::Error;

use super::frames::{read_records, wal_files, ENTRY_RECORD, SNAPSHOT_RECORD};

/// `raftpb.Entry`, the fields read here.
#[derive(Clone, PartialEq, Message)]
struct Entry {
    #[prost(uint64, tag = "3")]
    index: u64,
    #[prost(int32, tag = "1")]
    kind: i32,
    #[prost(bytes = "vec", tag = "4")]
    data: Vec<u8>,
}

/// `walpb.Snapshot`, the field read here.
#[derive(Clone, PartialEq, Message)]
struct Snapshot {
    #[prost(uint64, tag = "1")]
    index: u64,
}

/// The top-level field of an `InternalRaftRequest` that a v2 `Request` never has.
#[derive(Clone, PartialEq, Message)]
struct HeaderProbe {
    #[prost(bytes = "vec", optional, tag = "100")]
    header: Option<Vec<u8>>,
}

const ENTRY_NORMAL: i32 = 0;

/// Whether an entry's data is a v2 request (etcd before 3.6 proposed them).
fn is_v2_request(data: &[u8]) -> bool {
    !data.is_empty() && HeaderProbe::decode(data).is_ok_and(|p| p.header.is_none())
}

/// Where a member's log stands for a replay by etcd 3.7: its last snapshot record, and the
/// last v2 request after it (if any: a snapshot must pass it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replay {
    /// The index of the log's last snapshot record (0: none).
    pub snapshot: u64,
    /// The index of the last v2 request after it, if any.
    pub last_v2: Option<u64>,
}

/// The index of the last v2 request etcd would replay at the next start of the member in
/// `data_dir` (after its log's last snapshot record), if any: a snapshot must pass it.
pub fn entries_before_3_6(data_dir: &Path) -> Result<Option<u64>, Error> {
    Ok(replay(data_dir)?.last_v2)
}

/// [`entries_before_3_6`], with the index of the log's last snapshot record.
pub fn replay(data_dir: &Path) -> Result<Replay, Error> {
    let mut snapshot = 0;
    let mut last_v2 = 0;
    for path in wal_files(data_dir)? {
        let file =
            std::fs::File::open(&path).map_err(|e| Error::io("read etcd's log", &path, &e))?;
        for record in read_records(file) {
            match record.kind {
                SNAPSHOT_RECORD => {
                    if let Ok(s) = Snapshot::decode(record.data.as_slice()) {
                        snapshot = snapshot.max(s.index);
                    }
                }
                ENTRY_RECORD => {
                    let Ok(entry) = Entry::decode(record.data.as_slice()) else {
                        continue;
                    };
                    if entry.kind == ENTRY_NORMAL
                        && entry.index > last_v2
                        && is_v2_request(&entry.data)
                    {
                        last_v2 = entry.index;
                    }
                }
                _ => {}
            }
        }
    }
    Ok(Replay {
        snapshot,
        last_v2: (last_v2 > snapshot).then_some(last_v2),
    })
}

#[cfg(test)]
mod tests {
    use super::super::frames::Record;
    use super::*;

    fn frame(kind: i64, data: Vec<u8>) -> Vec<u8> {
        let body = Record { kind, crc: 0, data }.encode_to_vec();
        let mut out = (body.len() as u64).to_le_bytes().to_vec();
        out.extend(body);
        out
    }

    fn entry(index: u64, data: Vec<u8>) -> Vec<u8> {
        frame(
            ENTRY_RECORD,
            Entry {
                index,
                kind: ENTRY_NORMAL,
                data,
            }
            .encode_to_vec(),
        )
    }

    /// A v3 request: `InternalRaftRequest { header: { ID: 7 }, put: {..} }`.
    fn v3() -> Vec<u8> {
        // field 100 (header), length 2, { field 1 varint 7 }; field 4 (put), length 0.
        vec![0xa2, 0x06, 0x02, 0x08, 0x07, 0x22, 0x00]
    }

    /// A v2 request as etcd 3.5's leader proposed it: `Request { ID: 9, Method: "SYNC" }`.
    fn v2_sync() -> Vec<u8> {
        vec![0x08, 0x09, 0x12, 0x04, b'S', b'Y', b'N', b'C']
    }

    fn log(dir: &Path, bytes: &[u8]) {
        std::fs::create_dir_all(dir.join("member/wal")).unwrap();
        let mut padded = bytes.to_vec();
        padded.extend(std::iter::repeat_n(0u8, 4096));
        std::fs::write(
            dir.join("member/wal/0000000000000000-0000000000000000.wal"),
            padded,
        )
        .unwrap();
    }

    #[test]
    fn v2_requests_after_the_last_snapshot_are_found() {
        assert!(is_v2_request(&v2_sync()));
        assert!(!is_v2_request(&v3()));
        assert!(!is_v2_request(&[]));
        let dir = tempfile::tempdir().unwrap();
        // Written by 3.5 (v2 SYNCs among v3 requests), never snapshotted since.
        let mut bytes = entry(1, v3());
        bytes.extend(entry(2, v2_sync()));
        bytes.extend(entry(3, v3()));
        bytes.extend(entry(4, v2_sync()));
        log(dir.path(), &bytes);
        assert_eq!(entries_before_3_6(dir.path()).unwrap(), Some(4));
        // A snapshot at 3 leaves the one at 4.
        bytes.extend(frame(
            SNAPSHOT_RECORD,
            Snapshot { index: 3 }.encode_to_vec(),
        ));
        log(dir.path(), &bytes);
        assert_eq!(
            replay(dir.path()).unwrap(),
            Replay {
                snapshot: 3,
                last_v2: Some(4)
            }
        );
        // 3.6 went on and took a snapshot past them: nothing left to replay.
        bytes.extend(entry(5, v3()));
        bytes.extend(frame(
            SNAPSHOT_RECORD,
            Snapshot { index: 5 }.encode_to_vec(),
        ));
        bytes.extend(entry(6, v3()));
        log(dir.path(), &bytes);
        assert_eq!(entries_before_3_6(dir.path()).unwrap(), None);
        // No log at all: nothing.
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(entries_before_3_6(empty.path()).unwrap(), None);
    }
}
