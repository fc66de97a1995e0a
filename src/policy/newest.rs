//! The newest published policy a member applied, kept in its state directory so that
//! neither a restart nor an older signed document put back at the key brings an older
//! policy back (issue 48, item 4).
//!
//! The file (`access-policy.json`, [`FILE`]) holds the signed zone document exactly as it
//! was published: its signature is its own proof, so it is checked again against the
//! node's zone roots each time it is read, and a file that no longer verifies (a retired
//! root signed it) is set aside with a warning, never trusted.
//!
//! Invariants: written atomically under the state lock, and only with a document whose
//! `signed_at` is not before the one it replaces ([`super::keeper::published_policy`]
//! refuses an older one before this is called).

use std::path::Path;

use zone_pki::{CertInfo, Error};

use super::keeper::{published_policy, InForce};
use crate::config::node::Node;

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
    let _lock = crate::state::lock(state_dir)?;
    zone_io::write_atomic(&state_dir.join(FILE), text.as_bytes(), zone_io::PUBLIC_MODE)?;
    Ok(())
}
