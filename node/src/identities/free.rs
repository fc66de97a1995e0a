//! A tenant's way back under its quota without the owner (issue 69, item 3): a node asks a
//! member's identity endpoint (`POST /v1/free?name=<service>`, the prefix as the body;
//! without `name`, its own prefix) to delete the keys under a prefix of the service's (or
//! its own), and the member deletes them as etcd's root. A tenant a quota stopped reads
//! only, so it cannot delete its own keys through etcd; through the endpoint it can, and
//! only where it could write before: deleting never adds what a put adds, so it is safe
//! while the tenant is stopped, and the decider resumes it once it is under nine tenths
//! of its budgets.
//!
//! Invariants: the node is the one its TLS proof names ([`super::grant::requester`]); it
//! may free only under a `read_write` prefix of a service the policy in force gives it on
//! that node ([`super::grant::decide`]), or under its own prefix when it has its own
//! identity; a prefix is one of those or a longer one under it, never a shorter one
//! ([`allowed`], pure); the member deletes nothing else.

use etcd_client::DeleteOptions;

use super::answers::Shared;
use super::grant::decide;
use super::wire::Answer;
use zone_etcd_kit::cluster_api::{self, Credentials};
use zone_model::policy::Policy;

/// Whether `node` may free `prefix` as `user` (the etcd user [`decide`] gave it: a
/// service's `<service>@<node>` or the node's own name) under `policy`: `Err` is the
/// refusal's line.
pub fn allowed(
    policy: &Policy,
    node: &str,
    name: Option<&str>,
    prefix: &str,
) -> Result<(), String> {
    let own = match name {
        Some(service) => policy
            .services
            .iter()
            .find(|s| s.name == service)
            .map(|s| s.read_write.clone())
            .unwrap_or_default(),
        None => vec![policy.node_prefix_of(node)],
    };
    let whose = name.map_or_else(|| format!("{node}'s own"), |s| format!("service {s}'s"));
    if prefix.is_empty() || !own.iter().any(|p| prefix.starts_with(p.as_str())) {
        return Err(format!(
            "refused: {:?} is not under {whose} read_write prefixes ({})",
            prefix.chars().take(64).collect::<String>(),
            own.join(", ")
        ));
    }
    Ok(())
}

/// `node`'s request to free `body` (a prefix) for `name`: how many keys were deleted, and
/// the log line.
pub(super) fn free(
    shared: &Shared,
    node: &str,
    name: Option<&str>,
    body: &[u8],
) -> Result<(String, String), Answer> {
    decide(&shared.policy, &shared.members, &shared.zone, node, name)
        .map_err(|refusal| Answer::new(403, refusal))?;
    let prefix = std::str::from_utf8(body)
        .map(str::trim)
        .map_err(|_| Answer::new(400, "bad request: the prefix is not UTF-8"))?;
    allowed(&shared.policy, node, name, prefix).map_err(|refusal| Answer::new(403, refusal))?;
    let deleted = delete_prefix(&shared.etcd, &shared.leaves, prefix).map_err(|e| {
        Answer::new(
            503,
            format!("the zone's etcd did not delete: {e}; ask again"),
        )
    })?;
    let line = format!("deleted {deleted} key(s) under {prefix}");
    Ok((
        format!("{line}\n"),
        format!("asked to free {prefix}: {line}"),
    ))
}

/// Deletes every key under `prefix` through this member's etcd at `endpoint` as its
/// client identity (etcd's root under the policy): how many.
fn delete_prefix(
    endpoint: &str,
    leaves: &zone_model::leaf_paths::LeafPaths,
    prefix: &str,
) -> Result<i64, String> {
    let creds = Credentials::load(leaves).map_err(|e| e.to_string())?;
    let runtime = cluster_api::runtime().map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let client = cluster_api::connect(endpoint, &creds).await?;
        let prefix = prefix.to_string();
        cluster_api::ask(&client, |mut c| {
            let prefix = prefix.clone();
            async move {
                c.delete(prefix, Some(DeleteOptions::new().with_prefix()))
                    .await
                    .map(|r| r.deleted())
            }
        })
        .await
        .map_err(|e| e.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy() -> Policy {
        let table = json!({
            "enforce": true,
            "nodes": ["nas.z.zone"],
            "service": [
                {"name": "photos", "nodes": ["nas.z.zone"], "read_write": ["apps/photos/"], "read": ["apps/shared/"]},
                {"name": "music", "nodes": ["nas.z.zone"], "read_write": ["apps/music/"]}
            ]
        });
        Policy::parse(&table, "access", "z.zone", &["node1.z.zone".into()]).unwrap()
    }

    #[test]
    fn a_node_frees_only_under_what_it_could_write() {
        let p = policy();
        let nas = "nas.z.zone";
        assert_eq!(allowed(&p, nas, Some("photos"), "apps/photos/"), Ok(()));
        assert_eq!(
            allowed(&p, nas, Some("photos"), "apps/photos/cache/"),
            Ok(())
        );
        assert_eq!(allowed(&p, nas, None, "nodes/nas.z.zone/tmp/"), Ok(()));
        for (name, prefix) in [
            (Some("photos"), "apps/"),
            (Some("photos"), "apps/music/"),
            (Some("photos"), "apps/shared/"),
            (Some("photos"), ""),
            (Some("photos"), "zone-etcd/"),
            (None, "nodes/"),
            (None, "nodes/other.z.zone/"),
            (Some("nobody"), "apps/photos/"),
        ] {
            let refusal = allowed(&p, nas, name, prefix).unwrap_err();
            assert!(refusal.starts_with("refused: "), "{refusal}");
        }
        assert!(allowed(&p, nas, Some("photos"), "apps/")
            .unwrap_err()
            .contains("service photos's read_write prefixes (apps/photos/)"));
    }
}
