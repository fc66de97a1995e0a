//! Reaching one member, or the first of several, with this node's credentials: the
//! deadlines of every call, the credentials read from the leaf files, the runtime, and
//! etcd's errors as one short line.
//!
//! Invariants: every connection and call has a deadline ([`CONNECT_TIMEOUT`],
//! [`REQUEST_TIMEOUT`], [`CALL_DEADLINE`]), so a silent member never hangs a command; an
//! error is etcd's innermost message, never the transport's layers; [`Credentials`] holds
//! a private key and is never printed.

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};
use zone_io::Error;
use zone_pki::LeafKind;

use super::error::{EtcdError, Kind, NoAnswer};
use zone_model::leaf_paths::LeafPaths;

/// How long to wait for a TCP and TLS connection to one member.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long to wait for one request once connected.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The zone CA and this node's client certificate and key, as PEM. Not `Debug`: it holds
/// a private key.
pub struct Credentials {
    pub(super) ca: String,
    pub(super) cert: String,
    pub(super) key: String,
}

impl Credentials {
    /// Reads the client leaf and the CA the node's etcd members trust.
    pub fn load(paths: &LeafPaths) -> Result<Arc<Credentials>, Error> {
        Credentials::load_kind(paths, LeafKind::Client)
    }

    /// Credentials from PEM text already in hand (a drill's throwaway CA).
    pub fn from_pem(ca: &str, cert: &str, key: &str) -> Credentials {
        Credentials {
            ca: ca.to_string(),
            cert: cert.to_string(),
            key: key.to_string(),
        }
    }

    /// Reads the peer leaf and the CA: what the members' peer ports accept.
    pub fn load_peer(paths: &LeafPaths) -> Result<Arc<Credentials>, Error> {
        Credentials::load_kind(paths, LeafKind::Peer)
    }

    fn load_kind(paths: &LeafPaths, kind: LeafKind) -> Result<Arc<Credentials>, Error> {
        use zone_io::read_text;
        Ok(Arc::new(Credentials {
            ca: read_text(&paths.ca())?,
            cert: read_text(&paths.cert(kind))?,
            key: read_text(&paths.key(kind))?,
        }))
    }
}

/// A single-threaded runtime: the commands make a handful of concurrent requests, and a
/// thread pool would only add start-up time before launch's exec.
pub fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::new(format!("cannot start the async runtime: {e}")))
}

/// Formats a member ID the way etcdctl prints it.
pub fn hex_id(id: u64) -> String {
    format!("{id:x}")
}

/// Opens a client to exactly one endpoint.
pub async fn connect(endpoint: &str, creds: &Credentials) -> Result<Client, String> {
    connect_for(endpoint, creds, REQUEST_TIMEOUT).await
}

/// Opens a client to exactly one endpoint whose requests may take up to `timeout` (a
/// snapshot streams for longer than a request).
pub async fn connect_for(
    endpoint: &str,
    creds: &Credentials,
    timeout: std::time::Duration,
) -> Result<Client, String> {
    Client::connect([endpoint], Some(options(creds, timeout)))
        .await
        .map_err(|e| describe(&e))
}

/// Mutual TLS with the node's credentials, and the timeouts.
fn options(creds: &Credentials, timeout: Duration) -> ConnectOptions {
    let tls = TlsOptions::new()
        .ca_certificate(Certificate::from_pem(&creds.ca))
        .identity(Identity::from_pem(&creds.cert, &creds.key));
    ConnectOptions::new()
        .with_tls(tls)
        .with_connect_timeout(CONNECT_TIMEOUT)
        .with_timeout(timeout)
}

/// Opens a client balanced over `endpoints` for long-lived calls (watches, elections,
/// lease keep-alives): requests may take up to `timeout`; wrap each call in
/// [`within_for`] for its own deadline.
pub async fn connect_many(
    endpoints: &[String],
    creds: &Credentials,
    timeout: std::time::Duration,
) -> Result<Client, String> {
    let options =
        options(creds, timeout).with_keep_alive(Duration::from_secs(5), Duration::from_secs(5));
    Client::connect(endpoints, Some(options))
        .await
        .map_err(|e| describe(&e))
}

/// The most one call to one member may take: the connection (made lazily, by the first
/// request) and the request.
pub const CALL_DEADLINE: std::time::Duration = CONNECT_TIMEOUT.saturating_add(REQUEST_TIMEOUT);

/// Runs one call to a member under [`CALL_DEADLINE`]. tonic's own timeouts do not cover
/// everything: a member whose port accepts connections but never completes the TLS
/// handshake (etcd before it has published itself, which needs a quorum) holds the first
/// request of a lazy channel for ever.
pub async fn within<T, E: From<NoAnswer>>(
    call: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, E> {
    within_for(CALL_DEADLINE, call).await
}

/// Every key under `prefix` with its value, in one request (asked again as [`ask`] does)
/// (small prefixes: records, ledgers; [`super::range::read_prefix`] pages a large one).
pub async fn get_prefix(client: &Client, prefix: &str) -> Result<etcd_client::GetResponse, String> {
    let options = etcd_client::GetOptions::new().with_prefix();
    ask(&client.kv_client(), |mut kv| {
        let options = options.clone();
        async move { kv.get(prefix, Some(options)).await }
    })
    .await
    .map_err(String::from)
}

/// How long a request etcd refused as [`Kind::AuthOldRevision`] is asked again.
pub const AUTH_RETRY_FOR: Duration = Duration::from_secs(10);

/// Runs one request on a clone of `handle` (a client, or one of its KV or auth clients:
/// clones share the connection), each try under [`CALL_DEADLINE`], and asks it again while
/// etcd refuses it because its auth store changed while the request was in flight
/// ([`Kind::AuthOldRevision`]: a keeper applying the policy, removing a revoked node's
/// users), for at most [`AUTH_RETRY_FOR`], as etcd's own client does. Any other outcome is
/// returned at once.
///
/// Invariant: asking again never applies a write twice: etcd checks a request's auth
/// revision before it applies it, and refuses it whole.
pub async fn ask<C: Clone, T, F, Fut>(handle: &C, mut request: F) -> Result<T, EtcdError>
where
    F: FnMut(C) -> Fut,
    Fut: std::future::Future<Output = Result<T, etcd_client::Error>>,
{
    let started = tokio::time::Instant::now();
    let mut pause = Duration::from_millis(20);
    loop {
        let answer = within(async { request(handle.clone()).await.map_err(EtcdError::from) }).await;
        match answer {
            Err(e)
                if e.kind() == Kind::AuthOldRevision
                    && started.elapsed() + pause < AUTH_RETRY_FOR =>
            {
                tracing::debug!("etcd refused a request for its auth store's change: asking again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(500));
            }
            other => return other,
        }
    }
}

/// One transaction through [`ask`] (a compare that fails is an answer, not an error).
pub async fn txn(
    client: &Client,
    txn: etcd_client::Txn,
) -> Result<etcd_client::TxnResponse, EtcdError> {
    ask(client, |mut c| {
        let txn = txn.clone();
        async move { c.txn(txn).await }
    })
    .await
}

/// Runs one call that may take longer than a request (a compaction, a defragmentation)
/// under `deadline`.
pub async fn within_for<T, E: From<NoAnswer>>(
    deadline: Duration,
    call: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, E> {
    tokio::time::timeout(deadline, call)
        .await
        .unwrap_or_else(|_| Err(NoAnswer(deadline).into()))
}

/// Whether anything accepts TCP connections at `url`'s host and port within `timeout`:
/// an etcd that runs but does not serve yet (no quorum to publish itself) accepts them
/// all the same.
pub fn listening(url: &str, timeout: std::time::Duration) -> bool {
    use std::net::{TcpStream, ToSocketAddrs};
    let Some((host, port)) = host_port(url) else {
        return false;
    };
    (host.as_str(), port)
        .to_socket_addrs()
        .map(|addrs| {
            addrs
                .into_iter()
                .any(|addr| TcpStream::connect_timeout(&addr, timeout).is_ok())
        })
        .unwrap_or(false)
}

/// `https://host:port` (IPv6 in brackets) into host and port.
pub fn host_port(url: &str) -> Option<(String, u16)> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.split('/').next()?;
    let (host, port) = rest.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_string(), port.parse().ok()?))
}

/// etcd's own message for a refused request; the innermost cause for a transport failure
/// (connection refused, a certificate the member did not accept, a timeout).
pub fn describe(err: &etcd_client::Error) -> String {
    EtcdError::of(err).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_host_and_port() {
        assert_eq!(
            host_port("https://127.0.0.4:2379"),
            Some(("127.0.0.4".into(), 2379))
        );
        assert_eq!(
            host_port("https://[::1]:23790"),
            Some(("::1".into(), 23790))
        );
        assert_eq!(
            host_port("https://node1.example.zone:2379/"),
            Some(("node1.example.zone".into(), 2379))
        );
        assert_eq!(host_port("https://nohost"), None);
    }

    #[test]
    fn ids_print_like_etcdctl() {
        assert_eq!(hex_id(0x8e9e05c52164694d), "8e9e05c52164694d");
    }
}
