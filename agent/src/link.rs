//! The one connection the duties of the keeper's process share to the zone: opened on
//! first use, shared by cloning (etcd-client's `Client` multiplexes its calls and
//! watches over one channel), and opened anew after a duty's round failed.
//!
//! Invariants: a reset only drops the shared handle; a duty that still holds a clone
//! (the revocations' watch) keeps it until its own call fails. The shared client talks
//! to this member while it votes. While it is a learner (a joiner not promoted yet: its
//! own `Status` says `is_learner`), etcd refuses a learner nearly every call the duties
//! make (writes, linearizable reads, watches: "rpc not supported for learner"), so the
//! shared client then talks to the zone's other members (the node's member list), and
//! the link looks again at least every [`LEARNER_LOOK`]: a promotion brings it back to
//! this member. Whatever asks about *this* member (`leads`, its raft index) always asks
//! its own etcd, over a connection of its own. The duties that look at the member's
//! leadership each tick share one status call ([`Link::leads`]): an answer younger than
//! [`LEADS_FRESH`] serves them all, so a change is seen at most that much later; a duty
//! that must know now (the quota decider following the zone's writes) asks etcd itself
//! ([`leads`], over the shared client, which is this member's own whenever it leads).

use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::Client;
use tokio::sync::Mutex;
use zone_io::Error;

use zone_etcd_kit::cluster_api::{self, Credentials};
use zone_node::node::Node;

/// How old a status answer [`Link::leads`] gives again may be: under the duties' 1 s tick,
/// so the access keeper and the quota decider, each looking once a second, ask etcd once
/// between them (an idle member answered 120 status calls a minute, 60 since).
pub const LEADS_FRESH: Duration = Duration::from_millis(900);

/// How long a learner's link keeps talking to the other members before it asks its own
/// etcd again whether it was promoted.
pub const LEARNER_LOOK: Duration = Duration::from_secs(3);

/// A [`leads`] answer (leads, committed raft index) and when it came.
type Answered = (Instant, (bool, u64));

/// The shared client, and since when it talks to the other members (`None`: to this one).
type Shared = (Client, Option<Instant>);

#[derive(Clone)]
pub struct Link {
    endpoint: String,
    /// The client URLs of the zone's other members, for a learner's duties.
    others: Vec<String>,
    creds: Arc<Credentials>,
    client: Arc<Mutex<Option<Shared>>>,
    /// To this member alone: its status, whatever the shared client talks to.
    own: Arc<Mutex<Option<Client>>>,
    /// The last [`leads`] answer and when it came.
    leads: Arc<Mutex<Option<Answered>>>,
}

impl Link {
    /// The link to `node`'s member, `None` when the node runs no member.
    pub fn of(node: &Node) -> Result<Option<Link>, Error> {
        let Some(member) = node.member() else {
            return Ok(None);
        };
        let others = node
            .members
            .iter()
            .filter(|m| m.node_name != member.node_name)
            .map(zone_model::cluster::client_url)
            .collect();
        Ok(Some(Link {
            endpoint: zone_model::cluster::client_url(member),
            others,
            creds: Credentials::load(&node.leaf_paths())?,
            client: Arc::new(Mutex::new(None)),
            own: Arc::new(Mutex::new(None)),
            leads: Arc::new(Mutex::new(None)),
        }))
    }

    /// This member's client URL.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The node's credentials the link uses.
    pub fn creds(&self) -> &Arc<Credentials> {
        &self.creds
    }

    /// The shared client, connected now if none is: to this member, or to the others
    /// while this member is a learner (see the module's invariants).
    pub async fn client(&self) -> Result<Client, String> {
        let mut held = self.client.lock().await;
        if let Some((client, others_since)) = held.as_ref() {
            if others_since.is_none_or(|since| since.elapsed() < LEARNER_LOOK) {
                return Ok(client.clone());
            }
        }
        let mut own = self.own().await?;
        let learner = cluster_api::within(async {
            own.status().await.map_err(|e| cluster_api::describe(&e))
        })
        .await?
        .is_learner();
        let shared = match held.take() {
            // Still a learner: the same connection to the others, looked at again later.
            Some((client, Some(_))) if learner => (client, Some(Instant::now())),
            _ if learner && !self.others.is_empty() => (
                cluster_api::connect_many(&self.others, &self.creds, cluster_api::REQUEST_TIMEOUT)
                    .await?,
                Some(Instant::now()),
            ),
            _ => (own, None),
        };
        let client = shared.0.clone();
        *held = Some(shared);
        Ok(client)
    }

    /// The connection to this member alone, connected now if none is.
    async fn own(&self) -> Result<Client, String> {
        let mut own = self.own.lock().await;
        if let Some(client) = own.as_ref() {
            return Ok(client.clone());
        }
        let client = cluster_api::connect(&self.endpoint, &self.creds).await?;
        *own = Some(client.clone());
        Ok(client)
    }

    /// After a failed round: the next [`Link::client`] connects anew.
    pub async fn reset(&self) {
        *self.client.lock().await = None;
        *self.own.lock().await = None;
        *self.leads.lock().await = None;
    }

    /// [`leads`] of this member, asked of its own etcd, answered from the last answer while
    /// it is younger than [`LEADS_FRESH`] (see the module's invariants).
    pub async fn leads(&self) -> Result<(bool, u64), String> {
        let mut last = self.leads.lock().await;
        if let Some((at, answer)) = *last {
            if at.elapsed() < LEADS_FRESH {
                return Ok(answer);
            }
        }
        let answer = leads(&mut self.own().await?).await?;
        *last = Some((Instant::now(), answer));
        Ok(answer)
    }
}

/// Whether the member `client` talks to leads the cluster now, as its etcd says, and its
/// committed raft index.
pub async fn leads(client: &mut Client) -> Result<(bool, u64), String> {
    let status =
        cluster_api::within(async { client.status().await.map_err(|e| cluster_api::describe(&e)) })
            .await?;
    Ok((
        status
            .header()
            .is_some_and(|h| h.member_id() == status.leader()),
        status.raft_index(),
    ))
}
