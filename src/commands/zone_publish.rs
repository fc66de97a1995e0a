//! `zone-etcd zone publish --ca DIR --zone ZONE_FILE --config NODE_FILE`: the owner signs
//! the zone document (as `zone sign` does) and puts it into the running zone at
//! [`POLICY_KEY`], where every member's keeper applies its `[access]` policy to etcd's
//! users and roles ([`zone_agent::access`]); then waits until every member records
//! the new policy as applied.
//!
//! Invariants: the document is verified as a member will verify it before it is
//! published; a new document is always signed after the one published (a second after
//! it when that one was signed within this second: documents carry whole seconds), and
//! refused, nothing written, when the published one is newer than this machine's clock,
//! so a clock set back cannot replace a newer policy; the command says which
//! members applied it, and exits non-zero naming those that did not within
//! `WAIT` (the document stays published: they apply it once they run). Members of the
//! zone file that are not in the cluster yet (a member activated to be added, before
//! its `join`) are not waited for: the publish is what makes their etcd user, and they
//! apply the policy once they have joined; the command says so and exits 0.
//!
//! A policy whose quotas leave the zone too little room is refused before anything is
//! written ([`zone_node::policy::room`]; under `nodes = ["*"]` the nodes the zone marked as
//! issued count).
//!
//! The owner publishes as etcd's `root` ([`zone_node::reach::owner_credentials`]), so any
//! node.toml of the zone will do, that of the member about to join included.

use std::path::Path;
use std::time::{Duration, Instant};

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use zone_io::Error;
use zone_pki::{Authority, CertInfo};

use zone_etcd_kit::cluster_api::{self, Credentials};
use zone_model::config::zone::Zone;
use zone_model::zone_doc;
use zone_node::node::Node;
use zone_node::policy::in_force::POLICY_KEY;
use zone_node::policy::record::{Applied, APPLIED_PREFIX};

/// How long to wait for every member to apply the policy.
const WAIT: Duration = Duration::from_secs(20);

pub fn run(ca_dir: &Path, zone_file: &Path, config: &Path) -> Result<(), Error> {
    let zone = zone_node::ca_dir::zone_defaults::load_zone(zone_file, ca_dir)?;
    let root = zone_node::ca_dir::load_root(ca_dir, &zone.name)?;
    let node = Node::load(config)?;
    if node.zone != zone.name {
        return Err(Error::new(format!(
            "the node is in zone {:?}, the zone file is zone {:?}",
            node.zone, zone.name
        ))
        .file(config)
        .field("zone")
        .fix("give the node.toml of a member of the zone being published"));
    }
    let info = CertInfo::parse(root.cert_der())?;
    let creds = zone_node::reach::owner_credentials(ca_dir, &node)?;
    let cluster = zone_node::reach::ask_cluster_with(&node, creds)?;
    // The members the cluster lists (a member of the zone file not added yet answers
    // nowhere), the one that answered first.
    let mut endpoints = vec![cluster.view.answered_by.clone()];
    endpoints.extend(
        cluster
            .view
            .client_urls()
            .into_iter()
            .filter(|u| *u != cluster.view.answered_by),
    );
    let named: Vec<String> = zone.members.iter().map(|m| m.node_name.clone()).collect();
    let (members, joining) = in_cluster(&named, &cluster.view);
    // The room for the policy's quotas, before anything is written (`maintain`'s room
    // included): under `nodes = ["*"]`, the nodes the zone marked as issued count.
    let marked = if zone.access.any_node() {
        cluster
            .runtime
            .block_on(marked_nodes(&cluster.creds, &endpoints))
            .map_err(|e| {
                Error::new(format!(
                    "cannot read the nodes the zone issued identities to: {e}"
                ))
                .file(config)
                .fix("check the zone (zone-etcd status), then publish again")
            })?
    } else {
        Vec::new()
    };
    zone_node::policy::room::check(&zone, zone_file, &marked)?;
    // A tenant may have filled the database: the owner's emergency makes room first.
    let (version, missing) = zone_node::maintenance::reclaim::with_room(config, || {
        cluster
            .runtime
            .block_on(publish(
                &cluster.creds,
                &endpoints,
                &zone,
                &root,
                &info,
                &members,
            ))
            .map_err(|e| {
                Error::new(e)
                    .file(config)
                    .fix("check the clock and the zone (zone-etcd status), then publish again")
            })
    })?;
    if !missing.is_empty() {
        return Err(Error::new(format!(
            "published the zone document signed at {version}, but {} did not apply its access policy within {WAIT:?}",
            missing.join(", ")
        ))
        .file(config)
        .fix("start the members named (zone-etcd launch): their keepers apply it; zone-etcd status shows which policy each member applies"));
    }
    let joining = if joining.is_empty() {
        String::new()
    } else {
        format!(
            "; not in the cluster yet, so not waited for: {} (its etcd user is made now; run zone-etcd join --config node.toml on it, and it applies the policy once it has joined)",
            joining.join(", ")
        )
    };
    eprintln!(
        "zone-etcd: published the zone document of {} signed at {version}; every member in the cluster ({}) applies its access policy ({}){joining}",
        zone.name,
        members.len(),
        if zone.access.enforce {
            "enforced"
        } else if zone.access.present {
            "not enforced yet"
        } else {
            "no [access]"
        }
    );
    Ok(())
}

/// The zone file's members `named` split by `view`: those the cluster lists (started, or
/// bootstrapped with the zone: their keepers apply the policy once they run), and those
/// it does not list yet (to be added by their `join`).
fn in_cluster(
    named: &[String],
    view: &zone_model::cluster::ClusterView,
) -> (Vec<String>, Vec<String>) {
    named
        .iter()
        .cloned()
        .partition(|name| view.by_name(name).is_some())
}

/// The nodes marked in the zone as issued their own identity
/// ([`zone_node::identities::ledger::nodes`]).
async fn marked_nodes(creds: &Credentials, endpoints: &[String]) -> Result<Vec<String>, String> {
    let mut client =
        cluster_api::connect_many(endpoints, creds, cluster_api::REQUEST_TIMEOUT).await?;
    zone_node::identities::ledger::nodes(&mut client).await
}

/// The signing time of a new document: now (to the second, as documents carry it), or,
/// when the published one is as new (a publish within the same second), a second after
/// it; refused when the published one is newer than that (this clock is behind).
fn signing_time(
    published: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Result<OffsetDateTime, String> {
    let now = now.replace_nanosecond(0).unwrap_or(now);
    match published {
        Some(p) if p >= now + Duration::from_secs(2) => Err(format!(
            "the zone's published document was signed at {}, after this machine's clock ({}): this clock is behind",
            p.format(&Rfc3339).unwrap_or_default(),
            now.format(&Rfc3339).unwrap_or_default()
        )),
        Some(p) if p >= now => Ok(p + Duration::from_secs(1)),
        _ => Ok(now),
    }
}

/// The members whose record does not name `version`.
async fn not_applied(
    client: &mut etcd_client::Client,
    members: &[String],
    version: &str,
) -> Vec<String> {
    let mut missing = Vec::new();
    for member in members {
        let key = format!("{APPLIED_PREFIX}{member}");
        let key = key.as_str();
        let applied = cluster_api::ask(&*client, |mut c| async move { c.get(key, None).await })
            .await
            .ok()
            .and_then(|got| {
                let kv = got.kvs().first()?;
                serde_json::from_slice::<Applied>(kv.value()).ok()
            });
        if applied.is_none_or(|a| a.policy != version) {
            missing.push(member.clone());
        }
    }
    missing
}

/// Signs the zone document (after the one published, see [`signing_time`]), puts it at
/// [`POLICY_KEY`] and waits up to [`WAIT`] for every member to apply it: its version and
/// the members that did not.
async fn publish(
    creds: &Credentials,
    endpoints: &[String],
    zone: &Zone,
    root: &Authority,
    info: &CertInfo,
    members: &[String],
) -> Result<(String, Vec<String>), String> {
    let mut client =
        cluster_api::connect_many(endpoints, creds, cluster_api::REQUEST_TIMEOUT).await?;
    let got = cluster_api::ask(
        &client,
        |mut c| async move { c.get(POLICY_KEY, None).await },
    )
    .await?;
    let published = got.kvs().first().and_then(|kv| {
        let text = String::from_utf8_lossy(kv.value());
        zone_doc::verify(&text, &zone.name, std::slice::from_ref(info)).ok()
    });
    let signed_at = signing_time(published.map(|p| p.signed_at), OffsetDateTime::now_utc())?;
    let text = zone_doc::sign(zone, root, signed_at).map_err(|e| e.to_string())?;
    // What a member will check, checked before it is published.
    let doc = zone_doc::verify(&text, &zone.name, std::slice::from_ref(info))
        .map_err(|e| e.to_string())?;
    let version = doc.signed_at.format(&Rfc3339).unwrap_or_default();
    let bytes = text.as_bytes();
    cluster_api::ask(&client, |mut c| async move {
        c.put(POLICY_KEY, bytes, None).await
    })
    .await?;
    let started = Instant::now();
    loop {
        let missing = not_applied(&mut client, members, &version).await;
        if missing.is_empty() || started.elapsed() >= WAIT {
            return Ok((version, missing));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_not_in_the_cluster_yet_are_not_waited_for() {
        let member = |name: &str| zone_model::cluster::ClusterMember {
            id: 1,
            name: name.to_string(),
            peer_urls: Vec::new(),
            client_urls: Vec::new(),
            learner: false,
        };
        let view = zone_model::cluster::ClusterView {
            cluster_id: 7,
            // node3 was added by an earlier join that never started it: no name yet.
            members: vec![member("node1.z"), member("node2.z"), member("")],
            answered_by: String::new(),
        };
        let named: Vec<String> = ["node1.z", "node2.z", "node3.z", "node4.z"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            in_cluster(&named, &view),
            (
                vec!["node1.z".to_string(), "node2.z".to_string()],
                vec!["node3.z".to_string(), "node4.z".to_string()]
            )
        );
        assert_eq!(in_cluster(&[], &view), (vec![], vec![]));
    }

    #[test]
    fn a_new_document_is_always_signed_after_the_published_one_or_refused() {
        let now =
            OffsetDateTime::from_unix_timestamp(1_000_000).unwrap() + Duration::from_millis(400);
        let second = |s: i64| OffsetDateTime::from_unix_timestamp(1_000_000 + s).unwrap();
        assert_eq!(signing_time(None, now), Ok(second(0)));
        assert_eq!(signing_time(Some(second(-5)), now), Ok(second(0)));
        // Published within this second (a publish just before): a second later.
        assert_eq!(signing_time(Some(second(0)), now), Ok(second(1)));
        assert_eq!(signing_time(Some(second(1)), now), Ok(second(2)));
        assert!(signing_time(Some(second(2)), now)
            .unwrap_err()
            .contains("behind"));
    }
}
