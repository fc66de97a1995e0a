//! What each endpoint says of itself: the bare TLS handshake (timed), etcd's versions
//! over HTTPS, its status and, for voters, a linearizable read, which only succeeds while
//! the cluster has a leader and a quorum.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::GetOptions;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::task::JoinSet;

use super::client::{connect, describe, host_port, Credentials, CONNECT_TIMEOUT};
use super::error::Kind;
use zone_model::cluster::ClusterMember;

/// What one endpoint says about itself.
#[derive(Debug, Clone, Default)]
pub struct EndpointStatus {
    pub cluster_id: u64,
    pub member_id: u64,
    pub leader: u64,
    pub raft_index: u64,
    pub raft_term: u64,
    /// The store's revision when the member answered.
    pub revision: i64,
    pub db_size: i64,
    /// The part of the database file that holds data; the rest is free pages that only a
    /// defragmentation gives back.
    pub db_size_in_use: i64,
    pub version: String,
    pub learner: bool,
    /// The minor version a downgrade under way goes to (etcd 3.6 and later say so).
    pub downgrade_to: Option<String>,
    /// What etcd itself reports wrong ("no leader"), the alarms aside.
    pub errors: Vec<String>,
    /// The cluster's active alarms as this member lists them (`NOSPACE`, `CORRUPT`): writes
    /// are refused, but they are no fault of the member, which still serves.
    pub alarms: Vec<String>,
}

/// One endpoint's health: the bare TLS handshake, its status, and (for voters) a
/// linearizable read, which only succeeds while the cluster has a leader and quorum.
#[derive(Debug, Clone)]
pub struct EndpointReport {
    pub endpoint: String,
    pub handshake: Result<Duration, String>,
    /// etcd's versions from this endpoint; `None` when it did not say (no health problem
    /// by itself: the status says whether the member serves).
    pub versions: Option<Versions>,
    pub status: Result<EndpointStatus, String>,
    /// `Some` for voters: whether a quorum read through this endpoint succeeded.
    pub quorum_read: Option<Result<(), String>>,
}

impl EndpointReport {
    pub fn healthy(&self) -> bool {
        self.problem().is_none()
    }

    /// The first reason this endpoint is not healthy. An active alarm is none: the member
    /// answers and serves reads (the cluster refuses writes; `status` says so apart).
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
    if member.client_urls.is_empty() {
        // A member of the static bootstrap is listed, with its name, from the start; it
        // publishes its client URLs when its etcd first joins the others.
        return Some(format!(
            "never started: its etcd has not once joined the cluster (no client URLs published); run zone-etcd launch on {} and check its log",
            member.name
        ));
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
    let mut reports: Vec<(usize, EndpointReport)> = Vec::new();
    probe_each(endpoints, creds, |index, report| {
        reports.push((index, report))
    })
    .await;
    reports.sort_by_key(|(index, _)| *index);
    reports.into_iter().map(|(_, r)| r).collect()
}

/// [`probe_all`], handing each report to `each` (with the endpoint's index) as soon as
/// that endpoint is done: a caller may decide before the slowest one (a member that holds
/// the TLS handshake until its connect timeout).
pub async fn probe_each(
    endpoints: Vec<(String, bool)>,
    creds: &Arc<Credentials>,
    mut each: impl FnMut(usize, EndpointReport),
) {
    let mut probes = JoinSet::new();
    for (index, (endpoint, voter)) in endpoints.into_iter().enumerate() {
        let creds = creds.clone();
        probes.spawn(async move { (index, probe(endpoint, voter, creds).await) });
    }
    while let Some(joined) = probes.join_next().await {
        if let Ok((index, report)) = joined {
            each(index, report);
        }
    }
}

async fn probe(endpoint: String, voter: bool, creds: Arc<Credentials>) -> EndpointReport {
    let (handshake, versions) = {
        let (endpoint, creds) = (endpoint.clone(), creds.clone());
        tokio::task::spawn_blocking(move || {
            let handshake = time_handshake(&endpoint, &creds);
            let versions = handshake
                .is_ok()
                .then(|| versions(&endpoint, &creds).ok())
                .flatten();
            (handshake, versions)
        })
        .await
        .unwrap_or_else(|e| (Err(e.to_string()), None))
    };
    let mut report = EndpointReport {
        endpoint: endpoint.clone(),
        handshake,
        versions,
        status: Err("not asked".into()),
        quorum_read: None,
    };
    // No TLS session, no status: do not wait on it twice.
    if let Err(reason) = &report.handshake {
        report.status = Err(reason.clone());
        return report;
    }
    let mut client = match connect(&endpoint, &creds).await {
        Ok(client) => client,
        Err(reason) => {
            report.status = Err(reason);
            return report;
        }
    };
    let status =
        super::client::within(async { client.status().await.map_err(|e| describe(&e)) }).await;
    report.status = status.map(|s| {
        let (alarms, errors): (Vec<&String>, Vec<&String>) = s
            .errors()
            .iter()
            .partition(|e| kind_in_status_error(e).is_some());
        EndpointStatus {
            cluster_id: s.header().map(|h| h.cluster_id()).unwrap_or(0),
            member_id: s.header().map(|h| h.member_id()).unwrap_or(0),
            leader: s.leader(),
            raft_index: s.raft_index(),
            raft_term: s.raft_term(),
            revision: s.header().map(|h| h.revision()).unwrap_or(0),
            db_size: s.db_size(),
            db_size_in_use: s.raft_used_db_size(),
            version: s.version().to_string(),
            learner: s.is_learner(),
            downgrade_to: s
                .downgrade_info()
                .filter(|d| d.enabled())
                .map(|d| d.target_version().to_string()),
            errors: errors.into_iter().cloned().collect(),
            alarms: alarms
                .into_iter()
                .filter_map(|e| kind_in_status_error(e))
                .map(str::to_string)
                .collect(),
        }
    });
    if voter && report.status.is_ok() {
        // Asked again while etcd turns it back for a change of its auth store in flight (a
        // keeper applying the policy in a zone's first seconds): that member is healthy,
        // and one such answer made `status` call it unhealthy (cc74).
        let read = super::client::ask(&client, |mut c| async move {
            c.get(
                "zone-etcd/health",
                Some(GetOptions::new().with_count_only()),
            )
            .await
        })
        .await;
        report.quorum_read = Some(match read {
            Ok(_) => Ok(()),
            // etcd's RBAC may deny the key; the read still went through the leader.
            Err(e) if e.kind() == Kind::PermissionDenied => Ok(()),
            Err(e) => Err(e.to_string()),
        });
    }
    report
}

/// etcd's versions, as its `/version` endpoint gives them: the member's own release and
/// the cluster's version (the lowest minor series among the members, `3.5.0`; etcd says
/// `not_decided` until the members agreed on one), and from etcd 3.6 on the storage
/// version (the format of the member's data, `3.6.0`; what a downgrade moves back).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Versions {
    #[serde(rename = "etcdserver")]
    pub server: String,
    #[serde(rename = "etcdcluster")]
    pub cluster: String,
    #[serde(default)]
    pub storage: Option<String>,
}

/// The most of a `/version` answer that is read (it is about 50 bytes).
const VERSION_RESPONSE_BYTES: usize = 16 * 1024;

/// A TLS session to one endpoint with the node's client certificate, verifying the
/// member's server certificate against the zone CA; with the time the handshake took
/// (after the TCP connect).
pub(super) fn tls_session(
    endpoint: &str,
    creds: &Credentials,
) -> Result<(rustls::ClientConnection, TcpStream, Duration), String> {
    tls_session_within(endpoint, creds, CONNECT_TIMEOUT)
}

/// [`tls_session`] whose connect, reads and writes each give up after `timeout`.
pub(super) fn tls_session_within(
    endpoint: &str,
    creds: &Credentials,
    timeout: Duration,
) -> Result<(rustls::ClientConnection, TcpStream, Duration), String> {
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
    let mut tcp = TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(timeout))
        .and_then(|_| tcp.set_write_timeout(Some(timeout)))
        .map_err(|e| e.to_string())?;
    let mut tls =
        rustls::ClientConnection::new(Arc::new(config), server_name).map_err(|e| e.to_string())?;
    let started = Instant::now();
    while tls.is_handshaking() {
        tls.complete_io(&mut tcp).map_err(|e| e.to_string())?;
    }
    Ok((tls, tcp, started.elapsed()))
}

/// Times a bare TLS handshake with the node's client certificate.
pub fn time_handshake(endpoint: &str, creds: &Credentials) -> Result<Duration, String> {
    let (mut tls, mut tcp, elapsed) = tls_session(endpoint, creds)?;
    // TLS 1.3 servers check the client certificate after the client's last flight: one
    // more round trip shows whether the member accepted it.
    tls.send_close_notify();
    let _ = tls.write_tls(&mut tcp);
    let _ = tcp.flush();
    // Then read what the member still sends (its session tickets, its close) until it
    // closes, within the read timeout: a socket closed with bytes unread is reset, and a
    // reset that overtakes the client's last flight fails the member's side of the
    // handshake ("rejected connection on client endpoint … connection reset by peer" in
    // etcd's log, at random).
    let _ = tcp.shutdown(std::net::Shutdown::Write);
    let _ = std::io::copy(&mut Read::take(&tcp, DRAIN_BYTES), &mut std::io::sink());
    Ok(elapsed)
}

/// At most this much is read from a member after a timed handshake, before closing.
const DRAIN_BYTES: u64 = 64 * 1024;

/// Asks one member for its versions (`GET /version` on its client port, mutual TLS).
pub fn versions(endpoint: &str, creds: &Credentials) -> Result<Versions, String> {
    let response = https_get(
        endpoint,
        creds,
        "/version",
        VERSION_RESPONSE_BYTES,
        CONNECT_TIMEOUT,
    )
    .map_err(|e| format!("/version: {e}"))?;
    parse_version_response(&response)
}

/// Each of `members` with the release it tells on its client URLs (the first URL that
/// answers `/version`): its name (the hex id of one that never started) and its release,
/// `None` when no URL answered or the answer names no release. Asked one after another.
pub fn member_releases<'a>(
    members: impl IntoIterator<Item = &'a ClusterMember>,
    creds: &Credentials,
) -> Vec<(String, Option<crate::etcd::Version>)> {
    members
        .into_iter()
        .map(|m| {
            let told = m
                .client_urls
                .iter()
                .find_map(|url| versions(url, creds).ok())
                .and_then(|v| crate::etcd::Version::parse(&v.server));
            let name = if m.started() {
                m.name.clone()
            } else {
                super::client::hex_id(m.id)
            };
            (name, told)
        })
        .collect()
}

/// `GET path` over mutual TLS with the node's certificate (`Connection: close`): the raw
/// HTTP/1.1 response, read until the peer closes, the body is complete, or `limit` bytes;
/// the connection and each read give up after `timeout`.
pub(super) fn https_get(
    endpoint: &str,
    creds: &Credentials,
    path: &str,
    limit: usize,
    timeout: Duration,
) -> Result<Vec<u8>, String> {
    let (mut tls, mut tcp, _) = tls_session_within(endpoint, creds, timeout)?;
    let host = host_port(endpoint)
        .map(|(h, p)| format!("{h}:{p}"))
        .unwrap_or_default();
    let mut stream = rustls::Stream::new(&mut tls, &mut tcp);
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    let mut buf = [0u8; 8192];
    while response.len() < limit && !http_complete(&response) {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => response.extend_from_slice(&buf[..n]),
            Err(_) if !response.is_empty() => break,
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(response)
}

/// Whether an HTTP/1.1 response holds its headers and a body of its Content-Length.
fn http_complete(response: &[u8]) -> bool {
    let text = String::from_utf8_lossy(response);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    head.lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())
                .flatten()
        })
        .is_some_and(|len| body.len() >= len)
}

/// etcd's `/version` answer: `HTTP/1.1 200 OK`, then `{"etcdserver":…,"etcdcluster":…}`.
fn parse_version_response(response: &[u8]) -> Result<Versions, String> {
    let text = String::from_utf8_lossy(response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or("/version: no complete HTTP answer")?;
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(format!("/version answered {status}"));
    }
    serde_json::from_str(body.trim()).map_err(|e| format!("/version: unexpected answer ({e})"))
}

/// The kind of alarm (`NOSPACE`, `CORRUPT`) in one of the errors a member's status
/// answer lists, where etcd puts each active alarm as `memberID:<id> alarm:<KIND> `;
/// `None` for any other error ("no leader").
pub fn kind_in_status_error(error: &str) -> Option<&str> {
    let (_, rest) = error.split_once("alarm:")?;
    let kind = rest.split_whitespace().next()?;
    (!kind.is_empty() && kind.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')).then_some(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alarms_are_told_from_other_status_errors() {
        assert_eq!(
            kind_in_status_error("memberID:3613523574846977611 alarm:NOSPACE "),
            Some("NOSPACE")
        );
        assert_eq!(
            kind_in_status_error("memberID:1 alarm:CORRUPT"),
            Some("CORRUPT")
        );
        assert_eq!(kind_in_status_error("etcdserver: no leader"), None);
        assert_eq!(kind_in_status_error("alarm:"), None);
        assert_eq!(kind_in_status_error("alarm: something else"), None);
    }

    #[test]
    fn version_answers_parse() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 45\r\n\r\n{\"etcdserver\":\"3.5.30\",\"etcdcluster\":\"3.5.0\"}";
        assert!(http_complete(ok));
        assert!(!http_complete(&ok[..ok.len() - 1]));
        assert_eq!(
            parse_version_response(ok).unwrap(),
            Versions {
                server: "3.5.30".into(),
                cluster: "3.5.0".into(),
                storage: None,
            }
        );
        let six = b"HTTP/1.1 200 OK\r\n\r\n{\"etcdserver\":\"3.6.15\",\"etcdcluster\":\"3.6.0\",\"storage\":\"3.6.0\"}";
        assert_eq!(
            parse_version_response(six).unwrap().storage.as_deref(),
            Some("3.6.0")
        );
        let denied = b"HTTP/1.1 403 Forbidden\r\n\r\n";
        assert!(parse_version_response(denied).unwrap_err().contains("403"));
        assert!(parse_version_response(b"HTTP/1.1 200 OK\r\n").is_err());
        assert!(parse_version_response(b"HTTP/1.1 200 OK\r\n\r\n{}").is_err());
    }
}
