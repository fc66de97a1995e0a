//! A restart's questions to the other members (the cluster's member list, the zone's
//! revocations): the answer of the first client port that answers, or the knowledge that
//! none will before this member starts.
//!
//! An etcd serves its client port only once it has published itself, which needs a
//! quorum; until then it accepts connections and holds the TLS handshake. Its peer port
//! answers at once (`GET /members`, from its own store). So the question also asks every
//! peer port, and stops waiting when [`nobody_will_answer`]: every other member either
//! failed on its client port (refused: not running) or runs this member's cluster
//! without serving, and either those that run it are fewer than its quorum (no quorum
//! forms without this member), or none of them ever had a quorum: no member of the
//! cluster they hold has ever published itself, which is the first thing a quorum does
//! (a zone restored from a snapshot, coming up member after member). Such a cluster has
//! not changed since the data this member holds (its members and version change only
//! through a quorum), so there is nothing to learn by waiting for it to serve. A member
//! of another cluster, or one not heard from, is waited for (its client port may yet
//! answer), up to the caller's deadline.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::cluster_api::peer_port::Answer;
use crate::cluster_api::{self, Credentials};
use crate::wal::LocalMember;
use zone_model::cluster::ClusterView;

/// What one other member said so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Heard {
    /// Its client port failed (refused, an error): it will not answer this question.
    pub client_failed: bool,
    /// Its peer port, as an etcd: its cluster, how many voters that cluster lists, and
    /// whether any of them ever published itself (the cluster had a quorum).
    pub peer: Option<(u64, usize, bool)>,
}

/// Whether no other member's client port can answer before this member starts (see the
/// module's rule).
pub fn nobody_will_answer(others: &[Heard], local: LocalMember) -> bool {
    let ours = |h: &Heard| h.peer.filter(|(cluster, ..)| *cluster == local.cluster_id);
    if !others.iter().all(|h| h.client_failed || ours(h).is_some()) {
        return false;
    }
    if !others.iter().filter_map(ours).any(|(_, _, served)| served) {
        return true;
    }
    let running = others.iter().filter(|h| ours(h).is_some()).count();
    let voters = others
        .iter()
        .filter_map(|h| ours(h).map(|(_, voters, _)| voters))
        .max()
        .unwrap_or(0);
    running < voters / 2 + 1
}

/// Whether no other member can answer a serializable read before this member starts:
/// every other either failed on its client port, or runs this member's cluster that never
/// had a quorum (its client port is not served until it publishes itself). A member that
/// served once keeps serving reads from its own copy, quorum or not, so it is waited for.
pub fn nobody_can_read(others: &[Heard], local: LocalMember) -> bool {
    others.iter().all(|h| {
        h.client_failed
            || h.peer
                .is_some_and(|(cluster, _, served)| cluster == local.cluster_id && !served)
    })
}

/// When [`first_answer`] stops waiting: which questions the others' client ports can
/// answer without a quorum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// A quorum (the member list): see [`nobody_will_answer`].
    Quorum,
    /// Any member that serves (a serializable read): see [`nobody_can_read`].
    AnyServing,
}

enum Event<T> {
    Client(usize, Result<T, String>),
    Peer(usize, Answer),
}

/// The member list from the first of `clients` to answer; `None` once every client port
/// failed or [`nobody_will_answer`]. `peers` are the same members' peer URLs (asked with
/// `peer_creds`, each within `timeout`); the caller bounds the whole.
pub async fn view_or_nobody(
    clients: &[String],
    peers: &[String],
    creds: &Arc<Credentials>,
    peer_creds: Option<Arc<Credentials>>,
    local: LocalMember,
    timeout: Duration,
) -> Option<ClusterView> {
    let creds = creds.clone();
    let ask = move |endpoint: String| {
        let creds = creds.clone();
        async move { cluster_api::within(cluster_api::member_list(&endpoint, &creds)).await }
    };
    let rule = (local, Needs::Quorum);
    first_answer(clients, peers, peer_creds, rule, timeout, ask)
        .await
        .answer()
}

/// What [`first_answer`] found by its deadline.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome<T> {
    /// The first answer.
    Answer(T),
    /// None will come before this member starts: every client port failed, or the rule
    /// ([`Needs`]) says so, or, at the deadline, every other member either failed or
    /// answered on its peer port (it runs, and holds its client port until a quorum forms,
    /// which may need this member).
    Nobody,
    /// At the deadline, a member that neither failed on its client port nor answered on
    /// its peer port (hung, or too slow to tell): it may hold what was asked.
    Silent,
}

impl<T> Outcome<T> {
    pub fn answer(self) -> Option<T> {
        match self {
            Outcome::Answer(answer) => Some(answer),
            Outcome::Nobody | Outcome::Silent => None,
        }
    }
}

/// Which [`Outcome`] a deadline that passed without an answer is, from what was heard.
pub fn at_deadline<T>(heard: &[Heard]) -> Outcome<T> {
    match heard.iter().any(|h| !h.client_failed && h.peer.is_none()) {
        true => Outcome::Silent,
        false => Outcome::Nobody,
    }
}

/// What `ask` gets from the first of `clients` (client URLs) to answer within `timeout`,
/// all asked at once, or why none did ([`Outcome`]; see [`view_or_nobody`] for the rest).
pub async fn first_answer<T, F, Fut>(
    clients: &[String],
    peers: &[String],
    peer_creds: Option<Arc<Credentials>>,
    (local, needs): (LocalMember, Needs),
    timeout: Duration,
    ask: F,
) -> Outcome<T>
where
    T: Send + 'static,
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<T, String>> + Send + 'static,
{
    let (tx, mut events) = mpsc::unbounded_channel();
    for (index, endpoint) in clients.iter().enumerate() {
        let (tx, answer) = (tx.clone(), ask(endpoint.clone()));
        tokio::spawn(async move {
            let _ = tx.send(Event::Client(index, answer.await));
        });
    }
    if let Some(peer_creds) = peer_creds {
        // Threads, not the runtime's blocking pool: dropping the runtime would wait for
        // them, and launch execs etcd without waiting.
        for (index, url) in peers.iter().enumerate() {
            let (tx, url, creds) = (tx.clone(), url.clone(), peer_creds.clone());
            std::thread::spawn(move || {
                let _ = tx.send(Event::Peer(
                    index,
                    cluster_api::ask_peer(&url, &creds, timeout),
                ));
            });
        }
    }
    drop(tx);
    let mut heard = vec![Heard::default(); clients.len()];
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            () = &mut deadline => return at_deadline(&heard),
        };
        let Some(event) = event else {
            return Outcome::Nobody;
        };
        match event {
            Event::Client(_, Ok(answer)) => return Outcome::Answer(answer),
            Event::Client(i, Err(_)) => heard[i].client_failed = true,
            Event::Peer(i, Answer::Etcd(view) | Answer::Bootstrapping(view)) => {
                let voters = view.members.iter().filter(|m| !m.learner).count();
                let served = view.members.iter().any(|m| m.published());
                heard[i].peer = Some((view.cluster_id, voters, served));
            }
            Event::Peer(..) => {}
        }
        let nobody = match needs {
            Needs::Quorum => nobody_will_answer(&heard, local),
            Needs::AnyServing => nobody_can_read(&heard, local),
        };
        if heard.iter().all(|h| h.client_failed) || nobody {
            return Outcome::Nobody;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: LocalMember = LocalMember {
        member_id: 1,
        cluster_id: 0xaa,
    };

    fn down() -> Heard {
        Heard {
            client_failed: true,
            peer: None,
        }
    }

    /// A member of `cluster` that waits for a quorum, in a cluster that had one before.
    fn waiting(cluster: u64, voters: usize) -> Heard {
        Heard {
            client_failed: false,
            peer: Some((cluster, voters, true)),
        }
    }

    /// The same in a cluster that never had a quorum (restored, coming up).
    fn restored(cluster: u64, voters: usize) -> Heard {
        Heard {
            client_failed: false,
            peer: Some((cluster, voters, false)),
        }
    }

    #[test]
    fn fewer_than_a_quorum_of_others_running_this_cluster_cannot_answer() {
        // The second member of a restored 3-member zone: the first one waits for it.
        assert!(nobody_will_answer(&[waiting(0xaa, 3), down()], LOCAL));
        // Every other member down.
        assert!(nobody_will_answer(&[down(), down()], LOCAL));
        // Two of five others running: no quorum (3) without this member.
        assert!(nobody_will_answer(
            &[waiting(0xaa, 5), waiting(0xaa, 5), down(), down()],
            LOCAL
        ));
    }

    #[test]
    fn a_quorum_of_others_or_a_member_not_settled_is_waited_for() {
        // The third member: the other two make a quorum and will serve.
        assert!(!nobody_will_answer(
            &[waiting(0xaa, 3), waiting(0xaa, 3)],
            LOCAL
        ));
        // Another cluster's member may answer on its client port (and be refused).
        assert!(!nobody_will_answer(&[waiting(0xbb, 3), down()], LOCAL));
        // Not heard from yet.
        assert!(!nobody_will_answer(&[Heard::default(), down()], LOCAL));
        // Two restored members, one of them in a cluster that had its quorum already.
        assert!(!nobody_will_answer(
            &[restored(0xaa, 3), waiting(0xaa, 3)],
            LOCAL
        ));
        // Restored members of another cluster.
        assert!(!nobody_will_answer(
            &[restored(0xbb, 3), restored(0xbb, 3)],
            LOCAL
        ));
    }

    /// A serializable read: a member that served once answers without a quorum, so it is
    /// waited for; one of a cluster that never had a quorum is not.
    #[test]
    fn a_read_waits_for_any_member_that_served() {
        assert!(!nobody_can_read(&[waiting(0xaa, 3), down()], LOCAL));
        assert!(!nobody_can_read(&[Heard::default(), down()], LOCAL));
        assert!(!nobody_can_read(&[restored(0xbb, 3), down()], LOCAL));
        assert!(nobody_can_read(&[restored(0xaa, 3), down()], LOCAL));
        assert!(nobody_can_read(&[down(), down()], LOCAL));
    }

    /// At the deadline: a member that runs (its peer port answered) but holds its client
    /// port waits for a quorum; one heard from on neither port may be hung.
    #[test]
    fn at_the_deadline_only_a_member_silent_on_both_ports_is_waited_for() {
        let outcome = |heard: &[Heard]| at_deadline::<()>(heard);
        assert_eq!(outcome(&[waiting(0xaa, 3), down()]), Outcome::Nobody);
        assert_eq!(outcome(&[down(), down()]), Outcome::Nobody);
        assert_eq!(outcome(&[Heard::default(), down()]), Outcome::Silent);
        assert_eq!(
            outcome(&[Heard::default(), waiting(0xaa, 3)]),
            Outcome::Silent
        );
        assert_eq!(outcome(&[]), Outcome::Nobody);
    }

    /// The third member of a restored zone: the other two will make a quorum, but the
    /// cluster never had one, so it is still what this member's data holds.
    #[test]
    fn a_restored_cluster_that_never_had_a_quorum_is_not_waited_for() {
        assert!(nobody_will_answer(
            &[restored(0xaa, 3), restored(0xaa, 3)],
            LOCAL
        ));
        assert!(nobody_will_answer(&[restored(0xaa, 3), down()], LOCAL));
    }
}
