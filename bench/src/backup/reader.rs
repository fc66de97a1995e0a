//! A target's chain read back as the owner would read it.

use std::collections::{BTreeMap, HashSet};

use serde_json::{json, Value};
use zone_backup::chain::{check_links, Kind, Link, Verified};
use zone_backup::crypto::{self, Identities};
use zone_backup::destination::Target;
use zone_backup::local::sha256_hex;
use zone_backup::segment;

use super::load::Sample;
use super::shape::ZONE;
use crate::support::*;

/// One link as read back from a target (manifest body, not its signature: the drills
/// verify those; here only what the chain holds counts).
pub(super) struct Read {
    pub(super) link: Link,
    pub(super) sha256: String,
    pub(super) manifest_bytes: u64,
}

/// A target's chain as the owner would read it: manifests, then the deltas they name,
/// decrypted; which writer keys it holds.
pub(super) struct ChainReader {
    pub(super) name: &'static str,
    pub(super) target: Box<dyn Target>,
    pub(super) links: BTreeMap<String, Read>,
    pub(super) keys: HashSet<u64>,
    /// Revisions the delta links cover.
    pub(super) revisions: u64,
    /// The newest linked full snapshot's revision: every write up to it is in the chain.
    pub(super) full_revision: i64,
}

impl ChainReader {
    /// Reads the manifests not read yet, and the deltas they name.
    pub(super) fn refresh(&mut self, identities: &Identities) -> Result<()> {
        let listed = self.target.list("chain/").map_err(|e| e.to_string())?;
        for object in listed {
            if self.links.contains_key(&object.name) {
                continue;
            }
            let Some(bytes) = self
                .target
                .get(&object.name, 1 << 20)
                .map_err(|e| e.to_string())?
            else {
                continue;
            };
            let envelope: Value = serde_json::from_slice(&bytes)
                .map_err(|e| format!("{}: not a manifest: {e}", object.name))?;
            let link: Link = serde_json::from_str(envelope["body"].as_str().unwrap_or(""))
                .map_err(|e| format!("{}: not a link: {e}", object.name))?;
            if link.kind == Kind::Full {
                self.full_revision = self.full_revision.max(link.last_revision);
            }
            if link.kind == Kind::Delta {
                if let Some(name) = &link.object {
                    let cipher = self
                        .target
                        .get(name, 256 << 20)
                        .map_err(|e| e.to_string())?
                        .ok_or_else(|| format!("{}: names {name}, which is absent", object.name))?;
                    let plain = crypto::decrypt_bytes(&cipher, identities)
                        .map_err(|e| format!("{name}: {e}"))?;
                    let (_, revisions) = segment::decode(&plain, ZONE, 1 << 30)
                        .map_err(|e| format!("{name}: {e}"))?;
                    for r in &revisions {
                        for e in &r.events {
                            let k = String::from_utf8_lossy(&e.key);
                            if let Some(n) = k.strip_prefix("bench/").and_then(|n| n.parse().ok()) {
                                self.keys.insert(n);
                            }
                        }
                    }
                    self.revisions += revisions.len() as u64;
                }
            }
            self.links.insert(
                object.name.clone(),
                Read {
                    link,
                    sha256: sha256_hex(&bytes),
                    manifest_bytes: bytes.len() as u64,
                },
            );
        }
        Ok(())
    }

    /// Whether a write is in the chain: in a linked delta, or at most the revision of a
    /// linked full snapshot (a chain starts with one, and a restore starts from one).
    pub(super) fn holds(&self, s: &Sample) -> bool {
        self.keys.contains(&s.n) || (s.revision > 0 && s.revision <= self.full_revision)
    }

    /// The sessions whose full snapshot is linked.
    pub(super) fn full_sessions(&self) -> HashSet<String> {
        self.links
            .values()
            .filter(|r| r.link.kind == Kind::Full)
            .map(|r| r.link.session.clone())
            .collect()
    }

    /// The newest link's cut time (ms since the epoch; 0 when none).
    pub(super) fn newest_time_ms(&self) -> i64 {
        self.links
            .values()
            .map(|r| r.link.last_time_ms)
            .max()
            .unwrap_or(0)
    }

    /// A full snapshot of a session not in `before`: (session, writer node).
    pub(super) fn new_full(&self, before: &HashSet<String>) -> Option<(String, String)> {
        self.links
            .values()
            .find(|r| r.link.kind == Kind::Full && !before.contains(&r.link.session))
            .map(|r| (r.link.session.clone(), r.link.writer.clone()))
    }

    /// Whether `session` linked a delta (not a heartbeat) after its full snapshot.
    pub(super) fn has_delta(&self, session: &str) -> bool {
        self.links.values().any(|r| {
            r.link.session == session
                && r.link.kind == Kind::Delta
                && r.link.last_revision >= r.link.first_revision
        })
    }

    /// The chain's rules (sequence, hashes, delta revisions), as the drill checks them.
    pub(super) fn check(&self) -> std::result::Result<(), String> {
        let links: Vec<Verified> = self
            .links
            .iter()
            .map(|(name, r)| Verified {
                name: name.clone(),
                sha256: r.sha256.clone(),
                link: r.link.clone(),
            })
            .collect();
        check_links(ZONE, &links).map_err(|b| b.to_string())
    }

    /// Bytes on the target by kind: (full objects, delta objects, manifests, counts).
    pub(super) fn bytes(&self) -> Result<Value> {
        let all = self.target.list("").map_err(|e| e.to_string())?;
        let sum = |prefix: &str| -> (u64, usize) {
            let v: Vec<_> = all.iter().filter(|o| o.name.starts_with(prefix)).collect();
            (v.iter().map(|o| o.size).sum(), v.len())
        };
        let (full, fulls) = sum("full/");
        let (delta, deltas) = sum("delta/");
        let manifests = |kind: Kind| -> u64 {
            self.links
                .values()
                .filter(|r| r.link.kind == kind)
                .map(|r| r.manifest_bytes)
                .sum()
        };
        let writes = self.revisions.max(1) as f64;
        let delta_manifests = manifests(Kind::Delta);
        let full_manifests = manifests(Kind::Full);
        Ok(json!({
            "revisions_in_deltas": self.revisions,
            "writer_keys_in_deltas": self.keys.len(),
            "full_objects": fulls, "full_bytes": full,
            "delta_objects": deltas, "delta_bytes": delta,
            "delta_manifest_bytes": delta_manifests,
            "full_manifest_bytes": full_manifests,
            "delta_bytes_per_write": round(delta as f64 / writes),
            "delta_and_manifest_bytes_per_write": round((delta + delta_manifests) as f64 / writes),
            "full_bytes_per_write": round(full as f64 / writes),
            "full_bytes_median": median(&all.iter().filter(|o| o.name.starts_with("full/")).map(|o| o.size as f64).collect::<Vec<_>>()),
        }))
    }
}
