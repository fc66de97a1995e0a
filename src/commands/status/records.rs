//! The zone's records `status` reads beside the members' answers (the CRL, each member's
//! links record, the members that left), linearizably, or from the answering member's
//! copy when the zone has no leader (`serializable`), each through the one client `status`
//! holds to the members that answered (a connection costs a member about 2 ms of CPU: it
//! reads its certificate, key and CRL files again at each handshake). The decider's quota records are
//! [`zone_node::quota_records`]'.

use zone_etcd_kit::cluster_api;

use zone_node::node::Node;
use zone_node::revocation::doc::Revocations;
use zone_node::revocation::summary::{self, CrlSummary};

/// Every member's links record (those that do not parse are left out), `serializable`:
/// from the answering member's copy.
pub(super) async fn read_links(
    client: &etcd_client::Client,
    serializable: bool,
) -> Vec<zone_model::links::Links> {
    let mut options = etcd_client::GetOptions::new().with_prefix();
    if serializable {
        options = options.with_serializable();
    }
    let read = cluster_api::ask(client, |mut c| {
        let options = options.clone();
        async move { c.get(zone_model::links::PREFIX, Some(options)).await }
    });
    let Ok(got) = read.await else {
        return Vec::new();
    };
    got.kvs()
        .iter()
        .filter_map(|kv| zone_model::links::Links::parse(kv.value()).ok())
        .collect()
}

/// The members that left the cluster, as `leave` recorded them (name, record).
pub(super) async fn read_left(
    client: &etcd_client::Client,
) -> Vec<(String, zone_model::left::Left)> {
    let Ok(got) = cluster_api::get_prefix(client, zone_model::left::PREFIX).await else {
        return Vec::new();
    };
    got.kvs()
        .iter()
        .filter_map(|kv| {
            let name = kv.key_str().ok()?.strip_prefix(zone_model::left::PREFIX)?;
            Some((
                name.to_string(),
                zone_model::left::Left::parse(kv.value()).ok()?,
            ))
        })
        .collect()
}

/// The zone's published CRL, verified against the node's zone roots (`None`: none, or
/// not one this node's zone root signed); why it could not be read.
pub(super) fn zone_crl(
    node: &Node,
    runtime: &tokio::runtime::Runtime,
    client: Option<&etcd_client::Client>,
    serializable: bool,
) -> Result<Option<CrlSummary>, String> {
    let Ok(roots) = zone_model::config::trust::trusted_roots(&node.zone_ca_pem) else {
        return Ok(None);
    };
    let Some(client) = client else {
        return Err("no member answered".into());
    };
    let (text, _) =
        runtime.block_on(zone_node::revocation::published_from(client, serializable))?;
    let Some(doc) = text.and_then(|t| Revocations::parse(&t).ok()) else {
        return Ok(None);
    };
    if doc.verify(&roots).is_err() {
        return Ok(None);
    }
    Ok(Some(summary::summarise(
        &doc,
        time::OffsetDateTime::now_utc(),
    )))
}
