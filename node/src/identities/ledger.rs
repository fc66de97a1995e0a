//! The zone's ledger of the identities members' signers issued to other nodes, so that
//! `revoke --node` puts every one of them on the CRL and etcd refuses them at the TLS
//! handshake, not only at its auth store (issue 48, item 2).
//!
//! Each entry is `zone-etcd/access/issued/<node>/<serial hex>` → `{"user", "not_after"}`
//! and, for an identity a branch signed, `"branch"` (the branch's serial); a branch has
//! an entry of its own, its CN as `user` (JSON; later releases may add fields, readers
//! ignore what they do not know). [`issued_to`] leaves out identities whose branch it
//! lists, so the CRL grows with revoked nodes, not identities. A node's
//! own identity also marks the node at `zone-etcd/access/nodes/<node>` → `{}` (in the same
//! transaction): under `[access] nodes = ["*"]` the keepers make the etcd users of exactly
//! the nodes marked there ([`nodes`]), and the endpoint hands a node its first identity
//! once its user exists ([`record`]).
//!
//! Invariants: a member's endpoint records an identity before it hands the certificate
//! out, and hands out nothing it could not record: in the zone when the member's etcd
//! answers, else in the member's state directory (`ledger/`, [`JOURNAL`]), which its
//! access keeper carries into the zone at its next round ([`upload`]) and only then
//! removes; a node's own signer (a member) needs no entry: revoking the member revokes
//! its signer, and so everything it issued.

use super::wire::USER_WAIT;
use std::path::Path;

use etcd_client::{Txn, TxnOp};
use serde::{Deserialize, Serialize};

use zone_etcd_kit::cluster_api::{self, Credentials};
use zone_model::leaf_paths::LeafPaths;

/// Under it, `<node>/<serial hex>` for each identity issued to that node.
pub const PREFIX: &str = "zone-etcd/access/issued/";
/// In a member's state directory: entries not yet in the zone, `<node> <serial>.json`.
pub const JOURNAL: &str = "ledger";
/// Under it, `<node>` for each node a signer issued its own identity to.
pub const NODES_PREFIX: &str = "zone-etcd/access/nodes/";
/// The value of a mark (a node's, a gateway password's): a JSON object, empty today;
/// later releases may add fields, and readers look only at the key.
pub const MARK: &str = "{}";

/// One issued identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The etcd user it names (`photos@nas.example.zone`, or the node's own name).
    pub user: String,
    /// When it expires (RFC 3339): past it, the handshake refuses it anyway.
    pub not_after: String,
    /// The serial (hex) of the branch that signed it ([`super::branch`]), if one did:
    /// while that branch is listed, the identity need not be. Absent in entries of
    /// identities a signer issued itself, and of branches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
}

/// The key of the identity with serial `serial_hex` issued to `node`.
pub fn key(node: &str, serial_hex: &str) -> String {
    format!("{PREFIX}{node}/{serial_hex}")
}

/// Records `entry` through the member's own etcd at `endpoint`, with its client identity
/// in `leaves`, or, when that etcd does not take it, in the journal under `state_dir`.
/// Blocking (the endpoint serves on plain threads). Fails only when neither took it.
/// A node's own identity recorded in the zone returns once its etcd user exists, or
/// after [`USER_WAIT`] (the keepers make it from the node's mark).
pub fn record(
    endpoint: &str,
    leaves: &LeafPaths,
    state_dir: &Path,
    node: &str,
    serial_hex: &str,
    entry: &Entry,
) -> Result<(), String> {
    let text = serde_json::to_string(entry).map_err(|e| e.to_string())?;
    let in_zone: Result<(), String> = (|| {
        let creds = Credentials::load(leaves).map_err(|e| e.to_string())?;
        let runtime = cluster_api::runtime().map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let mut client = cluster_api::connect(endpoint, &creds).await?;
            put(&mut client, node, serial_hex, &text, entry.user == node).await?;
            if entry.user == node {
                user_made(&mut client, node).await;
            }
            Ok(())
        })
    })();
    let Err(why) = in_zone else {
        return Ok(());
    };
    let journal = state_dir.join(JOURNAL);
    zone_io::ensure_private_dir(&journal)
        .and_then(|()| {
            zone_io::write_atomic(
                &journal.join(format!("{node} {serial_hex}.json")),
                text.as_bytes(),
                zone_io::PUBLIC_MODE,
            )
        })
        .map(|()| tracing::info!("identity {} recorded in {} (the zone's etcd did not take it: {why}); the keeper carries it over", entry.user, journal.display()))
        .map_err(|e| format!("{why}; nor could it go to {}: {e}", journal.display()))
}

/// Puts the entry, and the node's mark with it when the identity is the node's `own`.
async fn put(
    client: &mut etcd_client::Client,
    node: &str,
    serial_hex: &str,
    text: &str,
    own: bool,
) -> Result<(), String> {
    let mut ops = vec![TxnOp::put(key(node, serial_hex), text, None)];
    if own {
        ops.push(TxnOp::put(format!("{NODES_PREFIX}{node}"), MARK, None));
    }
    let txn = Txn::new().and_then(ops);
    cluster_api::txn(client, txn)
        .await
        .map(drop)
        .map_err(String::from)
}

/// Waits until etcd holds the user `node`, at most [`USER_WAIT`]; a node whose user
/// comes later is refused "user name not found" until then, and asks again.
async fn user_made(client: &mut etcd_client::Client, node: &str) {
    let deadline = tokio::time::Instant::now() + USER_WAIT;
    while tokio::time::Instant::now() < deadline {
        if client.user_get(node).await.is_ok() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    tracing::warn!("identity of {node}: its etcd user was not made within {USER_WAIT:?}; handed out all the same");
}

/// The nodes marked at [`NODES_PREFIX`]: every node a signer issued its own identity to.
pub async fn nodes(client: &mut etcd_client::Client) -> Result<Vec<String>, String> {
    Ok(marked(client, NODES_PREFIX).await?.into_iter().collect())
}

/// What the marks under `prefix` name: each key's rest after it (a mark's value is
/// [`MARK`], never read).
pub async fn marked(
    client: &etcd_client::Client,
    prefix: &str,
) -> Result<std::collections::BTreeSet<String>, String> {
    let got = cluster_api::get_prefix(client, prefix).await?;
    Ok(got
        .kvs()
        .iter()
        .filter_map(|kv| Some(kv.key_str().ok()?.strip_prefix(prefix)?.to_string()))
        .filter(|n| !n.is_empty())
        .collect())
}

/// Carries the journal's entries under `state_dir` into the zone, each removed once the
/// zone took it; returns how many went.
pub async fn upload(client: &mut etcd_client::Client, state_dir: &Path) -> Result<usize, String> {
    let journal = state_dir.join(JOURNAL);
    let Ok(files) = std::fs::read_dir(&journal) else {
        return Ok(0);
    };
    let mut went = 0;
    for file in files.flatten() {
        let path = file.path();
        let name = file.file_name().to_string_lossy().into_owned();
        let Some((node, serial)) = name
            .strip_suffix(".json")
            .and_then(|stem| stem.split_once(' '))
        else {
            continue;
        };
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let own = serde_json::from_str::<Entry>(&text).is_ok_and(|e| e.user == node);
        put(client, node, serial, &text, own).await?;
        std::fs::remove_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        went += 1;
    }
    Ok(went)
}

/// The serials (hex) of what `node` was issued that has not expired at `now` and that a
/// revocation must list: every branch and identity, but an identity whose branch is
/// listed (the handshake checks every certificate of the chain).
pub async fn issued_to(
    client: &mut etcd_client::Client,
    node: &str,
    now: time::OffsetDateTime,
) -> Result<Vec<String>, String> {
    let prefix = format!("{PREFIX}{node}/");
    let got = cluster_api::get_prefix(client, &prefix).await?;
    let entries = got.kvs().iter().filter_map(|kv| {
        let serial = kv.key_str().ok()?.strip_prefix(&prefix)?.to_string();
        Some((serial, serde_json::from_slice(kv.value()).ok()))
    });
    Ok(to_list(entries.collect(), now))
}

/// Of `entries` (serial, entry if it parsed), those a revocation at `now` lists (public
/// for the benchmark, which builds the CRL this design keeps).
pub fn to_list(entries: Vec<(String, Option<Entry>)>, now: time::OffsetDateTime) -> Vec<String> {
    let live: Vec<&(String, Option<Entry>)> = entries
        .iter()
        .filter(|(_, entry)| live(entry.as_ref(), now))
        .collect();
    let listed: std::collections::BTreeSet<&str> =
        live.iter().map(|(serial, _)| serial.as_str()).collect();
    live.iter()
        .filter(|(_, entry)| {
            let branch = entry.as_ref().and_then(|e| e.branch.as_deref());
            !branch.is_some_and(|b| listed.contains(b))
        })
        .map(|(serial, _)| serial.clone())
        .collect()
}

/// Every entry whose identity expired before `now`: its key and serial. Such an
/// identity no longer needs a place on the CRL (the handshake refuses it anyway), nor in
/// the ledger.
pub async fn expired(
    client: &mut etcd_client::Client,
    now: time::OffsetDateTime,
) -> Result<Vec<(String, Vec<u8>)>, String> {
    let got = cluster_api::get_prefix(client, PREFIX).await?;
    Ok(got
        .kvs()
        .iter()
        .filter_map(|kv| {
            let key = kv.key_str().ok()?;
            let serial = key.rsplit('/').next()?;
            let entry: Entry = serde_json::from_slice(kv.value()).ok()?;
            if live(Some(&entry), now) {
                return None;
            }
            Some((
                key.to_string(),
                zone_pki::revocation::parse_serial_hex(serial)?,
            ))
        })
        .collect())
}

/// Records `entry` at `key(name, serial_hex)` through `client` (the owner's `revoke
/// --identity`, for an identity no member issued, such as the owner's own).
pub async fn put_entry(
    client: &mut etcd_client::Client,
    name: &str,
    serial_hex: &str,
    entry: &Entry,
) -> Result<(), String> {
    let text = serde_json::to_string(entry).map_err(|e| e.to_string())?;
    put(client, name, serial_hex, &text, false).await
}

/// How many unexpired identities and branches `node` holds at `now`: the zone's ledger
/// through the member's own etcd at `endpoint` (none counted when it does not answer),
/// and the member's journal under `state_dir`. Blocking.
pub fn live_count(
    endpoint: &str,
    leaves: &LeafPaths,
    state_dir: &Path,
    node: &str,
    now: time::OffsetDateTime,
) -> usize {
    let prefix = format!("{PREFIX}{node}/");
    let in_zone: Result<usize, String> = (|| {
        let creds = Credentials::load(leaves).map_err(|e| e.to_string())?;
        let runtime = cluster_api::runtime().map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let client = cluster_api::connect(endpoint, &creds).await?;
            let got = cluster_api::get_prefix(&client, &prefix).await?;
            Ok(got
                .kvs()
                .iter()
                .filter(|kv| live(serde_json::from_slice(kv.value()).ok().as_ref(), now))
                .count())
        })
    })();
    let journal = std::fs::read_dir(state_dir.join(JOURNAL))
        .map(|files| {
            files
                .flatten()
                .filter(|f| {
                    f.file_name()
                        .to_string_lossy()
                        .starts_with(&format!("{node} "))
                })
                .count()
        })
        .unwrap_or(0);
    in_zone.unwrap_or(0) + journal
}

/// Whether an entry still needs revoking at `now`: unless it says it expired (an entry
/// that does not parse is revoked all the same).
fn live(entry: Option<&Entry>, now: time::OffsetDateTime) -> bool {
    use time::format_description::well_known::Rfc3339;
    entry
        .and_then(|e| time::OffsetDateTime::parse(&e.not_after, &Rfc3339).ok())
        .is_none_or(|not_after| not_after > now)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What members of this release write, and what one of a later release may write:
    /// read alike (golden texts: the zone's ledger is read by members of other releases).
    #[test]
    fn the_ledger_and_marks_keep_their_format() {
        assert_eq!(
            key("nas.example.zone", "0a1b"),
            "zone-etcd/access/issued/nas.example.zone/0a1b"
        );
        assert_eq!(
            format!("{NODES_PREFIX}nas.example.zone"),
            "zone-etcd/access/nodes/nas.example.zone"
        );
        assert_eq!(MARK, "{}");
        let entry = Entry {
            user: "photos@nas.example.zone".into(),
            not_after: "2027-02-24T05:00:00Z".into(),
            branch: None,
        };
        let golden = r#"{"user":"photos@nas.example.zone","not_after":"2027-02-24T05:00:00Z"}"#;
        assert_eq!(serde_json::to_string(&entry).unwrap(), golden);
        let later = r#"{"user":"photos@nas.example.zone","not_after":"2027-02-24T05:00:00Z","kind":"gateway"}"#;
        assert_eq!(serde_json::from_str::<Entry>(later).unwrap(), entry);
        // An identity a branch signed names the branch's serial.
        let through = Entry {
            branch: Some("7f01".into()),
            ..entry
        };
        let golden = r#"{"user":"photos@nas.example.zone","not_after":"2027-02-24T05:00:00Z","branch":"7f01"}"#;
        assert_eq!(serde_json::to_string(&through).unwrap(), golden);
        assert_eq!(serde_json::from_str::<Entry>(golden).unwrap(), through);
    }

    #[test]
    fn a_revocation_lists_branches_and_only_the_identities_no_listed_branch_covers() {
        use time::format_description::well_known::Rfc3339;
        let now = time::OffsetDateTime::parse("2026-12-01T00:00:00Z", &Rfc3339).unwrap();
        let entry = |user: &str, not_after: &str, branch: Option<&str>| Entry {
            user: user.into(),
            not_after: not_after.into(),
            branch: branch.map(String::from),
        };
        let later = "2027-01-01T00:00:00Z";
        let past = "2026-11-01T00:00:00Z";
        let entries = vec![
            (
                "b1".into(),
                Some(entry("nas identities by node1", later, None)),
            ),
            ("i1".into(), Some(entry("photos@nas", later, Some("b1")))),
            ("i2".into(), Some(entry("nas", later, Some("b1")))),
            // Signed by the signer itself (an older member): listed.
            ("i3".into(), Some(entry("nas", later, None))),
            // Its branch expired (so left the ledger's list): the identity is listed.
            (
                "b0".into(),
                Some(entry("nas identities by node2", past, None)),
            ),
            ("i4".into(), Some(entry("photos@nas", later, Some("b0")))),
            // A branch no entry names (a record lost): the identity is listed.
            ("i5".into(), Some(entry("photos@nas", later, Some("b9")))),
            ("i6".into(), Some(entry("photos@nas", past, Some("b1")))),
            ("x".into(), None),
        ];
        assert_eq!(to_list(entries, now), ["b1", "i3", "i4", "i5", "x"]);
        assert!(to_list(Vec::new(), now).is_empty());
    }

    #[test]
    fn an_entry_reads_as_written_and_only_an_expired_one_is_left_out() {
        // Golden: the format other releases read.
        let text = r#"{"user":"photos@nas.example.zone","not_after":"2026-12-25T00:00:00Z"}"#;
        let entry: Entry = serde_json::from_str(text).unwrap();
        assert_eq!(serde_json::to_string(&entry).unwrap(), text);
        use time::format_description::well_known::Rfc3339;
        let before = time::OffsetDateTime::parse("2026-12-24T00:00:00Z", &Rfc3339).unwrap();
        let after = time::OffsetDateTime::parse("2026-12-26T00:00:00Z", &Rfc3339).unwrap();
        assert!(live(Some(&entry), before));
        assert!(!live(Some(&entry), after));
        assert!(live(None, after), "an entry that does not parse is revoked");
        assert_eq!(
            key("nas.example.zone", "0a1b"),
            "zone-etcd/access/issued/nas.example.zone/0a1b"
        );
    }
}
