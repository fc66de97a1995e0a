//! What undo plans from, read from the running zone: the keys under the prefix now (at
//! one revision, NOW), the keys under it at the point, and every change to them from the
//! point through NOW, as one [`PrefixHistory`] covering the point..=NOW.
//!
//! Invariants:
//! - the keys now are read at one revision (every page of a long prefix at the first
//!   page's revision), so they and NOW agree;
//! - the keys at the point come from etcd's history while it still has the point, else
//!   from a backup chain ([`pitr::prefix_history`]: the node's own, or a target read with
//!   the owner's identity); the changes after what that covers come from a watch of the
//!   prefix from the next revision;
//! - the changes come from `super::watch`, checked link by link before they join;
//! - a point or watch start etcd has compacted, a point in the future or a cluster that
//!   does not answer is an error, never a partial history;
//! - nothing here writes.

use std::collections::BTreeMap;

use etcd_client::Client;
use zone_io::Error;

use super::plan::NowKey;
use zone_backup::pitr::{self, OldKey, Origin, PrefixHistory};
use zone_etcd_kit::cluster_api::range::read_prefix as read_range;
use zone_node::node::Node;

/// The keys under the prefix now and their history since the point.
pub struct Read {
    pub now: BTreeMap<Vec<u8>, NowKey>,
    pub history: PrefixHistory,
    /// Whether the keys at the point came from the node's backup chain (etcd had
    /// compacted the point), with the chain's newest revision.
    pub from_chain: Option<i64>,
}

use zone_etcd_kit::cluster_api::range::Fail;

/// Reads the keys under `prefix` now and their history since `point`.
pub async fn read(
    client: &Client,
    node: &Node,
    (origin, owners): (&Origin<'_>, &str),
    prefix: &[u8],
    point: i64,
) -> Result<Read, Error> {
    let config = node.path.as_path();
    let cluster_error = |what: &str, reason: String| {
        Error::new(format!("cannot read {what}: {reason}"))
            .file(config)
            .field("etcd")
            .fix("check the zone with `zone-etcd status`, then run undo again")
    };
    let (revision, now) = match read_prefix(client, prefix, 0).await {
        Ok(read) => read,
        Err(Fail::Compacted) => return Err(cluster_error("the keys now", "compacted".into())),
        Err(Fail::Refused(reason)) => return Err(cluster_error("the keys now", reason)),
        Err(Fail::Other(reason)) => {
            let endpoints = zone_model::cluster::client_endpoints(&node.members).join(",");
            return Err(zone_node::reach::unreachable(
                &[(endpoints, reason)],
                config,
            ));
        }
    };
    if point > revision {
        return Err(Error::new(format!(
            "revision {point} is in the future: the zone is at revision {revision}"
        ))
        .file(config)
        .fix("give a revision the zone has passed (--revision), or a time (--at)"));
    }
    let (mut history, from_chain) = match read_prefix(client, prefix, point).await {
        Ok((_, keys)) => (
            PrefixHistory {
                revision: point,
                keys: keys
                    .into_iter()
                    .map(|(k, v)| {
                        let old = OldKey {
                            value: v.value,
                            mod_revision: v.mod_revision,
                        };
                        (k, old)
                    })
                    .collect(),
                changes: BTreeMap::new(),
                through: point,
            },
            None,
        ),
        Err(Fail::Compacted) => {
            let mut chain = match zone_node::backup_node::prefix_history(node, origin, prefix, point) {
                Ok(chain) => chain,
                Err(e) if pitr::node_chain_problem(&e).is_some() => {
                    let point = pitr::Point::Revision(point);
                    return Err(super::elsewhere::refusal(client, node, point, e, owners).await);
                }
                Err(e) => {
                    return Err(Error::new(format!(
                        "etcd no longer holds revision {point} (compacted), and the backup chain does not give it: {}",
                        e.problem()
                    ))
                    .file(e.file_path().unwrap_or(config))
                    .fix(e.fix_text().unwrap_or("pick a later point")))
                }
            };
            let newest = chain.through;
            trim(&mut chain, revision);
            (chain, Some(newest))
        }
        Err(Fail::Refused(reason) | Fail::Other(reason)) => {
            return Err(cluster_error(
                &format!("the keys at revision {point}"),
                reason,
            ))
        }
    };
    if history.through < history.revision {
        return Err(Error::new(format!(
            "the node's backup chain covers revisions only up to {}, before the point {point}",
            history.through
        ))
        .file(config)
        .fix("wait for backup run to catch up, or pick a later point"));
    }
    if history.through < revision {
        let from = history.through + 1;
        let watched = super::watch::changes(client, prefix, from, revision).await;
        match watched.and_then(|w| {
            super::watch::merge(&mut history, w, revision).map_err(Fail::Other)
        }) {
            Ok(()) => {}
            Err(Fail::Compacted) if from_chain.is_none() => {
                return Err(Error::new(format!(
                    "etcd compacted revision {from} while undo read the changes since"
                ))
                .file(config)
                .fix("run undo again (it then takes the point from the node's backup chain), or pick a later point"))
            }
            Err(Fail::Compacted) => {
                return Err(Error::new(format!(
                    "etcd no longer holds the changes from revision {from} (compacted), and the node's backup chain ends before them"
                ))
                .file(config)
                .fix("wait for backup run to catch up (backup status), or pick a later point"))
            }
            Err(Fail::Refused(reason) | Fail::Other(reason)) => {
                return Err(cluster_error(
                    &format!("the changes since revision {}", from - 1),
                    reason,
                ))
            }
        }
    }
    Ok(Read {
        now,
        history,
        from_chain,
    })
}

/// The keys under `prefix` at `revision` (0: now), with the revision read at.
async fn read_prefix(
    client: &Client,
    prefix: &[u8],
    revision: i64,
) -> Result<(i64, BTreeMap<Vec<u8>, NowKey>), Fail> {
    let (at, keys) = read_range(client, prefix, revision).await?;
    let keys = keys
        .into_iter()
        .map(|(key, (value, mod_revision))| {
            (
                key,
                NowKey {
                    value,
                    mod_revision,
                },
            )
        })
        .collect();
    Ok((at, keys))
}

/// Drops what a chain saw after NOW (the zone moved on since the keys now were read).
fn trim(history: &mut PrefixHistory, now: i64) {
    for revisions in history.changes.values_mut() {
        revisions.retain(|&r| r <= now);
    }
    history.changes.retain(|_, revisions| !revisions.is_empty());
    history.through = history.through.min(now);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_is_trimmed_to_now() {
        let mut h = PrefixHistory {
            revision: 10,
            keys: BTreeMap::new(),
            changes: [(b"a".to_vec(), vec![11, 20]), (b"b".to_vec(), vec![21])]
                .into_iter()
                .collect(),
            through: 25,
        };
        trim(&mut h, 20);
        assert_eq!(h.through, 20);
        assert_eq!(
            h.changes,
            [(b"a".to_vec(), vec![11, 20])].into_iter().collect()
        );
    }
}
