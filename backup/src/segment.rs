//! Delta segments: the changes of a run of revisions, as the watch delivered them. Pure.
//!
//! A segment is gzip'd JSON lines (so `age -d seg | gunzip | jq` reads it by hand): a
//! header line, then one line per revision with the time it was received and its events,
//! keys and values in base64. Invariants, checked by [`decode`]:
//! - the header names the zone and the revisions `first..=last`; the lines hold exactly
//!   those revisions, each once, in order (every etcd revision has at least one event);
//! - an event's `mod_revision` is its line's revision; a put's `create_revision` is at
//!   most its `mod_revision` and its `version` at least 1;
//! - the header's `format` is the format of every line: a field a later release adds to
//!   a line is ignored here; a change a reader must not ignore raises [`FORMAT`], and a
//!   segment of another format is refused before anything else of it is read.

use std::io::{BufRead, BufReader, Read, Write};

use base64::Engine;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};

/// The `format` of a segment's header line.
pub const FORMAT: &str = "zone-etcd-delta/1";

/// The most a delta segment may hold, decompressed (what a reader gives [`decode`]).
pub const MAX_SEGMENT_BYTES: u64 = 1 << 30;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub format: String,
    pub zone: String,
    pub first_revision: i64,
    pub last_revision: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Put,
    Delete,
}

/// One change of one key, as etcd's watch reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: EventKind,
    #[serde(with = "b64")]
    pub key: Vec<u8>,
    #[serde(with = "b64", default, skip_serializing_if = "Vec::is_empty")]
    pub value: Vec<u8>,
    #[serde(default)]
    pub create_revision: i64,
    pub mod_revision: i64,
    #[serde(default)]
    pub version: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lease: i64,
}

/// The events of one revision and when the writer received them (Unix ms).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revision {
    pub revision: i64,
    pub time_ms: i64,
    pub events: Vec<Event>,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

mod b64 {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}

/// Encodes the revisions `first..=last` (`revisions` may be empty: a heartbeat, then
/// `last` is `first - 1`).
pub fn encode(zone: &str, first: i64, last: i64, revisions: &[Revision]) -> Vec<u8> {
    let header = Header {
        format: FORMAT.into(),
        zone: zone.into(),
        first_revision: first,
        last_revision: last,
    };
    // The lines are written whole first and compressed in one call: written straight into
    // the encoder, serde_json's many small writes each cost flate2 a pass over its 32 KiB
    // output buffer (most of a cut's CPU, issue 37's profile).
    let mut lines = Vec::new();
    write_line(&mut lines, &header);
    for r in revisions {
        write_line(&mut lines, r);
    }
    let mut gz = GzEncoder::new(
        Vec::with_capacity(lines.len() / 2),
        flate2::Compression::default(),
    );
    // Writing to a Vec cannot fail.
    let _ = gz.write_all(&lines);
    gz.finish().unwrap_or_default()
}

fn write_line(lines: &mut Vec<u8>, value: &impl Serialize) {
    // These types always serialise, and a Vec takes every write.
    let _ = serde_json::to_writer(&mut *lines, value);
    lines.push(b'\n');
}

/// Decodes and checks a segment; `limit` bounds the decompressed size (a hostile or
/// corrupt segment cannot exhaust memory).
pub fn decode(bytes: &[u8], zone: &str, limit: u64) -> Result<(Header, Vec<Revision>), String> {
    let reader = BufReader::new(GzDecoder::new(bytes).take(limit + 1));
    let mut lines = reader.lines();
    let mut read = 0u64;
    let mut next_line = |lines: &mut std::io::Lines<_>| -> Result<Option<String>, String> {
        match lines.next() {
            None => Ok(None),
            Some(Ok(l)) => {
                read += l.len() as u64 + 1;
                if read > limit {
                    return Err(format!("holds more than {limit} bytes"));
                }
                Ok(Some(l))
            }
            Some(Err(e)) => Err(format!("is not a whole gzip stream: {e}")),
        }
    };
    let header: Header = match next_line(&mut lines)? {
        Some(l) => {
            zone_model::format::check_format(l.as_bytes(), FORMAT, crate::RELEASE)?;
            serde_json::from_str(&l).map_err(|e| format!("has no valid header: {e}"))?
        }
        None => return Err("is empty".into()),
    };
    if header.format != FORMAT {
        return Err(format!("has unknown format {:?}", header.format));
    }
    if header.zone != zone {
        return Err(format!("belongs to zone {:?}, not {zone:?}", header.zone));
    }
    let mut revisions = Vec::new();
    let mut expected = header.first_revision;
    while let Some(l) = next_line(&mut lines)? {
        let r: Revision = serde_json::from_str(&l)
            .map_err(|e| format!("revision line {}: {e}", revisions.len() + 1))?;
        if r.revision != expected {
            return Err(format!(
                "holds revision {} where revision {expected} belongs",
                r.revision
            ));
        }
        check_events(&r)?;
        expected += 1;
        revisions.push(r);
    }
    if expected != header.last_revision + 1 {
        return Err(format!(
            "ends at revision {}, its header says {}",
            expected - 1,
            header.last_revision
        ));
    }
    Ok((header, revisions))
}

fn check_events(r: &Revision) -> Result<(), String> {
    if r.events.is_empty() {
        return Err(format!("revision {} has no events", r.revision));
    }
    for e in &r.events {
        let bad = e.mod_revision != r.revision
            || (e.kind == EventKind::Put && (e.version < 1 || e.create_revision > e.mod_revision));
        if bad {
            return Err(format!(
                "revision {} has an event of key {} at revision {} (version {}, created {})",
                r.revision,
                base64::engine::general_purpose::STANDARD.encode(&e.key),
                e.mod_revision,
                e.version,
                e.create_revision
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &str, value: &str, rev: i64, version: i64) -> Event {
        Event {
            kind: EventKind::Put,
            key: key.into(),
            value: value.into(),
            create_revision: rev - version + 1,
            mod_revision: rev,
            version,
            lease: 0,
        }
    }

    fn sample() -> Vec<Revision> {
        vec![
            Revision {
                revision: 5,
                time_ms: 1,
                events: vec![put("a", "1", 5, 1), put("b", "\u{0}x", 5, 1)],
            },
            Revision {
                revision: 6,
                time_ms: 2,
                events: vec![Event {
                    kind: EventKind::Delete,
                    key: b"a".to_vec(),
                    value: vec![],
                    create_revision: 0,
                    mod_revision: 6,
                    version: 0,
                    lease: 0,
                }],
            },
        ]
    }

    #[test]
    fn round_trips_and_heartbeats() {
        let bytes = encode("z", 5, 6, &sample());
        let (h, revs) = decode(&bytes, "z", 1 << 20).unwrap();
        assert_eq!((h.first_revision, h.last_revision), (5, 6));
        assert_eq!(revs, sample());
        let (h, revs) = decode(&encode("z", 7, 6, &[]), "z", 1 << 20).unwrap();
        assert_eq!((h.first_revision, h.last_revision, revs.len()), (7, 6, 0));
    }

    /// `lines` (JSON values, one per line) gzip'd as a segment.
    fn segment_of(lines: &[serde_json::Value]) -> Vec<u8> {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(text.as_bytes()).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn a_later_releases_added_fields_are_read_past_and_a_newer_format_refused() {
        let plain = encode("z", 5, 6, &sample());
        let mut gunzipped = String::new();
        GzDecoder::new(plain.as_slice())
            .read_to_string(&mut gunzipped)
            .unwrap();
        let mut lines: Vec<serde_json::Value> = gunzipped
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        // A field added to the header, to a revision line and to an event.
        lines[0]["compression_level"] = 3.into();
        lines[1]["received_by"] = "node2.example.zone".into();
        lines[2]["events"][0]["prev_kv"] = serde_json::json!({"value": "AQ=="});
        let (header, revisions) = decode(&segment_of(&lines), "z", 1 << 20).unwrap();
        assert_eq!((header.first_revision, header.last_revision), (5, 6));
        assert_eq!(revisions, sample());
        // A later format, even one whose lines this release could not read: refused by
        // its format, before anything else.
        lines[0]["format"] = "zone-etcd-delta/2".into();
        lines[0]["first_revision"] = "5".into();
        let err = decode(&segment_of(&lines), "z", 1 << 20).unwrap_err();
        assert!(
            err.starts_with("format \"zone-etcd-delta/2\" is not one zone-etcd ")
                && err.contains("(it reads \"zone-etcd-delta/1\")"),
            "{err}"
        );
    }

    #[test]
    fn holes_extra_revisions_and_corruption_are_refused() {
        let s = sample();
        assert!(decode(&encode("z", 5, 7, &s), "z", 1 << 20)
            .unwrap_err()
            .contains("ends at revision 6"));
        assert!(decode(&encode("z", 4, 6, &s), "z", 1 << 20)
            .unwrap_err()
            .contains("where revision 4"));
        assert!(decode(&encode("z", 5, 6, &s), "y", 1 << 20)
            .unwrap_err()
            .contains("zone"));
        let mut bytes = encode("z", 5, 6, &s);
        let n = bytes.len();
        bytes.truncate(n - 5);
        assert!(decode(&bytes, "z", 1 << 20).is_err());
        assert!(decode(&encode("z", 5, 6, &s), "z", 10)
            .unwrap_err()
            .contains("more than"));
        let mut odd = sample();
        odd[0].events[0].mod_revision = 4;
        assert!(decode(&encode("z", 5, 6, &odd), "z", 1 << 20)
            .unwrap_err()
            .contains("revision 5 has an event"));
    }
}
