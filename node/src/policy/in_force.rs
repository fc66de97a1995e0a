//! The policy in force: the node's own `[access]` ([`own_policy`]) or a published signed
//! zone document ([`published_policy`]); and the newest published one a member applied,
//! kept in its state directory ([`load`], [`keep`]) so that neither a restart nor an
//! older signed document put back at the key brings an older policy back (issue 48,
//! item 4).
//!
//! The file (`access-policy.json`, [`FILE`]) holds the signed zone document exactly as it
//! was published: its signature is its own proof, so it is checked again against the
//! node's zone roots each time it is read, and a file that no longer verifies (a retired
//! root signed it) is set aside with a warning, never trusted.
//!
//! Invariants: written atomically under the state lock, and only with a document whose
//! `signed_at` is not before the one it replaces ([`published_policy`]
//! refuses an older one before this is called).

use std::path::Path;
use std::sync::Mutex;

use etcd_client::{Compare, CompareOp, Txn, TxnOp};

use time::format_description::well_known::Rfc3339;
use zone_io::Error;
use zone_pki::CertInfo;

use crate::node::Node;
use zone_etcd_kit::cluster_api;
use zone_model::policy::Policy;

/// Where `zone-etcd zone publish` puts the signed zone document.
pub const POLICY_KEY: &str = "zone-etcd/access/policy";

/// The policy in force and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InForce {
    pub policy: Policy,
    /// The signed document's `signed_at` (RFC 3339), or `node.toml` for the node's copy.
    pub version: String,
    /// The SHA-256 key id of the root that signed it (empty for the node's copy).
    pub signer: String,
    /// The zone's etcd members the document (or the node) names.
    pub members: Vec<String>,
}

/// The node's own `[access]`, before any document was published.
pub fn own_policy(node: &Node) -> InForce {
    InForce {
        policy: node.access.clone(),
        version: "node.toml".into(),
        signer: String::new(),
        members: node.members.iter().map(|m| m.node_name.clone()).collect(),
    }
}

/// The published document's policy, when it verifies, is for this zone and was not
/// signed before `current`'s.
pub fn published_policy(
    node: &Node,
    roots: &[CertInfo],
    text: &[u8],
    current: Option<&InForce>,
) -> Result<InForce, Error> {
    let text = std::str::from_utf8(text).map_err(|_| Error::new("not UTF-8 text"))?;
    let doc = zone_model::zone_doc::verify(text, &node.zone, roots)?;
    crate::unknown_keys::warn(
        &doc.ignored
            .clone()
            .in_file(&format!("the published zone document ({POLICY_KEY})")),
    );
    let version = doc.signed_at.format(&Rfc3339).unwrap_or_default();
    if let Some(current) = current.filter(|c| c.version != "node.toml") {
        let older = time::OffsetDateTime::parse(&current.version, &Rfc3339)
            .is_ok_and(|in_force| doc.signed_at < in_force);
        if older {
            return Err(Error::new(format!(
                "it was signed at {version}, before the policy in force ({})",
                current.version
            ))
            .fix("publish a newer document: zone-etcd zone publish"));
        }
    }
    let signer = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| {
            v.get("sign")?
                .as_str()?
                .split(':')
                .nth(1)
                .map(str::to_string)
        })
        .unwrap_or_default();
    Ok(InForce {
        policy: doc.access,
        version,
        signer,
        members: doc.members.iter().map(|m| m.node_name.clone()).collect(),
    })
}

/// In the node's state directory: the newest published policy document it applied.
pub const FILE: &str = "access-policy.json";

/// The newest published policy this member applied, with the document's text, or `None`
/// when it applied none (or the file no longer verifies).
pub fn load(node: &Node, roots: &[CertInfo]) -> Option<(InForce, String)> {
    let path = node.state_dir.join(FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!("{}: not read: {e}", path.display());
            return None;
        }
    };
    match published_policy(node, roots, text.as_bytes(), None) {
        Ok(in_force) => Some((in_force, text)),
        Err(e) => {
            tracing::warn!("{}: not in force here: {e}", path.display());
            None
        }
    }
}

/// Keeps `text` (a verified published document) as the newest this member applied.
pub fn keep(state_dir: &Path, text: &str) -> Result<(), Error> {
    let _lock = zone_io::state::lock(state_dir)?;
    zone_io::write_atomic(&state_dir.join(FILE), text.as_bytes(), zone_io::PUBLIC_MODE)?;
    Ok(())
}

/// A published document the zone root signed (not before the one in force) whose content
/// this release cannot read: a newer zone-etcd's. This member neither applies nor
/// overwrites it: it stops acting on the zone's access policy until it runs a release
/// that reads it (the members that do apply it, the zone's auth store being one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Newer {
    /// When it was signed (RFC 3339).
    pub signed_at: String,
    /// What this release could not read in it.
    pub problem: String,
}

impl Newer {
    /// The keeper's line (logged once).
    pub fn line(&self) -> String {
        format!(
            "access policy: the document published at {POLICY_KEY} (signed at {}) holds what zone-etcd {} cannot read ({}): this member stops applying the zone's access policy, and leaves the document as it is, until it runs the release that signed it (zone-etcd status shows each member's release)",
            self.signed_at,
            crate::this_build::RELEASE,
            self.problem
        )
    }
}

/// Whether `text`, refused with `problem`, is a newer release's document (see [`Newer`]).
fn newer(
    node: &Node,
    roots: &[CertInfo],
    text: &[u8],
    current: Option<&InForce>,
    problem: &Error,
) -> Option<Newer> {
    let text = std::str::from_utf8(text).ok()?;
    let at = zone_model::zone_doc::signed_at(text, &node.zone, roots).ok()?;
    if let Some(current) = current.filter(|c| c.version != "node.toml") {
        let in_force = time::OffsetDateTime::parse(&current.version, &Rfc3339).ok()?;
        if at < in_force {
            return None;
        }
    }
    Some(Newer {
        signed_at: at.format(&Rfc3339).unwrap_or_default(),
        problem: problem.to_string(),
    })
}

/// The policy in force, given what the zone holds at [`POLICY_KEY`]: a newer verified
/// document is taken and kept; an older, unverifiable or missing one leaves the newest
/// applied here in force and puts that back at the key (each member tries; a compare
/// on what it read lets only one write, and never over a document published since); a
/// newer release's is [`Newer`], left alone.
pub async fn in_force(
    node: &Node,
    roots: &[CertInfo],
    kept: &Mutex<Option<(InForce, String)>>,
    client: &mut etcd_client::Client,
    published: Option<&etcd_client::KeyValue>,
) -> Result<InForce, Newer> {
    let newest = lock(kept).clone();
    let current = newest.as_ref().map(|(in_force, _)| in_force);
    let Some(kv) = published else {
        let Some((in_force, text)) = newest else {
            return Ok(own_policy(node));
        };
        tracing::warn!(
            "access policy: the document at {POLICY_KEY} is gone; putting back the one in force ({})",
            in_force.version
        );
        let absent = Compare::create_revision(POLICY_KEY, CompareOp::Equal, 0);
        put_back(client, absent, &text).await;
        return Ok(in_force);
    };
    // The document kept is the one at the key (most rounds): verified when it was kept,
    // against the same roots (a keeper's roots are read once, at its start).
    if let Some((in_force, text)) = newest.as_ref() {
        if kv.value() == text.as_bytes() {
            return Ok(in_force.clone());
        }
    }
    match published_policy(node, roots, kv.value(), current) {
        Ok(in_force) => {
            if current.map(|c| &c.version) != Some(&in_force.version) {
                let text = String::from_utf8_lossy(kv.value()).into_owned();
                if let Err(e) = keep(&node.state_dir, &text) {
                    tracing::warn!("access policy {}: not kept: {e}", in_force.version);
                }
                *lock(kept) = Some((in_force.clone(), text));
            }
            Ok(in_force)
        }
        Err(e) => {
            if let Some(newer) = newer(node, roots, kv.value(), current, &e) {
                return Err(newer);
            }
            tracing::warn!(
                "access policy: not applying the published document at {POLICY_KEY}: {e}"
            );
            match newest {
                Some((in_force, text)) => {
                    let same =
                        Compare::mod_revision(POLICY_KEY, CompareOp::Equal, kv.mod_revision());
                    put_back(client, same, &text).await;
                    Ok(in_force)
                }
                None => Ok(own_policy(node)),
            }
        }
    }
}

/// Puts `text` at [`POLICY_KEY`] when `unchanged` still holds.
async fn put_back(client: &mut etcd_client::Client, unchanged: Compare, text: &str) {
    let txn = Txn::new()
        .when([unchanged])
        .and_then([TxnOp::put(POLICY_KEY, text, None)]);
    match cluster_api::txn(client, txn).await {
        Ok(r) if r.succeeded() => {
            tracing::info!("access policy: put the one in force back at {POLICY_KEY}")
        }
        Ok(_) => {}
        Err(e) => tracing::warn!("access policy: could not put it back at {POLICY_KEY}: {e}"),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
