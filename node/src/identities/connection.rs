//! One connection of a member's identity endpoint ([`super::endpoint`]): the TLS settings
//! it is served with, the handshake, the request read and the answer written (what it
//! says is [`super::answers`]'s).
//!
//! Invariants: see [`super::endpoint`]; every connection reads the server leaf and the
//! CRL anew and uses one [`Shared`] whole.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use zone_io::Error;
use zone_pki::LeafKind;

use super::answers::{gateway_password, issue, revocations, Shared};
use super::grant::requester;
use super::limits::{Addresses, Buckets};
use super::wire::{read_request, response, Answer, Kind};

/// How long each read and write of a connection may wait.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a handshake may take in all.
pub const HANDSHAKE_TIME: Duration = Duration::from_secs(10);
/// How long a refused connection is read before it is closed.
const LINGER: Duration = Duration::from_secs(1);
/// The most connections answered at once (at most [`super::limits::PER_ADDRESS`] of them
/// from one address).
pub const CONNECTIONS: usize = 64;

/// What the connections of one listener share to keep a node within its limits
/// ([`super::limits`]).
#[derive(Default)]
struct Limits {
    addresses: Mutex<Addresses>,
    buckets: Mutex<Buckets>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The [`Shared`] the next connection uses, replaced whole by the endpoint's handle.
pub(super) type Current = Arc<RwLock<Arc<Shared>>>;

/// What `current` holds now.
pub(super) fn now(current: &Current) -> Arc<Shared> {
    current.read().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Accepts connections, each on its own thread, at most [`CONNECTIONS`] at once and
/// [`super::limits::PER_ADDRESS`] from one address (more are closed at once).
pub(super) fn serve(listener: TcpListener, current: Current) {
    let busy = Arc::new(AtomicUsize::new(0));
    let limits = Arc::new(Limits::default());
    for stream in listener.incoming().flatten() {
        let Ok(ip) = stream.peer_addr().map(|a| a.ip()) else {
            continue;
        };
        if busy.fetch_add(1, Ordering::SeqCst) >= CONNECTIONS {
            busy.fetch_sub(1, Ordering::SeqCst);
            continue;
        }
        if !lock(&limits.addresses).enter(ip) {
            busy.fetch_sub(1, Ordering::SeqCst);
            tracing::debug!(
                "identity endpoint: {ip}: closed at once ({} connections from it already)",
                super::limits::PER_ADDRESS
            );
            continue;
        }
        let (shared, busy, limits) = (now(&current), busy.clone(), limits.clone());
        std::thread::spawn(move || {
            answer(stream, &shared, &limits);
            lock(&limits.addresses).leave(ip);
            busy.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// The TLS settings of one connection: the current server leaf, the zone roots, the
/// current CRL, TLS 1.3 only.
pub(super) fn server_config(shared: &Shared) -> Result<Arc<rustls::ServerConfig>, Error> {
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
fn answer(mut tcp: TcpStream, shared: &Shared, limits: &Limits) {
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
        (Ok(node), Ok(_)) if let Err(wait) = lock(&limits.buckets).take(&node, Instant::now()) => {
            let line = super::limits::too_many(&node, wait);
            (node, Err(Answer::new(429, line)))
        }
        (Ok(node), Ok(request)) => {
            let name = request.name.as_deref();
            let outcome = match request.kind {
                Kind::Identity => issue(shared, &node, name, &request.body, false),
                Kind::Gateway => gateway_password(shared, &node, name, &request.body),
                Kind::Revocations => revocations(shared),
                Kind::Free => super::free::free(shared, &node, name, &request.body),
            };
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
