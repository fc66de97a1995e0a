//! The head record: where a target's chain ends, found in three requests however long
//! the chain is. A writer that takes over reads it instead of listing `chain/` (about
//! 120,000 names for seven days of 5-second links).
//!
//! Each target holds, beside `chain/`, the object [`NAME`]: a byte-for-byte copy of the
//! last manifest shipped to it, put after that manifest (see `runner::ship`).
//!
//! Invariants:
//! - a head is trusted only as a link is: its signature up to the zone CA and its zone
//!   ([`crate::backup::manifest::verify`]); and only when the target holds the very
//!   manifest it copies (the same bytes under the name its link gives) and no manifest
//!   of the next sequence number (a listing of the prefix `chain/<seq + 1>-`: one short
//!   answer). A head older than the chain (a writer killed between a manifest and its
//!   head, or an old head put back) is stale, a head naming a manifest the target does
//!   not hold is not that target's head: neither is ever continued from;
//! - a missing, stale or unverifiable head is not an error: the caller lists `chain/` as
//!   before and logs why ([`Head::Listed`] carries the reason);
//! - the head is never part of the chain: listings of `chain/`, `full/` and `delta/`, the
//!   drills and retention never see it, and a chain without heads (written before them)
//!   is read by listing as it always was.

use zone_pki::CertInfo;

use super::chain::{manifest_prefix, Verified};
use super::local::{Stored, MAX_MANIFEST_BYTES};
use super::manifest;
use super::target::{Target, TargetError};

/// The head record's object name on every target.
pub const NAME: &str = "head";

/// Where a target's chain ends, as its head says.
pub enum Head {
    /// The head is the target's last link, verified: its stored manifest and its body.
    Fresh(Box<(Stored, Verified)>),
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
    let name = match manifest::body_unverified(&bytes) {
        Ok(link) => link.manifest_name(),
        Err(problem) => return fallback(format!("not a manifest: {problem}")),
    };
    let stored = manifest::stored(&name, bytes);
    let verified = match manifest::verify(&stored, zone, roots) {
        Ok(v) if v.link.zone == zone => v,
        Ok(v) => return fallback(format!("a link of zone {}, not {zone}", v.link.zone)),
        Err(problem) => return fallback(format!("does not verify: {problem}")),
    };
    match target.get(&name, MAX_MANIFEST_BYTES)? {
        Some(there) if there == stored.bytes => {}
        Some(_) => return fallback(format!("copies {name}, which the target holds otherwise")),
        None => return fallback(format!("copies {name}, which the target does not hold")),
    }
    let next = manifest_prefix(verified.link.seq + 1);
    if let Some(newer) = target.list(&next)?.into_iter().next() {
        return fallback(format!(
            "stale: it copies {name}, but the target holds {} after it",
            newer.name
        ));
    }
    Ok(Head::Fresh(Box::new((stored, verified))))
}

#[cfg(test)]
#[path = "head_tests.rs"]
mod tests;
