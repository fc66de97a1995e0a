//! What the examples share: a segment's revisions as the bench's writer makes them.

use zone_backup::segment::{Event, EventKind, Revision};

/// Revisions 1000.. of one put each: a 256-byte random value (the bench's writer), or a
/// small JSON document with `text`.
pub fn revisions(n: i64, text: bool) -> Vec<Revision> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|i| {
            let value: Vec<u8> = if text {
                format!(
                    "{{\"name\":\"svc-{i}\",\"node\":\"node{}.example.zone\",\"port\":{},\"tags\":[\"web\",\"prod\"]}}",
                    i % 7,
                    8000 + i
                )
                .into_bytes()
            } else {
                (0..256)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x as u8
                    })
                    .collect()
            };
            let revision = 1000 + i;
            Revision {
                revision,
                time_ms: 1_700_000_000_000 + i,
                events: vec![Event {
                    kind: EventKind::Put,
                    key: format!("bench/{i:09}").into_bytes(),
                    value,
                    create_revision: revision,
                    mod_revision: revision,
                    version: 1,
                    lease: 0,
                }],
            }
        })
        .collect()
}
