//! The running cluster, seen through etcd's v3 API with this node's client certificate.
//!
//! Only `join`, `leave`, `status` and launch's restart check talk to the cluster; the
//! derivation in [`crate::cluster`] never does. Every call has a deadline, so a member that
//! is down or silent costs at most [`CONNECT_TIMEOUT`] plus [`REQUEST_TIMEOUT`], never a
//! hang. Errors are returned as short strings: callers put them in one line with the
//! endpoint, and the operator needs etcd's message, not the transport's layers.

use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::{
    Certificate, Client, ConnectOptions, GetOptions, Identity, MemberAddOptions, TlsOptions,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::task::JoinSet;
use zone_pki::{Error, LeafKind};

use crate::leaves::LeafPaths;

/// How long to wait for a TCP and TLS connection to one member.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long to wait for one request once connected.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The zone CA and this node's client certificate and key, as PEM. Not `Debug`: it holds
/// a private key.
pub struct Credentials {
    ca: String,
    cert: String,
    key: String,
}

impl Credentials {
    /// Reads the client leaf and the CA the node's etcd members trust.
    pub fn load(paths: &LeafPaths) -> Result<Arc<Credentials>, Error> {
        use zone_pki::authority::read_text;
        Ok(Arc::new(Credentials {
            ca: read_text(&paths.ca())?,
            cert: read_text(&paths.cert(LeafKind::Client))?,
            key: read_text(&paths.key(LeafKind::Client))?,
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

/// One member as the cluster lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterMember {
    pub id: u64,
    /// Empty until the member has started once (etcd learns the name from the member).
    pub name: String,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
    pub learner: bool,
}

impl ClusterMember {
    pub fn started(&self) -> bool {
        !self.name.is_empty()
    }
}

/// The member list, as one member answered it.
#[derive(Debug, Clone)]
pub struct ClusterView {
    pub cluster_id: u64,
    pub members: Vec<ClusterMember>,
    pub answered_by: String,
}

impl ClusterView {
    pub fn by_name(&self, name: &str) -> Option<&ClusterMember> {
        self.members.iter().find(|m| m.name == name)
    }

    pub fn by_peer_url(&self, url: &str) -> Option<&ClusterMember> {
        self.members
            .iter()
            .find(|m| m.peer_urls.iter().any(|u| u == url))
    }

    pub fn by_id(&self, id: u64) -> Option<&ClusterMember> {
        self.members.iter().find(|m| m.id == id)
    }

    /// The client URLs of every started member: where to send further requests.
    pub fn client_urls(&self) -> Vec<String> {
        self.members
            .iter()
            .flat_map(|m| m.client_urls.iter().cloned())
            .collect()
    }
}

/// Formats a member ID the way etcdctl prints it.
pub fn hex_id(id: u64) -> String {
    format!("{id:x}")
}

/// Opens a client to exactly one endpoint.
pub async fn connect(endpoint: &str, creds: &Credentials) -> Result<Client, String> {
    let tls = TlsOptions::new()
        .ca_certificate(Certificate::from_pem(&creds.ca))
        .identity(Identity::from_pem(&creds.cert, &creds.key));
    let options = ConnectOptions::new()
        .with_tls(tls)
        .with_connect_timeout(CONNECT_TIMEOUT)
        .with_timeout(REQUEST_TIMEOUT);
    Client::connect([endpoint], Some(options))
        .await
        .map_err(|e| describe(&e))
}

/// The member list from the first of `endpoints` that answers; all of them are asked at
/// once. Fails with each endpoint's reason when none answers.
pub async fn view(
    endpoints: &[String],
    creds: &Arc<Credentials>,
) -> Result<ClusterView, Vec<(String, String)>> {
    let mut asks = JoinSet::new();
    for endpoint in endpoints {
        let (endpoint, creds) = (endpoint.clone(), creds.clone());
        asks.spawn(async move {
            let result = member_list(&endpoint, &creds).await;
            (endpoint, result)
        });
    }
    let mut failures = Vec::new();
    while let Some(joined) = asks.join_next().await {
        match joined {
            Ok((_, Ok(view))) => return Ok(view),
            Ok((endpoint, Err(reason))) => failures.push((endpoint, reason)),
            Err(e) => failures.push(("(task)".into(), e.to_string())),
        }
    }
    failures.sort();
    Err(failures)
}

async fn member_list(endpoint: &str, creds: &Credentials) -> Result<ClusterView, String> {
    let mut client = connect(endpoint, creds).await?;
    let response = client.member_list().await.map_err(|e| describe(&e))?;
    let cluster_id = response.header().map(|h| h.cluster_id()).unwrap_or(0);
    Ok(ClusterView {
        cluster_id,
        members: response.members().iter().map(member_of).collect(),
        answered_by: endpoint.to_string(),
    })
}

fn member_of(m: &etcd_client::Member) -> ClusterMember {
    ClusterMember {
        id: m.id(),
        name: m.name().to_string(),
        peer_urls: m.peer_urls().to_vec(),
        client_urls: m.client_urls().to_vec(),
        learner: m.is_learner(),
    }
}

/// Runs `request` against each endpoint in turn until one answers; the reasons of all
/// failures otherwise. For changes (add, promote, remove), which any healthy member
/// forwards to the leader. A refusal from etcd itself is the cluster's answer and is
/// returned at once; only unreachable members are skipped.
async fn first_success<T, F, Fut>(
    endpoints: &[String],
    creds: &Credentials,
    mut request: F,
) -> Result<T, String>
where
    F: FnMut(Client) -> Fut,
    Fut: std::future::Future<Output = Result<T, etcd_client::Error>>,
{
    let mut reasons = Vec::new();
    for endpoint in endpoints {
        let client = match connect(endpoint, creds).await {
            Ok(client) => client,
            Err(reason) => {
                reasons.push((endpoint.clone(), reason));
                continue;
            }
        };
        match request(client).await {
            Ok(value) => return Ok(value),
            Err(e) if is_refusal(&e) => return Err(format!("{endpoint}: {}", describe(&e))),
            Err(e) => reasons.push((endpoint.clone(), describe(&e))),
        }
    }
    Err(summarise(&reasons))
}

/// One reason per endpoint, or one for all when they all say the same.
fn summarise(reasons: &[(String, String)]) -> String {
    match reasons {
        [(_, first), rest @ ..] if !rest.is_empty() && rest.iter().all(|(_, r)| r == first) => {
            format!("{first} (all {} members)", reasons.len())
        }
        _ => reasons
            .iter()
            .map(|(endpoint, reason)| format!("{endpoint}: {reason}"))
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// How long a membership change is retried while etcd refuses it as "unhealthy cluster":
/// etcd (with its default strict reconfiguration check) wants every voter connected for
/// its health interval, 5 s, which a cluster just started, restarted or changed is not.
pub const SETTLE: Duration = Duration::from_secs(20);

async fn settled<T, F, Fut>(mut change: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + SETTLE;
    loop {
        match change().await {
            Err(reason) if reason.contains("unhealthy cluster") && Instant::now() < deadline => {
                tracing::info!("the cluster is settling ({reason}); retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            other => return other,
        }
    }
}

/// MemberAddAsLearner; returns the new member's ID and the member list after the add.
pub async fn add_learner(
    endpoints: &[String],
    creds: &Credentials,
    peer_url: &str,
) -> Result<(u64, Vec<ClusterMember>), String> {
    let response = settled(|| {
        first_success(endpoints, creds, |mut client| async move {
            client
                .member_add(
                    [peer_url.to_string()],
                    Some(MemberAddOptions::new().with_is_learner()),
                )
                .await
        })
    })
    .await?;
    let id = response
        .member()
        .map(|m| m.id())
        .ok_or("etcd answered the add without the new member")?;
    Ok((id, response.member_list().iter().map(member_of).collect()))
}

/// MemberPromote.
pub async fn promote(endpoints: &[String], creds: &Credentials, id: u64) -> Result<(), String> {
    first_success(endpoints, creds, |mut client| async move {
        client.member_promote(id).await
    })
    .await
    .map(|_| ())
}

/// MemberRemove.
pub async fn remove(endpoints: &[String], creds: &Credentials, id: u64) -> Result<(), String> {
    settled(|| {
        first_success(endpoints, creds, |mut client| async move {
            client.member_remove(id).await
        })
    })
    .await
    .map(|_| ())
}

/// What one endpoint says about itself.
#[derive(Debug, Clone, Default)]
pub struct EndpointStatus {
    pub member_id: u64,
    pub leader: u64,
    pub raft_index: u64,
    pub raft_term: u64,
    pub db_size: i64,
    pub version: String,
    pub learner: bool,
    /// What etcd itself reports wrong ("no leader", an alarm).
    pub errors: Vec<String>,
}

/// One endpoint's health: the bare TLS handshake, its status, and (for voters) a
/// linearizable read, which only succeeds while the cluster has a leader and quorum.
#[derive(Debug, Clone)]
pub struct EndpointReport {
    pub endpoint: String,
    pub handshake: Result<Duration, String>,
    pub status: Result<EndpointStatus, String>,
    /// `Some` for voters: whether a quorum read through this endpoint succeeded.
    pub quorum_read: Option<Result<(), String>>,
}

impl EndpointReport {
    pub fn healthy(&self) -> bool {
        self.problem().is_none()
    }

    /// The first reason this endpoint is not healthy.
    pub fn problem(&self) -> Option<String> {
        if let Err(e) = &self.handshake {
            return Some(format!("TLS handshake failed: {e}"));
        }
        match &self.status {
            Err(e) => return Some(e.clone()),
            Ok(status) => {
                if let Some(error) = status.errors.first() {
                    return Some(format!("etcd reports: {error}"));
                }
            }
        }
        if let Some(Err(e)) = &self.quorum_read {
            return Some(format!("quorum read failed: {e}"));
        }
        None
    }
}

/// Why a member is not healthy, from the reports on its client URLs; `None` when it has
/// started and every one of its URLs answered healthy.
pub fn member_problem(member: &ClusterMember, reports: &[EndpointReport]) -> Option<String> {
    if !member.started() {
        return Some("never started (added, waiting for its node to join)".into());
    }
    member
        .client_urls
        .iter()
        .find_map(|url| match reports.iter().find(|r| &r.endpoint == url) {
            None => Some(format!("{url}: not asked")),
            Some(report) => report.problem().map(|p| format!("{url}: {p}")),
        })
}

/// Checks every endpoint at once; `voter` tells which ones must serve a quorum read.
pub async fn probe_all(
    endpoints: Vec<(String, bool)>,
    creds: &Arc<Credentials>,
) -> Vec<EndpointReport> {
    let mut probes = JoinSet::new();
    for (index, (endpoint, voter)) in endpoints.into_iter().enumerate() {
        let creds = creds.clone();
        probes.spawn(async move { (index, probe(endpoint, voter, creds).await) });
    }
    let mut reports: Vec<(usize, EndpointReport)> = Vec::new();
    while let Some(joined) = probes.join_next().await {
        if let Ok(report) = joined {
            reports.push(report);
        }
    }
    reports.sort_by_key(|(index, _)| *index);
    reports.into_iter().map(|(_, r)| r).collect()
}

async fn probe(endpoint: String, voter: bool, creds: Arc<Credentials>) -> EndpointReport {
    let handshake = {
        let (endpoint, creds) = (endpoint.clone(), creds.clone());
        tokio::task::spawn_blocking(move || time_handshake(&endpoint, &creds))
            .await
            .unwrap_or_else(|e| Err(e.to_string()))
    };
    let mut report = EndpointReport {
        endpoint: endpoint.clone(),
        handshake,
        status: Err("not asked".into()),
        quorum_read: None,
    };
    let mut client = match connect(&endpoint, &creds).await {
        Ok(client) => client,
        Err(reason) => {
            report.status = Err(reason);
            return report;
        }
    };
    report.status = client
        .status()
        .await
        .map_err(|e| describe(&e))
        .map(|s| EndpointStatus {
            member_id: s.header().map(|h| h.member_id()).unwrap_or(0),
            leader: s.leader(),
            raft_index: s.raft_index(),
            raft_term: s.raft_term(),
            db_size: s.db_size(),
            version: s.version().to_string(),
            learner: s.is_learner(),
            errors: s.errors().to_vec(),
        });
    if voter {
        let read = client
            .get(
                "zone-etcd/health",
                Some(GetOptions::new().with_count_only()),
            )
            .await;
        report.quorum_read = Some(match read {
            Ok(_) => Ok(()),
            // etcd's RBAC may deny the key; the read still went through the leader.
            Err(e) if describe(&e).contains("permission denied") => Ok(()),
            Err(e) => Err(describe(&e)),
        });
    }
    report
}

/// Times a bare TLS handshake (after the TCP connect) with the node's client certificate,
/// verifying the member's server certificate against the zone CA.
pub fn time_handshake(endpoint: &str, creds: &Credentials) -> Result<Duration, String> {
    let (host, port) = host_port(endpoint).ok_or_else(|| format!("bad URL {endpoint}"))?;
    let roots = {
        let mut store = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(creds.ca.as_bytes()).flatten() {
            store.add(cert).map_err(|e| e.to_string())?;
        }
        store
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(creds.cert.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("client certificate: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(creds.key.as_bytes())
        .map_err(|_| "client key: not a PEM private key".to_string())?;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_client_auth_cert(chain, key)
    .map_err(|e| e.to_string())?;
    let server_name = ServerName::try_from(host.clone()).map_err(|e| e.to_string())?;
    let addr = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or_else(|| format!("{host} has no address"))?;
    let mut tcp = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(CONNECT_TIMEOUT))
        .and_then(|_| tcp.set_write_timeout(Some(CONNECT_TIMEOUT)))
        .map_err(|e| e.to_string())?;
    let mut tls =
        rustls::ClientConnection::new(Arc::new(config), server_name).map_err(|e| e.to_string())?;
    let started = Instant::now();
    while tls.is_handshaking() {
        tls.complete_io(&mut tcp).map_err(|e| e.to_string())?;
    }
    let elapsed = started.elapsed();
    // TLS 1.3 servers check the client certificate after the client's last flight: one
    // more round trip shows whether the member accepted it.
    tls.send_close_notify();
    let _ = tls.write_tls(&mut tcp);
    let _ = tcp.flush();
    Ok(elapsed)
}

/// `https://host:port` (IPv6 in brackets) into host and port.
pub fn host_port(url: &str) -> Option<(String, u16)> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.split('/').next()?;
    let (host, port) = rest.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_string(), port.parse().ok()?))
}

/// Whether etcd answered (and refused), as opposed to the request not getting through.
fn is_refusal(err: &etcd_client::Error) -> bool {
    use tonic::Code;
    matches!(err, etcd_client::Error::GRpcStatus(s)
        if !matches!(s.code(), Code::Unavailable | Code::DeadlineExceeded | Code::Unknown | Code::Cancelled))
}

/// etcd's own message for a refused request; the innermost cause for a transport failure
/// (connection refused, a certificate the member did not accept, a timeout).
pub fn describe(err: &etcd_client::Error) -> String {
    match err {
        etcd_client::Error::GRpcStatus(status) => {
            let message = status.message();
            if message.is_empty() {
                format!("{:?}", status.code())
            } else {
                // A transport failure inside a request comes as an Unknown/Unavailable
                // status whose message holds the whole chain: keep its end.
                innermost(message).to_string()
            }
        }
        other => {
            let mut cause: &dyn std::error::Error = other;
            while let Some(next) = cause.source() {
                cause = next;
            }
            innermost(&cause.to_string()).to_string()
        }
    }
}

fn innermost(message: &str) -> &str {
    message.rsplit(": ").next().unwrap_or(message).trim()
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
