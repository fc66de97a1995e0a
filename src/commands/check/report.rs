//! What `check` found: a [`Report`] of the node's certificates, its other problems, the
//! etcd a launch would run and the CRL it holds; the text, JSON and Prometheus renderings
//! all read this one value.
//!
//! Invariants: `ok` is true only when no certificate and nothing else has a problem; a
//! node whose config does not load is a report of that one problem (so metrics say it is
//! broken instead of keeping the last run's numbers).

use serde::Serialize;
use zone_io::Error;

use zone_node::inspection::{problem, Problem, Row};

#[derive(Debug, Serialize)]
pub(super) struct Report {
    pub(super) node: String,
    pub(super) ok: bool,
    pub(super) certificates: Vec<Row>,
    /// Problems that belong to no certificate: the node config, directory modes, etcd.
    pub(super) other_problems: Vec<Problem>,
    /// The etcd binary of a member (`None` for a node that runs no etcd, or whose config
    /// did not load).
    pub(super) etcd: Option<EtcdBinary>,
    /// The zone's CRL as this node holds it (`None`: nothing revoked, or not known here).
    pub(super) crl: Option<zone_node::revocation::summary::CrlSummary>,
    /// Whether the zone enforces least privilege, as this node knows its policy (`None`:
    /// its config did not load).
    pub(super) access: Option<Access>,
    /// A member's data disk (`None`: the node runs no member, or its config did not load).
    pub(super) disk: Option<Disk>,
    /// A member's round trips to its peers, as its keeper last recorded them, and the
    /// zone's timeouts against them (`None`: no member, or nothing recorded yet).
    pub(super) links: Option<LinksSeen>,
    /// The zone's quotas as the member's etcd holds the decider's records (`None`: not
    /// the metrics run, not a member, or not read; see [`super::quotas`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) quotas: Option<super::quotas::Quotas>,
    /// The zone-etcd that checked: the node's installed release (what its launch and
    /// keepers run once restarted).
    pub(super) zone_etcd: ThisBuild,
}

/// A member's links as its keeper last recorded them ([`zone_agent::links::FILE`]), and
/// the `[settings]` they call for.
#[derive(Debug, Serialize)]
pub(super) struct LinksSeen {
    #[serde(flatten)]
    pub(super) record: zone_model::links::Links,
    /// The timeouts the zone runs with.
    pub(super) heartbeat_interval_ms: u64,
    pub(super) election_timeout_ms: u64,
    /// What fits the farthest p99 (`None` without a peer measured).
    pub(super) fits: Option<Fits>,
    /// The warning when the timeouts are below what the links need.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) warning: Option<String>,
}

#[derive(Debug, Serialize)]
pub(super) struct Fits {
    pub(super) heartbeat_interval_ms: u64,
    pub(super) election_timeout_ms: u64,
}

impl LinksSeen {
    /// What `node`'s keeper last recorded of its member's links.
    pub(super) fn of(node: &zone_node::node::Node) -> Option<LinksSeen> {
        let record = zone_agent::links::kept(&node.state_dir)?;
        let (heartbeat, election) = (node.settings.heartbeat_ms(), node.settings.election_ms());
        let fits = record.farthest_p99_ms().map(|p99| {
            let fit = zone_model::links::fit(p99, heartbeat, election);
            Fits {
                heartbeat_interval_ms: fit.heartbeat_ms,
                election_timeout_ms: fit.election_ms,
            }
        });
        let warning = zone_model::links::below(std::slice::from_ref(&record), heartbeat, election);
        Some(LinksSeen {
            record,
            heartbeat_interval_ms: heartbeat,
            election_timeout_ms: election,
            fits,
            warning,
        })
    }
}

/// This build of zone-etcd ([`zone_node::this_build`]).
#[derive(Debug, Serialize)]
pub(super) struct ThisBuild {
    pub(super) release: &'static str,
    pub(super) commit: &'static str,
    /// The highest format level it reads.
    pub(super) reads: u32,
    /// The highest format level it writes.
    pub(super) writes: u32,
}

impl Default for ThisBuild {
    fn default() -> ThisBuild {
        ThisBuild {
            release: zone_node::this_build::RELEASE,
            commit: zone_node::this_build::COMMIT,
            reads: zone_node::this_build::reads(),
            writes: zone_node::this_build::writes(),
        }
    }
}

/// A member's data disk: measured (or kept, younger than an hour), and what that means.
#[derive(Debug, Serialize)]
pub(super) struct Disk {
    /// The figures (`fdatasync_p50_ms`, `fdatasync_p99_ms`, ...); absent when there is
    /// none: not measured yet under `--format prometheus`, or the probe failed.
    #[serde(flatten)]
    pub(super) measured: Option<zone_node::disk_probe::Measured>,
    pub(super) findings: Vec<zone_node::disk_probe::Finding>,
    /// Why it was not measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) not_measured: Option<String>,
}

impl Disk {
    /// `node`'s data disk: measured again when `measure` and the kept figure is older than
    /// an hour, else the kept figure alone (`None` when there is none).
    pub(super) fn of(node: &zone_node::node::Node, measure: bool) -> Option<Disk> {
        let measured = if measure {
            zone_node::disk_probe::measure_or_kept(&node.state_dir, &node.data_dir)
        } else {
            match zone_node::disk_probe::kept(&node.state_dir) {
                Some(kept) => Ok(kept),
                None => return None,
            }
        };
        Some(match measured {
            Ok(m) => Disk {
                findings: zone_node::disk_probe::findings(&m),
                measured: Some(m),
                not_measured: None,
            },
            Err(e) => Disk {
                measured: None,
                findings: Vec::new(),
                not_measured: Some(e.to_string()),
            },
        })
    }
}

/// The zone's access policy as one node knows it.
#[derive(Debug, Serialize)]
pub(super) struct Access {
    /// Whether the zone enforces its policy: etcd's auth on, each identity its grants.
    pub(super) enforced: bool,
    /// The line `check` and `status` print.
    pub(super) line: String,
}

impl Access {
    pub(super) fn of(policy: &zone_model::policy::Policy) -> Access {
        Access {
            enforced: policy.enforce,
            line: zone_node::policy::standing::open_line(policy),
        }
    }
}

/// The etcd a launch of this node would run.
#[derive(Debug, Serialize)]
pub(super) struct EtcdBinary {
    pub(super) path: String,
    /// `None` when it is not an etcd the launcher runs (the problem says why).
    pub(super) version: Option<String>,
    pub(super) warnings: Vec<String>,
}

impl Report {
    /// Every problem: those of the certificates and the others.
    pub(super) fn problem_count(&self) -> usize {
        self.certificates
            .iter()
            .map(|r| r.problems.len())
            .sum::<usize>()
            + self.other_problems.len()
    }

    /// The report of a node whose config could not be read: that one problem.
    pub(super) fn unreadable(error: &Error) -> Report {
        Report {
            node: String::new(),
            ok: false,
            certificates: Vec::new(),
            other_problems: vec![problem(
                match error.file_path() {
                    Some(file) => format!("{}: {}", file.display(), error.problem()),
                    None => error.problem().to_string(),
                },
                error.fix_text().unwrap_or("fix the node config"),
            )],
            etcd: None,
            crl: None,
            access: None,
            disk: None,
            links: None,
            quotas: None,
            zone_etcd: ThisBuild::default(),
        }
    }
}
