//! The question `restore` asks before it replaces anything: does a quorum of another
//! cluster answer at any of the zone's members (the zone is alive, and restoring would
//! split it)?
//!
//! Every member is asked twice at once, from the start of the restore:
//! - its client port, as `status` asks it ([`cluster_api::probe_each`]): its cluster and
//!   whether a quorum read goes through. Only that answer can show a live quorum;
//! - its peer port (`GET /members`, [`cluster_api::ask_peer`]), which an etcd serves from
//!   its own store with or without a quorum. A member restored just before, waiting for
//!   its quorum, accepts connections on its client port but holds the TLS handshake
//!   until it has one; its peer port says at once that it runs the restored cluster,
//!   and a member of the restored cluster is never another cluster's quorum.
//!
//! [`decide`] is the rule, pure: another cluster's quorum as soon as one client port
//! shows it; none once every member is settled (its client port answered or failed, or
//! its peer port named the restored cluster). A member that is not settled is waited for,
//! up to the client probe's own deadlines: the same answers as asking every client port
//! to the end, without waiting for those that cannot change the outcome.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;

use zone_io::Error;

use zone_etcd_kit::cluster_api::peer_port::Answer;
use zone_etcd_kit::cluster_api::{self, hex_id, Credentials, EndpointReport, CONNECT_TIMEOUT};
use zone_model::cluster;
use zone_model::config::zone::Member;

/// What one member said so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Heard {
    /// Its client port's final answer: `None` while it is being asked.
    pub client: Option<ClientSaid>,
    /// The cluster its peer port named, if it answered as an etcd.
    pub peer_cluster: Option<u64>,
}

/// A client port's final answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientSaid {
    /// No status (refused, no TLS session within the connect timeout, an error).
    Failed,
    /// Its status: the cluster it runs, and whether a quorum read went through it.
    Status { cluster_id: u64, quorum: bool },
}

/// The answer to the question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No quorum of another cluster answers.
    Clear,
    /// The members (indexes) whose client port served a quorum read of another cluster.
    Live(Vec<usize>),
}

/// Decides once the members' answers tell, `None` while one still could change it.
/// `restored` is the cluster the restore makes.
pub fn decide(heard: &[Heard], restored: u64) -> Option<Verdict> {
    let live: Vec<usize> = heard
        .iter()
        .enumerate()
        .filter(|(_, h)| {
            matches!(h.client, Some(ClientSaid::Status { cluster_id, quorum: true }) if cluster_id != restored)
        })
        .map(|(i, _)| i)
        .collect();
    if !live.is_empty() {
        return Some(Verdict::Live(live));
    }
    let settled = |h: &Heard| h.client.is_some() || h.peer_cluster == Some(restored);
    heard.iter().all(settled).then_some(Verdict::Clear)
}

enum Event {
    Client(usize, Box<EndpointReport>),
    Peer(usize, Answer),
}

/// The questions under way, started by [`Probe::start`].
pub struct Probe {
    endpoints: Vec<String>,
    events: Receiver<Event>,
    heard: Vec<Heard>,
    /// What each client port said, for the refusal's message.
    clusters: Vec<Option<u64>>,
}

impl Probe {
    /// Asks every member's client port with `creds` and, with `peer_creds` when this node
    /// has them, its peer port; returns at once.
    pub fn start(
        members: &[Member],
        creds: &Arc<Credentials>,
        peer_creds: Option<Arc<Credentials>>,
    ) -> Probe {
        let (tx, events) = channel();
        let endpoints: Vec<String> = members.iter().map(cluster::client_url).collect();
        {
            let tx: Sender<Event> = tx.clone();
            let asked: Vec<(String, bool)> = endpoints.iter().map(|e| (e.clone(), true)).collect();
            let creds = creds.clone();
            std::thread::spawn(move || {
                if let Ok(runtime) = cluster_api::runtime() {
                    runtime.block_on(cluster_api::probe_each(asked, &creds, |i, report| {
                        let _ = tx.send(Event::Client(i, Box::new(report)));
                    }));
                }
            });
        }
        if let Some(peer_creds) = peer_creds {
            for (index, member) in members.iter().enumerate() {
                let (tx, creds, url) = (tx.clone(), peer_creds.clone(), cluster::peer_url(member));
                std::thread::spawn(move || {
                    let answer = cluster_api::ask_peer(&url, &creds, CONNECT_TIMEOUT);
                    let _ = tx.send(Event::Peer(index, answer));
                });
            }
        }
        Probe {
            heard: vec![Heard::default(); endpoints.len()],
            clusters: vec![None; endpoints.len()],
            endpoints,
            events,
        }
    }

    /// Waits until [`decide`] can tell for the `restored` cluster. `Ok(list)`: the
    /// client ports that serve another cluster's quorum (`endpoint (cluster id)`),
    /// empty when none does.
    pub fn live_others(mut self, restored: u64) -> Result<Vec<String>, Error> {
        loop {
            match decide(&self.heard, restored) {
                Some(Verdict::Clear) => return Ok(Vec::new()),
                Some(Verdict::Live(indexes)) => {
                    return Ok(indexes
                        .into_iter()
                        .map(|i| {
                            let id = self.clusters[i].map(hex_id).unwrap_or_default();
                            format!("{} (cluster {id})", self.endpoints[i])
                        })
                        .collect())
                }
                None => {}
            }
            // Every question ends within its deadlines, and then its sender is gone: a
            // closed channel before a decision means the client probe itself failed.
            match self.events.recv() {
                Ok(Event::Client(i, report)) => {
                    let said = match &report.status {
                        Ok(status) => {
                            self.clusters[i] = Some(status.cluster_id);
                            ClientSaid::Status {
                                cluster_id: status.cluster_id,
                                quorum: matches!(report.quorum_read, Some(Ok(()))),
                            }
                        }
                        Err(_) => ClientSaid::Failed,
                    };
                    self.heard[i].client = Some(said);
                }
                Ok(Event::Peer(i, Answer::Etcd(view) | Answer::Bootstrapping(view))) => {
                    self.heard[i].peer_cluster = Some(view.cluster_id);
                }
                Ok(Event::Peer(..)) => {}
                Err(_) => {
                    return Err(Error::new(
                        "asking the members whether the zone's cluster still has a quorum failed",
                    )
                    .fix("run restore again"))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RESTORED: u64 = 0xaa;
    const OLD: u64 = 0xbb;

    fn client(said: ClientSaid) -> Heard {
        Heard {
            client: Some(said),
            peer_cluster: None,
        }
    }

    fn status(cluster_id: u64, quorum: bool) -> ClientSaid {
        ClientSaid::Status { cluster_id, quorum }
    }

    fn peer(cluster: u64) -> Heard {
        Heard {
            client: None,
            peer_cluster: Some(cluster),
        }
    }

    #[test]
    fn one_quorum_read_of_another_cluster_refuses_at_once() {
        let pending = Heard::default();
        // Before the others are heard from.
        assert_eq!(
            decide(
                &[pending.clone(), client(status(OLD, true)), pending],
                RESTORED
            ),
            Some(Verdict::Live(vec![1]))
        );
        // Even when another member runs the restored cluster.
        assert_eq!(
            decide(&[peer(RESTORED), client(status(OLD, true))], RESTORED),
            Some(Verdict::Live(vec![1]))
        );
    }

    #[test]
    fn no_quorum_of_another_cluster_once_every_member_is_settled() {
        // Every member down (the benchmark's first restore).
        let down = client(ClientSaid::Failed);
        assert_eq!(
            decide(&[down.clone(), down.clone(), down.clone()], RESTORED),
            Some(Verdict::Clear)
        );
        // The restored cluster's own quorum, another cluster without one.
        assert_eq!(
            decide(
                &[
                    client(status(RESTORED, true)),
                    client(status(OLD, false)),
                    down
                ],
                RESTORED
            ),
            Some(Verdict::Clear)
        );
    }

    #[test]
    fn a_member_of_the_restored_cluster_waiting_for_its_quorum_is_settled_by_its_peer_port() {
        let down = client(ClientSaid::Failed);
        // Its client port holds the handshake; its peer port named the restored cluster.
        assert_eq!(
            decide(&[peer(RESTORED), down.clone(), down.clone()], RESTORED),
            Some(Verdict::Clear)
        );
        // A peer port of another cluster settles nothing: its client port may yet show a
        // quorum.
        assert_eq!(
            decide(&[peer(OLD), down.clone(), down.clone()], RESTORED),
            None
        );
        // Nor does a member nothing was heard from yet.
        assert_eq!(
            decide(&[Heard::default(), down.clone(), down], RESTORED),
            None
        );
    }
}
