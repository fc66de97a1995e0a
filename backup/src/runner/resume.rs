//! Where a newly active writer goes on from: the last link on the targets (or the local
//! chain when it is ahead of them), verified. Blocking: run off the async loop.
//!
//! Where a target's chain ends comes from its head record (five to eight requests, however
//! long the chain: see [`crate::head`]); a target whose head is missing, stale or does
//! not verify is listed instead, and the log says why.
//!
//! Rules:
//! - at least one target must answer (a chain that cannot be seen could be continued by
//!   a fork); the answers are waited for, never guessed;
//! - the newest verified link wins; the local chain is kept when it holds that link and
//!   goes beyond it (links this node wrote but did not ship yet), otherwise moved aside;
//! - a link that does not verify is never continued: the writer stops with the reason.
//! - of two links under the newest number (a late link beside the next writer's first,
//!   see [`crate::fork`]), the one signed last is continued: the branch the
//!   drills follow.

use std::sync::Arc;

use zone_io::Error;
use zone_pki::CertInfo;

use crate::chain::{manifest_seq, Verified};
use crate::destination::Target;
use crate::fork;
use crate::head::{self, Head};
use crate::local::{LocalChain, Stored, MAX_MANIFEST_BYTES};
use crate::manifest;

/// The link to continue, with its stored manifest.
pub struct Resume {
    pub stored: Stored,
    pub link: Verified,
}

pub fn resume(
    targets: &[Arc<dyn Target>],
    local: &LocalChain,
    zone: &str,
    roots: &[CertInfo],
) -> Result<Option<Resume>, Error> {
    let mut newest: Option<Resume> = None;
    let mut answered = 0;
    let mut problems = Vec::new();
    for target in targets {
        let found = match last_link(&**target, zone, roots)? {
            Found::Link(found) => found,
            Found::Unanswered(problem) => {
                problems.push(problem);
                continue;
            }
        };
        answered += 1;
        let Some(found) = found else {
            continue;
        };
        if newest
            .as_ref()
            .is_none_or(|n| found.link.link.seq > n.link.link.seq)
        {
            newest = Some(*found);
        }
    }
    if answered == 0 && !targets.is_empty() {
        return Err(Error::new(format!(
            "no backup target answered, so where the chain ends is unknown: {}",
            problems.join("; ")
        ))
        .fix("bring a target back (or check the credentials); backup run retries"));
    }
    let names = local.manifests()?;
    let Some(local_last) = names.last() else {
        return Ok(newest);
    };
    let keep_local = match &newest {
        // Nothing on the targets: a local chain would continue nothing shipped.
        None => false,
        Some(n) => {
            let same = names
                .iter()
                .find(|name| manifest_seq(name) == Some(n.link.link.seq));
            match same {
                Some(name) => local.read_manifest(name)?.sha256 == n.stored.sha256,
                None => false,
            }
        }
    };
    if !keep_local {
        let aside = local.move_aside()?;
        tracing::warn!(
            "the local backup chain does not continue the targets' chain: moved aside to {}",
            aside.display()
        );
        return Ok(newest);
    }
    let stored = local.read_manifest(local_last)?;
    let link = manifest::verify(&stored, zone, roots)
        .map_err(|p| Error::new(format!("{}: {p}", local.object_path(local_last).display())))?;
    Ok(Some(Resume { stored, link }))
}

/// What one target says of where its chain ends.
enum Found {
    Link(Option<Box<Resume>>),
    /// The target did not answer (its head could not be read, nor its chain listed).
    Unanswered(String),
}

/// The last link of one target: its head record when that is fresh (five to eight
/// requests), else the newest manifest a listing of `chain/` finds (and the log says
/// why; of two under one number, the one signed last). `Err` when such a manifest
/// cannot be read or does not verify: never continued.
fn last_link(target: &dyn Target, zone: &str, roots: &[CertInfo]) -> Result<Found, Error> {
    let url = target.url();
    match head::read(target, zone, roots) {
        Err(e) => return Ok(Found::Unanswered(e.to_string())),
        Ok(Head::Fresh(fresh)) => {
            let head::Fresh { stored, link, .. } = *fresh;
            tracing::info!(
                "backup target {url}: the chain ends at {} (its head record)",
                stored.name
            );
            return Ok(Found::Link(Some(Box::new(Resume { stored, link }))));
        }
        Ok(Head::Listed(why)) => tracing::warn!("backup: {why}; listing chain/ instead"),
    }
    let listed = match head::listed(target) {
        Ok(listed) => listed,
        Err(e) => return Ok(Found::Unanswered(e.to_string())),
    };
    // Two links under the newest number: one is late (`crate::fork`), signed before the
    // next writer's; the chain the drills follow is the newest signed one's, so is this.
    let mut newest: Option<Box<Resume>> = None;
    for name in listed.newest_names() {
        let bytes = target
            .get(name, MAX_MANIFEST_BYTES)
            .map_err(|e| Error::new(e.to_string()))?
            .ok_or_else(|| Error::new(format!("{url}: {name} vanished while read")))?;
        let stored = manifest::stored(name, bytes);
        let link = manifest::verify(&stored, zone, roots).map_err(|p| {
            Error::new(format!("{url} {name}: {p}")).fix(
                "the chain on that target cannot be continued: check it with `zone-etcd backup drill`, move its objects aside, and start again",
            )
        })?;
        if newest
            .as_ref()
            .is_none_or(|n| fork::newest_key(&link.link) > fork::newest_key(&n.link.link))
        {
            newest = Some(Box::new(Resume { stored, link }));
        }
    }
    Ok(Found::Link(newest))
}

#[cfg(test)]
#[path = "resume_tests.rs"]
mod tests;
