//! The head record: where a target's chain ends, found in a handful of requests however
//! long the chain is. A writer that takes over reads it instead of listing `chain/`
//! (about 120,000 names for seven days of 5-second links).
//!
//! Each target holds, beside `chain/`, the object [`NAME`]: a [`record`] of the last
//! manifest shipped there (a byte-for-byte copy) and of the session that writes after it.
//! The writer of a term puts it before its first manifest on that target (naming its own
//! session: the announcement) and again after each round of manifests (see
//! `runner::ship`).
//!
//! Invariants:
//! - a head is trusted only as a link is: its manifest's signature up to the zone CA and
//!   its zone ([`crate::manifest::verify`]); and only when the target holds that
//!   very manifest (the same bytes under the name its link gives) and no manifest of the
//!   next sequence number by the link's session or the announced one (those six names are
//!   asked for directly: the next link is written by the same writer, or by the next
//!   one, who announced itself in the head before writing it). A head older than the
//!   chain (a writer killed between a manifest and its head, or an old head put back) is
//!   stale; a head naming a manifest the target does not hold is not that target's head:
//!   neither is ever continued from;
//! - a missing, stale or unverifiable head is not an error: the caller lists `chain/` as
//!   before and logs why ([`Head::Listed`] carries the reason);
//! - the head adds no trust the store did not have: whoever can write the store can hide
//!   links from a listing as well as from a head; signatures keep every link authentic;
//! - the head is never part of the chain: listings of `chain/`, `full/` and `delta/`, the
//!   drills and retention never see it, and a chain without heads (written before them)
//!   is read by listing as it always was;
//! - a record is read leniently: a field a later release adds is ignored; a record of
//!   another `format` is not used (its reason names both formats), and the chain is
//!   listed instead, as for any head that cannot be used.

use base64::Engine;
use serde::{Deserialize, Serialize};
use zone_pki::CertInfo;

use super::chain::{manifest_name, Kind, Verified};
use super::destination::{Target, TargetError};
use super::local::{Stored, MAX_MANIFEST_BYTES};
use super::manifest;

/// The head record's object name on every target.
pub const NAME: &str = "head";
/// The `format` of a head record.
pub const FORMAT: &str = "zone-etcd-head/1";

#[derive(Serialize, Deserialize)]
struct Record {
    format: String,
    /// The last manifest on the target (base64 of its bytes); `None` before the first.
    manifest: Option<String>,
    /// The session that writes the next link.
    next_session: String,
}

/// The head record naming `manifest` (the target's last, if any) and `next_session`.
pub fn record(manifest: Option<&[u8]>, next_session: &str) -> Vec<u8> {
    let record = Record {
        format: FORMAT.into(),
        manifest: manifest.map(|m| b64().encode(m)),
        next_session: next_session.into(),
    };
    serde_json::to_vec(&record).unwrap_or_default()
}

/// A head that can be continued from.
pub struct Fresh {
    pub stored: Stored,
    pub link: Verified,
    /// The session the head announces.
    pub next_session: String,
}

/// Where a target's chain ends, as its head says.
pub enum Head {
    Fresh(Box<Fresh>),
    /// The head cannot be used: why (one line, naming the target); list `chain/` instead.
    Listed(String),
}

/// Reads and checks `target`'s head against `zone` and its CA `roots`. An error is a
/// failed request (the target does not answer), not a bad head.
pub fn read(target: &dyn Target, zone: &str, roots: &[CertInfo]) -> Result<Head, TargetError> {
    let url = target.url();
    let fallback = |why: String| Ok(Head::Listed(format!("{url}: {NAME}: {why}")));
    let Some(bytes) = target.get(NAME, MAX_MANIFEST_BYTES)? else {
        return fallback("no head record (a chain written before heads, or none yet)".into());
    };
    if let Err(line) = zone_model::format::check_format(&bytes, FORMAT, crate::RELEASE) {
        return fallback(line);
    }
    let record = match serde_json::from_slice::<Record>(&bytes) {
        Ok(r) if r.format == FORMAT && is_session(&r.next_session) => r,
        _ => return fallback(format!("not a {FORMAT} record")),
    };
    let Some(manifest) = record.manifest else {
        return fallback("names no link yet".into());
    };
    let Ok(bytes) = b64().decode(manifest) else {
        return fallback("its manifest is not base64".into());
    };
    let name = match manifest::body_unverified(&bytes) {
        Ok(link) => link.manifest_name(),
        Err(problem) => return fallback(format!("not a manifest: {problem}")),
    };
    let stored = manifest::stored(&name, bytes);
    let link = match manifest::verify(&stored, zone, roots) {
        Ok(v) if v.link.zone == zone => v,
        Ok(v) => return fallback(format!("a link of zone {}, not {zone}", v.link.zone)),
        Err(problem) => return fallback(format!("does not verify: {problem}")),
    };
    match target.get(&name, MAX_MANIFEST_BYTES)? {
        Some(there) if there == stored.bytes => {}
        Some(_) => return fallback(format!("copies {name}, which the target holds otherwise")),
        None => return fallback(format!("copies {name}, which the target does not hold")),
    }
    for next in successors(link.link.seq, &link.link.session, &record.next_session) {
        if target.get(&next, MAX_MANIFEST_BYTES)?.is_some() {
            return fallback(format!(
                "stale: it copies {name}, but the target holds {next} after it"
            ));
        }
    }
    Ok(Head::Fresh(Box::new(Fresh {
        stored,
        link,
        next_session: record.next_session,
    })))
}

/// What a head stands in for: the listing of `chain/`, and the newest manifest's name
/// in it (`None` when the chain is empty).
pub fn listed(target: &dyn Target) -> Result<Listed, TargetError> {
    let names = target.list("chain/")?;
    let newest = names
        .iter()
        .filter_map(|o| super::chain::manifest_seq(&o.name).map(|seq| (seq, &o.name)))
        .max()
        .map(|(_, name)| name.clone());
    Ok(Listed { names, newest })
}

/// A listing of `chain/` and its newest manifest's name.
pub struct Listed {
    pub names: Vec<super::destination::ObjectInfo>,
    pub newest: Option<String>,
}

impl Listed {
    /// Every manifest name at the newest sequence number: one, unless a late link (see
    /// [`super::fork`]) shares its number with the next writer's link.
    pub fn newest_names(&self) -> Vec<&str> {
        let Some(seq) = self.newest.as_deref().and_then(super::chain::manifest_seq) else {
            return Vec::new();
        };
        self.names
            .iter()
            .map(|o| o.name.as_str())
            .filter(|name| super::chain::manifest_seq(name) == Some(seq))
            .collect()
    }
}

/// Every name the link after `seq` can have: by `session` or by `announced`, of any kind.
fn successors(seq: u64, session: &str, announced: &str) -> Vec<String> {
    let mut sessions = vec![session];
    if announced != session {
        sessions.push(announced);
    }
    sessions
        .into_iter()
        .flat_map(|s| {
            [Kind::Delta, Kind::Full, Kind::Gap].map(|kind| manifest_name(seq + 1, s, kind))
        })
        .collect()
}

/// A session as manifest names carry it.
fn is_session(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

#[cfg(test)]
#[path = "head_tests.rs"]
mod tests;
