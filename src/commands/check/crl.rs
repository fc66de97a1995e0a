//! The CRL part of `check`: the zone's revocations as this node holds them (its state
//! directory's copy, kept current by a member's keeper and fetched by launch), flagged
//! when past their next update or when they revoke this very node.

use time::OffsetDateTime;

use zone_node::inspection::{problem, Problem};
use zone_node::node::Node;
use zone_node::revocation::summary::{self, CrlSummary};
use zone_node::revocation::{refuse_if_revoked, store};

/// The CRL in force on `node` and its problems.
pub(super) fn inspect(
    node: &Node,
    now: OffsetDateTime,
    other: &mut Vec<Problem>,
) -> Option<CrlSummary> {
    let roots = zone_model::config::trust::trusted_roots(&node.zone_ca_pem).ok()?;
    let doc = match store::in_force(&node.state_dir, &roots) {
        Ok(doc) => doc?,
        Err(e) => {
            other.push(problem(
                e.to_string(),
                "remove the file: a member fetches the zone's again when it launches",
            ));
            return None;
        }
    };
    let summary = summary::summarise(&doc, now);
    if let Some((text, fix)) = summary::overdue(&summary) {
        other.push(problem(text, fix));
    }
    if let Err(e) = refuse_if_revoked(node, &doc) {
        other.push(problem(e.problem(), e.fix_text().unwrap_or_default()));
    }
    Some(summary)
}
