//! Pruning by a retention plan (see [`crate::retention`]): the local chain and a
//! target. Blocking.
//!
//! Invariants:
//! - a dropped link's manifest is deleted before its object, so a manifest never names a
//!   missing object; deleting is idempotent (an absent object is not an error), so a
//!   prune cut short is finished by the next one, planned again;
//! - a target is planned from its own links (it may hold links older than the local
//!   chain, from earlier writers), remembered in [`Links`] so each manifest is read once:
//!   a full snapshot's or a gap's is read and verified up to the zone CA (its time and
//!   revisions place the window and the tiers), a delta is known by its name unless this
//!   node shipped it (retention then keeps a little more, see `retention`);
//! - a round deletes at most `budget` links, oldest first, so a long backlog (a window
//!   made shorter) never holds up the chain or its shipping.

use std::collections::BTreeMap;

use zone_io::Error;
use zone_pki::CertInfo;

use super::chain::{delta_name, parse_manifest_name, Kind, Link};
use super::destination::{Target, TargetError};
use super::local::{LocalChain, MAX_MANIFEST_BYTES};
use super::manifest;
use super::retention::{Dropped, Object, Summary};

/// What reading a manifest gave.
pub enum Read {
    Body(Box<Link>),
    /// Known by its name alone (a delta not read).
    Name,
    /// No longer there.
    Gone,
}

/// The links of a chain as far as retention needs them, by manifest name (chain order).
#[derive(Default)]
pub struct Links {
    by_name: BTreeMap<String, Summary>,
}

impl Links {
    /// Remembers a link whose body is known (one this node wrote or shipped).
    pub fn learn(&mut self, name: &str, link: &Link) {
        self.by_name
            .insert(name.to_string(), Summary::of(name, link));
    }

    pub fn forget(&mut self, name: &str) {
        self.by_name.remove(name);
    }

    /// Makes the links exactly those of `names` (manifest names; others are ignored),
    /// reading the ones not known yet with `read`; returns the names found gone.
    pub fn sync<'a, E>(
        &mut self,
        names: impl IntoIterator<Item = &'a String>,
        mut read: impl FnMut(&str, Kind) -> Result<Read, E>,
    ) -> Result<Vec<String>, E> {
        let mut seen = std::collections::BTreeSet::new();
        let mut gone = Vec::new();
        for name in names {
            let Some((_, kind)) = parse_manifest_name(name) else {
                continue;
            };
            seen.insert(name.as_str());
            if self.by_name.contains_key(name) {
                continue;
            }
            match read(name, kind)? {
                Read::Body(link) => self.learn(name, &link),
                Read::Name => {
                    if let Some(s) = Summary::named(name) {
                        self.by_name.insert(name.clone(), s);
                    }
                }
                Read::Gone => gone.push(name.clone()),
            }
        }
        self.by_name.retain(|n, _| seen.contains(n.as_str()));
        for name in &gone {
            self.by_name.remove(name);
        }
        Ok(gone)
    }

    /// The links, in chain order.
    pub fn summaries(&self) -> Vec<&Summary> {
        self.by_name.values().collect()
    }

    /// The newest link's time, if its body is known.
    pub fn head_time_ms(&self) -> Option<i64> {
        let (_, last) = self.by_name.last_key_value()?;
        last.body.as_ref().map(|b| b.last_time_ms)
    }
}

/// Reads a local manifest's body (this node's own, or one verified when adopted).
pub fn read_local(local: &LocalChain, name: &str) -> Result<Read, Error> {
    if !local.object_path(name).exists() {
        return Ok(Read::Gone);
    }
    let stored = local.read_manifest(name)?;
    manifest::body_unverified(&stored.bytes)
        .map(|link| Read::Body(Box::new(link)))
        .map_err(|p| Error::new(format!("{name}: {p}")))
}

/// Reads a target's manifest for retention: a full snapshot's or a gap's verified, a
/// delta's not read at all.
pub fn read_target(
    target: &dyn Target,
    name: &str,
    kind: Kind,
    zone: &str,
    roots: &[CertInfo],
) -> Result<Read, String> {
    if kind == Kind::Delta {
        return Ok(Read::Name);
    }
    let Some(bytes) = target
        .get(name, MAX_MANIFEST_BYTES)
        .map_err(|e| e.to_string())?
    else {
        return Ok(Read::Gone);
    };
    let v = manifest::verify(&manifest::stored(name, bytes), zone, roots)
        .map_err(|p| format!("{name}: {p}"))?;
    if v.link.manifest_name() != name {
        return Err(format!(
            "{name}: its body is link {}",
            v.link.manifest_name()
        ));
    }
    Ok(Read::Body(Box::new(v.link)))
}

/// Deletes the first `budget` dropped links from the local chain (manifest, object, its
/// plaintext); returns how many.
pub fn prune_local(local: &LocalChain, drop: &[Dropped], budget: usize) -> Result<usize, Error> {
    let mut done = 0;
    for d in drop.iter().take(budget) {
        let object = match &d.object {
            Object::Named(o) => Some(o.clone()),
            Object::None => None,
            Object::Unknown => match read_local(local, &d.manifest)? {
                Read::Body(link) => link.object,
                _ => None,
            },
        };
        local.remove_link(&d.manifest, object.as_deref())?;
        done += 1;
    }
    Ok(done)
}

/// Deletes the first `budget` dropped links from a target, each manifest before its
/// object; returns how many. A delta known by name alone has its manifest read for its
/// object's name (trusted only when it is the name that link's delta would have).
pub fn prune_target(
    target: &dyn Target,
    drop: &[Dropped],
    budget: usize,
) -> Result<usize, TargetError> {
    let mut done = 0;
    for d in drop.iter().take(budget) {
        let object = match &d.object {
            Object::Named(o) => Some(o.clone()),
            Object::None => None,
            Object::Unknown => target
                .get(&d.manifest, MAX_MANIFEST_BYTES)?
                .and_then(|bytes| delta_object(&d.manifest, &bytes)),
        };
        target.delete(&d.manifest)?;
        if let Some(object) = object {
            target.delete(&object)?;
        }
        done += 1;
    }
    Ok(done)
}

/// The object a delta's manifest (not verified) names, if it is the one a delta stored
/// under that manifest's name would have.
fn delta_object(name: &str, envelope: &[u8]) -> Option<String> {
    let link = manifest::body_unverified(envelope).ok()?;
    let expected = delta_name(
        link.seq,
        &link.session,
        link.first_revision,
        link.last_revision,
    );
    (link.kind == Kind::Delta
        && link.manifest_name() == name
        && link.object.as_deref() == Some(expected.as_str()))
    .then_some(expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delta_object_is_taken_from_its_manifest_only_when_it_is_its_own() {
        let link = |object: &str| {
            let body = serde_json::json!({
                "format": "zone-etcd-backup/1", "zone": "z", "cluster_id": "c", "seq": 7,
                "session": "ab12", "writer": "n", "kind": "delta", "first_revision": 5,
                "last_revision": 9, "first_time_ms": 0, "last_time_ms": 0, "object": object,
                "object_size": 1, "object_sha256": "00", "next_delta": 10, "prev": null,
                "signed_ms": 0
            });
            serde_json::to_vec(&serde_json::json!({"body": body.to_string()})).unwrap()
        };
        let name = "chain/000000000007-ab12-delta.json";
        let own = delta_name(7, "ab12", 5, 9);
        assert_eq!(delta_object(name, &link(&own)), Some(own.clone()));
        assert_eq!(
            delta_object(name, &link("full/000000000001-ab12-r1.db.age")),
            None
        );
        assert_eq!(
            delta_object("chain/000000000008-ab12-delta.json", &link(&own)),
            None
        );
        assert_eq!(delta_object(name, b"{}"), None);
    }

    /// A target in memory that logs its deletions.
    #[derive(Default)]
    struct Memory {
        objects: std::sync::Mutex<BTreeMap<String, Vec<u8>>>,
        deleted: std::sync::Mutex<Vec<String>>,
    }

    impl Target for Memory {
        fn url(&self) -> &str {
            "memory://"
        }
        fn put(&self, name: &str, data: &[u8]) -> Result<(), TargetError> {
            self.objects
                .lock()
                .unwrap()
                .insert(name.into(), data.to_vec());
            Ok(())
        }
        fn put_file(&self, _: &str, _: &std::path::Path) -> Result<(), TargetError> {
            unimplemented!()
        }
        fn get(&self, name: &str, _: u64) -> Result<Option<Vec<u8>>, TargetError> {
            Ok(self.objects.lock().unwrap().get(name).cloned())
        }
        fn get_to_file(&self, _: &str, _: &std::path::Path) -> Result<bool, TargetError> {
            unimplemented!()
        }
        fn list(&self, _: &str) -> Result<Vec<super::super::destination::ObjectInfo>, TargetError> {
            unimplemented!()
        }
        fn delete(&self, name: &str) -> Result<(), TargetError> {
            self.objects.lock().unwrap().remove(name);
            self.deleted.lock().unwrap().push(name.into());
            Ok(())
        }
    }

    #[test]
    fn a_target_loses_each_manifest_before_its_object_and_a_second_prune_is_harmless() {
        let target = Memory::default();
        let delta = "chain/000000000002-ab12-delta.json";
        let own = delta_name(2, "ab12", 5, 9);
        let body = serde_json::json!({
            "format": "zone-etcd-backup/1", "zone": "z", "cluster_id": "c", "seq": 2,
            "session": "ab12", "writer": "n", "kind": "delta", "first_revision": 5,
            "last_revision": 9, "first_time_ms": 0, "last_time_ms": 0, "object": own,
            "object_size": 1, "object_sha256": "00", "next_delta": 10, "prev": null,
            "signed_ms": 0
        });
        let envelope = serde_json::json!({"body": body.to_string()});
        let ok = |r: Result<(), TargetError>| r.map_err(|e| e.to_string()).unwrap();
        ok(target.put(delta, &serde_json::to_vec(&envelope).unwrap()));
        ok(target.put(&own, b"x"));
        let full = "chain/000000000001-ab12-full.json";
        let drop = [
            Dropped {
                manifest: full.into(),
                object: Object::Named("full/000000000001-ab12-r4.db.age".into()),
            },
            Dropped {
                manifest: delta.into(),
                object: Object::Unknown,
            },
            Dropped {
                manifest: "chain/000000000003-ab12-gap.json".into(),
                object: Object::None,
            },
        ];
        assert_eq!(
            prune_target(&target, &drop, 2)
                .map_err(|e| e.to_string())
                .unwrap(),
            2
        );
        assert_eq!(
            *target.deleted.lock().unwrap(),
            [
                full,
                "full/000000000001-ab12-r4.db.age",
                delta,
                own.as_str()
            ]
        );
        assert!(target.objects.lock().unwrap().is_empty());
        target.deleted.lock().unwrap().clear();
        assert_eq!(
            prune_target(&target, &drop, 10)
                .map_err(|e| e.to_string())
                .unwrap(),
            3
        );
        assert_eq!(target.deleted.lock().unwrap().len(), 4);
    }

    #[test]
    fn links_follow_the_names_listed() {
        let mut links = Links::default();
        let names: Vec<String> = [
            "chain/000000000001-ab12-full.json",
            "chain/000000000002-ab12-delta.json",
            "full/000000000001-ab12-r1.db.age",
            "chain/000000000003-ab12-full.json",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut reads = Vec::new();
        let gone = links
            .sync(&names, |name, kind| {
                reads.push(name.to_string());
                Ok::<_, ()>(match (name, kind) {
                    (_, Kind::Delta) => Read::Name,
                    ("chain/000000000003-ab12-full.json", _) => Read::Gone,
                    _ => Read::Name,
                })
            })
            .unwrap();
        assert_eq!(gone, ["chain/000000000003-ab12-full.json"]);
        assert_eq!(reads.len(), 3);
        assert_eq!(links.summaries().len(), 2);
        // Known names are not read again; names no longer listed are forgotten.
        let gone = links.sync(&names[..1], |_, _| Err::<Read, ()>(())).unwrap();
        assert!(gone.is_empty());
        assert_eq!(links.summaries().len(), 1);
        assert_eq!(links.head_time_ms(), None);
    }
}
