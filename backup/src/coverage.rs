//! What each writer's own chain covers, recorded in etcd, so that any node can name the
//! node whose chain reaches a point (`undo` and `backup export --from local` read the
//! plain copies only the writer of a chain keeps; after a failover a zone's history is
//! split between two nodes' chains).
//!
//! Invariants:
//! - a record is a hint for a person, never a source of data: the node it names reads its
//!   own chain, verified, and refuses on its own if the chain no longer reaches the point;
//! - a writer records its span when its term starts, after each full snapshot, and at
//!   most every [`EVERY`] while it writes (one small put, off the writer's path), so a
//!   record's newest point lags the chain by at most that;
//! - the span runs from the oldest full snapshot the chain keeps (retention moves it) to
//!   its newest link; the oldest is found again at most every [`OLDEST_EVERY`], as finding
//!   it lists the whole local chain.
//!
//! Pure but for [`record`], [`recorded`] and [`of_local`].

use std::time::Duration;

use etcd_client::Client;
use serde::{Deserialize, Serialize};

use super::chain::{Kind, Link};
use super::local::LocalChain;
use super::pitr::{format_time, Point};
use zone_etcd_kit::cluster_api;

/// Where the records live: one key per node, `<PREFIX><node>`.
pub const PREFIX: &str = "zone-etcd/backup/local/";
/// How often an active writer records its span.
pub const EVERY: Duration = Duration::from_secs(30);
/// How often the writer finds its chain's oldest full snapshot again.
pub const OLDEST_EVERY: Duration = Duration::from_secs(600);

/// The span of one node's own chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coverage {
    pub node: String,
    /// The oldest full snapshot the chain keeps: its revision and when it was taken.
    pub oldest_revision: i64,
    pub oldest_ms: i64,
    /// The newest link: its last revision, and up to when it knew of every change.
    pub newest_revision: i64,
    pub newest_ms: i64,
}

impl Coverage {
    /// Whether the span holds `point`.
    pub fn reaches(&self, point: Point) -> bool {
        match point {
            Point::Revision(r) => (self.oldest_revision..=self.newest_revision).contains(&r),
            Point::Time(ms) => (self.oldest_ms..=self.newest_ms).contains(&ms),
        }
    }

    /// The span, for a message.
    pub fn describe(&self) -> String {
        format!(
            "revisions {}..{}, {} to {}",
            self.oldest_revision,
            self.newest_revision,
            format_time(self.oldest_ms),
            format_time(self.newest_ms)
        )
    }
}

/// The span of a chain given as its links in chain order: from its oldest full snapshot
/// to its newest link; `None` without a full snapshot.
pub fn of_links(node: &str, oldest_full: Option<&Link>, newest: Option<&Link>) -> Option<Coverage> {
    let (full, newest) = (oldest_full?, newest?);
    (full.kind == Kind::Full).then(|| Coverage {
        node: node.to_string(),
        oldest_revision: full.last_revision,
        oldest_ms: full.last_time_ms,
        newest_revision: newest.last_revision.max(full.last_revision),
        newest_ms: newest.last_time_ms.max(full.last_time_ms),
    })
}

/// The oldest full snapshot and the newest link of this node's own chain (lists it).
pub fn of_local(local: &LocalChain) -> (Option<Link>, Option<Link>) {
    let Ok(names) = local.manifests() else {
        return (None, None);
    };
    let read = |name: &String| {
        super::prune::read_local(local, name)
            .ok()
            .and_then(|r| match r {
                super::prune::Read::Body(link) => Some(*link),
                super::prune::Read::Name | super::prune::Read::Gone => None,
            })
    };
    let oldest_full = names
        .iter()
        .filter(|n| chain_kind(n) == Some(Kind::Full))
        .find_map(read);
    let newest = names.iter().rev().find_map(read);
    (oldest_full, newest)
}

fn chain_kind(name: &str) -> Option<Kind> {
    let file = name.rsplit('/').next()?;
    super::chain::parse_manifest_name(file).map(|(_, kind)| kind)
}

/// Records `coverage` under its node's key.
pub async fn record(client: &Client, coverage: &Coverage) -> Result<(), String> {
    let json = serde_json::to_string(coverage).map_err(|e| e.to_string())?;
    let key = format!("{PREFIX}{}", coverage.node);
    let (key, json) = (key.as_str(), json.as_str());
    cluster_api::ask(client, |mut c| async move { c.put(key, json, None).await })
        .await
        .map(drop)
        .map_err(String::from)
}

/// Every node's record (unreadable ones skipped).
pub async fn recorded(client: &Client) -> Result<Vec<Coverage>, String> {
    let answer = zone_etcd_kit::cluster_api::get_prefix(client, PREFIX).await?;
    Ok(answer
        .kvs()
        .iter()
        .filter_map(|kv| serde_json::from_slice(kv.value()).ok())
        .collect())
}

/// The zone's first target as the owner's `--from` names it (with `--endpoint` for an
/// S3 store), for the owner's command in a refusal.
pub fn owners_from(settings: &zone_model::backup::settings::BackupSettings) -> String {
    match settings.targets.first() {
        Some(t) => match &t.endpoint {
            Some(endpoint) => format!("{} --endpoint {endpoint}", t.url),
            None => t.url.clone(),
        },
        None => "TARGET".to_string(),
    }
}

/// What to do when `this` node's own chain cannot reach `point`: run it on a node whose
/// recorded chain reaches it, else with the owner's identity from a target. The `active`
/// writer's chain reaches up to now, whatever its last record says.
pub fn elsewhere(
    this: &str,
    records: &[Coverage],
    active: Option<&str>,
    point: Point,
    owners_command: &str,
) -> String {
    let current = |c: &Coverage| {
        let mut c = c.clone();
        if Some(c.node.as_str()) == active {
            (c.newest_revision, c.newest_ms) = (i64::MAX, i64::MAX);
        }
        c
    };
    let able: Vec<Coverage> = records
        .iter()
        .map(current)
        .filter(|c| c.node != this && c.reaches(point))
        .collect();
    match able.as_slice() {
        [] => format!(
            "no node's own chain reaches it; the owner can, from a target: {owners_command}"
        ),
        [one, ..] if one.newest_revision == i64::MAX => format!(
            "run this on {}, the active backup writer, whose chain holds everything from revision {} ({}); or the owner, from a target: {owners_command}",
            one.node,
            one.oldest_revision,
            format_time(one.oldest_ms)
        ),
        [one, ..] => format!(
            "run this on {}, whose chain holds {} (recorded by its backup run); or the owner, from a target: {owners_command}",
            one.node,
            one.describe()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(node: &str, revisions: (i64, i64), ms: (i64, i64)) -> Coverage {
        Coverage {
            node: node.into(),
            oldest_revision: revisions.0,
            oldest_ms: ms.0,
            newest_revision: revisions.1,
            newest_ms: ms.1,
        }
    }

    #[test]
    fn a_span_reaches_its_ends_and_what_is_between_only() {
        let c = span("n1", (100, 200), (1_000, 2_000));
        for (point, reached) in [
            (Point::Revision(100), true),
            (Point::Revision(200), true),
            (Point::Revision(99), false),
            (Point::Revision(201), false),
            (Point::Time(1_000), true),
            (Point::Time(2_001), false),
        ] {
            assert_eq!(c.reaches(point), reached, "{point:?}");
        }
    }

    #[test]
    fn the_node_that_can_is_named_never_this_one() {
        let records = [
            span("node1.z", (100, 200), (1_000, 2_000)),
            span("node2.z", (150, 400), (1_500, 4_000)),
        ];
        let fix = elsewhere("node2.z", &records, None, Point::Revision(120), "OWNER");
        assert!(
            fix.starts_with("run this on node1.z, whose chain holds revisions 100..200"),
            "{fix}"
        );
        assert!(fix.ends_with("OWNER"), "{fix}");
        // The node asking is not named, even when its record claims the point.
        let fix = elsewhere("node2.z", &records, None, Point::Revision(300), "OWNER");
        assert!(fix.starts_with("no node's own chain reaches it"), "{fix}");
        let fix = elsewhere("node3.z", &[], None, Point::Time(5), "OWNER");
        assert!(fix.contains("OWNER"), "{fix}");
        // The active writer's chain reaches past its last record.
        let fix = elsewhere(
            "node2.z",
            &records,
            Some("node1.z"),
            Point::Revision(250),
            "OWNER",
        );
        assert!(
            fix.starts_with("run this on node1.z, the active backup writer"),
            "{fix}"
        );
        let fix = elsewhere(
            "node2.z",
            &records,
            Some("node1.z"),
            Point::Revision(99),
            "OWNER",
        );
        assert!(fix.starts_with("no node's own chain"), "{fix}");
    }

    fn link(seq: u64, kind: Kind, revisions: (i64, i64)) -> Link {
        crate::chain::testing::verified(crate::chain::testing::Spec {
            seq,
            kind,
            revisions,
            times: (revisions.0 * 10, revisions.1 * 10),
            next_delta: revisions.1 + 1,
            cluster: "c1",
            prev: None,
        })
        .link
    }

    #[test]
    fn a_chain_without_a_full_snapshot_covers_nothing() {
        let delta = link(2, Kind::Delta, (5, 10));
        assert_eq!(of_links("n", None, Some(&delta)), None);
        assert_eq!(of_links("n", Some(&delta), Some(&delta)), None);
        let full = link(1, Kind::Full, (4, 4));
        let c = of_links("n", Some(&full), Some(&delta)).unwrap();
        assert_eq!((c.oldest_revision, c.newest_revision), (4, 10));
        assert_eq!((c.oldest_ms, c.newest_ms), (40, 100));
    }
}
