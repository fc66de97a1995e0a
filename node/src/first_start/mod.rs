//! When a member whose data directory is empty may start etcd: a zone is bootstrapped once.
//!
//! Static bootstrap derives the same members and token on every node, so any majority of
//! empty members started with `--initial-cluster-state=new` would form the zone's cluster
//! again, empty, and the members that still hold the zone's data could never rejoin it.
//! The rule, as Consul's `bootstrap_expect` but for every member:
//!
//! - **A new cluster starts only when every member of the zone's list is present and
//!   empty.** While it waits, a launch over an empty data directory answers on its peer
//!   port (the [`beacon`]: mutual TLS, the zone's peer certificates only) that it waits for
//!   the first start, which members it has seen waiting, and its cluster token. It asks
//!   every other member's peer port the same question etcd's peers ask (`GET /members`).
//!   It starts once it has seen every other member waiting with the same token *and* every
//!   other member has said it saw this one: so no member leaves the rendezvous before the
//!   others have seen it, and a member holding data (which never waits: it starts from its
//!   data) keeps every empty member waiting. A member that went ahead is an etcd that lists
//!   this one as not started yet: a late member of the same first start.
//! - **An etcd that answers decides**: an etcd whose own member list (its peer port
//!   serves it without a quorum) names this node as started says it lost its data
//!   (refused). Any other verdict takes the member list of a member that serves clients
//!   (a quorum, its log applied): this node is a member not started yet (it starts, as a
//!   late member of the static bootstrap, if the cluster is the one that bootstrap makes:
//!   [`zone_model::cluster::static_cluster_id`]), a member added by `join` (run `join`), or no
//!   member at all (run `join`). Any other etcd that does not serve yet counts as not
//!   waiting.
//! - **A member that ran before never waits**: every launch over existing data records the
//!   member in its state directory ([`record`], `<state>/member.json`); with that record,
//!   an empty data directory and no etcd answering, it lost its data, and it is refused at
//!   once with what to do.
//! - **An etcd 3.5+ started fresh for this first start** (run directly from `launch
//!   --dry-run --format env`, or a launch that went ahead) counts as present: it never had
//!   a quorum, lists every member of the zone by name and none as started, has the zone's
//!   cluster ID, and says so for [`BOOTSTRAPPING_ROUNDS`] rounds in a row. A member
//!   restarting over its data can look the same for a moment (its in-memory member list
//!   and cluster version come back as it replays its log, and before its first apply it
//!   lists nobody): it lists everyone only once it replays, and then names the started
//!   members within the same apply, so it never says so for long.
//!
//! [`Rendezvous::decide`] is pure: it reads what each member answered and what this launch
//! saw before; the asking is in [`zone_etcd_kit::cluster_api::ask_peer`], the answering in
//! [`beacon`].

pub mod beacon;
pub mod record;

use std::collections::{BTreeMap, BTreeSet};

use zone_etcd_kit::cluster_api::peer_port::{Answer, Waiting};
use zone_model::cluster::ClusterView;

/// How many rounds in a row (each [`Rendezvous::decide`]; the launch asks every 100 ms or
/// more, so at least a second) an etcd must answer as [`Answer::Bootstrapping`] before it
/// counts as present: a member restarting over its data answers so only until its first
/// apply, milliseconds after it starts serving its peer port.
pub const BOOTSTRAPPING_ROUNDS: u32 = 10;

/// What the launch does now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Start etcd with `--initial-cluster-state=new`.
    Start(Why),
    /// Keep waiting: each member not yet confirmed, with the reason.
    Wait(Vec<(String, String)>),
    /// Never start this data directory.
    Refuse(Refusal),
}

/// Why a new member may start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// Every member was seen waiting and saw this one: the zone's first start.
    FirstStart,
    /// A running etcd lists this node as a member of the static bootstrap that has not
    /// started yet.
    LateMember { answered_by: String },
}

/// Why a member with an empty data directory must not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A running member lists this node as started: its data is lost.
    LostData { answered_by: String, id: u64 },
    /// A running member lists this node as added by `join` and not started.
    JoinPending { answered_by: String, id: u64 },
    /// A running member's cluster does not list this node's peer URL.
    NotAMember { answered_by: String },
    /// A running member lists this node as not started, in a cluster the zone's static
    /// bootstrap does not make (restored from a snapshot, or bootstrapped again).
    OtherCluster { answered_by: String, running: u64 },
    /// This node ran etcd before (its state says so) and no etcd answers.
    RanBefore {
        waiting: Vec<String>,
        silent: Vec<String>,
    },
}

/// One launch's rendezvous: who this node is, and what it saw so far.
#[derive(Debug, Clone)]
pub struct Rendezvous {
    pub me: String,
    pub peer_url: String,
    pub token: String,
    /// The cluster ID the zone's static bootstrap with `token` makes.
    pub cluster_id: u64,
    /// The other members' names.
    pub others: BTreeSet<String>,
    /// This node's state records an earlier launch.
    pub ran_before: bool,
    /// Members seen waiting with this token, at any time in this launch.
    seen: BTreeSet<String>,
    /// Members that said they saw this one waiting.
    seen_me: BTreeSet<String>,
    /// Members that read that this one saw them (so they need its answers no more).
    confirmed: BTreeSet<String>,
    /// Members whose etcd answered as a fresh bootstrap of this zone, and in how many
    /// rounds in a row.
    bootstrapping: BTreeMap<String, u32>,
}

impl Rendezvous {
    pub fn new(
        me: &str,
        peer_url: &str,
        (token, cluster_id): (&str, u64),
        others: impl IntoIterator<Item = String>,
        ran_before: bool,
    ) -> Rendezvous {
        Rendezvous {
            me: me.to_string(),
            peer_url: peer_url.to_string(),
            token: token.to_string(),
            cluster_id,
            others: others.into_iter().collect(),
            ran_before,
            seen: BTreeSet::new(),
            seen_me: BTreeSet::new(),
            confirmed: BTreeSet::new(),
            bootstrapping: BTreeMap::new(),
        }
    }

    /// What this launch's beacon tells the others.
    pub fn waiting(&self) -> Waiting {
        Waiting {
            node: self.me.clone(),
            token: self.token.clone(),
            seen: self.seen.clone(),
            acked: self.seen_me.clone(),
        }
    }

    /// After [`Step::Start`]: whether this member may stop answering. It may once no other
    /// member still waits without having read that this one saw it (a member that went
    /// ahead, or went silent, needs nothing more from it).
    pub fn may_leave(&mut self, answers: &[(String, Answer)]) -> bool {
        self.observe(answers);
        answers.iter().all(|(name, answer)| {
            !matches!(answer, Answer::Waiting(_)) || self.confirmed.contains(name)
        })
    }

    /// Of `peers` (name, URL), those still to ask: the members not yet seen waiting, or
    /// that have not said they saw this one. The others were empty and waiting during this
    /// launch and saw it: whatever they say now cannot change the outcome.
    pub fn unsettled(&self, peers: &[(String, String)]) -> Vec<(String, String)> {
        peers
            .iter()
            .filter(|(name, _)| !(self.seen.contains(name) && self.seen_me.contains(name)))
            .cloned()
            .collect()
    }

    /// Of `peers` (name, URL), those not known to have read that this member saw them.
    pub fn unconfirmed(&self, peers: &[(String, String)]) -> Vec<(String, String)> {
        peers
            .iter()
            .filter(|(name, _)| !self.confirmed.contains(name))
            .cloned()
            .collect()
    }

    /// Takes in what the waiting members said of themselves.
    fn observe(&mut self, answers: &[(String, Answer)]) {
        for (name, answer) in answers {
            if !matches!(answer, Answer::Bootstrapping(view) if self.of_this_first_start(view)) {
                self.bootstrapping.remove(name);
            }
            let w = match answer {
                Answer::Waiting(w) => w,
                Answer::Bootstrapping(view)
                    if self.others.contains(name) && self.of_this_first_start(view) =>
                {
                    let rounds = self.bootstrapping.entry(name.clone()).or_insert(0);
                    *rounds += 1;
                    if *rounds >= BOOTSTRAPPING_ROUNDS {
                        // Present, empty, and it needs nothing more from this member.
                        self.seen.insert(name.clone());
                        self.seen_me.insert(name.clone());
                        self.confirmed.insert(name.clone());
                    }
                    continue;
                }
                _ => continue,
            };
            if !self.others.contains(name) || w.token != self.token || w.node != *name {
                continue;
            }
            self.seen.insert(name.clone());
            if w.seen.contains(&self.me) {
                self.seen_me.insert(name.clone());
            }
            if w.acked.contains(&self.me) {
                self.confirmed.insert(name.clone());
            }
        }
    }

    /// Whether a fresh etcd's list is the one this zone's first start makes: its cluster
    /// ID, and every member (this one and the others) by name, none started.
    fn of_this_first_start(&self, view: &ClusterView) -> bool {
        let names: BTreeSet<&str> = view.members.iter().map(|m| m.name.as_str()).collect();
        view.cluster_id == self.cluster_id
            && view.members.len() == self.others.len() + 1
            && view.members.iter().all(|m| !m.published())
            && names.len() == view.members.len()
            && names.contains(self.me.as_str())
            && self.others.iter().all(|n| names.contains(n.as_str()))
    }

    /// Takes one round of answers (member name, answer) and, when a member serves
    /// etcd's client API, the member list it answered there (`serving`), and says what to
    /// do.
    pub fn decide(&mut self, answers: &[(String, Answer)], serving: Option<&ClusterView>) -> Step {
        if let Some(lost) = self.lost(answers) {
            return Step::Refuse(lost);
        }
        if !self.ran_before {
            self.observe(answers);
            if self
                .others
                .iter()
                .all(|n| self.seen.contains(n) && self.seen_me.contains(n))
            {
                return Step::Start(Why::FirstStart);
            }
        }
        if let Some(view) = serving {
            return self.listed(&view.answered_by, view);
        }
        if self.ran_before {
            let (waiting, silent): (Vec<_>, Vec<_>) = answers
                .iter()
                .partition(|(_, a)| matches!(a, Answer::Waiting(_)));
            return Step::Refuse(Refusal::RanBefore {
                waiting: waiting.into_iter().map(|(n, _)| n.clone()).collect(),
                silent: silent.into_iter().map(|(n, _)| n.clone()).collect(),
            });
        }
        let latest: BTreeMap<&String, &Answer> = answers.iter().map(|(n, a)| (n, a)).collect();
        let mut pending = Vec::new();
        for name in &self.others {
            let reason = if !self.seen.contains(name) {
                match latest.get(name) {
                    None => "no answer".to_string(),
                    Some(Answer::Silent(reason)) => reason.clone(),
                    Some(Answer::Waiting(w)) if w.node != *name => {
                        format!("its peer port answers as {}", w.node)
                    }
                    Some(Answer::Waiting(_)) => {
                        "waits for a first start with another zone file or CA (another cluster token)"
                            .to_string()
                    }
                    Some(Answer::Etcd(_)) => {
                        "runs etcd, which does not serve clients yet (no quorum)".to_string()
                    }
                    Some(Answer::Bootstrapping(view)) if self.of_this_first_start(view) => {
                        "runs a new etcd of this first start (counted once it still does after a second: a member restarting over its data looks so for a moment)".to_string()
                    }
                    Some(Answer::Bootstrapping(view)) => format!(
                        "runs a new etcd cluster {}, not the one this zone's first start makes",
                        zone_etcd_kit::cluster_api::hex_id(view.cluster_id)
                    ),
                }
            } else if !self.seen_me.contains(name) {
                "waiting, has not seen this member yet".to_string()
            } else {
                continue;
            };
            pending.push((name.clone(), reason));
        }
        if pending.is_empty() {
            Step::Start(Why::FirstStart)
        } else {
            Step::Wait(pending)
        }
    }

    /// Whether a running etcd lists this node as started: it lost its data.
    ///
    /// A member's peer port answers from its own store, which lags its log right after a
    /// restart (it lists what it has replayed so far: members without the client URLs
    /// they published, or none added later). So only "started" is sure from any member
    /// (a start is never listed before it happened); every other verdict takes the member
    /// list of a member that serves clients (`serving` in [`Rendezvous::decide`]), which
    /// it does only once it has applied its log and has a quorum.
    fn lost(&self, answers: &[(String, Answer)]) -> Option<Refusal> {
        answers.iter().find_map(|(name, a)| match a {
            Answer::Etcd(view) => view
                .by_peer_url(&self.peer_url)
                .filter(|m| m.published())
                .map(|m| Refusal::LostData {
                    answered_by: name.clone(),
                    id: m.id,
                }),
            _ => None,
        })
    }

    fn listed(&self, answered_by: &str, view: &ClusterView) -> Step {
        let answered_by = answered_by.to_string();
        match view.by_peer_url(&self.peer_url) {
            Some(m) if m.published() => Step::Refuse(Refusal::LostData {
                answered_by,
                id: m.id,
            }),
            // A member of the static bootstrap carries its name from the start; one added
            // at runtime (`join`) has none until it starts.
            Some(m) if m.name == self.me && view.cluster_id != self.cluster_id => {
                Step::Refuse(Refusal::OtherCluster {
                    answered_by,
                    running: view.cluster_id,
                })
            }
            Some(m) if m.name == self.me => Step::Start(Why::LateMember { answered_by }),
            Some(m) => Step::Refuse(Refusal::JoinPending {
                answered_by,
                id: m.id,
            }),
            None => Step::Refuse(Refusal::NotAMember { answered_by }),
        }
    }
}

#[cfg(test)]
mod tests;
