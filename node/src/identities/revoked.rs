//! A node that is not an etcd member learns the zone's revocations from the members'
//! identity endpoints (`POST /v1/revocations`), so that `env` notices when an identity it
//! holds was revoked (`revoke --identity` of it, or of the signer or branch that signed
//! it) and asks the zone for a new one, instead of handing out a certificate every member
//! refuses until it is due for renewal.
//!
//! Members keep the document themselves (their revocation keeper watches the zone); a
//! node without a signer asks at most once a [`REFRESH`], marking when in its state
//! directory ([`ASKED`]).
//!
//! Invariants: only a document that verifies against the node's zone roots and is newer
//! than the one in force is installed ([`crate::revocation::store::install`]): a member
//! can withhold a newer one, never replace it with an older or forged one; a failure to
//! ask changes nothing and never fails `env` (the identity in hand is used, as before).

use std::time::{Duration, SystemTime};

use crate::node::Node;
use crate::revocation::doc::Revocations;

/// At most one question to the members this often.
pub const REFRESH: Duration = Duration::from_secs(10);
/// In a node's state directory: touched at each question.
pub const ASKED: &str = "revocations-asked";

/// Brings the node's copy of the zone's revocations up to date when it is not a member
/// and did not ask within [`REFRESH`]. Logs, never fails.
pub fn refresh(node: &Node) {
    if !asks(node) {
        return;
    }
    let marker = node.state_dir.join(ASKED);
    let recent = std::fs::metadata(&marker)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|at| SystemTime::now().duration_since(at).ok())
        .is_some_and(|age| age < REFRESH);
    if recent {
        return;
    }
    refresh_now(node);
}

/// Asks the members now, whenever it last did (a certificate in hand refused at a
/// handshake: it may have been revoked since). Logs, never fails.
pub fn refresh_now(node: &Node) {
    if !asks(node) {
        return;
    }
    let marker = node.state_dir.join(ASKED);
    match ask(node) {
        Ok(said) => tracing::debug!("the zone's revocations: {said}"),
        Err(why) => tracing::debug!("could not learn the zone's revocations: {why}"),
    }
    if zone_io::ensure_private_dir(&node.state_dir).is_ok() {
        let _ = zone_io::write_atomic(&marker, b"", zone_io::PUBLIC_MODE);
    }
}

/// Whether `node` learns the revocations from the members: an enforcing zone's node
/// without a signer (a member keeps them itself).
fn asks(node: &Node) -> bool {
    node.identities
        .as_ref()
        .is_some_and(|ids| ids.signer.is_none() && node.access.enforce)
}

/// Asks the members and installs a newer document. Returns what was done.
fn ask(node: &Node) -> Result<String, String> {
    let (text, url) = super::client::each_member(node, |url, tls| {
        super::client::post(url, tls, super::wire::REVOCATIONS_PATH, None, "")
    })
    .map_err(|e| e.to_string())?;
    if text.trim().is_empty() {
        return Ok(format!("{url} holds none"));
    }
    let roots =
        zone_model::config::trust::trusted_roots(&node.zone_ca_pem).map_err(|e| e.to_string())?;
    let doc = Revocations::parse(&text).map_err(|e| format!("{url}: {e}"))?;
    match crate::revocation::store::install(&node.state_dir, &roots, &doc) {
        Ok(done) => Ok(format!("{url}: {done:?}")),
        Err(e) => Ok(format!("{url}: not installed: {e}")),
    }
}
