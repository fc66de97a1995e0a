//! While a launch over an empty data directory waits for the zone's first start, it
//! answers on the member's peer port, where etcd will listen: mutual TLS with the node's
//! peer leaf, accepting only the zone's peer certificates (the same rule as etcd's
//! `--peer-cert-allowed-hostname`), one answer per connection to any request:
//! `503 Service Unavailable`, the [`HEADER`](zone_etcd_kit::cluster_api::peer_port::HEADER), and the [`Waiting`] JSON. etcd's clients
//! read 503 as "not ready", and [`zone_etcd_kit::cluster_api::ask_peer`] reads the rest.
//!
//! Its sockets are closed on exec (Rust opens them close-on-exec), so etcd binds the
//! same port the moment the launch becomes etcd.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use zone_io::Error;
use zone_pki::profile::{peer_name, Host};
use zone_pki::{CertInfo, LeafKind};

use zone_etcd_kit::cluster_api::host_port;
use zone_etcd_kit::cluster_api::peer_port::{response, Waiting};
use zone_model::leaf_paths::LeafPaths;

/// How long one connection may take to send its request and read the answer.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);
/// The most of a request that is read.
const REQUEST_BYTES: usize = 8 * 1024;
/// The most connections answered at once (a zone's members ask one at a time each).
const CONNECTIONS: usize = 64;

/// The answering peer port; it answers until the process execs or exits.
pub struct Beacon {
    state: Arc<Mutex<Waiting>>,
}

impl Beacon {
    /// Binds every listen URL (`https://host:port`) and answers on each from a thread.
    pub fn start(
        listen_urls: &[String],
        tls: &LeafPaths,
        zone: &str,
        waiting: Waiting,
    ) -> Result<Beacon, Error> {
        let config = Arc::new(server_config(tls)?);
        let state = Arc::new(Mutex::new(waiting));
        let mut listeners = Vec::new();
        for url in listen_urls {
            let (host, port) =
                host_port(url).ok_or_else(|| Error::new(format!("bad listen URL {url}")))?;
            let addrs: Vec<_> = (host.as_str(), port)
                .to_socket_addrs()
                .map_err(|e| Error::new(format!("cannot resolve {host}: {e}")))?
                .collect();
            let listener = TcpListener::bind(&addrs[..]).map_err(|e| {
                if e.kind() == std::io::ErrorKind::AddrInUse {
                    Error::new(format!(
                        "something already listens on {url}, this member's peer port (is this node's etcd running already?)"
                    ))
                    .fix("stop whatever listens there (systemctl stop zone-etcd, or the other zone-etcd launch), then launch again")
                } else {
                    Error::new(format!("cannot listen on {url}: {e}"))
                        .fix("check the address in the zone file (or listen_address in node.toml)")
                }
            })?;
            listeners.push(listener);
        }
        let peer = peer_name(zone);
        for listener in listeners {
            let (config, state, peer) = (config.clone(), state.clone(), peer.clone());
            std::thread::spawn(move || {
                let busy = Arc::new(std::sync::atomic::AtomicUsize::new(0));
                for stream in listener.incoming().flatten() {
                    // Each connection on its own thread (a peer's etcd may connect and
                    // send nothing for a while), at most CONNECTIONS at once; each is
                    // bounded by CONNECTION_TIMEOUT.
                    if busy.fetch_add(1, Ordering::SeqCst) >= CONNECTIONS {
                        busy.fetch_sub(1, Ordering::SeqCst);
                        continue;
                    }
                    let (config, state, peer, busy) =
                        (config.clone(), state.clone(), peer.clone(), busy.clone());
                    std::thread::spawn(move || {
                        let _ = answer(stream, &config, &state, &peer);
                        busy.fetch_sub(1, Ordering::SeqCst);
                    });
                }
            });
        }
        Ok(Beacon { state })
    }

    /// What the beacon tells from now on.
    pub fn tell(&self, waiting: Waiting) {
        if let Ok(mut state) = self.state.lock() {
            *state = waiting;
        }
    }
}

fn server_config(tls: &LeafPaths) -> Result<rustls::ServerConfig, Error> {
    use zone_io::read_text;
    let bad = |what: &str, e: &dyn std::fmt::Display| {
        Error::new(format!(
            "cannot use the {what} for the first-start answer: {e}"
        ))
    };
    let ca_path = tls.ca();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(read_text(&ca_path)?.as_bytes()).flatten() {
        roots
            .add(cert)
            .map_err(|e| bad("zone CA", &e).file(&ca_path))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| bad("zone CA", &e).file(&ca_path))?;
    let cert_path = tls.cert(LeafKind::Peer);
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(read_text(&cert_path)?.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| bad("peer certificate", &e).file(&cert_path))?;
    let key_path = tls.key(LeafKind::Peer);
    let key = PrivateKeyDer::from_pem_slice(read_text(&key_path)?.as_bytes())
        .map_err(|_| bad("peer key", &"not a PEM private key").file(&key_path))?;
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("TLS settings", &e))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| bad("peer certificate", &e).file(&cert_path))
}

/// Serves one connection: the TLS handshake (a zone certificate required), the request's
/// head, then the answer (the waiting state to a peer, 403 to any other zone certificate).
fn answer(
    mut tcp: TcpStream,
    config: &Arc<rustls::ServerConfig>,
    state: &Mutex<Waiting>,
    peer: &str,
) -> Result<(), String> {
    tcp.set_read_timeout(Some(CONNECTION_TIMEOUT))
        .and_then(|()| tcp.set_write_timeout(Some(CONNECTION_TIMEOUT)))
        .map_err(|e| e.to_string())?;
    let mut tls = rustls::ServerConnection::new(config.clone()).map_err(|e| e.to_string())?;
    let mut stream = rustls::Stream::new(&mut tls, &mut tcp);
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while request.len() < REQUEST_BYTES && !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => request.extend_from_slice(&buf[..n]),
            Err(e) => return Err(e.to_string()),
        }
    }
    let is_peer = stream
        .conn
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|leaf| CertInfo::parse(leaf).ok())
        .is_some_and(|info| info.sans.contains(&Host::Dns(peer.to_string())));
    let reply = if is_peer {
        let waiting = state.lock().map_err(|e| e.to_string())?.clone();
        response(&waiting)
    } else {
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
    };
    stream.write_all(&reply).map_err(|e| e.to_string())?;
    stream.conn.send_close_notify();
    stream.flush().map_err(|e| e.to_string())
}
