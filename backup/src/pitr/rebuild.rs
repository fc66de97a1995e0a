//! Rebuilding the zone at a point: the stretch's full snapshot restored into a scratch
//! etcd ([`crate::scratch`]), then its deltas replayed one transaction per
//! revision up to the point, so a multi-key transaction stays atomic and every revision
//! keeps its number.
//!
//! Invariants: the replay stops exactly at the point (a revision: that revision, which
//! must be reached; a time: before the first revision received after it); segments are
//! read one at a time, as the replay needs them (memory holds one segment, not the
//! chain), each checked by [`Source::segment`] before a revision of it is replayed.

use std::path::Path;

use etcd_client::Client;

use super::point::Point;
use super::reach::Stretch;
use super::source::Source;
use crate::scratch::Scratch;
use crate::segment::Revision;

/// A scratch etcd holding the zone as it was at `revision`.
pub struct Rebuilt {
    pub scratch: Scratch,
    pub client: Client,
    pub revision: i64,
    /// When `revision` was received (the full snapshot's time when no delta was replayed).
    pub time_ms: i64,
    pub full_revision: i64,
    /// How many revisions were replayed after the full snapshot.
    pub replayed: usize,
}

/// The etcd and etcdutl the scratch member runs on.
pub struct Tools<'a> {
    pub etcd: &'a Path,
    pub etcdutl: &'a Path,
}

/// Restores `stretch`'s full snapshot under `work` and replays its deltas up to `point`.
pub async fn rebuild(
    source: &Source,
    zone: &str,
    stretch: &Stretch<'_>,
    point: Point,
    tools: &Tools<'_>,
    work: &Path,
) -> Result<Rebuilt, String> {
    let full = work.join("full.db");
    source.full(stretch.full, &full, tools.etcdutl)?;
    let mut scratch = Scratch::restore(tools.etcd, tools.etcdutl, &full, work)?;
    let _ = std::fs::remove_file(&full);
    let mut client = scratch.connect().await?;
    let full_revision = stretch.full.link.last_revision;
    let (mut revision, mut time_ms, mut replayed) =
        (full_revision, stretch.full.link.first_time_ms, 0);
    let wanted = |r: &Revision| match point {
        Point::Revision(p) => r.revision <= p,
        Point::Time(t) => r.time_ms <= t,
    };
    for v in stretch.deltas_to(point) {
        let revisions = source.segment(v, zone, work)?;
        let before = revision;
        let (last, reached) = scratch
            .replay_while(&mut client, &revisions, revision, wanted)
            .await?;
        if let Some(r) = revisions.iter().find(|r| r.revision == last) {
            time_ms = r.time_ms;
        }
        replayed += revisions
            .iter()
            .filter(|r| r.revision > before && r.revision <= last)
            .count();
        revision = last;
        if reached {
            break;
        }
    }
    if let Point::Revision(p) = point {
        if revision != p {
            return Err(format!(
                "the chain's deltas after the full snapshot at revision {full_revision} end at revision {revision}, before {p}"
            ));
        }
    }
    Ok(Rebuilt {
        scratch,
        client,
        revision,
        time_ms,
        full_revision,
        replayed,
    })
}
