//! What a shipper knows its target holds, for one term: which local links to send, and
//! the target's manifests for retention.
//!
//! At a term's start the target's head record says where its chain ends (a handful of
//! requests, see [`crate::backup::head`]): every local link up to there is taken as
//! held, and the links after it are sent. A target whose head is missing, stale or
//! does not verify is listed instead, as before heads.
//!
//! Invariants:
//! - a link at or below the head's sequence number is never sent again, also when the
//!   target no longer holds it (its retention removed it): a pruned link is not re-uploaded;
//! - retention plans a target from a whole listing only: it is made once a term, on a
//!   thread of its own when first asked for, so the first links of a takeover never wait
//!   for a long chain's listing; until it is in, the target is not pruned;
//! - before the first manifest of a term on the target, the head announces this writer's
//!   session ([`Known::announced`]): a reader then knows every name the next link can
//!   have; after a round of manifests the head copies the last one ([`Known::behind`])
//!   before the shipper waits for the next link, so a head is stale only across a
//!   failure or a kill.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::thread::JoinHandle;

use zone_pki::CertInfo;

use crate::backup::chain::manifest_seq;
use crate::backup::head::{self, Head};
use crate::backup::local::MAX_MANIFEST_BYTES;
use crate::backup::target::{ObjectInfo, Target, TargetError};

type Listing = Result<Vec<ObjectInfo>, TargetError>;

pub struct Known {
    /// Every link up to this sequence number is on the target, or was pruned from it.
    floor: u64,
    /// Manifests known on the target: a listing's, and those sent this term.
    names: BTreeSet<String>,
    /// `names` holds a whole listing (and what was sent and pruned since).
    listed: bool,
    listing: Option<JoinHandle<Listing>>,
    /// The target's last manifest as far as known: what its head should copy.
    last: Option<Vec<u8>>,
    /// The target's head announces this writer's session.
    announced: bool,
    /// Manifests were sent since the head was.
    behind: bool,
}

impl Known {
    /// What `target` holds at a term's start, for the writer of `session`: by its head,
    /// else by a listing (and its last manifest, for the head to copy).
    pub fn learn(
        target: &dyn Target,
        (zone, roots): (&str, &[CertInfo]),
        session: &str,
    ) -> Result<Known, String> {
        match head::read(target, zone, roots).map_err(|e| e.to_string())? {
            Head::Fresh(fresh) => Ok(Known {
                floor: fresh.link.link.seq,
                names: BTreeSet::new(),
                listed: false,
                listing: None,
                announced: fresh.next_session == session,
                last: Some(fresh.stored.bytes),
                behind: false,
            }),
            Head::Listed(why) => {
                tracing::warn!("backup: {why}; listing chain/ instead");
                let listed = head::listed(target).map_err(|e| e.to_string())?;
                let last = match &listed.newest {
                    Some(name) => target
                        .get(name, MAX_MANIFEST_BYTES)
                        .map_err(|e| e.to_string())?,
                    None => None,
                };
                Ok(Known {
                    floor: 0,
                    names: listed.names.into_iter().map(|o| o.name).collect(),
                    listed: true,
                    listing: None,
                    announced: false,
                    last,
                    behind: false,
                })
            }
        }
    }

    /// Whether the target holds (or held) the manifest `name`.
    pub fn holds(&self, name: &str) -> bool {
        manifest_seq(name).is_some_and(|seq| seq <= self.floor) || self.names.contains(name)
    }

    /// The newest sequence number the target is known to hold (or to have held).
    pub fn newest(&self) -> u64 {
        let named = self.names.iter().rev().find_map(|n| manifest_seq(n));
        named.unwrap_or(0).max(self.floor)
    }

    /// `name` was found on the target.
    pub fn found(&mut self, name: &str) {
        self.names.insert(name.to_string());
    }

    /// The manifest `name` was sent: the head is behind until it copies `bytes`.
    pub fn sent(&mut self, name: &str, bytes: &[u8]) {
        self.names.insert(name.to_string());
        self.last = Some(bytes.to_vec());
        self.behind = true;
    }

    /// Whether the target's head announces this writer (a manifest may be sent).
    pub fn announced(&self) -> bool {
        self.announced
    }

    /// Whether the head is due again after manifests were sent.
    pub fn behind(&self) -> bool {
        self.behind
    }

    /// The head record to put now, for the writer of `session`.
    pub fn head_record(&self, session: &str) -> Vec<u8> {
        head::record(self.last.as_deref(), session)
    }

    /// The head record was put: it copies the last manifest and announces this writer.
    pub fn head_put(&mut self) {
        self.announced = true;
        self.behind = false;
    }

    /// The target's manifests for retention, once a listing is in: the first call starts
    /// it on a thread; `Ok(None)` until it is done.
    pub fn for_retention(
        &mut self,
        target: &Arc<dyn Target>,
    ) -> Result<Option<&mut BTreeSet<String>>, String> {
        if self.listed {
            return Ok(Some(&mut self.names));
        }
        match self.listing.take() {
            None => {
                let target = target.clone();
                let listing = std::thread::Builder::new()
                    .name("list for retention".into())
                    .spawn(move || target.list("chain/"))
                    .map_err(|e| format!("cannot start a listing thread: {e}"))?;
                self.listing = Some(listing);
                Ok(None)
            }
            Some(listing) if !listing.is_finished() => {
                self.listing = Some(listing);
                Ok(None)
            }
            Some(listing) => {
                let listed = listing
                    .join()
                    .map_err(|_| "the listing thread failed".to_string())?
                    .map_err(|e| e.to_string())?;
                self.names.extend(listed.into_iter().map(|o| o.name));
                self.listed = true;
                Ok(Some(&mut self.names))
            }
        }
    }
}
