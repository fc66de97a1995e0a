//! What a shipper knows its target holds, for one term: which local links to send, and
//! the target's manifests for retention.
//!
//! At a term's start the target's head record says where its chain ends (a handful of
//! requests, see [`crate::head`]): every local link up to there is taken as
//! held, and the links after it are sent. A target whose head is missing, stale or
//! does not verify is listed instead, as before heads.
//!
//! Invariants:
//! - a link at or below the head's sequence number is never sent again, also when the
//!   target no longer holds it (its retention removed it): a pruned link is not re-uploaded;
//! - each round compares the local links after the newest of this writer's chain that
//!   the target holds (the head's, or one sent or found this term); a listing's names
//!   never move that point: a manifest of a writer that is out can reach the store after
//!   a takeover (a request the store held) under this writer's next number, and this
//!   writer's own link of that number must still be sent;
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

use crate::chain::{manifest_seq, SEQ_DIGITS};
use crate::destination::{ObjectInfo, Target, TargetError};
use crate::head::{self, Head};
use crate::local::MAX_MANIFEST_BYTES;

type Listing = Result<Vec<ObjectInfo>, TargetError>;

pub struct Known {
    /// Every link up to this sequence number is on the target, or was pruned from it.
    floor: u64,
    /// Manifests known on the target: a listing's, and those sent this term.
    names: BTreeSet<String>,
    /// The newest sequence number this term knows the target holds in this writer's
    /// chain: what it sent or found (above the head's `floor`). Not a listing's: that may
    /// hold a late manifest of a writer that is out (a request that reached the store after
    /// the takeover), whose number is this writer's next link too.
    chain_seq: u64,
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
                chain_seq: 0,
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
                    // The listing's newest may be such a late link itself: every local
                    // link is compared until this writer's first is sent or found.
                    chain_seq: 0,
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

    /// The newest sequence number below `seq` the target holds (or held): where a hole
    /// under the link `seq` starts (see [`super::fill`]).
    /// Names sort by sequence number (zero-padded): the newest below `seq` is found in the
    /// set's order, not by reading a week of names at every round.
    pub fn held_below(&self, seq: u64) -> u64 {
        let bound = format!("chain/{seq:0SEQ_DIGITS$}");
        let listed = self
            .names
            .range(..bound)
            .next_back()
            .and_then(|n| manifest_seq(n))
            .unwrap_or(0);
        listed.max(self.floor.min(seq.saturating_sub(1)))
    }

    /// The newest sequence number of this writer's chain the target is known to hold
    /// (or to have held): the local links after it are the ones to compare.
    pub fn newest(&self) -> u64 {
        self.chain_seq.max(self.floor)
    }

    /// `name` was found on the target.
    pub fn found(&mut self, name: &str) {
        self.holds_in_chain(name);
        self.names.insert(name.to_string());
    }

    fn holds_in_chain(&mut self, name: &str) {
        if let Some(seq) = manifest_seq(name) {
            self.chain_seq = self.chain_seq.max(seq);
        }
    }

    /// The manifest `name` was sent: the head is behind until it copies `bytes`.
    pub fn sent(&mut self, name: &str, bytes: &[u8]) {
        self.holds_in_chain(name);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh_at(floor: u64) -> Known {
        Known {
            floor,
            names: BTreeSet::new(),
            chain_seq: 0,
            listed: false,
            listing: None,
            last: None,
            announced: true,
            behind: false,
        }
    }

    /// Where a hole under a link starts: the newest name below it, or the head's floor.
    #[test]
    fn the_newest_link_held_below_a_number() {
        let mut known = fresh_at(5);
        assert_eq!(known.held_below(10), 5);
        assert_eq!(
            known.held_below(3),
            2,
            "the floor holds every link up to it"
        );
        known.names.extend([
            "chain/000000000007-ab12cd34-delta.json".to_string(),
            "chain/000000000009-ab12cd34-full.json".to_string(),
            "chain/000000000012-ab12cd34-delta.json".to_string(),
        ]);
        assert_eq!(known.held_below(10), 9);
        assert_eq!(known.held_below(9), 7);
        assert_eq!(known.held_below(100), 12);
    }

    /// A manifest of a writer that is out can reach the store after the takeover (a
    /// request the store held: seen with SeaweedFS stopped, then continued). It carries
    /// this writer's next number; the retention listing brings it in. This writer's own
    /// link under that number must still be compared, and so sent.
    #[test]
    fn a_late_link_of_another_writer_does_not_hide_this_writers_link_of_that_number() {
        let mut known = fresh_at(162);
        assert_eq!(known.newest(), 162);
        // The retention listing holds the head's link and the late one.
        known.names.extend([
            "chain/000000000162-e1752831-full.json".to_string(),
            "chain/000000000163-e1752831-delta.json".to_string(),
        ]);
        known.listed = true;
        assert_eq!(
            known.newest(),
            162,
            "a listed name moved the comparison past 163"
        );
        let mine = "chain/000000000163-882d6eb4-full.json";
        assert!(!known.holds(mine), "this writer's 163 counts as held");
        known.sent(mine, b"manifest");
        assert_eq!(known.newest(), 163);
        assert!(known.holds(mine));
        known.found("chain/000000000164-882d6eb4-delta.json");
        assert_eq!(known.newest(), 164);
    }
}
