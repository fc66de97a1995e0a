//! Where a newly active writer goes on from: the last link on the targets (or the local
//! chain when it is ahead of them), verified. Blocking: run off the async loop.
//!
//! Rules:
//! - at least one target must answer (a chain that cannot be seen could be continued by
//!   a fork); the answers are waited for, never guessed;
//! - the newest verified link wins; the local chain is kept when it holds that link and
//!   goes beyond it (links this node wrote but did not ship yet), otherwise moved aside;
//! - a link that does not verify is never continued: the writer stops with the reason.

use std::sync::Arc;

use zone_pki::{CertInfo, Error};

use crate::backup::chain::{manifest_seq, Verified};
use crate::backup::local::{LocalChain, Stored, MAX_MANIFEST_BYTES};
use crate::backup::manifest;
use crate::backup::target::Target;

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
        let names = match target.list("chain/") {
            Ok(list) => list,
            Err(e) => {
                problems.push(e.to_string());
                continue;
            }
        };
        answered += 1;
        let Some(last) = names
            .iter()
            .filter(|o| manifest_seq(&o.name).is_some())
            .max_by_key(|o| manifest_seq(&o.name))
        else {
            continue;
        };
        let bytes = target
            .get(&last.name, MAX_MANIFEST_BYTES)
            .map_err(|e| Error::new(e.to_string()))?
            .ok_or_else(|| {
                Error::new(format!(
                    "{}: {} vanished while read",
                    target.url(),
                    last.name
                ))
            })?;
        let stored = manifest::stored(&last.name, bytes);
        let link = manifest::verify(&stored, zone, roots).map_err(|p| {
            Error::new(format!("{} {}: {p}", target.url(), last.name)).fix(
                "the chain on that target cannot be continued: check it with `zone-etcd backup drill`, move its objects aside, and start again",
            )
        })?;
        if newest
            .as_ref()
            .is_none_or(|n| link.link.seq > n.link.link.seq)
        {
            newest = Some(Resume { stored, link });
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
