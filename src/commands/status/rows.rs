//! What `status` shows: the cluster's [`ClusterStatus`] with one [`MemberRow`] per member
//! and its active alarms; the table and the JSON output both read this one value.
//!
//! Invariants: `fault_tolerance` is 0 once quorum is lost; `writes_refused` holds exactly
//! when an alarm is active or there is no quorum, and then `writes_refused_because` says
//! why; a member's `problem` is set exactly when it is not healthy.

use serde::Serialize;

use zone_node::revocation::summary::CrlSummary;

/// One member's row (also the JSON output).
#[derive(Debug, Serialize)]
pub(super) struct MemberRow {
    pub(super) name: String,
    pub(super) id: String,
    pub(super) role: &'static str,
    pub(super) leader: bool,
    pub(super) healthy: bool,
    pub(super) peer_urls: Vec<String>,
    pub(super) client_urls: Vec<String>,
    pub(super) raft_index: Option<u64>,
    pub(super) raft_term: Option<u64>,
    pub(super) db_size: Option<i64>,
    /// What of the database file holds data (the rest is free until a defragmentation).
    pub(super) db_size_in_use: Option<i64>,
    pub(super) version: Option<String>,
    /// The zone-etcd release the member's keeper recorded in the zone (`None`: none yet,
    /// or a release before 0.2.0, which recorded none).
    pub(super) zone_etcd: Option<zone_model::release::Record>,
    /// The member's round trips to its peers over its last measured minute, as its keeper
    /// recorded them (`None`: none yet, a minute after its start).
    pub(super) links: Option<zone_model::links::Links>,
    pub(super) handshake_ms: Option<f64>,
    pub(super) problem: Option<String>,
}

#[derive(Debug, Serialize)]
pub(super) struct AlarmRow {
    pub(super) member: String,
    pub(super) alarm: String,
}

/// The default is an empty zone's (no member, nothing read yet): what the builder and the
/// tests fill in.
#[derive(Debug, Default, Serialize)]
pub(super) struct ClusterStatus {
    pub(super) zone: String,
    pub(super) cluster_id: String,
    pub(super) leader: Option<String>,
    pub(super) voters: usize,
    pub(super) healthy_voters: usize,
    /// Voters that answered their status, with or without a quorum behind them.
    pub(super) answering_voters: usize,
    /// Whether a linearizable read went through: a leader with a quorum exists.
    pub(super) quorum: bool,
    /// How many more voters may fail before quorum is lost (0 when it already is).
    pub(super) fault_tolerance: usize,
    /// etcd's cluster version (the lowest minor series among the members), as a member
    /// reports it.
    pub(super) cluster_version: Option<String>,
    /// The format of the members' data (etcd 3.6 and later say it; what etcd's downgrade
    /// moves back before older binaries may run), as a member reports it.
    pub(super) storage_version: Option<String>,
    /// What the zone does next between etcd releases (an upgrade or downgrade under way,
    /// a patch owed before the next minor version; see [`zone_etcd_kit::etcd::path::next_step`]).
    pub(super) next_step: Option<String>,
    /// The etcd release the zone's owner chose (`zone-etcd upgrade-etcd --to`), if any.
    pub(super) etcd_target: Option<String>,
    /// The member moving to another release now, and to which (`node2.example.zone ->
    /// 3.6.15`).
    pub(super) etcd_moving: Option<String>,
    /// Members whose next step waits, and what for (etcd 3.6's snapshot past what 3.5
    /// wrote, before 3.7 may replay the log).
    pub(super) etcd_waiting: Vec<WaitingRow>,
    /// Known defects of the etcd releases the members run (the launcher's version table),
    /// and members running different zone-etcd releases.
    pub(super) warnings: Vec<String>,
    /// The cluster's active alarms (NOSPACE: a database reached its quota and writes are
    /// refused; CORRUPT: the members' data disagree).
    pub(super) alarms: Vec<AlarmRow>,
    /// Whether the cluster refuses writes now: an active alarm, or no quorum.
    pub(super) writes_refused: bool,
    /// Why, when it does: each alarm with its cause, or the lost quorum.
    pub(super) writes_refused_because: Option<String>,
    /// What to do when the cluster is not sound (the fix of the exit status' error line).
    pub(super) fix: Option<String>,
    pub(super) members: Vec<MemberRow>,
    /// Members of the zone's list that the cluster does not know (they still have to join).
    pub(super) not_joined: Vec<String>,
    /// The CRL the zone publishes (`None`: it has revoked nothing), when this node's
    /// zone root signed it.
    pub(super) crl: Option<CrlSummary>,
    /// Why the zone's CRL could not be read (then `crl` says nothing), when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) crl_unread: Option<String>,
    /// The access policy in force and which members apply it (a zone with `[access]`).
    pub(super) access: Option<zone_node::policy::standing::AccessSummary>,
    /// Each tenant's use against its budgets, the stopped first, then the largest share
    /// (issue 69), as the decider last recorded them; empty when it recorded none.
    pub(super) quotas: Vec<zone_model::quota::seen::Seen>,
    /// When the decider counted them (`None`: no use record).
    pub(super) quotas_at: Option<String>,
    /// The zone's leases, as the decider last counted them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) leases: Option<u64>,
    /// Whose keeper counted them.
    #[serde(skip)]
    pub(super) quotas_by: Option<String>,
    /// Why the quota records could not be read (then `quotas` says nothing), when they
    /// could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) quotas_unread: Option<String>,
}

/// A member whose next step waits.
#[derive(Debug, Serialize)]
pub(super) struct WaitingRow {
    pub(super) member: String,
    /// The release of the step that waits.
    pub(super) to: String,
    pub(super) waits_for: String,
}

/// The members' waits, of members that still run a release below the one they wait to move
/// to (a record left by a keeper that stopped is not shown once its member moved on).
pub(super) fn waiting(
    members: &[MemberRow],
    waits: Vec<zone_node::rollout::Waiting>,
) -> Vec<WaitingRow> {
    use zone_etcd_kit::etcd::Version;
    waits
        .into_iter()
        .filter_map(|w| {
            let row = members.iter().find(|m| m.name == w.member)?;
            let runs = row.version.as_deref().and_then(Version::parse)?;
            let to = Version::parse(&w.to)?;
            (runs < to).then(|| WaitingRow {
                waits_for: w.describe(row.raft_index),
                member: w.member,
                to: w.to,
            })
        })
        .collect()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A sound cluster of no member, for the tests of what is added to it.
    pub(in crate::commands::status) fn cluster() -> ClusterStatus {
        ClusterStatus {
            zone: "example.zone".into(),
            cluster_id: "1".into(),
            quorum: true,
            ..ClusterStatus::default()
        }
    }

    fn member(name: &str, version: &str, raft_index: u64) -> MemberRow {
        MemberRow {
            name: name.into(),
            id: String::new(),
            role: "voter",
            leader: false,
            healthy: true,
            peer_urls: Vec::new(),
            client_urls: Vec::new(),
            raft_index: Some(raft_index),
            raft_term: None,
            db_size: None,
            db_size_in_use: None,
            version: Some(version.into()),
            zone_etcd: None,
            links: None,
            handshake_ms: None,
            problem: None,
        }
    }

    fn wait(member: &str) -> zone_node::rollout::Waiting {
        zone_node::rollout::Waiting {
            format: 1,
            member: member.into(),
            to: "3.7.2".into(),
            last_v2: 4211,
            snapshot: 4000,
            count: 100,
        }
    }

    /// A member on 3.6 waits, counted from its index now; one already on 3.7 (its keeper
    /// stopped before it deleted the record) and one not in the cluster are not shown.
    #[test]
    fn a_wait_is_shown_for_a_member_still_below_its_step() {
        let members = [member("n1", "3.6.15", 4061), member("n2", "3.7.2", 4070)];
        let rows = waiting(&members, vec![wait("n1"), wait("n2"), wait("n9")]);
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(
            (rows[0].member.as_str(), rows[0].to.as_str()),
            ("n1", "3.7.2")
        );
        assert!(
            rows[0].waits_for.contains("index 4101")
                && rows[0].waits_for.contains("40 entries from now"),
            "{}",
            rows[0].waits_for
        );
    }
}
