//! Where a node stands in the running cluster, and what joining, leaving or restarting
//! may do about it.
//!
//! The decisions are pure functions of three facts: the member this node's data directory
//! holds ([`zone_etcd_kit::wal`]), the member list the cluster answered ([`zone_etcd_kit::cluster_api`]),
//! and the node's name and peer URL. They are the safety rules of runtime
//! reconfiguration: never add a member twice, never start a member over another cluster's
//! data, never let removed data rejoin, never remove a member the remaining quorum cannot
//! spare. The few I/O helpers at the end move data aside and find what was moved.

use std::path::{Path, PathBuf};

use zone_io::Error;

use zone_etcd_kit::cluster_api::hex_id;
use zone_etcd_kit::wal::LocalMember;
use zone_model::cluster::{ClusterMember, ClusterView};

/// What `join` has to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinStep {
    /// Ask the cluster to add this node as a learner, then start it.
    Add,
    /// The cluster already added this node (a join that stopped before etcd started):
    /// start it as that member.
    Start { id: u64 },
    /// The data directory already holds this node's member of this cluster: start it again
    /// (and promote it if it is still a learner).
    Restart { id: u64, learner: bool },
}

/// Why `join` or `launch` must not go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conflict {
    /// A member has this node's name but other peer URLs.
    NameTaken { urls: Vec<String> },
    /// Another started member uses this node's peer URL.
    AddressTaken { name: String },
    /// The data directory belongs to another cluster (an earlier bootstrap of the zone).
    OtherCluster { local: LocalMember, running: u64 },
    /// The data directory's member was removed from the cluster.
    Removed { local: LocalMember },
    /// The cluster lists this node as started, but this node holds no data for it.
    StartedWithoutData { id: u64 },
}

impl Conflict {
    /// The one-line error, naming the data directory where it is at fault.
    pub fn into_error(self, name: &str, data_dir: &Path, answered_by: &str) -> Error {
        let data = data_dir.display();
        // Every conflict needs a person (a leave, a restore, a new data directory):
        // retrying the same command cannot resolve it.
        let err = match self {
            Conflict::NameTaken { urls } => Error::new(format!(
                "the cluster (asked at {answered_by}) already has a member named {name} with peer URLs {}",
                urls.join(",")
            ))
            .fix(format!(
                "remove that member first (zone-etcd leave --node {name}), then join again"
            )),
            Conflict::AddressTaken { name: other } => Error::new(format!(
                "the cluster (asked at {answered_by}) has member {other} on this node's peer URL"
            ))
            .fix(format!(
                "remove {other} first (zone-etcd leave --node {other}), or give {name} another address in the zone file"
            )),
            Conflict::OtherCluster { local, running } => Error::new(format!(
                "the data directory holds member {} of etcd cluster {}, but the zone's running cluster (asked at {answered_by}) is {}: the zone was restored from a snapshot, or bootstrapped again, without this member",
                hex_id(local.member_id),
                hex_id(local.cluster_id),
                hex_id(running)
            ))
            .file(data_dir)
            .fix(format!(
                "if the zone was restored, run zone-etcd restore --config <node.toml> --from <the same snapshot> here (it moves this data aside); if it was bootstrapped again, move it aside (mv {data} {data}.old) and run zone-etcd join"
            )),
            Conflict::Removed { local } => Error::new(format!(
                "member {} in the data directory was removed from the cluster (asked at {answered_by})",
                hex_id(local.member_id)
            ))
            .file(data_dir)
            .fix("run zone-etcd join to become a member again, with a new data directory"),
            Conflict::StartedWithoutData { id } => Error::new(format!(
                "the cluster (asked at {answered_by}) lists {name} as started member {}, but the data directory holds no member",
                hex_id(id)
            ))
            .file(data_dir)
            .fix(
                "bring it back as a new member with zone-etcd join --replace --config <node.toml> (it removes the lost member first, once it answers nowhere)",
            ),
        };
        err.permanent()
    }
}

/// What `join` does, from the local member (if any) and the running cluster's list.
pub fn plan_join(
    local: Option<LocalMember>,
    view: &ClusterView,
    name: &str,
    peer_url: &str,
) -> Result<JoinStep, Conflict> {
    if let Some(m) = view.by_name(name) {
        if m.peer_urls != [peer_url] {
            return Err(Conflict::NameTaken {
                urls: m.peer_urls.clone(),
            });
        }
    }
    let by_peer = view.by_peer_url(peer_url);
    if let Some(m) = by_peer {
        if m.started() && m.name != name {
            return Err(Conflict::AddressTaken {
                name: m.name.clone(),
            });
        }
    }
    match local {
        Some(local) => {
            let m = restart_standing(local, view)?;
            Ok(JoinStep::Restart {
                id: m.id,
                learner: m.learner,
            })
        }
        None => match by_peer {
            Some(m) if m.published() => Err(Conflict::StartedWithoutData { id: m.id }),
            Some(m) => Ok(JoinStep::Start { id: m.id }),
            None => Ok(JoinStep::Add),
        },
    }
}

/// For a restart over existing data: the cluster's entry for the local member, or why
/// the data must not start.
pub fn restart_standing(
    local: LocalMember,
    view: &ClusterView,
) -> Result<&ClusterMember, Conflict> {
    if local.cluster_id != view.cluster_id {
        return Err(Conflict::OtherCluster {
            local,
            running: view.cluster_id,
        });
    }
    view.by_id(local.member_id)
        .ok_or(Conflict::Removed { local })
}

/// Whether member `id` moved: the cluster lists other peer URLs for it than `peer_url`
/// (the zone file changed its address). Returns the URLs the cluster had, to replace; a
/// `peer_url` another member has is refused.
pub fn moved(view: &ClusterView, id: u64, peer_url: &str) -> Result<Option<Vec<String>>, Conflict> {
    let Some(me) = view.by_id(id) else {
        return Ok(None);
    };
    if me.peer_urls == [peer_url] {
        return Ok(None);
    }
    if let Some(other) = view
        .members
        .iter()
        .find(|m| m.id != id && m.peer_urls.iter().any(|u| u == peer_url))
    {
        return Err(Conflict::AddressTaken {
            name: if other.name.is_empty() {
                hex_id(other.id)
            } else {
                other.name.clone()
            },
        });
    }
    Ok(Some(me.peer_urls.clone()))
}

/// Why removing a member would break the cluster, if it would.
pub fn leave_refusal(view: &ClusterView, target: u64, healthy: &[u64]) -> Option<String> {
    if view.members.len() <= 1 {
        return Some(
            "it is the cluster's last member: removing it would end the zone's etcd (stop it instead)"
                .into(),
        );
    }
    let target_is_voter = view.by_id(target).is_some_and(|m| !m.learner);
    if !target_is_voter {
        return None;
    }
    let remaining: Vec<u64> = view
        .members
        .iter()
        .filter(|m| !m.learner && m.id != target)
        .map(|m| m.id)
        .collect();
    let healthy_remaining = remaining.iter().filter(|id| healthy.contains(id)).count();
    let quorum = remaining.len() / 2 + 1;
    (healthy_remaining < quorum).then(|| {
        format!(
            "the {} voters left would have {healthy_remaining} healthy, fewer than the {quorum} a quorum needs",
            remaining.len()
        )
    })
}

/// Where [`move_aside`] puts a removed member's data: `<data>.removed-<member id>`.
fn aside_path(data_dir: &Path, member_id: u64) -> PathBuf {
    let mut name = data_dir
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "data".into());
    name.push(format!(".removed-{}", hex_id(member_id)));
    data_dir.with_file_name(name)
}

/// Moves a removed member's data directory aside (one rename; never deleted), so that it
/// can never start again with stale data. Returns where it went; `None` if there was no
/// data directory.
pub fn move_aside(data_dir: &Path, member_id: u64) -> Result<Option<PathBuf>, Error> {
    if !data_dir.exists() {
        return Ok(None);
    }
    let mut target = aside_path(data_dir, member_id);
    if target.exists() {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut name = target.as_os_str().to_os_string();
        name.push(format!("-{secs}"));
        target = PathBuf::from(name);
    }
    std::fs::rename(data_dir, &target)
        .map_err(|e| Error::io("move the removed member's data aside", data_dir, &e))?;
    if let Some(parent) = data_dir.parent() {
        zone_io::sync_dir(parent)?;
    }
    Ok(Some(target))
}

/// Data directories of members this node held and that were removed (see [`move_aside`]).
pub fn removed_data(data_dir: &Path) -> Vec<PathBuf> {
    let (Some(parent), Some(name)) = (data_dir.parent(), data_dir.file_name()) else {
        return Vec::new();
    };
    let prefix = format!("{}.removed-", name.to_string_lossy());
    let mut found: Vec<PathBuf> = std::fs::read_dir(parent)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect();
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "node4.example.zone";
    const MY_PEER: &str = "https://127.0.0.4:2380";

    fn member(id: u64, name: &str, peer: &str, learner: bool) -> ClusterMember {
        ClusterMember {
            id,
            name: name.into(),
            peer_urls: vec![peer.into()],
            client_urls: if name.is_empty() {
                vec![]
            } else {
                vec![peer.replace("2380", "2379")]
            },
            learner,
        }
    }

    fn view(extra: Vec<ClusterMember>) -> ClusterView {
        let mut members = vec![
            member(1, "node1.example.zone", "https://127.0.0.1:2380", false),
            member(2, "node2.example.zone", "https://127.0.0.2:2380", false),
            member(3, "node3.example.zone", "https://127.0.0.3:2380", false),
        ];
        members.extend(extra);
        ClusterView {
            cluster_id: 77,
            members,
            answered_by: "https://127.0.0.1:2379".into(),
        }
    }

    #[test]
    fn a_member_that_moved_replaces_its_peer_url_unless_another_member_has_it() {
        let v = view(vec![]);
        assert_eq!(moved(&v, 3, "https://127.0.0.3:2380"), Ok(None));
        assert_eq!(
            moved(&v, 3, "https://127.0.0.13:2380"),
            Ok(Some(vec!["https://127.0.0.3:2380".to_string()]))
        );
        assert_eq!(
            moved(&v, 3, "https://127.0.0.1:2380"),
            Err(Conflict::AddressTaken {
                name: "node1.example.zone".into()
            })
        );
        // A member the cluster does not list has nothing to move.
        assert_eq!(moved(&v, 9, "https://127.0.0.9:2380"), Ok(None));
    }

    fn local(member_id: u64, cluster_id: u64) -> Option<LocalMember> {
        Some(LocalMember {
            member_id,
            cluster_id,
        })
    }

    #[test]
    fn join_adds_once_then_starts_then_restarts() {
        assert_eq!(
            plan_join(None, &view(vec![]), ME, MY_PEER),
            Ok(JoinStep::Add)
        );
        // Added, never started (name still empty): start it, do not add again.
        let added = view(vec![member(9, "", MY_PEER, true)]);
        assert_eq!(
            plan_join(None, &added, ME, MY_PEER),
            Ok(JoinStep::Start { id: 9 })
        );
        // Started and holding data: restart, promote while a learner.
        let started = view(vec![member(9, ME, MY_PEER, true)]);
        assert_eq!(
            plan_join(local(9, 77), &started, ME, MY_PEER),
            Ok(JoinStep::Restart {
                id: 9,
                learner: true
            })
        );
    }

    #[test]
    fn join_refuses_taken_names_addresses_and_foreign_or_lost_data() {
        let moved = view(vec![member(9, ME, "https://127.0.0.9:2380", false)]);
        assert!(matches!(
            plan_join(None, &moved, ME, MY_PEER),
            Err(Conflict::NameTaken { .. })
        ));
        let squatted = view(vec![member(9, "node5.example.zone", MY_PEER, false)]);
        assert_eq!(
            plan_join(None, &squatted, ME, MY_PEER),
            Err(Conflict::AddressTaken {
                name: "node5.example.zone".into()
            })
        );
        assert!(matches!(
            plan_join(local(9, 78), &view(vec![]), ME, MY_PEER),
            Err(Conflict::OtherCluster { running: 77, .. })
        ));
        assert!(matches!(
            plan_join(local(9, 77), &view(vec![]), ME, MY_PEER),
            Err(Conflict::Removed { .. })
        ));
        let started = view(vec![member(9, ME, MY_PEER, false)]);
        assert_eq!(
            plan_join(None, &started, ME, MY_PEER),
            Err(Conflict::StartedWithoutData { id: 9 })
        );
    }

    #[test]
    fn leave_keeps_quorum_unless_the_set_can_spare_it() {
        let three = view(vec![]);
        // All healthy: any one may go.
        assert_eq!(leave_refusal(&three, 1, &[1, 2, 3]), None);
        // One dead: removing the dead one is the fix; removing a healthy one is not.
        assert_eq!(leave_refusal(&three, 3, &[1, 2]), None);
        assert!(leave_refusal(&three, 1, &[1, 2]).is_some());
        // A learner never counts toward quorum.
        let with_learner = view(vec![member(9, ME, MY_PEER, true)]);
        assert_eq!(leave_refusal(&with_learner, 9, &[1]), None);
        // The last member never goes.
        let mut alone = view(vec![]);
        alone.members.truncate(1);
        assert!(leave_refusal(&alone, 1, &[1])
            .unwrap()
            .contains("last member"));
    }

    #[test]
    fn removed_data_is_moved_aside_and_found_again() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        assert_eq!(move_aside(&data, 0xab).unwrap(), None);
        std::fs::create_dir_all(data.join("member")).unwrap();
        let aside = move_aside(&data, 0xab).unwrap().unwrap();
        assert_eq!(aside, dir.path().join("data.removed-ab"));
        assert!(!data.exists() && aside.join("member").is_dir());
        // A second removal of the same ID never overwrites the first.
        std::fs::create_dir_all(&data).unwrap();
        let second = move_aside(&data, 0xab).unwrap().unwrap();
        assert_ne!(second, aside);
        assert_eq!(removed_data(&data), vec![aside, second]);
    }
}
