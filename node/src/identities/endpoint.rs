//! The identity endpoint an etcd member runs: its signer answers the zone's nodes'
//! certificate requests (HTTPS, mutual TLS 1.3) at `https://<member>:<peer_port + 2>`
//! ([`zone_model::cluster::signer_url`]); see [`super::wire`] for the request and answers and
//! [`super::grant`] for what is issued.
//!
//! Invariants:
//! - a node proves its name with its node CA's leaf: the client chain must verify against
//!   the zone roots (webpki, with the node CAs' name constraints) and pass the zone's CRL
//!   when the node has one (a revoked node CA is refused at the handshake); the node's
//!   name is the subject CN of the node CA that signed the leaf (itself signed by a zone
//!   root), and the leaf must carry that name as a DNS SAN; anything else is refused;
//! - the server certificate, its key and the CRL are read again for every connection, so
//!   a rotated set or a new CRL applies from the next connection on; no TLS session is
//!   resumed across connections (each has its own configuration), so every connection
//!   is checked against the CRL of its time;
//! - a connection is bounded: its handshake within `HANDSHAKE_TIME`, its request within
//!   [`super::wire::REQUEST_TIME`], at most `CONNECTIONS` at once;
//! - an identity is recorded in the zone's ledger ([`super::ledger`], or the member's
//!   journal of it while its etcd does not answer) before it is handed out, or not
//!   handed out;
//! - under an enforced policy nothing is issued until the member's keeper found etcd's
//!   auth on (answered 409, the node asks again): an identity issued in a new zone's
//!   first seconds would be etcd's root until auth goes on;
//! - only the request's public key is certified, as the user [`super::grant::decide`]
//!   names, for [`super::grant::IDENTITY_DAYS`]; every decision is logged in one line;
//! - the policy, member list, roots and signer are the node's as loaded at
//!   [`Endpoint::bind`] or the last [`Handle::update`]: a connection uses one of them
//!   whole.

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::{Arc, RwLock};

use zone_io::Error;
use zone_pki::Authority;

use super::answers::Shared;
use super::connection::{serve, server_config, Current};
use crate::node::Node;
use zone_etcd_kit::cluster_api::host_port;
use zone_model::cluster::listen_signer_urls;
use zone_model::config::zone::{Member, Protocol};
use zone_model::policy::Policy;

/// A member's identity endpoint, bound and not serving yet.
pub struct Endpoint {
    listeners: Vec<TcpListener>,
    handle: Handle,
}

/// What a serving endpoint serves with; [`Handle::update`] replaces it for the next
/// connections.
#[derive(Clone)]
pub struct Handle {
    shared: Current,
}

impl Endpoint {
    /// Whether `node` runs the endpoint: an etcd member with a signer, reached directly
    /// (a cyfs member's gateway carries only its peer and client ports).
    pub fn wanted(node: &Node) -> bool {
        let signer = node.identities.as_ref().and_then(|i| i.signer.as_ref());
        node.member()
            .is_some_and(|m| m.protocol == Protocol::Https && signer.is_some())
    }

    /// Binds the endpoint where the member listens ([`listen_signer_urls`]), after
    /// checking that its current server certificate can serve.
    pub fn bind(node: &Node) -> Result<Endpoint, Error> {
        let (shared, member) = Shared::of(node)?;
        server_config(&shared)?;
        let mut listeners = Vec::new();
        for url in listen_signer_urls(member, node.listen_address) {
            let (host, port) =
                host_port(&url).ok_or_else(|| Error::new(format!("bad listen URL {url}")))?;
            let addrs: Vec<SocketAddr> = (host.as_str(), port)
                .to_socket_addrs()
                .map_err(|e| Error::new(format!("cannot resolve {host}: {e}")))?
                .collect();
            let listener = TcpListener::bind(&addrs[..]).map_err(|e| {
                Error::new(format!("cannot listen on {url} (the identity endpoint, peer_port + 2): {e}"))
                    .fix("stop whatever listens there, or move the member's peer_port in the zone file so that peer_port + 2 is free")
            })?;
            listeners.push(listener);
        }
        let handle = Handle {
            shared: Arc::new(RwLock::new(Arc::new(shared))),
        };
        Ok(Endpoint { listeners, handle })
    }

    /// Where it listens.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// What updates it once it serves.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Serves from background threads until the process ends; returns at once.
    pub fn spawn(self) -> Handle {
        for listener in self.listeners {
            let handle = self.handle.clone();
            std::thread::spawn(move || serve(listener, handle.shared));
        }
        self.handle
    }

    /// Serves until the process ends, on this thread and one more per further address.
    pub fn run(mut self) {
        let Some(first) = self.listeners.pop() else {
            return;
        };
        let handle = self.spawn();
        serve(first, handle.shared);
    }
}

/// Where a handle lands once an endpoint started elsewhere serves.
#[derive(Clone, Default)]
pub struct Slot(Arc<std::sync::Mutex<Option<Handle>>>);

impl Slot {
    pub fn fill(&self, handle: Handle) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
    }

    pub fn get(&self) -> Option<Handle> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Handle {
    /// Serves with `node`'s policy, member list, zone roots and signer from the next
    /// connection on (the keeper calls it when it reloads node.toml); the addresses stay
    /// those bound.
    pub fn update(&self, node: &Node) -> Result<(), Error> {
        let (mut shared, _) = Shared::of(node)?;
        let mut current = self.shared.write().unwrap_or_else(|p| p.into_inner());
        shared.auth_on = current.auth_on.clone();
        *current = Arc::new(shared);
        Ok(())
    }

    /// Whether etcd's auth is on, as the keeper found it at its last apply: while it is
    /// not under an enforced policy, the endpoint issues nothing (answered 409).
    pub fn set_auth_on(&self, on: bool) {
        let current = self.shared.read().unwrap_or_else(|p| p.into_inner());
        current
            .auth_on
            .store(on, std::sync::atomic::Ordering::SeqCst);
    }

    /// Serves with `policy` and `members` (the policy in force, as the members' keeper
    /// found it published) from the next connection on; the rest stays. The keeper calls
    /// it every round: the same policy again changes nothing (no copy of the signer).
    pub fn set_policy(&self, policy: Policy, members: Vec<String>) {
        let mut current = self.shared.write().unwrap_or_else(|p| p.into_inner());
        let old = &**current;
        if old.policy == policy && old.members == members {
            return;
        }
        let shared = Shared {
            zone: old.zone.clone(),
            policy,
            members,
            roots: old.roots.clone(),
            signer: match Authority::from_pem(old.signer.chain_pem(), &old.signer.key_pem()) {
                Ok(signer) => signer,
                Err(_) => return,
            },
            leaves: old.leaves.clone(),
            branches: old.branches.clone(),
            crl: old.crl.clone(),
            etcd: old.etcd.clone(),
            state_dir: old.state_dir.clone(),
            auth_on: old.auth_on.clone(),
        };
        *current = Arc::new(shared);
    }
}

impl Shared {
    /// What `node` serves with, and its member entry.
    fn of(node: &Node) -> Result<(Shared, &Member), Error> {
        let refuse =
            |why: &str| Error::new(format!("{} {why}: it runs no identity endpoint", node.name));
        let member = node
            .member()
            .ok_or_else(|| refuse("is not an etcd member"))?;
        if member.protocol != Protocol::Https {
            return Err(refuse(
                "is a cyfs member (the gateway carries no identity endpoint)",
            ));
        }
        let signer = node
            .identities
            .as_ref()
            .and_then(|i| i.signer.as_ref())
            .ok_or_else(|| {
                refuse(
                    "holds no signer (a zone without [access], or a member activated by request)",
                )
            })?;
        let port = member.signer_port();
        if port == member.peer_port || [member.client_port, member.metrics_port()].contains(&port) {
            return Err(Error::new(format!(
                "port {port} (peer_port + 2, the identity endpoint) is another port of this member"
            ))
            .field("etcd peer_port")
            .fix("leave the second port after each peer port free (e.g. peer_port = 2380, client_port = 2379: the endpoint on 2382)"));
        }
        let shared = Shared {
            zone: node.zone.clone(),
            policy: node.access.clone(),
            members: node.members.iter().map(|m| m.node_name.clone()).collect(),
            roots: zone_model::config::trusted_roots(&node.zone_ca_pem)?,
            signer: Authority::from_pem(signer.chain_pem(), &signer.key_pem())?,
            leaves: node.leaf_paths(),
            branches: node.identities.as_ref().and_then(|ids| {
                super::branch::Branches::of(
                    &node.state_dir,
                    &node.name,
                    &node.zone,
                    signer,
                    &ids.client_cas,
                )
            }),
            crl: crate::revocation::store::crl_path(&node.state_dir),
            etcd: zone_model::cluster::client_url(member),
            state_dir: node.state_dir.clone(),
            auth_on: Arc::default(),
        };
        Ok((shared, member))
    }
}
