//! The move keeper: beside each member's etcd (in the keeper process `launch` starts), it
//! reads the zone's target release and, when this member's next step is its own to take,
//! takes it: the turn, the step file, SIGTERM to etcd. It ends the turn of its own member
//! once that member serves again on the release of the turn.
//!
//! Invariants: it never moves while [`zone_node::rollout::TURN_KEY`] is held, while any member of the
//! cluster is not healthy, or to a release the start would refuse (etcd 3.7 over entries
//! 3.5 wrote); each reason it waits is logged once, when it changes. What a wait for etcd
//! 3.6's snapshot needs is recorded under [`WAITING_PREFIX`] for `status` (put when it
//! changes, deleted when the member no longer waits), and the launcher runs such a 3.6
//! with a low `--snapshot-count` until then
//! ([`zone_etcd_kit::etcd::path::catch_up_snapshot_count`]).

use std::sync::OnceLock;
use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, PutOptions, Txn, TxnOp};
use zone_io::Error;

use super::duty::{Duty, Round};
use super::link::Link;
use zone_etcd_kit::cluster_api;
use zone_etcd_kit::etcd::path;
use zone_etcd_kit::etcd::shelf::{self, Shelved};
use zone_etcd_kit::etcd::step::{step_toward, Step};
use zone_etcd_kit::etcd::{Remember, Version};
use zone_node::node::Node;
use zone_node::rollout::{
    now, read, Target, Turn, Waiting, TARGET_KEY, TURN_KEY, TURN_TTL, WAITING_PREFIX,
};

/// Between two looks at the target.
const POLL: Duration = Duration::from_secs(2);

pub struct Mover {
    node: Node,
    name: String,
    link: Link,
    watch_pid: u32,
    /// The release this member's etcd runs (what launch started).
    running: Version,
    /// The releases on this machine, asked for the first time a target is set.
    shelf: OnceLock<Vec<Shelved>>,
    /// The wait last put under [`WAITING_PREFIX`]: `Some(None)` once none is there (not
    /// known at the keeper's start: a record an earlier keeper left is deleted then).
    published: Option<Option<Waiting>>,
    /// The member's committed raft index seen before the last look that found no target
    /// (and nothing to record): while etcd's index is still that, the target and the turn
    /// (keys of etcd, nothing else the look read) are as that look found them, and a round
    /// asks nothing more (an idle member answered 60 Ranges a minute for them).
    quiet_at: Option<u64>,
}

impl Duty for Mover {
    fn name(&self) -> String {
        format!("etcd release: {}", self.link.endpoint())
    }

    fn pause(&self) -> Duration {
        POLL
    }

    /// One look at the zone's target; over once this keeper stopped its etcd to move it.
    async fn round(&mut self) -> Result<Round, String> {
        // The status answer the access keeper and the quota decider share (Link::leads).
        let index = self.link.leads().await.ok().map(|(_, i)| i);
        if index.is_some() && index == self.quiet_at {
            return Ok(Round::Quiet);
        }
        self.quiet_at = None;
        let mut waits = None;
        let looked = self.look(&mut waits).await;
        if looked.is_err() {
            self.link.reset().await;
        } else {
            // A look that found no target leaves `waits` empty: nothing to record.
            match self.publish(waits).await {
                Ok(()) if matches!(looked, Ok(Look::Quiet)) => self.quiet_at = index,
                Ok(()) => {}
                Err(problem) => tracing::warn!(
                    "etcd release: cannot record what this member waits for: {problem}"
                ),
            }
        }
        Ok(match looked? {
            Look::Quiet => Round::Quiet,
            Look::Said(line) => Round::Said(line),
            Look::Stopped(line) => Round::Done(Some(line)),
        })
    }
}

impl Mover {
    /// The mover of `node`'s member (`None` when the node runs no member), watching
    /// `watch_pid`, the etcd started from the node's node.toml.
    pub fn new(node: Node, link: Link, watch_pid: u32) -> Result<Option<Mover>, Error> {
        let Some(member) = node.member().cloned() else {
            return Ok(None);
        };
        let (_, profile) = zone_node::preflight::etcd::chosen_etcd(&node, Remember::No)?;
        Ok(Some(Mover {
            link,
            name: member.node_name,
            running: profile.version,
            shelf: OnceLock::new(),
            published: None,
            quiet_at: None,
            node,
            watch_pid,
        }))
    }

    /// Puts (or deletes) this member's wait record when it changed.
    async fn publish(&mut self, waits: Option<Waiting>) -> Result<(), String> {
        if self.published.as_ref() == Some(&waits) {
            return Ok(());
        }
        let mut client = self.link.client().await?;
        let key = format!("{WAITING_PREFIX}{}", self.name);
        if self.published.is_none() && waits.is_none() {
            // A keeper's start: a read, not a delete (a raft entry) of what is not there.
            let there = client
                .get(
                    key.as_str(),
                    Some(etcd_client::GetOptions::new().with_count_only()),
                )
                .await
                .map_err(|e| e.to_string())?;
            if there.count() == 0 {
                self.published = Some(None);
                return Ok(());
            }
        }
        match &waits {
            Some(w) => {
                let value = serde_json::to_string(w).map_err(|e| e.to_string())?;
                let (key, value) = (key.as_str(), value.as_str());
                cluster_api::ask(
                    &client,
                    |mut c| async move { c.put(key, value, None).await },
                )
                .await?;
            }
            None => {
                let key = key.as_str();
                cluster_api::ask(&client, |mut c| async move { c.delete(key, None).await }).await?;
            }
        }
        self.published = Some(waits);
        Ok(())
    }

    /// What waits before etcd `want` may start over this member's log: a snapshot past
    /// what etcd 3.5 wrote (see [`zone_etcd_kit::wal::replay`]); `None` when nothing does.
    fn replay_wait(&self, want: Version) -> Result<Option<Waiting>, String> {
        if want.series() < (3, 7) {
            return Ok(None);
        }
        let replay = zone_etcd_kit::wal::replay(&self.node.data_dir).map_err(|e| e.to_string())?;
        let Some(last_v2) = replay.last_v2 else {
            return Ok(None);
        };
        let configured = self.node.settings.snapshot_count;
        let count = path::catch_up_snapshot_count(self.running, Some(last_v2), configured)
            .or(configured)
            .unwrap_or(path::DEFAULT_SNAPSHOT_COUNT);
        Ok(Some(Waiting {
            format: 1,
            member: self.name.clone(),
            to: want.to_string(),
            last_v2,
            snapshot: replay.snapshot,
            count,
        }))
    }

    async fn look(&self, waits: &mut Option<Waiting>) -> Result<Look, String> {
        let mut client = self.link.client().await?;
        let turn = read::<Turn>(&mut client, TURN_KEY).await?;
        if let Some((turn, revision)) = &turn {
            if turn.member == self.name && turn.to == self.running.to_string() {
                if !self.serves().await {
                    return Ok(Look::Said(format!(
                        "etcd release: back on etcd {}, waiting to serve before ending this member's turn",
                        turn.to
                    )));
                }
                let txn = Txn::new()
                    .when([Compare::mod_revision(TURN_KEY, CompareOp::Equal, *revision)])
                    .and_then([TxnOp::delete(TURN_KEY, None)]);
                cluster_api::txn(&client, txn).await?;
                return Ok(Look::Said(format!(
                    "etcd release: this member serves on etcd {}: its turn ended",
                    turn.to
                )));
            }
        }
        let Some((target, _)) = read::<Target>(&mut client, TARGET_KEY).await? else {
            return Ok(Look::Quiet);
        };
        let Some(to) = Version::parse(&target.to) else {
            return Err(format!("{TARGET_KEY} names no release ({:?})", target.to));
        };
        let view = cluster_api::member_list(self.link.endpoint(), self.link.creds()).await?;
        let (endpoint, creds, name, members) = (
            self.link.endpoint().to_string(),
            self.link.creds().clone(),
            self.name.clone(),
            view.members.clone(),
        );
        let (cluster, others) = tokio::task::spawn_blocking(move || {
            let cluster = cluster_api::versions(&endpoint, &creds)
                .ok()
                .and_then(|v| Version::parse(&v.cluster));
            let others = members.iter().filter(|m| m.name != name);
            (cluster, cluster_api::member_releases(others, &creds))
        })
        .await
        .map_err(|e| e.to_string())?;
        let on_shelf: Vec<Version> = self.shelf().iter().filter_map(Shelved::release).collect();
        let want = match step_toward(to, self.running, cluster, &others, &on_shelf) {
            Step::Arrived => {
                return Ok(Look::Said(format!(
                    "etcd release: this member runs etcd {to}, the zone's release"
                )))
            }
            Step::Wait(why) => {
                return Ok(Look::Said(format!(
                    "etcd release: not moving toward etcd {to} yet: {why}"
                )))
            }
            Step::Move(want) => want,
        };
        if let Some(wait) = self.replay_wait(want)? {
            let line = format!(
                "etcd release: not moving to etcd {want} until {}",
                wait.describe(None)
            );
            *waits = Some(wait);
            return Ok(Look::Said(line));
        }
        if let Some((turn, _)) = turn {
            return Ok(Look::Said(format!(
                "etcd release: waiting for {} to finish its move to etcd {}",
                turn.member, turn.to
            )));
        }
        if let Some(problem) = self.unhealthy(&view).await {
            return Ok(Look::Said(format!(
                "etcd release: not moving to etcd {want} while {problem}"
            )));
        }
        if !self.take_turn(&mut client, want).await? {
            return Ok(Look::Said(
                "etcd release: another member took the turn first".into(),
            ));
        }
        let step = self
            .shelf()
            .iter()
            .find(|s| s.release() == Some(want))
            .cloned()
            .ok_or_else(|| format!("etcd {want} left the shelf"))?;
        shelf::write_step(&self.node.state_dir, &step).map_err(|e| e.to_string())?;
        let pid = nix::unistd::Pid::from_raw(self.watch_pid as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)
            .map_err(|e| format!("cannot stop etcd (pid {}): {e}", self.watch_pid))?;
        Ok(Look::Stopped(format!(
            "etcd release: moving this member from etcd {} to etcd {want} ({}) on the way to {to}: stopped etcd (pid {}) for its supervisor to start it again",
            self.running,
            step.binary.display(),
            self.watch_pid
        )))
    }

    fn shelf(&self) -> &[Shelved] {
        self.shelf.get_or_init(|| {
            let node = &self.node;
            shelf::releases(node.etcd_bin.as_deref(), &node.state_dir, &node.path)
        })
    }

    /// Whether this member answers healthy (status, and a quorum read).
    async fn serves(&self) -> bool {
        let reports = cluster_api::probe_all(
            vec![(self.link.endpoint().to_string(), true)],
            self.link.creds(),
        )
        .await;
        reports.iter().all(|r| r.healthy())
    }

    /// The first member of the cluster `view` lists that is not healthy, `None` when all
    /// are.
    async fn unhealthy(&self, view: &zone_model::cluster::ClusterView) -> Option<String> {
        if view.members.len() < self.node.members.len() {
            return Some(format!(
                "the cluster lists {} members of the zone's {}",
                view.members.len(),
                self.node.members.len()
            ));
        }
        let endpoints: Vec<(String, bool)> = view
            .members
            .iter()
            .flat_map(|m| m.client_urls.iter().map(|u| (u.clone(), !m.learner)))
            .collect();
        let reports = cluster_api::probe_all(endpoints, self.link.creds()).await;
        view.members.iter().find_map(|m| {
            cluster_api::member_problem(m, &reports).map(|p| {
                let name = if m.started() {
                    m.name.clone()
                } else {
                    cluster_api::hex_id(m.id)
                };
                format!("{name} is not healthy ({p})")
            })
        })
    }

    /// Takes the turn for a move to `want` when nobody holds it.
    async fn take_turn(&self, client: &mut Client, want: Version) -> Result<bool, String> {
        let lease = client
            .lease_grant(TURN_TTL, None)
            .await
            .map_err(|e| e.to_string())?;
        let turn = Turn {
            member: self.name.clone(),
            to: want.to_string(),
            since: now(),
        };
        let value = serde_json::to_string(&turn).map_err(|e| e.to_string())?;
        let txn = Txn::new()
            .when([Compare::create_revision(TURN_KEY, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(
                TURN_KEY,
                value,
                Some(PutOptions::new().with_lease(lease.id())),
            )]);
        let taken = cluster_api::txn(client, txn).await?.succeeded();
        if !taken {
            let _ = client.lease_revoke(lease.id()).await;
        }
        Ok(taken)
    }
}

enum Look {
    /// No target.
    Quiet,
    /// Where this member stands (logged when it changes).
    Said(String),
    /// It stopped its etcd to move it.
    Stopped(String),
}
