//! The changes to the keys under the prefix after what the history covers, through NOW,
//! from a watch of the prefix, checked link by link before they join the history.
//!
//! Invariants:
//! - the watch ends only once etcd has delivered everything through NOW: an event after
//!   NOW (events come in revision order), or a progress notification at or after NOW
//!   (which etcd sends once the watcher has caught up: since 3.5.8 and 3.4.25, etcd
//!   #15220); events after NOW are ignored; it never waits longer than [`WATCH_DEADLINE`];
//! - every change carries the mod revision of the key before it (etcd's prev_kv), so the
//!   changes of a key must link up from its state at the start of the watch: a change
//!   missing anywhere (an etcd that reported progress too early, a prev_kv compacted away)
//!   is refused, never planned from;
//! - a start revision etcd has compacted is [`Fail::Compacted`], never a partial history.

use std::collections::BTreeMap;
use std::time::Duration;

use etcd_client::{Client, EventType, WatchOptions};

use zone_backup::pitr::PrefixHistory;
use zone_etcd_kit::cluster_api::describe;
use zone_etcd_kit::cluster_api::range::Fail;

/// The most the watch of the changes may take to reach NOW.
pub const WATCH_DEADLINE: Duration = Duration::from_secs(30);
/// The largest watch response accepted (a batch of catch-up events).
const MAX_WATCH_MESSAGE: usize = 64 << 20;

/// One change the watch saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub revision: i64,
    pub deleted: bool,
    /// The key's mod revision before it (None: the key was absent).
    pub prev: Option<i64>,
}

/// The watch's changes by key, each key's in revision order.
pub type Watched = BTreeMap<Vec<u8>, Vec<Change>>;

/// Every change to a key under `prefix` from revision `from` through `to`, by key, each
/// key's ascending.
pub(super) async fn changes(
    client: &Client,
    prefix: &[u8],
    from: i64,
    to: i64,
) -> Result<Watched, Fail> {
    let mut changes = Watched::new();
    let deadline = tokio::time::Instant::now() + WATCH_DEADLINE;
    let late = || {
        Fail::Other(format!(
            "the watch did not reach revision {to} within {WATCH_DEADLINE:?}"
        ))
    };
    let mut watch = client
        .watch_client()
        .max_decoding_message_size(MAX_WATCH_MESSAGE);
    let options = WatchOptions::new()
        .with_prefix()
        .with_prev_key()
        .with_start_revision(from);
    let mut stream = tokio::time::timeout_at(deadline, watch.watch(prefix.to_vec(), Some(options)))
        .await
        .map_err(|_| late())?
        .map_err(|e| Fail::Other(describe(&e)))?;
    loop {
        let message = match tokio::time::timeout(Duration::from_secs(1), stream.message()).await {
            Err(_) => {
                // Nothing for a second: ask again where the watch is.
                if tokio::time::Instant::now() >= deadline {
                    return Err(late());
                }
                stream
                    .request_progress()
                    .await
                    .map_err(|e| Fail::Other(describe(&e)))?;
                continue;
            }
            Ok(Err(e)) => return Err(Fail::Other(describe(&e))),
            Ok(Ok(None)) => return Err(Fail::Other("the watch ended".into())),
            Ok(Ok(Some(message))) => message,
        };
        if message.compact_revision() > 0 {
            return Err(Fail::Compacted);
        }
        if message.canceled() {
            return Err(Fail::Other(format!(
                "the watch was canceled ({})",
                message.cancel_reason()
            )));
        }
        if message.created() {
            stream
                .request_progress()
                .await
                .map_err(|e| Fail::Other(describe(&e)))?;
            continue;
        }
        let mut past = false;
        for event in message.events() {
            let Some(kv) = event.kv() else { continue };
            if kv.mod_revision() > to {
                past = true;
                continue;
            }
            changes.entry(kv.key().to_vec()).or_default().push(Change {
                revision: kv.mod_revision(),
                deleted: event.event_type() == EventType::Delete,
                prev: event.prev_kv().map(|p| p.mod_revision()),
            });
        }
        let progress =
            message.events().is_empty() && message.header().is_some_and(|h| h.revision() >= to);
        if past || progress {
            return Ok(changes);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(late());
        }
    }
}

/// What a key's mod revision is expected to be before its next change.
#[derive(Clone, Copy)]
enum Before {
    /// Exactly this (None: absent).
    Exactly(Option<i64>),
    /// After a change from the backup chain, whose kind the chain does not say: absent
    /// (a delete) or this revision (a put).
    AbsentOr(i64),
}

/// Adds `watched` (the changes after `history.through`, through `to`) to `history`, after
/// checking that every key's changes link up from its state at `history.through`.
pub(super) fn merge(history: &mut PrefixHistory, watched: Watched, to: i64) -> Result<(), String> {
    for (key, changes) in watched {
        let mut before = match history.changes.get(&key).and_then(|c| c.last()) {
            Some(&last) => Before::AbsentOr(last),
            None => Before::Exactly(history.keys.get(&key).map(|k| k.mod_revision)),
        };
        for change in &changes {
            let linked = match before {
                Before::Exactly(expected) => change.prev == expected,
                Before::AbsentOr(last) => change.prev.is_none() || change.prev == Some(last),
            };
            if !linked || change.revision <= history.through || change.revision > to {
                return Err(format!(
                    "the watch's change of {} at revision {} does not follow the one before it (a change is missing)",
                    super::show::show_key(&key),
                    change.revision
                ));
            }
            before = Before::Exactly((!change.deleted).then_some(change.revision));
        }
        let revisions = history.changes.entry(key).or_default();
        revisions.extend(changes.iter().map(|c| c.revision));
    }
    history.through = to;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use zone_backup::pitr::OldKey;

    fn put(revision: i64, prev: Option<i64>) -> Change {
        Change {
            revision,
            deleted: false,
            prev,
        }
    }

    fn del(revision: i64, prev: i64) -> Change {
        Change {
            revision,
            deleted: true,
            prev: Some(prev),
        }
    }

    /// At revision 100 (through `through`): a at mod revision 10; b absent.
    fn history(through: i64, chain: &[(&str, &[i64])]) -> PrefixHistory {
        PrefixHistory {
            revision: 100,
            keys: [(
                b"a".to_vec(),
                OldKey {
                    value: b"1".to_vec(),
                    mod_revision: 10,
                },
            )]
            .into_iter()
            .collect(),
            changes: chain
                .iter()
                .map(|(k, r)| (k.as_bytes().to_vec(), r.to_vec()))
                .collect(),
            through,
        }
    }

    fn watched(changes: &[(&str, &[Change])]) -> Watched {
        changes
            .iter()
            .map(|(k, c)| (k.as_bytes().to_vec(), c.to_vec()))
            .collect()
    }

    #[test]
    fn changes_that_link_up_join_the_history() {
        let mut h = history(100, &[]);
        let w = watched(&[
            ("a", &[del(110, 10), put(120, None), put(130, Some(120))]),
            ("b", &[put(111, None), del(140, 111)]),
        ]);
        merge(&mut h, w, 150).unwrap();
        assert_eq!(h.through, 150);
        assert_eq!(h.changes[&b"a".to_vec()], vec![110, 120, 130]);
        assert_eq!(h.changes[&b"b".to_vec()], vec![111, 140]);
    }

    #[test]
    fn a_missing_change_is_refused() {
        // a was put again at 120 (missing): the change at 130 follows 120, not 10.
        let w = watched(&[("a", &[put(130, Some(120))])]);
        let e = merge(&mut history(100, &[]), w, 150).unwrap_err();
        assert!(e.contains("a at revision 130"), "{e}");
        // b was created at 111 (missing) and deleted at 140.
        let w = watched(&[("b", &[del(140, 111)])]);
        assert!(merge(&mut history(100, &[]), w, 150).is_err());
        // a was deleted at 110 (missing), then created at 120.
        let w = watched(&[("a", &[put(120, None)])]);
        assert!(merge(&mut history(100, &[]), w, 150).is_err());
        // A change outside the watch's span.
        let w = watched(&[("a", &[put(160, Some(10))])]);
        assert!(merge(&mut history(100, &[]), w, 150).is_err());
    }

    #[test]
    fn after_a_chain_a_change_follows_the_chains_last_or_an_absent_key() {
        let w = watched(&[("a", &[put(130, Some(120))]), ("b", &[put(131, None)])]);
        let mut h = history(125, &[("a", &[120]), ("b", &[115, 121])]);
        merge(&mut h, w, 140).unwrap();
        assert_eq!(h.changes[&b"a".to_vec()], vec![120, 130]);
        assert_eq!(h.changes[&b"b".to_vec()], vec![115, 121, 131]);
        let w = watched(&[("a", &[put(130, Some(110))])]);
        assert!(merge(&mut history(125, &[("a", &[120])]), w, 140).is_err());
    }
}
