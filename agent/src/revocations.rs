//! `zone-etcd keep-revocations` (internal; `launch` and `join` start it beside etcd):
//! keeps this member's CRL current with the zone's.
//!
//! It watches [`KEY`] on this member's own etcd, installs every newer document that the
//! zone root signed ([`store::install`]), and then cuts the connections that were open
//! before it took effect ([`cut`]). It runs detached (like the learner promoter: not
//! etcd's child) and ends when the etcd it watches exits.
//!
//! Invariants: it never installs an older CRL or one no trusted root signed (each such
//! offer is logged in one line and changes nothing); a lost watch is re-established from
//! a fresh read, so no update is missed for longer than a reconnection (1 s).

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, EventType, Txn, TxnOp, WatchOptions};
use zone_io::Error;
use zone_pki::{CertInfo, Host};

use super::duty::{Duty, Round};
use super::link::Link;
use zone_etcd_kit::cluster_api;
use zone_model::config::zone::{Member, Protocol};
use zone_node::node::Node;
use zone_node::revocation::doc::{Offer, Revocations, KEY};
use zone_node::revocation::{cut, store};

/// Between two attempts to reach this member's etcd (starting, or restarting).
const RETRY: Duration = Duration::from_secs(1);

/// The keeper of `node`'s member (`None` when the node runs no member), watching
/// `watch_pid`.
pub fn new(
    node: Node,
    link: Link,
    watch_pid: u32,
    users_gone: Option<UsersGone>,
) -> Result<Option<Keeper>, Error> {
    let Some(member) = node.member().cloned() else {
        return Ok(None);
    };
    Ok(Some(Keeper {
        roots: zone_model::config::trust::trusted_roots(&node.zone_ca_pem)?,
        link,
        index: node
            .members
            .iter()
            .position(|m| m.node_name == member.node_name)
            .unwrap_or(0),
        member,
        node,
        watch_pid,
        users_gone,
    }))
}

/// The revoked nodes whose etcd users the member's access keeper has deleted (a zone
/// with `[access]`, [`crate::access`]): their identities still pass the TLS
/// handshake (a signer issued them, and the CRL names node CAs and signers), so the
/// connections they hold are cut only once etcd refuses their users, or a reconnection
/// would open their watches again.
#[derive(Clone, Default)]
pub struct UsersGone(Arc<std::sync::Mutex<Vec<String>>>);

impl UsersGone {
    pub fn set(&self, nodes: Vec<String>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = nodes;
    }

    fn covers(&self, nodes: &[String]) -> bool {
        let gone = self.0.lock().unwrap_or_else(|p| p.into_inner());
        nodes.iter().all(|n| gone.contains(n))
    }
}

/// How long a cut waits for the access keeper to delete the revoked nodes' users.
const USERS_GONE_WAIT: Duration = Duration::from_secs(30);

pub struct Keeper {
    node: Node,
    member: Member,
    roots: Vec<CertInfo>,
    link: Link,
    index: usize,
    watch_pid: u32,
    users_gone: Option<UsersGone>,
}

impl Duty for Keeper {
    fn name(&self) -> String {
        format!("revocations: {}", self.link.endpoint())
    }

    fn pause(&self) -> Duration {
        RETRY
    }

    /// Follows the zone's revocations until the watch breaks (retried) or etcd exits.
    async fn round(&mut self) -> Result<Round, String> {
        let followed = self.follow().await;
        if followed.is_err() {
            self.link.reset().await;
        }
        followed.map(|()| Round::Done(None))
    }
}

impl Keeper {
    /// Reads the zone's document, then follows it until the watch breaks (an error) or
    /// etcd exits (`Ok`).
    async fn follow(&self) -> Result<(), String> {
        let mut client = self.link.client().await?;
        let got = client.get(KEY, None).await.map_err(|e| e.to_string())?;
        match got.kvs().first() {
            Some(kv) => {
                self.offered(kv.value(), kv.mod_revision(), &mut client)
                    .await
            }
            None => self.gone(&mut client).await,
        }
        let from = got.header().map(|h| h.revision()).unwrap_or(0) + 1;
        let options = WatchOptions::new().with_start_revision(from);
        let mut stream = client
            .watch(KEY, Some(options))
            .await
            .map_err(|e| e.to_string())?;
        loop {
            tokio::select! {
                message = stream.message() => {
                    let Some(response) = message.map_err(|e| e.to_string())? else {
                        return Err("the watch ended".into());
                    };
                    if response.canceled() || response.compact_revision() > 0 {
                        return Err("the watch was canceled".into());
                    }
                    for event in response.events() {
                        match (event.event_type(), event.kv()) {
                            (EventType::Put, Some(kv)) => {
                                self.offered(kv.value(), kv.mod_revision(), &mut client).await
                            }
                            (EventType::Delete, _) => self.gone(&mut client).await,
                            _ => {}
                        }
                    }
                }
                _ = tokio::time::sleep(RETRY) => {
                    if !zone_node::detached::running(self.watch_pid) {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Installs a newer document and schedules the cut; a refused one is logged in one
    /// line and replaced in the zone by the one in force here ([`Keeper::restore`]).
    async fn offered(&self, value: &[u8], mod_revision: i64, client: &mut Client) {
        let state = &self.node.state_dir;
        let doc = match Revocations::parse(&String::from_utf8_lossy(value)) {
            Ok(doc) => doc,
            Err(e) => {
                tracing::warn!("refused the revocations published at {KEY}: {e}");
                self.restore(mod_revision, client).await;
                return;
            }
        };
        match store::install(state, &self.roots, &doc) {
            Ok(Offer::Same) => {}
            Ok(Offer::Install) => {
                tracing::info!(
                    "CRL number {} in force (revoked: {}); cutting the connections open before it",
                    doc.crl.number,
                    doc.node_names().join(", ")
                );
                self.schedule_cut(&doc);
            }
            Err(e) => {
                tracing::warn!("refused the revocations published at {KEY}: {e}");
                self.restore(mod_revision, client).await;
            }
        }
    }

    /// The zone holds no document (never revoked, or deleted): the one in force here goes
    /// back (a member that starts later must find it), unless something was put there
    /// since; with none here, the zone had none, which this member notes
    /// ([`store::note_none`]: its next start need not wait for the others).
    async fn gone(&self, client: &mut Client) {
        let doc = match store::in_force(&self.node.state_dir, &self.roots) {
            Ok(Some(doc)) => doc,
            Ok(None) => {
                let noted =
                    store::note_none(&self.node.state_dir, &self.roots, &crate::duty::now());
                if let Err(e) = noted {
                    tracing::warn!("could not note that the zone has no revocations: {e}");
                }
                return;
            }
            Err(_) => return,
        };
        tracing::warn!(
            "the revocations at {KEY} were deleted; putting CRL number {} back",
            doc.crl.number
        );
        let absent = Compare::create_revision(KEY, CompareOp::Equal, 0);
        self.put_back(&doc, absent, client).await;
    }

    /// Puts the document in force here back at [`KEY`] when the refused one put at
    /// `mod_revision` is still there: a replayed older CRL must not reach members that
    /// start later. Every member tries; the first wins, the others' compare fails.
    async fn restore(&self, mod_revision: i64, client: &mut Client) {
        let Ok(Some(doc)) = store::in_force(&self.node.state_dir, &self.roots) else {
            return;
        };
        let same = Compare::mod_revision(KEY, CompareOp::Equal, mod_revision);
        self.put_back(&doc, same, client).await;
    }

    async fn put_back(&self, doc: &Revocations, unchanged: Compare, client: &mut Client) {
        let txn = Txn::new()
            .when([unchanged])
            .and_then([TxnOp::put(KEY, doc.to_json(), None)]);
        let put = cluster_api::txn(client, txn);
        match put.await {
            Ok(r) if r.succeeded() => {
                tracing::info!("put CRL number {} back at {KEY}", doc.crl.number)
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(
                "could not put CRL number {} back at {KEY}: {e}",
                doc.crl.number
            ),
        }
    }

    /// Takes the snapshot of the connections open now, right after the new CRL took
    /// effect: every connection opened since passed a handshake that checked it, and every
    /// identity the revocation ends is on it (each node's CA, and every identity a member
    /// signed for it), so only these can carry a revoked identity. They are cut after this
    /// member's turn, and in a zone with `[access]` once the revoked nodes' users are gone
    /// too; a connection opened after the CRL took effect is never cut (a client that
    /// reconnected at once, as every etcd client does, keeps its new connection).
    fn schedule_cut(&self, doc: &Revocations) {
        let revoked = doc.node_names();
        let gone = self.users_gone.clone();
        let listen =
            zone_model::cluster::listen_client_urls(&self.member, self.node.listen_address);
        let client_port = self.member.client_port;
        // etcd's HTTP gateway dials etcd's own gRPC: cutting that connection would fail the
        // requests it carries for every client at once.
        // Nor this keeper's own watch: it would be blind while it reconnects.
        let own_pids = [self.watch_pid, std::process::id()];
        let revoked_ips: Vec<std::net::IpAddr> = self
            .node
            .members
            .iter()
            .filter(|m| revoked.contains(&m.node_name) && m.protocol == Protocol::Https)
            .filter_map(|m| match m.address {
                Some(Host::Ip(ip)) => Some(ip),
                _ => None,
            })
            .collect();
        let peer_listen =
            zone_model::cluster::listen_peer_urls(&self.member, self.node.listen_address);
        let peer_port = self.member.peer_port;
        let delay = cut::stagger(self.index, self.node.members.len());
        let number = doc.crl.number;
        let installed = std::time::Instant::now();
        let mut conns = match cut::snapshot_of(&listen, client_port) {
            Ok(conns) => conns,
            Err(reason) => {
                tracing::warn!("cannot list the open connections to cut: {reason}");
                return;
            }
        };
        for pid in own_pids {
            match cut::owned_by(pid) {
                Ok(own) => conns.retain(|c| !own.contains(&c.peer)),
                Err(reason) => tracing::warn!("cannot tell etcd's own connections: {reason}"),
            }
        }
        if !revoked_ips.is_empty() {
            if let Ok(peers) = cut::snapshot_of(&peer_listen, peer_port) {
                conns.extend(
                    peers
                        .into_iter()
                        .filter(|c| revoked_ips.contains(&c.peer.ip())),
                );
            }
        }
        tokio::spawn(async move {
            if let Some(gone) = gone {
                while !gone.covers(&revoked) && installed.elapsed() < USERS_GONE_WAIT {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                if !gone.covers(&revoked) {
                    tracing::warn!("the revoked nodes' etcd users are not deleted yet: cutting their connections all the same");
                }
            }
            tokio::time::sleep(delay).await;
            match tokio::task::spawn_blocking(move || cut::cut(&conns)).await {
                Ok(Ok(n)) => tracing::info!(
                    "cut {n} connections open before CRL number {number} took effect, {:.1} s after it did (this member's turn: {:.1} s)",
                    installed.elapsed().as_secs_f64(),
                    delay.as_secs_f64()
                ),
                Ok(Err(reason)) => tracing::warn!("could not cut open connections: {reason}"),
                Err(_) => {}
            }
        });
    }
}
