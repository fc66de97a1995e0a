//! The chain: what a backup target holds and the rules that make it trustworthy. Pure (no
//! I/O; the runner and the drill fetch and hand over), so every rule is unit-tested.
//!
//! Layout under a target's root (and the same under `<state_dir>/backup/chain` locally):
//! - `chain/<seq>-<session>-<kind>.json`: one signed manifest per link (see
//!   `crate::signing`): plaintext metadata only (revisions, times, sizes, hashes: never
//!   a key or a value); the kind in the name lets `status` find the newest full snapshot
//!   without reading every manifest;
//! - `full/<seq>-<session>-r<revision>.db.age`: a full snapshot, exactly as etcd's
//!   Snapshot API streamed it (etcd's integrity hash included), age-encrypted, so
//!   `age -d` then `etcdutl snapshot restore` restores it by hand;
//! - `delta/<seq>-<session>-r<first>-r<last>.jsonl.gz.age`: a delta segment (see
//!   `crate::segment`), age-encrypted.
//!
//! Beside them, on a target only, `head`: a record of the last manifest sent there and
//! of the session writing after it (see `crate::head`), so a new writer finds where the
//! chain ends without listing it.
//!
//! Invariants:
//! - every link names the SHA-256 of the previous link's manifest file (`prev`) and its
//!   sequence number is the previous one's + 1: a removed, reordered or replaced link
//!   breaks the chain where it happened, and [`check_links`] names it;
//! - a delta starts at the revision after the previous delta's last (fulls are
//!   checkpoints beside the deltas, they do not move the delta revision); a `gap` link
//!   records the revisions that were compacted away before the watch reached them, and
//!   is never skipped over silently;
//! - retention (see `crate::retention`) keeps old full snapshots alone (restore points,
//!   not restored from) and the recent part whole, so a kept chain is segments of
//!   consecutive links: every segment but the last holds full snapshots only, and a
//!   segment that follows skipped sequence numbers starts with a full snapshot or with
//!   the delta that holds the revision right after a full snapshot of its segment (the
//!   first delta that full needs). Anything else that skips a number is a link missing:
//!   a link removed from the recent part (a delta after a full, a full between deltas,
//!   a run of deltas ending anywhere but at a full's first needed delta) leaves deltas
//!   before the skip, or a delta no full needs after it. What this cannot tell from
//!   retention is the removal of everything older than some point: a shorter
//!   recoverable window, which `status` shows;
//! - the newest full snapshot restores to the last link: every revision after it is in
//!   the deltas of its segment;
//! - an object is written before its manifest, so a manifest never names an object that
//!   is missing or partial; an object's size and SHA-256 (of the encrypted bytes) are in
//!   its manifest, so a changed object is detected before it is decrypted;
//! - a link is read leniently: a field a later release adds is ignored, and a change a
//!   reader must not ignore raises [`FORMAT`] (refused before anything else of the body
//!   is read, `crate::manifest`). Nothing is ever worked out from a link serialised
//!   again: a manifest's hash is of its stored bytes, its name of its fields, and a link
//!   adopted from a target is kept as its bytes, so what a newer release added stays
//!   under its signature and in the chain's hashes.

use serde::{Deserialize, Serialize};

/// The `format` of a manifest body.
pub const FORMAT: &str = "zone-etcd-backup/1";
/// Sequence numbers are written with this many digits, so names sort in chain order.
pub const SEQ_DIGITS: usize = 12;

/// What a link holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A full snapshot at `last_revision` (`first_revision` is the same).
    Full,
    /// The changes of `first_revision..=last_revision` (empty when `first` is `last` + 1:
    /// a heartbeat saying nothing changed until `last_time`).
    Delta,
    /// Revisions `first_revision..=last_revision` were compacted before they were seen.
    Gap,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Full => "full",
            Kind::Delta => "delta",
            Kind::Gap => "gap",
        }
    }
}

/// The body of a manifest: what the writer signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub format: String,
    pub zone: String,
    /// etcd's cluster ID (hex), so two clusters' chains never mix.
    pub cluster_id: String,
    pub seq: u64,
    /// The writer's session: a random ID per `backup run` activation.
    pub session: String,
    /// The node that wrote and signed it.
    pub writer: String,
    pub kind: Kind,
    pub first_revision: i64,
    pub last_revision: i64,
    /// When the first and the last revision were received (Unix ms); for a full, when
    /// the snapshot was taken. For a delta, `last_time` is also the time up to which the
    /// writer knew nothing else had changed.
    pub first_time_ms: i64,
    pub last_time_ms: i64,
    /// The object's name, its size and the SHA-256 (hex) of its encrypted bytes; `None`
    /// for a gap.
    pub object: Option<String>,
    pub object_size: u64,
    pub object_sha256: String,
    /// Where the next delta starts: `last_revision + 1` for a delta or a gap; for a full
    /// snapshot, where the delta log stood when it was linked (the chain's first full:
    /// its revision + 1). A writer that takes over resumes from the last link alone.
    pub next_delta: i64,
    /// SHA-256 (hex) of the previous link's manifest file, `None` for the first link.
    pub prev: Option<String>,
    /// Signing time (Unix ms): the certificates are checked at this time.
    pub signed_ms: i64,
}

impl Link {
    /// The manifest's name for this link.
    pub fn manifest_name(&self) -> String {
        manifest_name(self.seq, &self.session, self.kind)
    }
}

pub fn manifest_name(seq: u64, session: &str, kind: Kind) -> String {
    format!("chain/{seq:0SEQ_DIGITS$}-{session}-{}.json", kind.as_str())
}

pub fn full_name(seq: u64, session: &str, revision: i64) -> String {
    format!("full/{seq:0SEQ_DIGITS$}-{session}-r{revision}.db.age")
}

pub fn delta_name(seq: u64, session: &str, first: i64, last: i64) -> String {
    format!("delta/{seq:0SEQ_DIGITS$}-{session}-r{first}-r{last}.jsonl.gz.age")
}

/// The sequence number a manifest's name carries, `None` for any other name.
pub fn manifest_seq(name: &str) -> Option<u64> {
    parse_manifest_name(name).map(|(seq, _)| seq)
}

/// The sequence number and kind a manifest's name carries.
pub fn parse_manifest_name(name: &str) -> Option<(u64, Kind)> {
    let rest = name.strip_prefix("chain/")?.strip_suffix(".json")?;
    let mut parts = rest.split('-');
    let (seq, session, kind) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some()
        || seq.len() != SEQ_DIGITS
        || session.is_empty()
        || !session.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return None;
    }
    let kind = [Kind::Full, Kind::Delta, Kind::Gap]
        .into_iter()
        .find(|k| k.as_str() == kind)?;
    Some((seq.parse().ok()?, kind))
}

/// Why a chain cannot be trusted, naming the object at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub object: String,
    pub problem: String,
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.object, self.problem)
    }
}

/// One verified manifest: its name, the SHA-256 (hex) of its file and its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub name: String,
    pub sha256: String,
    pub link: Link,
}

/// Checks the links in chain order (as listed: names sort by sequence): each names its
/// own file, the zone and the cluster, follows the previous one (sequence, hash, delta
/// revisions), and every link's object name is the one its kind and revisions give.
/// The first link may follow a pruned one (its `prev` is then not checked); after
/// retention, the links may skip sequence numbers only where [`break_allowed`] says (see
/// the invariants above), and the newest full snapshot must restore to the last link.
pub fn check_links(zone: &str, links: &[Verified]) -> Result<(), Broken> {
    // The link listed before this one, and whether its segment holds full snapshots only.
    let mut before: Option<&Verified> = None;
    let mut fulls_only = true;
    let mut cluster: Option<&str> = None;
    // Where the delta log of the current segment (or cluster) starts, and the newest full
    // snapshot with that start as it was when the full was reached.
    let mut coverage = 0;
    let mut newest_full: Option<(&Verified, i64)> = None;
    for (i, v) in links.iter().enumerate() {
        let l = &v.link;
        let broken = |problem: String| Broken {
            object: v.name.clone(),
            problem,
        };
        if l.format != FORMAT {
            return Err(broken(format!(
                "unknown format {:?} (this release reads {FORMAT:?})",
                l.format
            )));
        }
        if l.zone != zone {
            return Err(broken(format!(
                "belongs to zone {:?}, not {zone:?}",
                l.zone
            )));
        }
        if v.name != l.manifest_name() {
            return Err(broken(format!(
                "its body is link {} ({}), stored under another link's name",
                l.seq,
                l.manifest_name()
            )));
        }
        // `prev`: the link before, when this one follows it (no link pruned between).
        let follows = before.is_some_and(|p| l.seq == p.link.seq + 1);
        let prev = before.filter(|_| follows);
        if !follows {
            cluster = None;
        }
        // A restored zone is a new etcd cluster: its chain goes on from a full snapshot of
        // the new cluster, whose deltas start right after it.
        let new_cluster = cluster.is_some_and(|c| c != l.cluster_id);
        if new_cluster && (l.kind != Kind::Full || l.next_delta != l.last_revision + 1) {
            return Err(broken(format!(
                "belongs to etcd cluster {}, the links before it to {}, and is not a full snapshot that starts it",
                l.cluster_id,
                cluster.unwrap_or_default()
            )));
        }
        cluster = Some(&l.cluster_id);
        if l.first_revision < 1 || l.last_revision < l.first_revision - 1 {
            return Err(broken(format!(
                "revisions {}..{} are not a range",
                l.first_revision, l.last_revision
            )));
        }
        let expected_object = match l.kind {
            Kind::Full => Some(full_name(l.seq, &l.session, l.last_revision)),
            Kind::Delta => Some(delta_name(
                l.seq,
                &l.session,
                l.first_revision,
                l.last_revision,
            )),
            Kind::Gap => None,
        };
        if l.object != expected_object {
            return Err(broken(format!(
                "names object {:?}, a {} at these revisions is {:?}",
                l.object,
                l.kind.as_str(),
                expected_object
            )));
        }
        if l.kind == Kind::Full && l.first_revision != l.last_revision {
            return Err(broken("a full snapshot is at one revision".into()));
        }
        if let Some(p) = before.filter(|_| !follows) {
            if !break_allowed(links, i, p, fulls_only) {
                return Err(broken(format!(
                    "follows link {} but is link {}: link {} is missing",
                    p.link.seq,
                    l.seq,
                    p.link.seq + 1
                )));
            }
        }
        if let Some(p) = prev {
            if l.prev.as_deref() != Some(p.sha256.as_str()) {
                return Err(broken(format!(
                    "does not follow {} (its prev hash names another manifest): a link was replaced or removed",
                    p.name
                )));
            }
        }
        let delta = matches!(l.kind, Kind::Delta | Kind::Gap);
        if delta && l.next_delta != l.last_revision + 1 {
            return Err(broken(format!(
                "a {} ending at revision {} says the next delta starts at {}",
                l.kind.as_str(),
                l.last_revision,
                l.next_delta
            )));
        }
        if let Some(p) = prev {
            let expected = p.link.next_delta;
            if delta && l.first_revision != expected {
                return Err(broken(format!(
                    "starts at revision {}, the delta before it ended at {}",
                    l.first_revision,
                    expected - 1
                )));
            }
            if !delta && !new_cluster && l.next_delta != expected {
                return Err(broken(format!(
                    "says the next delta starts at revision {}, the link before it at {expected}",
                    l.next_delta
                )));
            }
        }
        if prev.is_none() || new_cluster {
            coverage = if delta {
                l.first_revision
            } else {
                l.next_delta
            };
        }
        fulls_only = l.kind == Kind::Full && (fulls_only || !follows);
        if l.kind == Kind::Full {
            newest_full = Some((v, coverage));
        }
        before = Some(v);
    }
    // The newest full snapshot restores to the last link: every revision after it is in
    // the deltas of its segment.
    if let Some((v, coverage)) = newest_full {
        let l = &v.link;
        if coverage > l.last_revision + 1 {
            return Err(Broken {
                object: v.name.clone(),
                problem: format!(
                    "deltas start at revision {coverage}, after this full snapshot at {}: revisions {}..{} are missing",
                    l.last_revision,
                    l.last_revision + 1,
                    coverage - 1
                ),
            });
        }
    }
    Ok(())
}

/// Whether link `i` may follow `before` with links pruned between them (retention keeps
/// old full snapshots alone, then the recent part whole): the links from the previous
/// break up to `before` are full snapshots only (`fulls_only`), and link `i` is a full
/// snapshot or the delta (or gap) that holds the revision right after a full snapshot
/// later in its own segment (the first link that full needs).
pub fn break_allowed(links: &[Verified], i: usize, before: &Verified, fulls_only: bool) -> bool {
    let l = &links[i].link;
    if l.seq <= before.link.seq || !fulls_only {
        return false;
    }
    if l.kind == Kind::Full {
        return true;
    }
    let mut seq = l.seq;
    for v in &links[i + 1..] {
        if v.link.seq != seq + 1 {
            return false;
        }
        seq = v.link.seq;
        let after = v.link.last_revision + 1;
        if v.link.kind == Kind::Full
            && v.link.cluster_id == l.cluster_id
            && (l.first_revision..=l.last_revision).contains(&after)
        {
            return true;
        }
    }
    false
}

/// What a restore to the newest point replays: a full snapshot and the deltas after it.
#[derive(Debug)]
pub struct Plan<'a> {
    pub full: &'a Verified,
    /// Every delta or gap link with revisions after the full's, in chain order (the first
    /// may start before the full: its older revisions are skipped on replay).
    pub deltas: Vec<&'a Verified>,
}

/// The newest full snapshot and the deltas after it, or `None` when the chain has no full
/// snapshot. The links must have passed [`check_links`].
pub fn newest_restorable(links: &[Verified]) -> Option<Plan<'_>> {
    let full = links.iter().rev().find(|v| v.link.kind == Kind::Full)?;
    let after = full.link.last_revision;
    let deltas = links
        .iter()
        .filter(|v| v.link.kind != Kind::Full && v.link.last_revision > after)
        .collect();
    Some(Plan { full, deltas })
}

/// The gaps (first, last revision) in `links` that no later full snapshot closes: a
/// restore to the newest point must cross them.
pub fn open_gaps(links: &[Verified]) -> Vec<(i64, i64)> {
    let after = links
        .iter()
        .rev()
        .find(|v| v.link.kind == Kind::Full)
        .map_or(0, |v| v.link.last_revision);
    links
        .iter()
        .filter(|v| v.link.kind == Kind::Gap && v.link.last_revision > after)
        .map(|v| (v.link.first_revision, v.link.last_revision))
        .collect()
}

#[cfg(test)]
#[path = "chain_testing.rs"]
pub(crate) mod testing;

#[cfg(test)]
#[path = "chain_tests.rs"]
mod tests;
