//! Which access policy is in force in a running zone and which members apply it: what
//! `status` shows (issue 34, item 7).
//!
//! Invariants: the policy in force is the published document only when it verifies
//! against the node's zone roots (else the node's own `[access]`); a member counts as
//! applying it only when its record names that version; reading never fails a command
//! (a zone that cannot be read has no summary).

use serde::Serialize;
use zone_pki::CertInfo;

use super::in_force::POLICY_KEY;
use super::in_force::{own_policy, published_policy, InForce};
use super::record::{applied_records, Applied};
use crate::node::Node;
use zone_etcd_kit::cluster_api;
use zone_model::policy::Policy;

/// The policy in force and the members' records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessSummary {
    /// The signed document's `signed_at`, or `node.toml` before any was published.
    pub policy: String,
    /// The SHA-256 key id of the root that signed it (empty: the node's own copy).
    pub signer: String,
    /// Whether the policy asks for enforcement and a member turned etcd's auth on.
    pub enforced: bool,
    pub services: usize,
    /// The members whose etcd holds it.
    pub applied_by: Vec<String>,
    /// The members that do not (yet): no record, or another policy's.
    pub not_applied_by: Vec<String>,
    /// What the members' keepers last removed that the policy never made, each as
    /// `<what> (by <member> at <time>)`: a planted user or role, a planted password.
    pub removed: Vec<String>,
}

/// The guide's section on moving a zone made without least privilege.
pub const MOVE_GUIDE: &str =
    "the guide's \"Moving a running zone to least privilege\" (docs/src/access.md)";

/// What `check` says of a node's policy: whether each identity has its grants only, or
/// every client certificate of the zone is root in etcd, and then how to move.
pub fn open_line(policy: &Policy) -> String {
    if policy.enforce {
        "access: enforced (each identity has its grants only)".into()
    } else if policy.present {
        format!("access: not enforced yet: every client certificate of the zone is root in etcd (the zone is moving: set [access] enforce = true, step 3 of {MOVE_GUIDE})")
    } else {
        format!("access: none: every client certificate of the zone is root in etcd (to move to least privilege: add [access] to the zone file and follow {MOVE_GUIDE})")
    }
}

/// Reads the zone's published policy and the members' records through `endpoints`.
pub async fn read(
    node: &Node,
    roots: &[CertInfo],
    client: &etcd_client::Client,
) -> Option<AccessSummary> {
    if !node.access.present && node.identities.is_none() {
        return Some(AccessSummary {
            policy: "none".into(),
            signer: String::new(),
            enforced: false,
            services: 0,
            applied_by: Vec::new(),
            not_applied_by: Vec::new(),
            removed: Vec::new(),
        });
    }
    let mut client = client.clone();
    let published = cluster_api::within(async {
        client
            .get(POLICY_KEY, None)
            .await
            .map_err(|e| cluster_api::describe(&e))
    })
    .await
    .ok()?;
    let in_force = published
        .kvs()
        .first()
        .and_then(|kv| published_policy(node, roots, kv.value(), None).ok())
        .unwrap_or_else(|| own_policy(node));
    let applied = applied_records(&mut client).await.ok()?;
    Some(summarise(&in_force, &applied))
}

/// Pure: the summary of `in_force` given each member's record.
pub fn summarise(in_force: &InForce, applied: &[(String, Applied)]) -> AccessSummary {
    let (applied_by, not_applied_by) = in_force.members.iter().cloned().partition(|member| {
        applied
            .iter()
            .any(|(m, a)| m == member && a.policy == in_force.version)
    });
    let auth_on = applied.iter().any(|(_, a)| a.enforced);
    let removed = applied
        .iter()
        .flat_map(|(member, a)| {
            a.removed
                .iter()
                .map(move |r| format!("{} (by {member} at {})", r.what, r.at))
        })
        .collect();
    AccessSummary {
        policy: in_force.version.clone(),
        signer: in_force.signer.clone(),
        enforced: in_force.policy.enforce && auth_on,
        services: in_force.policy.services.len(),
        applied_by,
        not_applied_by,
        removed,
    }
}

/// The status line.
pub fn line(summary: &AccessSummary) -> String {
    if summary.policy == "none" {
        return open_line(&Policy::default()).replacen("access:", "access policy:", 1);
    }
    let signer = if summary.signer.is_empty() {
        "the members' own copy".to_string()
    } else {
        format!(
            "signed by {}",
            &summary.signer[..summary.signer.len().min(16)]
        )
    };
    let mut text = format!(
        "access policy: {} ({signer}), {} service(s), {}; applied by {}",
        summary.policy,
        summary.services,
        if summary.enforced {
            "enforced"
        } else {
            "not enforced yet (etcd's auth is off: every client certificate of the zone is root in etcd)"
        },
        if summary.applied_by.is_empty() {
            "no member".to_string()
        } else {
            summary.applied_by.join(", ")
        }
    );
    if !summary.not_applied_by.is_empty() {
        text += &format!("; not yet by {}", summary.not_applied_by.join(", "));
    }
    if !summary.removed.is_empty() {
        text += &format!(
            "; removed what the policy never made: {}",
            summary.removed.join(", ")
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use zone_model::policy::Policy;

    #[test]
    fn a_member_applies_the_policy_in_force_only_when_its_record_names_that_version() {
        let in_force = InForce {
            policy: Policy {
                present: true,
                enforce: true,
                ..Policy::default()
            },
            version: "2026-11-24T05:00:00Z".into(),
            signer: "ab".repeat(32),
            members: vec!["n1".into(), "n2".into(), "n3".into()],
        };
        let record = |v: &str| Applied {
            policy: v.into(),
            signer: String::new(),
            enforced: true,
            client_port_enforced: true,
            at: String::new(),
            removed: Vec::new(),
        };
        let mut planted = record("2026-11-24T05:00:00Z");
        super::super::record::remember(
            &mut planted.removed,
            vec!["user eve".into(), "password of root".into()],
            "2026-11-24T05:01:00Z",
        );
        let applied = [
            ("n1".to_string(), planted),
            ("n2".to_string(), record("node.toml")),
        ];
        let summary = summarise(&in_force, &applied);
        assert_eq!(summary.applied_by, ["n1"]);
        assert_eq!(summary.not_applied_by, ["n2", "n3"]);
        let text = line(&summary);
        assert!(
            text.contains("enforced; applied by n1; not yet by n2, n3")
                && text.contains("signed by abababab")
                && text.contains("removed what the policy never made: user eve (by n1 at 2026-11-24T05:01:00Z), password of root (by n1"),
            "{text}"
        );
    }
}
