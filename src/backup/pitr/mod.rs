//! Back to any point (issue 23): the zone's data as it was at a revision or a time,
//! rebuilt from a backup chain (a full snapshot before the point, then the deltas replayed
//! in a scratch etcd up to it). `backup export` saves it as a snapshot `restore` takes;
//! `undo` takes the keys under a prefix back to it.

use std::path::Path;

use zone_pki::Error;

use crate::config::node::Node;

mod node;
pub mod point;
pub mod reach;
pub mod rebuild;
pub mod source;

pub use point::{format_time, parse_time, OldKey, Point, PrefixHistory};

/// From the node's own backup chain: the last revision received at or before `time_ms`.
pub fn local_revision_at(node: &Node, config: &Path, time_ms: i64) -> Result<i64, Error> {
    node::revision_at(node, config, time_ms)
}

/// From the node's own backup chain: the keys under `prefix` at `revision` and their
/// changes after it, through the chain's newest revision. Blocking; callable from inside
/// an async runtime.
pub fn local_prefix_history(
    node: &Node,
    config: &Path,
    prefix: &[u8],
    revision: i64,
) -> Result<PrefixHistory, Error> {
    // On a thread of its own: the scratch member runs on a runtime of its own, and the
    // caller (undo) may be inside one.
    std::thread::scope(|scope| {
        scope
            .spawn(|| node::prefix_history(node, config, prefix, revision))
            .join()
            .unwrap_or_else(|_| Err(Error::new("rebuilding the point from the chain panicked")))
    })
}
