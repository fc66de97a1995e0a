//! The one connection the duties of the keeper's process share to this member's etcd:
//! opened on first use, shared by cloning (etcd-client's `Client` multiplexes its calls
//! and watches over one channel), and opened anew after a duty's round failed.
//!
//! Invariants: a reset only drops the shared handle; a duty that still holds a clone
//! (the revocations' watch) keeps it until its own call fails. The duties that look at
//! the member's leadership each tick share one status call ([`Link::leads`]): an answer
//! younger than [`LEADS_FRESH`] serves them all, so a change is seen at most that much
//! later; a duty that must know now (the quota decider following the zone's writes) asks
//! etcd itself ([`leads`]).

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

/// A [`leads`] answer (leads, committed raft index) and when it came.
type Answered = (Instant, (bool, u64));

#[derive(Clone)]
pub struct Link {
    endpoint: String,
    creds: Arc<Credentials>,
    client: Arc<Mutex<Option<Client>>>,
    /// The last [`leads`] answer and when it came.
    leads: Arc<Mutex<Option<Answered>>>,
}

impl Link {
    /// The link to `node`'s member, `None` when the node runs no member.
    pub fn of(node: &Node) -> Result<Option<Link>, Error> {
        let Some(member) = node.member() else {
            return Ok(None);
        };
        Ok(Some(Link {
            endpoint: zone_model::cluster::client_url(member),
            creds: Credentials::load(&node.leaf_paths())?,
            client: Arc::new(Mutex::new(None)),
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

    /// The shared client, connected now if none is.
    pub async fn client(&self) -> Result<Client, String> {
        let mut held = self.client.lock().await;
        if let Some(client) = held.as_ref() {
            return Ok(client.clone());
        }
        let client = cluster_api::connect(&self.endpoint, &self.creds).await?;
        *held = Some(client.clone());
        Ok(client)
    }

    /// After a failed round: the next [`Link::client`] connects anew.
    pub async fn reset(&self) {
        *self.client.lock().await = None;
        *self.leads.lock().await = None;
    }

    /// [`leads`], answered from the last answer while it is younger than [`LEADS_FRESH`]
    /// (see the module's invariants).
    pub async fn leads(&self, client: &mut Client) -> Result<(bool, u64), String> {
        let mut last = self.leads.lock().await;
        if let Some((at, answer)) = *last {
            if at.elapsed() < LEADS_FRESH {
                return Ok(answer);
            }
        }
        let answer = leads(client).await?;
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
