//! A lagging target caught up from the zone's other targets.
//!
//! A writer that loses its lease (or is killed) while one target has its latest links and
//! another does not yet leaves the second behind: its shipper stops at once, and the next
//! writer goes on from the newest link any target holds ([`super::resume`]). Its shipper
//! to the lagging target would send the new links right after a hole that target can never
//! fill by itself: its chain breaks at the first missing link, and no point after the
//! hole could be exported from it alone (seen as a red `pitr` test: "link 24 is missing"
//! on S3, the directory target holding it).
//!
//! Invariants:
//! - the links copied are exactly the ones the next link continues: each is found by the
//!   `prev` hash of the link after it, so a late link beside the next writer's (see
//!   [`crate::fork`]) is never copied in its place;
//! - each is verified (signature, zone, its name) before it is copied; the shipper copies
//!   its object (checked against the size and SHA-256 its link names) before its manifest,
//!   in chain order, only while it holds the lease: the rules of its own links;
//! - one listing of each other target covers the hole (the names' common prefix), however
//!   many links it spans;
//! - when no other target answers, the links wait (retried with the shipper's backoff),
//!   as a link whose object is on another target only does; a link no target holds any
//!   more (their retention, or a writer killed before it shipped it anywhere) is a hole for
//!   good: said once, and the links after it are sent.

use std::sync::Arc;

use zone_pki::CertInfo;

use crate::chain::{manifest_seq, Link, SEQ_DIGITS};
use crate::destination::Target;
use crate::local::{Stored, MAX_MANIFEST_BYTES};
use crate::manifest;

/// What the other targets hold of a hole.
#[derive(Debug)]
pub struct Found {
    /// The links under the hole's top that continue into the link after it, in chain
    /// order: the whole hole, or its upper part when a link below them is nowhere.
    pub links: Vec<(Stored, Link)>,
    /// The newest link of the hole no target holds, if any: the hole that stays.
    pub lost: Option<u64>,
}

/// The links `from..to` that the link `to` continues (its `prev` is `want`), from the
/// first of `others` holding each. `Err` when none of them answered: the hole is not
/// known to be for good.
pub fn find(
    others: &[Arc<dyn Target>],
    (from, to): (u64, u64),
    want: &str,
    (zone, roots): (&str, &[CertInfo]),
) -> Result<Found, String> {
    let prefix = common_prefix(from, to - 1);
    let mut listed: Vec<(&dyn Target, Vec<String>)> = Vec::new();
    let mut problems = Vec::new();
    for other in others {
        match other.list(&prefix) {
            Ok(names) => listed.push((
                &**other,
                names
                    .into_iter()
                    .map(|o| o.name)
                    .filter(|n| manifest_seq(n).is_some_and(|s| (from..to).contains(&s)))
                    .collect(),
            )),
            Err(e) => problems.push(e.to_string()),
        }
    }
    if listed.is_empty() {
        return Err(format!(
            "links {from} to {} are on the other targets only, which do not answer: {}",
            to - 1,
            problems.join("; ")
        ));
    }
    let mut want = want.to_string();
    let mut links = Vec::new();
    for seq in (from..to).rev() {
        match continued_by(&listed, seq, &want, (zone, roots))? {
            Some((stored, link)) => {
                want = link.prev.clone().unwrap_or_default();
                links.push((stored, link));
            }
            None => {
                links.reverse();
                return Ok(Found {
                    links,
                    lost: Some(seq),
                });
            }
        }
    }
    links.reverse();
    Ok(Found { links, lost: None })
}

/// The manifest of number `seq` whose SHA-256 is `want`, verified, from the first
/// listed target holding it; `None` when none does.
fn continued_by(
    listed: &[(&dyn Target, Vec<String>)],
    seq: u64,
    want: &str,
    (zone, roots): (&str, &[CertInfo]),
) -> Result<Option<(Stored, Link)>, String> {
    for (target, names) in listed {
        for name in names.iter().filter(|n| manifest_seq(n) == Some(seq)) {
            // Gone since the listing (its retention), or unreadable now: another may have it.
            let Ok(Some(bytes)) = target.get(name, MAX_MANIFEST_BYTES) else {
                continue;
            };
            let stored = manifest::stored(name, bytes);
            if stored.sha256 != want {
                continue;
            }
            let verified = manifest::verify(&stored, zone, roots)
                .map_err(|p| format!("{} {name}: {p}", target.url()))?;
            if verified.link.manifest_name() != *name || verified.link.seq != seq {
                return Err(format!(
                    "{} {name}: its body is link {} ({}), stored under another name",
                    target.url(),
                    verified.link.seq,
                    verified.link.manifest_name()
                ));
            }
            return Ok(Some((stored, verified.link)));
        }
    }
    Ok(None)
}

/// The longest prefix of `chain/` names shared by every number of `first..=last`.
fn common_prefix(first: u64, last: u64) -> String {
    let (a, b) = (
        format!("chain/{first:0SEQ_DIGITS$}"),
        format!("chain/{last:0SEQ_DIGITS$}"),
    );
    let shared = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    a[..shared].to_string()
}

#[cfg(test)]
#[path = "fill_tests.rs"]
pub(in crate::runner) mod tests;
