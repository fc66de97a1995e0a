//! Removing a member from the running cluster, as `leave` and `revoke --node` do: the
//! cluster's member for a node ([`find`]: by name, or by its peer URL before it ever
//! started), the removal ([`remove`]) and what the zone kept about the removed member.
//!
//! Invariants: the last member is never removed, nor a voter whose removal leaves the
//! voters without a healthy quorum unless forced ([`membership::leave_refusal`] decides);
//! the removal is asked of the members that stay first, so its answer does not depend on
//! the one leaving; once removed, the member's release record, move wait and links are
//! deleted and its left record put, best effort (the removal stands either way).

use std::path::Path;
use std::time::{Duration, Instant};

use zone_io::Error;

use crate::membership;
use crate::node::Node;
use zone_etcd_kit::cluster_api::{self, hex_id};
use zone_model::cluster::{ClusterMember, ClusterView};

/// The running cluster's member for node `target`: by name, or (a member that never
/// started has no name yet) by the peer URL the zone file gives it.
pub fn find(view: &ClusterView, node: &Node, target: &str) -> Option<ClusterMember> {
    let by_url = node
        .members
        .iter()
        .find(|m| m.node_name == target)
        .and_then(|m| view.by_peer_url(&zone_model::cluster::peer_url(m)));
    view.by_name(target).or(by_url).cloned()
}

/// Removes `member` (node `target`) from the cluster, unless the voters left would not
/// have a healthy quorum (then only with `force`) or it is the last member.
pub fn remove(
    cluster: &crate::reach::Cluster,
    member: &ClusterMember,
    target: &str,
    force: bool,
    config: &Path,
) -> Result<(), Error> {
    let crate::reach::Cluster {
        runtime,
        creds,
        view,
    } = cluster;
    let voters: Vec<(String, bool)> = view
        .members
        .iter()
        .filter(|m| !m.learner)
        .flat_map(|m| m.client_urls.iter().map(|u| (u.clone(), true)))
        .collect();
    let reports = runtime.block_on(cluster_api::probe_all(voters, creds));
    let healthy: Vec<u64> = view
        .members
        .iter()
        .filter(|m| cluster_api::member_problem(m, &reports).is_none())
        .map(|m| m.id)
        .collect();
    if let Some(refusal) = membership::leave_refusal(view, member.id, &healthy) {
        if force && view.members.len() > 1 {
            tracing::warn!("removing {target} anyway (--force): {refusal}");
        } else {
            return Err(Error::new(format!("not removing {target}: {refusal}"))
                .field("--node")
                .fix(if view.members.len() > 1 {
                    "bring the unhealthy members back first (see zone-etcd status), or pass --force to remove it anyway"
                } else {
                    "stop its etcd instead; a zone needs at least one member"
                }));
        }
    }

    // Ask the members that stay, so the answer does not depend on the one leaving.
    let mut stay: Vec<String> = view
        .members
        .iter()
        .filter(|m| m.id != member.id)
        .flat_map(|m| m.client_urls.iter().cloned())
        .collect();
    stay.extend(member.client_urls.iter().cloned());
    runtime
        .block_on(cluster_api::remove(&stay, creds, member.id))
        .map_err(|reason| {
            Error::new(format!("the cluster refused to remove {target}: {reason}"))
                .file(config)
                .fix("see zone-etcd status; a cluster without quorum cannot change its members")
        })?;
    forget(cluster, &stay, member, target);
    let left = view
        .members
        .iter()
        .filter(|m| !m.learner && m.id != member.id)
        .count();
    println!(
        "zone-etcd: removed {target} (member {}) from the cluster; {left} voting members remain",
        hex_id(member.id)
    );
    Ok(())
}

/// How long a removal tries to delete the removed member's records.
const FORGET_WITHIN: Duration = Duration::from_secs(15);

/// Deletes what the removed member's keeper kept in the zone about it: its release record,
/// its move's wait and its links, so `status` and the release alerts no longer count it;
/// records that it left ([`zone_model::left::PREFIX`]), so `status` warns until the
/// owner revokes it. Tried again for up to [`FORGET_WITHIN`]: removing the leader starts
/// an election, and the first tries right after it find no leader. Best effort (the
/// removal stands either way): a failure is a warning, and its next `join` puts the
/// record again.
fn forget(
    cluster: &crate::reach::Cluster,
    endpoints: &[String],
    member: &ClusterMember,
    target: &str,
) {
    let keys = [
        format!("{}{target}", zone_model::release::PREFIX),
        format!("{}{target}", crate::rollout::WAITING_PREFIX),
        format!("{}{target}", zone_model::links::PREFIX),
    ];
    let stay: Vec<String> = endpoints
        .iter()
        .filter(|e| !member.client_urls.contains(e))
        .cloned()
        .collect();
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let left = zone_model::left::Left::at(&now).render();
    let left_key = format!("{}{target}", zone_model::left::PREFIX);
    let delete_all = || async {
        let client =
            cluster_api::connect_many(&stay, &cluster.creds, cluster_api::CALL_DEADLINE).await?;
        for key in &keys {
            let key = key.as_str();
            cluster_api::ask(&client, |mut c| async move { c.delete(key, None).await }).await?;
        }
        let (key, value) = (left_key.as_str(), left.as_str());
        cluster_api::ask(
            &client,
            |mut c| async move { c.put(key, value, None).await },
        )
        .await?;
        Ok::<(), String>(())
    };
    let done = cluster.runtime.block_on(async {
        let deadline = Instant::now() + FORGET_WITHIN;
        loop {
            match delete_all().await {
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                done => break done,
            }
        }
    });
    if let Err(problem) = done {
        tracing::warn!(
            "{target} left, but its records may stay in the zone (its release, its move's wait, its links) and the record that it left may be missing, so status may still count it: {problem}"
        );
    }
}
