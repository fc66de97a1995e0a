//! Back to any point (issue 23): the zone's data as it was at a revision or a time,
//! rebuilt from a backup chain (a full snapshot before the point, then the deltas replayed
//! in a scratch etcd up to it). `backup export` saves it as a snapshot `restore` takes;
//! `undo` takes the keys under a prefix back to it.

use zone_io::Error;

mod node;
pub mod point;
pub mod reach;
pub mod rebuild;
pub mod source;

pub use node::ChainNode;
pub use point::{format_time, parse_time, OldKey, Point, PrefixHistory};
pub use source::{Origin, TargetAccess};

/// The problem of the node's own chain `error` is (none kept, the point out of its
/// reach), if it is one.
pub fn node_chain_problem(error: &Error) -> Option<&str> {
    node::local_chain_problem(error)
}

/// From the chain of `origin`: the last revision received at or before `time_ms`.
pub fn revision_at(node: &ChainNode<'_>, origin: &Origin<'_>, time_ms: i64) -> Result<i64, Error> {
    node::revision_at(node, origin, time_ms)
}

/// From the chain of `origin`: the keys under `prefix` at `revision` and their changes
/// after it, through the chain's newest revision. Blocking; callable from inside an async
/// runtime.
pub fn prefix_history(
    node: &ChainNode<'_>,
    origin: &Origin<'_>,
    prefix: &[u8],
    revision: i64,
) -> Result<PrefixHistory, Error> {
    // On a thread of its own: the scratch member runs on a runtime of its own, and the
    // caller (undo) may be inside one.
    std::thread::scope(|scope| {
        scope
            .spawn(|| node::prefix_history(node, origin, prefix, revision))
            .join()
            .unwrap_or_else(|_| Err(Error::new("rebuilding the point from the chain panicked")))
    })
}
