//! Each member's record of the policy its etcd holds, at [`APPLIED_PREFIX`]`<member>`:
//! what `status` reads to say which members apply which policy, whether auth is on, and
//! what the keepers removed that the policy never made.
//!
//! The record is JSON read by every release that reads records: fields are only added,
//! each with a default and written only when it holds another value (so a record of a
//! member that never uses a newer field reads in an older release as before), and a
//! reader skips a record it cannot parse ([`applied_records`]).

use serde::{Deserialize, Serialize};

use zone_etcd_kit::cluster_api;

/// Under it, each member's record of the policy its etcd holds.
pub const APPLIED_PREFIX: &str = "zone-etcd/access/applied/";

/// How many removals a record keeps (the newest).
const REMOVALS_KEPT: usize = 20;

/// A member's record at [`APPLIED_PREFIX`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    pub policy: String,
    pub signer: String,
    /// Whether etcd's auth was on by this member's doing (or found on).
    pub enforced: bool,
    /// Whether this member's client port trusts the client root alone (its own
    /// `[access] enforce` at launch): auth goes on only once every member's does.
    #[serde(default, skip_serializing_if = "is_false")]
    pub client_port_enforced: bool,
    pub at: String,
    /// What this member's keeper removed that the policy never made, newest last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<Removed>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One thing a keeper removed that the policy never made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removed {
    /// `user eve`, `role backdoor`, `password of root`.
    pub what: String,
    /// When (RFC 3339).
    pub at: String,
}

/// Adds `whats`, removed at `at`, to `list`, keeping the newest `REMOVALS_KEPT`.
pub fn remember(list: &mut Vec<Removed>, whats: Vec<String>, at: &str) {
    list.extend(whats.into_iter().map(|what| Removed {
        what,
        at: at.to_string(),
    }));
    let extra = list.len().saturating_sub(REMOVALS_KEPT);
    list.drain(..extra);
}

/// Every member's record at [`APPLIED_PREFIX`] (records that do not parse are skipped).
pub async fn applied_records(
    client: &mut etcd_client::Client,
) -> Result<Vec<(String, Applied)>, String> {
    let got = cluster_api::get_prefix(client, APPLIED_PREFIX).await?;
    Ok(got
        .kvs()
        .iter()
        .filter_map(|kv| {
            let member = kv.key_str().ok()?.strip_prefix(APPLIED_PREFIX)?.to_string();
            Some((member, serde_json::from_slice(kv.value()).ok()?))
        })
        .collect())
}

/// Puts `member`'s record.
pub async fn put(
    client: &mut etcd_client::Client,
    member: &str,
    record: &Applied,
) -> Result<(), String> {
    let key = format!("{APPLIED_PREFIX}{member}");
    let text = serde_json::to_string(record).map_err(|e| e.to_string())?;
    let (key, text) = (key.as_str(), text.as_str());
    cluster_api::ask(client, |mut c| async move { c.put(key, text, None).await })
        .await
        .map(drop)
        .map_err(String::from)
}

/// The members whose records say their client port trusts the client root alone.
pub async fn enforced_ports(client: &mut etcd_client::Client) -> Result<Vec<String>, String> {
    Ok(applied_records(client)
        .await?
        .into_iter()
        .filter(|(_, record)| record.client_port_enforced)
        .map(|(member, _)| member)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record of the release before removals were recorded, and one of today's: both
    /// read (golden texts: the format is read by members of other releases).
    #[test]
    fn records_of_this_and_the_previous_release_read() {
        let before = r#"{"policy":"node.toml","signer":"","enforced":true,"client_port_enforced":true,"at":"2026-11-24T05:00:00Z"}"#;
        let record: Applied = serde_json::from_str(before).unwrap();
        assert!(record.removed.is_empty());
        assert_eq!(serde_json::to_string(&record).unwrap(), before);
        let now = r#"{"policy":"node.toml","signer":"","enforced":true,"client_port_enforced":true,"at":"2026-11-24T05:00:00Z","removed":[{"what":"user eve","at":"2026-11-24T05:01:00Z"}]}"#;
        let record: Applied = serde_json::from_str(now).unwrap();
        assert_eq!(record.removed[0].what, "user eve");
        assert_eq!(serde_json::to_string(&record).unwrap(), now);
    }

    /// A field added with a default is written only when it holds another value.
    #[test]
    fn a_port_not_enforced_is_left_out() {
        let text =
            r#"{"policy":"node.toml","signer":"","enforced":false,"at":"2026-11-24T05:00:00Z"}"#;
        let record: Applied = serde_json::from_str(text).unwrap();
        assert!(!record.client_port_enforced);
        assert_eq!(serde_json::to_string(&record).unwrap(), text);
    }

    #[test]
    fn a_record_keeps_the_newest_removals() {
        let mut list = Vec::new();
        for i in 0..25 {
            remember(&mut list, vec![format!("user u{i}")], &format!("t{i}"));
        }
        assert_eq!(list.len(), REMOVALS_KEPT);
        assert_eq!(list[0].what, "user u5");
        assert_eq!(list.last().unwrap().at, "t24");
    }
}
