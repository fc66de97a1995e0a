//! The identity endpoint an etcd member runs: its signer answers the zone's nodes'
//! certificate requests (HTTPS, mutual TLS 1.3) at `https://<member>:<peer_port + 2>`
//! ([`crate::cluster::signer_url`]); see [`super::wire`] for the request and answers and
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
//! - a connection is bounded: its handshake within [`HANDSHAKE_TIME`], its request within
//!   [`super::wire::REQUEST_TIME`], at most [`CONNECTIONS`] at once;
//! - only the request's public key is certified, as the user [`super::grant::decide`]
//!   names, for [`super::grant::IDENTITY_DAYS`]; every decision is logged in one line;
//! - the policy, member list, roots and signer are the node's as loaded at
//!   [`Endpoint::bind`] or the last [`Handle::update`]: a connection uses one of them
//!   whole.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use zone_pki::{Authority, CertInfo, Error, LeafKind, NodeRequest};

use super::grant::{decide, requester, IDENTITY_DAYS};
use super::wire::{read_request, response, Answer};
use crate::cluster::listen_signer_urls;
use crate::cluster_api::host_port;
use crate::config::node::Node;
use crate::config::zone::{Member, Protocol};
use crate::leaf_paths::LeafPaths;
use crate::policy::Policy;

/// How long each read and write of a connection may wait.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a handshake may take in all.
pub const HANDSHAKE_TIME: Duration = Duration::from_secs(10);
/// How long a refused connection is read before it is closed.
const LINGER: Duration = Duration::from_secs(1);
/// The most connections answered at once.
pub const CONNECTIONS: usize = 16;

/// A member's identity endpoint, bound and not serving yet.
pub struct Endpoint {
    listeners: Vec<TcpListener>,
    handle: Handle,
}

/// What a serving endpoint serves with; [`Handle::update`] replaces it for the next
/// connections.
#[derive(Clone)]
pub struct Handle {
    shared: Arc<RwLock<Arc<Shared>>>,
}

/// What every connection needs, copied from the node.
struct Shared {
    zone: String,
    policy: Policy,
    members: Vec<String>,
    roots: Vec<CertInfo>,
    signer: Authority,
    leaves: LeafPaths,
    crl: PathBuf,
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
            std::thread::spawn(move || serve(listener, handle));
        }
        self.handle
    }

    /// Serves until the process ends, on this thread and one more per further address.
    pub fn run(mut self) {
        let Some(first) = self.listeners.pop() else {
            return;
        };
        let handle = self.spawn();
        serve(first, handle);
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
        let (shared, _) = Shared::of(node)?;
        let mut current = self.shared.write().unwrap_or_else(|p| p.into_inner());
        *current = Arc::new(shared);
        Ok(())
    }

    /// Serves with `policy` and `members` (the policy in force, as the members' keeper
    /// found it published) from the next connection on; the rest stays.
    pub fn set_policy(&self, policy: Policy, members: Vec<String>) {
        let mut current = self.shared.write().unwrap_or_else(|p| p.into_inner());
        let old = &**current;
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
            crl: old.crl.clone(),
        };
        *current = Arc::new(shared);
    }

    fn current(&self) -> Arc<Shared> {
        self.shared
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
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
            roots: crate::config::trusted_roots(&node.zone_ca_pem)?,
            signer: Authority::from_pem(signer.chain_pem(), &signer.key_pem())?,
            leaves: node.leaf_paths(),
            crl: crate::revocation::store::crl_path(&node.state_dir),
        };
        Ok((shared, member))
    }
}

/// Accepts connections, each on its own thread, at most [`CONNECTIONS`] at once.
fn serve(listener: TcpListener, handle: Handle) {
    let busy = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming().flatten() {
        if busy.fetch_add(1, Ordering::SeqCst) >= CONNECTIONS {
            busy.fetch_sub(1, Ordering::SeqCst);
            continue;
        }
        let (shared, busy) = (handle.current(), busy.clone());
        std::thread::spawn(move || {
            answer(stream, &shared);
            busy.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// The TLS settings of one connection: the current server leaf, the zone roots, the
/// current CRL, TLS 1.3 only.
fn server_config(shared: &Shared) -> Result<Arc<rustls::ServerConfig>, Error> {
    let bad = |what: &str, e: &dyn std::fmt::Display| {
        Error::new(format!("the identity endpoint cannot use the {what}: {e}"))
    };
    let mut roots = rustls::RootCertStore::empty();
    for root in &shared.roots {
        roots
            .add(CertificateDer::from(root.der().to_vec()))
            .map_err(|e| bad("zone root", &e))?;
    }
    let mut crls = Vec::new();
    if shared.crl.exists() {
        let der = std::fs::read(&shared.crl).map_err(|e| Error::io("read", &shared.crl, &e))?;
        crls.push(CertificateRevocationListDer::from(der));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // The CRL is the zone root's: a leaf's own status (its node CA publishes none) is
    // unknown, and allowed; its node CA's is checked.
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .with_crls(crls)
        .allow_unknown_revocation_status()
        .build()
        .map_err(|e| bad("zone roots or CRL", &e).file(&shared.crl))?;
    let cert_path = shared.leaves.cert(LeafKind::Server);
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(zone_io::read_text(&cert_path)?.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| bad("server certificate", &e).file(&cert_path))?;
    let key_path = shared.leaves.key(LeafKind::Server);
    let key = PrivateKeyDer::from_pem_slice(zone_io::read_text(&key_path)?.as_bytes())
        .map_err(|_| bad("server key", &"not a PEM private key").file(&key_path))?;
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| bad("TLS settings", &e))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| bad("server certificate", &e).file(&cert_path))?;
    Ok(Arc::new(config))
}

/// Serves one connection: the handshake, one request, one answer, one line of log.
fn answer(mut tcp: TcpStream, shared: &Shared) {
    let peer = tcp
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    if tcp.set_read_timeout(Some(IO_TIMEOUT)).is_err()
        || tcp.set_write_timeout(Some(IO_TIMEOUT)).is_err()
    {
        return;
    }
    let config = match server_config(shared) {
        Ok(config) => config,
        Err(e) => {
            tracing::error!("identity endpoint: {peer}: not served: {e}");
            return;
        }
    };
    let Ok(mut tls) = rustls::ServerConnection::new(config) else {
        return;
    };
    if let Err(e) = handshake(&mut tls, &mut tcp) {
        // Send the alert, and let the node read it: TLS 1.3 clients learn of the
        // refusal only after they sent their request.
        let _ = tls.write_tls(&mut tcp);
        linger(&mut tcp);
        tracing::warn!("identity endpoint: {peer}: refused at the handshake: {e}");
        return;
    }
    let node = requester(tls.peer_certificates().unwrap_or_default(), &shared.roots);
    let mut stream = rustls::Stream::new(&mut tls, &mut tcp);
    // The request is read whole first, whoever sent it: closing with it unread would
    // reset the connection before the node read the answer.
    let request = read_request(&mut stream);
    let (who, outcome) = match (node, request) {
        (Err(why), _) => ("?".into(), Err(Answer::new(403, format!("refused: {why}")))),
        (Ok(node), Err(answer)) => (node, Err(answer)),
        (Ok(node), Ok(request)) => {
            let outcome = issue(shared, &node, request.name.as_deref(), &request.body);
            (node, outcome)
        }
    };
    let (status, body) = match outcome {
        Ok((chain, line)) => {
            tracing::info!("identity endpoint: {peer} ({who}): {line}");
            (200, chain)
        }
        Err(answer) => {
            tracing::warn!(
                "identity endpoint: {peer} ({who}): {} {}",
                answer.status,
                answer.line
            );
            (answer.status, format!("{}\n", answer.line))
        }
    };
    if stream.write_all(&response(status, &body)).is_ok() {
        stream.conn.send_close_notify();
        let _ = stream.flush();
    }
}

/// The server's handshake, within [`HANDSHAKE_TIME`] however slowly the peer sends
/// (each read also gives up after the socket's timeout).
fn handshake(tls: &mut rustls::ServerConnection, tcp: &mut TcpStream) -> Result<(), String> {
    let started = Instant::now();
    while tls.is_handshaking() || tls.wants_write() {
        while tls.wants_write() {
            tls.write_tls(tcp).map_err(|e| e.to_string())?;
        }
        if !tls.is_handshaking() {
            break;
        }
        if started.elapsed() > HANDSHAKE_TIME {
            return Err("it took too long".into());
        }
        match tls.read_tls(tcp) {
            Ok(0) => return Err("the connection ended".into()),
            Ok(_) => tls
                .process_new_packets()
                .map(drop)
                .map_err(|e| e.to_string())?,
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}

/// Closes our side and reads what the node still sends (its request), briefly: closing
/// with unread data would reset the connection before the node read the alert.
fn linger(tcp: &mut TcpStream) {
    let _ = tcp.shutdown(Shutdown::Write);
    let _ = tcp.set_read_timeout(Some(LINGER));
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    while started.elapsed() < LINGER {
        match tcp.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

/// `node`'s request for `name` (a service; `None`: its own identity) with the request
/// `csr`: the identity's chain and the log line, or the answer that refuses it.
fn issue(
    shared: &Shared,
    node: &str,
    name: Option<&str>,
    csr: &[u8],
) -> Result<(String, String), Answer> {
    let asked = match name {
        Some(service) => format!("service {service:?}"),
        None => "its own identity".into(),
    };
    let user = decide(&shared.policy, &shared.members, node, name)
        .map_err(|refusal| Answer::new(403, refusal))?;
    let request = std::str::from_utf8(csr)
        .map_err(|_| Error::new("not UTF-8"))
        .and_then(NodeRequest::from_pem)
        .map_err(|e| {
            let why = e.problem();
            Answer::new(
                400,
                format!("bad request: the body is not a PEM certificate request: {why}"),
            )
        })?;
    let chain = shared
        .signer
        .issue_identity_for(&user, &shared.zone, &request, IDENTITY_DAYS)
        .map_err(|e| Answer::new(500, format!("the signer could not issue {user}: {e}")))?;
    let serial = CertInfo::parse_pem(&chain)
        .map(|c| c.serial_hex)
        .unwrap_or_default();
    let line = format!(
        "asked for {asked}: issued {user} for {IDENTITY_DAYS} days (serial {serial}, key {})",
        request.key_fingerprint_hex()
    );
    Ok((chain, line))
}
