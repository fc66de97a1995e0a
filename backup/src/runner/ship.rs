//! Shipping the local chain to one target, on a thread of its own, so a slow or absent
//! store never holds up the chain or the other targets.
//!
//! Invariants:
//! - links go in chain order, each object before its manifest: a manifest on a target
//!   never names an object that is missing or partial (targets store all or nothing);
//! - a manifest is sent only while this node holds the election lease, so a writer that
//!   lost it never adds a link after the next writer has read where the chain ends; nor is
//!   an object, which no manifest would then name (a node killed mid-upload and started
//!   again while another writes would otherwise upload it again at every retry);
//! - a failure is retried with backoff (1 s doubling to 30 s) for ever: the local chain
//!   keeps everything until it is shipped (or until retention drops it locally: a target
//!   that was away longer than the window gets the links still kept, and its own plan
//!   then drops the old links it holds before the hole);
//! - the target's head record announces this writer's session before its first manifest
//!   of a term, and copies the last manifest sent after each round (see
//!   [`crate::head`]), while this node holds the lease;
//! - a term starts from the target's head, not a listing of its chain (see
//!   [`super::known`]), so a takeover costs the same whatever the chain's length;
//! - after shipping, while this node holds the lease, the target is pruned by the
//!   writer's latest retention order (see [`super::retain`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use zone_pki::CertInfo;

use super::fill;
use super::known::Known;
use super::retain::{self, Orders};
use super::writer::LeaseGuard;
use crate::chain::{manifest_seq, Link};
use crate::destination::Target;
use crate::head;
use crate::local::{LocalChain, MAX_MANIFEST_BYTES};
use crate::manifest::body_unverified;
use crate::prune::Links;

/// Why a node that lost (or never had) the election ships nothing.
const NOT_WRITER: &str = "no longer the active writer: the rest is left to the next";
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Wakes the shippers when a link is appended.
#[derive(Default)]
pub struct Bell {
    rung: Mutex<u64>,
    cond: Condvar,
}

impl Bell {
    pub fn ring(&self) {
        if let Ok(mut n) = self.rung.lock() {
            *n += 1;
            self.cond.notify_all();
        }
    }

    /// Waits until rung after `seen`, or `timeout`; returns the count now.
    fn wait(&self, seen: u64, timeout: Duration) -> u64 {
        let Ok(guard) = self.rung.lock() else {
            return seen;
        };
        match self.cond.wait_timeout_while(guard, timeout, |n| *n == seen) {
            Ok((n, _)) => *n,
            Err(_) => seen,
        }
    }
}

pub struct Shipper {
    pub target: Arc<dyn Target>,
    pub local: Arc<LocalChain>,
    pub bell: Arc<Bell>,
    pub guard: Arc<LeaseGuard>,
    pub stop: Arc<AtomicBool>,
    /// The zone and its CA roots: a target's manifests are verified before retention
    /// trusts their times.
    pub zone: String,
    pub roots: Vec<CertInfo>,
    /// This process's writer session, which the head announces before its manifests.
    pub session: String,
    pub orders: Arc<Orders>,
    /// The zone's other targets: an object of a link adopted from them (the last writer
    /// shipped it there, not here) is copied from one that has it, checked against its
    /// link, instead of this target waiting for ever.
    pub others: Vec<Arc<dyn Target>>,
}

impl Shipper {
    pub fn run(self) {
        let mut present: Option<Known> = None;
        let mut links = Links::default();
        let mut pruned = 0;
        let mut backoff = BACKOFF_MIN;
        let mut seen = 0;
        let mut was_active = false;
        while !self.stop.load(Ordering::SeqCst) {
            // A new term: the target has links of the last writer since it was listed.
            let active = self.guard.holds();
            if active && !was_active {
                present = None;
            }
            was_active = active;
            match self.ship_once(&mut present, &mut links) {
                Ok(()) => {
                    backoff = BACKOFF_MIN;
                    if let Some(present) = present.as_mut() {
                        self.prune(present, &mut links, &mut pruned);
                    }
                    seen = self.bell.wait(seen, Duration::from_secs(1));
                }
                Err(problem) => {
                    tracing::warn!(
                        "backup target {}: {problem}; retrying in {backoff:?}",
                        self.target.url()
                    );
                    let until = std::time::Instant::now() + backoff;
                    while !self.stop.load(Ordering::SeqCst) && std::time::Instant::now() < until {
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    /// Applies the writer's latest retention order to the target, once (again at once
    /// while the budget of a round leaves some of it).
    fn prune(&self, known: &mut Known, links: &mut Links, pruned: &mut u64) {
        let Some(order) = self.orders.latest() else {
            return;
        };
        if order.round <= *pruned || !self.guard.holds() {
            return;
        }
        let present = match known.for_retention(&self.target) {
            Ok(Some(present)) => present,
            Ok(None) => return, // the listing is under way: the next round
            Err(problem) => {
                tracing::warn!(
                    "backup target {}: retention waits: {problem}",
                    self.target.url()
                );
                return;
            }
        };
        let roots = (self.zone.as_str(), self.roots.as_slice());
        match retain::target_round(&*self.target, &self.local, present, links, roots, &order) {
            Ok(true) => {}
            Ok(false) => *pruned = order.round,
            Err(problem) => {
                // Tried again at the next order; the drill names a manifest that is bad.
                *pruned = order.round;
                tracing::warn!(
                    "backup target {}: retention skipped: {problem}",
                    self.target.url()
                );
            }
        }
    }

    fn ship_once(&self, present: &mut Option<Known>, links: &mut Links) -> Result<(), String> {
        let fresh = present.is_none();
        if present.is_none() {
            let roots = (self.zone.as_str(), self.roots.as_slice());
            *present = Some(Known::learn(&*self.target, roots, &self.session)?);
        }
        let Some(present) = present.as_mut() else {
            return Ok(());
        };
        // Every local link at a term's start (a hole is filled); then only those after
        // the target's newest: the chain grows at its end, and comparing all of a week
        // of 1 s deltas every second took most of a core (issue 37).
        let names = if fresh {
            self.local.manifests()
        } else {
            self.local.manifests_after(present.newest())
        }
        .map_err(|e| e.to_string())?;
        let missing: Vec<&String> = names.iter().filter(|n| !present.holds(n)).collect();
        if let Some(first) = missing.first() {
            self.fill_below(first, present, links)?;
        }
        for name in missing {
            if self.stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            let stored = self.local.read_manifest(name).map_err(|e| e.to_string())?;
            let link = body_unverified(&stored.bytes).map_err(|p| format!("{name}: {p}"))?;
            if let Some(object) = &link.object {
                let path = self.local.object_path(object);
                if !path.exists() {
                    // A link adopted from the targets (the last writer's): this target may
                    // have it since it was listed.
                    let there = self
                        .target
                        .get(name, MAX_MANIFEST_BYTES)
                        .map_err(|e| e.to_string())?;
                    if there.as_deref() == Some(&stored.bytes[..]) {
                        present.found(name);
                        continue;
                    }
                    if !self.guard.holds() {
                        return Err(NOT_WRITER.into());
                    }
                    if !self.copy_from_others(object, &link)? {
                        return Err(format!(
                            "{object} is on another target only, which does not give it now; {name} and the links after it wait"
                        ));
                    }
                } else {
                    // Not the writer: no manifest would ever name this object, so uploading
                    // it again at every retry (a full snapshot is GiBs) only wastes the link.
                    if !self.guard.holds() {
                        return Err(NOT_WRITER.into());
                    }
                    self.target
                        .put_file(object, &path)
                        .map_err(|e| e.to_string())?;
                }
            }
            if !present.announced() {
                self.put_head(present)?;
            }
            if !self.guard.holds() {
                return Err(NOT_WRITER.into());
            }
            self.target
                .put(name, &stored.bytes)
                .map_err(|e| e.to_string())?;
            present.sent(name, &stored.bytes);
            links.learn(name, &link);
        }
        if present.behind() {
            self.put_head(present)?;
        }
        Ok(())
    }

    /// Puts the target's head record: its last manifest, and this writer's session.
    fn put_head(&self, present: &mut Known) -> Result<(), String> {
        if !self.guard.holds() {
            return Err(NOT_WRITER.into());
        }
        self.target
            .put(head::NAME, &present.head_record(&self.session))
            .map_err(|e| e.to_string())?;
        present.head_put();
        Ok(())
    }
}

impl Shipper {
    /// Catches the target up from the others when it lacks links under `next`, the first
    /// local link it lacks (see [`super::fill`]): they are copied, in chain order.
    fn fill_below(&self, next: &str, present: &mut Known, links: &mut Links) -> Result<(), String> {
        let Some(seq) = manifest_seq(next) else {
            return Ok(());
        };
        let held = present.held_below(seq);
        if held + 1 >= seq || self.others.is_empty() {
            return Ok(());
        }
        let stored = self.local.read_manifest(next).map_err(|e| e.to_string())?;
        let Some(want) = body_unverified(&stored.bytes)
            .map_err(|p| format!("{next}: {p}"))?
            .prev
        else {
            return Ok(());
        };
        let roots = (self.zone.as_str(), self.roots.as_slice());
        let found = fill::find(&self.others, (held + 1, seq), &want, roots)?;
        let url = self.target.url();
        if let Some(lost) = found.lost {
            tracing::warn!(
                "backup target {url}: link {lost} is on no other target (a writer stopped before it shipped it anywhere), so this target's chain has a hole from link {} to {lost} for good: a point in it is exported from a target that holds it",
                held + 1
            );
        }
        for (stored, link) in &found.links {
            if let Some(object) = &link.object {
                if !self.guard.holds() {
                    return Err(NOT_WRITER.into());
                }
                if !self.copy_from_others(object, link)? {
                    return Err(format!(
                        "{object} of {} is on another target only, which does not give it now; it and the links after it wait",
                        stored.name
                    ));
                }
            }
            if !present.announced() {
                self.put_head(present)?;
            }
            if !self.guard.holds() {
                return Err(NOT_WRITER.into());
            }
            self.target
                .put(&stored.name, &stored.bytes)
                .map_err(|e| e.to_string())?;
            present.sent(&stored.name, &stored.bytes);
            links.learn(&stored.name, link);
        }
        if !found.links.is_empty() {
            tracing::info!(
                "backup target {url}: links {} to {} copied from the other targets (the last writer stopped before it shipped them here)",
                found.links[0].1.seq,
                seq - 1
            );
        }
        Ok(())
    }

    /// Copies `object` of `link` from another target that has it, with the size and
    /// SHA-256 its link names, to this one; `false` when none gives it.
    fn copy_from_others(&self, object: &str, link: &Link) -> Result<bool, String> {
        for other in &self.others {
            let tmp = self.local.temporary("").map_err(|e| e.to_string())?;
            match other.get_to_file(object, tmp.path()) {
                Ok(true) => {}
                Ok(false) | Err(_) => continue,
            }
            let (size, sha) = zone_io::sha256_file(tmp.path()).map_err(|e| e.to_string())?;
            if size != link.object_size || zone_io::hex(&sha) != link.object_sha256 {
                tracing::warn!(
                    "backup target {}: {object} is not the object its link names; not copied",
                    other.url()
                );
                continue;
            }
            self.target
                .put_file(object, tmp.path())
                .map_err(|e| e.to_string())?;
            tracing::info!(
                "backup target {}: {object} copied from {} (the last writer shipped it there only)",
                self.target.url(),
                other.url()
            );
            return Ok(true);
        }
        Ok(false)
    }
}

#[cfg(test)]
#[path = "ship_tests.rs"]
mod tests;
