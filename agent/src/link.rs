//! The one connection the duties of the keeper's process share to this member's etcd:
//! opened on first use, shared by cloning (etcd-client's `Client` multiplexes its calls
//! and watches over one channel), and opened anew after a duty's round failed.
//!
//! Invariant: a reset only drops the shared handle; a duty that still holds a clone
//! (the revocations' watch) keeps it until its own call fails.

use std::sync::Arc;

use etcd_client::Client;
use tokio::sync::Mutex;
use zone_io::Error;

use zone_etcd_kit::cluster_api::{self, Credentials};
use zone_node::node::Node;

#[derive(Clone)]
pub struct Link {
    endpoint: String,
    creds: Arc<Credentials>,
    client: Arc<Mutex<Option<Client>>>,
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
