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
//! - after shipping, while this node holds the lease, the target is pruned by the
//!   writer's latest retention order (see [`super::retain`]).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use zone_pki::CertInfo;

use super::retain::{self, Orders};
use super::writer::LeaseGuard;
use crate::backup::chain::{manifest_seq, Link};
use crate::backup::local::{LocalChain, MAX_MANIFEST_BYTES};
use crate::backup::manifest::body_unverified;
use crate::backup::prune::Links;
use crate::backup::target::Target;

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
    pub orders: Arc<Orders>,
    /// The zone's other targets: an object of a link adopted from them (the last writer
    /// shipped it there, not here) is copied from one that has it, checked against its
    /// link, instead of this target waiting for ever.
    pub others: Vec<Arc<dyn Target>>,
}

impl Shipper {
    pub fn run(self) {
        let mut present: Option<BTreeSet<String>> = None;
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
    fn prune(&self, present: &mut BTreeSet<String>, links: &mut Links, pruned: &mut u64) {
        let Some(order) = self.orders.latest() else {
            return;
        };
        if order.round <= *pruned || !self.guard.holds() {
            return;
        }
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

    fn ship_once(
        &self,
        present: &mut Option<BTreeSet<String>>,
        links: &mut Links,
    ) -> Result<(), String> {
        let fresh = present.is_none();
        if present.is_none() {
            let listed = self.target.list("chain/").map_err(|e| e.to_string())?;
            *present = Some(listed.into_iter().map(|o| o.name).collect());
        }
        let Some(present) = present.as_mut() else {
            return Ok(());
        };
        // Every local link against a fresh listing (a hole is filled); then only those
        // after the target's newest: the chain grows at its end, and comparing all of a
        // week of 1 s deltas every second took most of a core (issue 37).
        let newest = present.iter().rev().find_map(|n| manifest_seq(n));
        let names = match newest.filter(|_| !fresh) {
            Some(seq) => self.local.manifests_after(seq),
            None => self.local.manifests(),
        }
        .map_err(|e| e.to_string())?;
        let missing: Vec<&String> = names.iter().filter(|n| !present.contains(*n)).collect();
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
                        present.insert(name.clone());
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
            if !self.guard.holds() {
                return Err(NOT_WRITER.into());
            }
            self.target
                .put(name, &stored.bytes)
                .map_err(|e| e.to_string())?;
            present.insert(name.clone());
            links.learn(name, &link);
        }
        Ok(())
    }
}

impl Shipper {
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
            if size != link.object_size || crate::snapshot::hex(&sha) != link.object_sha256 {
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
mod tests {
    use std::path::Path;
    use std::time::Instant;

    use super::*;
    use crate::backup::chain::{self, Kind, Link};
    use crate::backup::target::{ObjectInfo, TargetError};

    /// A target that stores nothing and records what was put.
    #[derive(Default)]
    struct Recording {
        puts: Mutex<Vec<String>>,
    }

    impl Target for Recording {
        fn url(&self) -> &str {
            "test://recording"
        }
        fn put(&self, name: &str, _: &[u8]) -> Result<(), TargetError> {
            self.puts.lock().unwrap().push(name.to_string());
            Ok(())
        }
        fn put_file(&self, name: &str, _: &Path) -> Result<(), TargetError> {
            self.puts.lock().unwrap().push(name.to_string());
            Ok(())
        }
        fn get(&self, _: &str, _: u64) -> Result<Option<Vec<u8>>, TargetError> {
            Ok(None)
        }
        fn get_to_file(&self, _: &str, _: &Path) -> Result<bool, TargetError> {
            Ok(false)
        }
        fn list(&self, _: &str) -> Result<Vec<ObjectInfo>, TargetError> {
            Ok(Vec::new())
        }
        fn delete(&self, _: &str) -> Result<(), TargetError> {
            Ok(())
        }
    }

    /// A node whose local chain holds a link it never shipped (killed mid-upload), now
    /// not the writer: it uploads nothing, not even the object (which no manifest would
    /// ever name), however often it retries. Once it holds the lease, object then manifest.
    #[test]
    fn a_node_that_is_not_the_writer_uploads_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let local = Arc::new(LocalChain::open(dir.path()).unwrap());
        let object = chain::delta_name(1, "abc", 5, 6);
        local
            .write(&local.object_path(&object), b"encrypted segment")
            .unwrap();
        let link = Link {
            format: chain::FORMAT.into(),
            zone: "z".into(),
            cluster_id: "c".into(),
            seq: 1,
            session: "abc".into(),
            writer: "node1.z".into(),
            kind: Kind::Delta,
            first_revision: 5,
            last_revision: 6,
            first_time_ms: 1,
            last_time_ms: 2,
            object: Some(object.clone()),
            object_size: 17,
            object_sha256: String::new(),
            next_delta: 7,
            prev: None,
            signed_ms: 2,
        };
        let manifest = link.manifest_name();
        let envelope = serde_json::json!({ "body": serde_json::to_string(&link).unwrap() });
        local
            .write(
                &local.object_path(&manifest),
                envelope.to_string().as_bytes(),
            )
            .unwrap();
        let target = Arc::new(Recording::default());
        let shipper = Shipper {
            target: target.clone(),
            local,
            bell: Arc::new(Bell::default()),
            guard: Arc::new(LeaseGuard::default()),
            stop: Arc::new(AtomicBool::new(false)),
            zone: "z".into(),
            roots: Vec::new(),
            orders: Arc::new(Orders::default()),
            others: Vec::new(),
        };
        let mut links = Links::default();
        let mut present = None;
        for _ in 0..3 {
            assert!(shipper.ship_once(&mut present, &mut links).is_err());
        }
        assert!(
            target.puts.lock().unwrap().is_empty(),
            "uploaded without the lease: {:?}",
            target.puts.lock().unwrap()
        );
        shipper.guard.renewed(
            Instant::now(),
            Duration::from_secs(8),
            Duration::from_secs(2),
        );
        shipper.ship_once(&mut present, &mut links).unwrap();
        assert_eq!(*target.puts.lock().unwrap(), vec![object, manifest]);
    }
}
