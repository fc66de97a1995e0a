//! What a shipper knows its target holds, for one term: which local links to send, and
//! the target's manifests for retention.
//!
//! At a term's start the target's head record says where its chain ends (three
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
//! - after a manifest is sent, the head is sent again ([`Known::head_due`]) before the
//!   shipper waits for the next link, so a head is stale only across a failure or a kill.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::thread::JoinHandle;

use zone_pki::CertInfo;

use crate::backup::chain::manifest_seq;
use crate::backup::head::{self, Head};
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
    /// The manifest bytes the head should copy, when it does not yet.
    head_due: Option<Vec<u8>>,
}

impl Known {
    /// What `target` holds at a term's start: by its head, else by a listing.
    pub fn learn(target: &dyn Target, zone: &str, roots: &[CertInfo]) -> Result<Known, String> {
        match head::read(target, zone, roots).map_err(|e| e.to_string())? {
            Head::Fresh(fresh) => Ok(Known {
                floor: fresh.1.link.seq,
                names: BTreeSet::new(),
                listed: false,
                listing: None,
                head_due: None,
            }),
            Head::Listed(why) => {
                tracing::warn!("backup: {why}; listing chain/ instead");
                let listed = target.list("chain/").map_err(|e| e.to_string())?;
                Ok(Known {
                    floor: 0,
                    names: listed.into_iter().map(|o| o.name).collect(),
                    listed: true,
                    listing: None,
                    head_due: None,
                })
            }
        }
    }

    /// Whether the target holds (or held) the manifest `name`.
    pub fn holds(&self, name: &str) -> bool {
        manifest_seq(name).is_some_and(|seq| seq <= self.floor) || self.names.contains(name)
    }

    /// `name` was found on the target.
    pub fn found(&mut self, name: &str) {
        self.names.insert(name.to_string());
    }

    /// The manifest `name` was sent: the head is due to copy `bytes`.
    pub fn sent(&mut self, name: &str, bytes: &[u8]) {
        self.names.insert(name.to_string());
        self.head_due = Some(bytes.to_vec());
    }

    /// The bytes the head should copy now, if it is behind.
    pub fn head_due(&self) -> Option<&[u8]> {
        self.head_due.as_deref()
    }

    pub fn head_sent(&mut self) {
        self.head_due = None;
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
