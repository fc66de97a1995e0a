//! When this node's own backup chain cannot give the point: one line naming the node whose
//! chain can (each writer's `backup run` records its chain's span, see
//! [`zone_backup::coverage`]), or that none can, with the owner's command that can (the
//! same undo with `--from` a target, the owner's CA and identity).
//!
//! Invariants: only a problem of the local chain itself (none kept, a point before its
//! oldest or after its newest change, a gap) is turned into this refusal, never a problem
//! of the cluster or the machine; the records are a hint (the node named checks its own
//! chain again), and a cluster that does not give them leaves the owner's command alone.

use etcd_client::Client;
use zone_io::Error;

use zone_backup::coverage;
use zone_backup::pitr::{format_time, node_chain_problem, Point};
use zone_backup::runner::active::active_writer;
use zone_node::node::Node;

/// What the owner runs instead: this undo, from the zone's first target with the owner's
/// CA and identity.
pub fn owners_command(node: &Node, prefix: &str, point: &str) -> String {
    let target = coverage::owners_from(&node.backup);
    format!(
        "zone-etcd undo --config {} --prefix {prefix} {point} --from {target} --ca CA_DIR --identity OWNER_KEY",
        node.path.display()
    )
}

/// `problem` of the node's own chain, as the one line that says who can give `point`;
/// any other problem unchanged.
pub async fn refusal(
    client: &Client,
    node: &Node,
    point: Point,
    problem: Error,
    owners: &str,
) -> Error {
    let Some(reason) = node_chain_problem(&problem) else {
        return problem;
    };
    let records = coverage::recorded(client).await.unwrap_or_default();
    let active = active_writer(client)
        .await
        .ok()
        .flatten()
        .map(|(node, _)| node);
    let problem = match point {
        Point::Revision(r) => format!(
            "etcd no longer holds revision {r} (compacted), and {}'s own backup chain cannot give it: {reason}",
            node.name
        ),
        // A time names a revision only through a chain's record of when each arrived.
        Point::Time(ms) => format!(
            "{}'s own backup chain cannot tell which revision {} names: {reason}",
            node.name,
            format_time(ms)
        ),
    };
    Error::new(problem)
        .file(&node.path)
        .fix(coverage::elsewhere(
            &node.name,
            &records,
            active.as_deref(),
            point,
            owners,
        ))
}
