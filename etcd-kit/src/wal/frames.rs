//! The files of etcd's write-ahead log (`<data>/member/wal/*.wal`, in order) and their
//! framing (etcd `server/storage/wal`): frames of an 8-byte
//! little-endian length word (low 56 bits: record size; if the top bit is set, bits 56..59
//! give the padding after it), each holding a `walpb.Record` protobuf. A zero length word
//! (the preallocated tail of the last file) or a frame that does not parse ends the log.

use std::path::{Path, PathBuf};

use prost::Message;
use zone_io::Error;

/// `walpb.Record`.
#[derive(Clone, PartialEq, Message)]
pub(super) struct Record {
    #[prost(int64, tag = "1")]
    pub kind: i64,
    #[prost(uint32, tag = "2")]
    pub crc: u32,
    #[prost(bytes = "vec", tag = "3")]
    pub data: Vec<u8>,
}

pub(super) const METADATA_RECORD: i64 = 1;
pub(super) const ENTRY_RECORD: i64 = 2;
pub(super) const SNAPSHOT_RECORD: i64 = 5;

/// A frame's length word: the record's size and the padding after it; `None` for the
/// zero word that ends the log.
pub(super) fn frame_size(word: [u8; 8]) -> Option<(usize, usize)> {
    let length = u64::from_le_bytes(word);
    let size = usize::try_from(length & !(0xff << 56)).ok()?;
    if size == 0 {
        return None;
    }
    let padding = if length >> 63 == 1 {
        ((length >> 56) & 0x7) as usize
    } else {
        0
    };
    Some((size, padding))
}

/// The records of a WAL file's bytes, in order, up to the first that does not parse.
pub(super) fn records(bytes: &[u8]) -> impl Iterator<Item = Record> + '_ {
    let mut rest = bytes;
    std::iter::from_fn(move || {
        let (word, after) = rest.split_at_checked(8)?;
        let (size, padding) = frame_size(word.try_into().ok()?)?;
        let frame = after.get(..size.checked_add(padding)?)?;
        let record = Record::decode(&frame[..size]).ok()?;
        rest = &after[frame.len()..];
        Some(record)
    })
}

/// The records of a WAL file read as a stream (only the written part of a preallocated
/// file is read), in order, up to the first that does not parse or a read error.
pub(super) fn read_records(reader: impl std::io::Read) -> impl Iterator<Item = Record> {
    let mut reader = std::io::BufReader::new(reader);
    std::iter::from_fn(move || {
        use std::io::Read;
        let mut word = [0u8; 8];
        reader.read_exact(&mut word).ok()?;
        let (size, padding) = frame_size(word)?;
        let mut frame = vec![0u8; size.checked_add(padding)?];
        reader.read_exact(&mut frame).ok()?;
        Record::decode(&frame[..size]).ok()
    })
}

/// The WAL files of `data_dir` in order (`member/wal/*.wal`), none when it has no log.
pub(super) fn wal_files(data_dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let wal_dir = data_dir.join("member").join("wal");
    let mut files: Vec<PathBuf> = zone_io::entries(&wal_dir)?
        .into_iter()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    files.sort();
    Ok(files)
}
