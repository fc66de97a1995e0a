//! The decider's quota records (issue 69, docs/design/quotas.md) read back from the zone's
//! etcd, for `status` and `check`: the use record and every stop record
//! ([`zone_model::quota::seen`] parses them), in one range.

use zone_etcd_kit::cluster_api;

/// The decider's quota records (issue 69): the use record and every stop record, in one
/// range through `client`, `serializable`: from the answering member's copy. `Err`: why
/// they were not read (no member answered, or this node's identity may not read the zone's
/// own keys).
pub async fn read_quotas(
    client: &etcd_client::Client,
    serializable: bool,
) -> Result<
    (
        Option<zone_model::quota::record::Uses>,
        Vec<zone_model::quota::record::Stopped>,
    ),
    String,
> {
    use zone_model::quota::seen;
    let mut options = etcd_client::GetOptions::new().with_prefix();
    if serializable {
        options = options.with_serializable();
    }
    let got = cluster_api::ask(client, |mut c| {
        let options = options.clone();
        async move { c.get(seen::PREFIX, Some(options)).await }
    })
    .await
    .map_err(|e| e.to_string())?;
    Ok(seen::records(
        got.kvs().iter().map(|kv| (kv.key(), kv.value())),
    ))
}
