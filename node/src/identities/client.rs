//! A node's calls to the members' identity endpoints: mutual TLS with a proof of the
//! node's name, each member in turn, one request and one answer each
//! ([`super::wire`] is the members' side of the same HTTP).
//!
//! Invariants: every member is verified against the zone roots, and the node proves its
//! name with a client leaf its node CA makes for the call (kept in memory only); nothing
//! longer than `ANSWER_BYTES` is read; a member that refuses at the handshake, does not
//! answer in time or answers anything but 200 is passed for the next.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig};
use zone_io::Error;
use zone_pki::LeafKind;

use crate::node::Node;
use zone_model::cluster::signer_url;
use zone_model::config::zone::Protocol;

/// How long connecting to one member may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one member may take for the whole request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The most of an answer that is read.
const ANSWER_BYTES: u64 = 64 * 1024;

/// Why one member issued nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// It answered 403: the refusal's line.
    Refused(String),
    /// It answered 503: it could not do it now (its etcd, its signer).
    NotYet(String),
    /// It answered 409 to a gateway password: etcd's auth is not on in the zone yet.
    AuthOff(String),
    /// Anything else: unreachable, refused at the handshake, a bad answer.
    Failed(String),
}

/// The TLS side of asking a member: the zone roots that verify it, and the node's
/// certificate chain and key that prove the node's name.
pub struct ClientTls<'a> {
    pub roots_pem: &'a str,
    pub cert_pem: &'a str,
    pub key_pem: &'a str,
}

/// Calls `f` with each member but this node in turn, over mutual TLS with a proof of the
/// node's name; the first answer wins, with the member's URL.
pub fn each_member<T>(
    node: &Node,
    mut f: impl FnMut(&str, &ClientTls<'_>) -> Result<T, Failure>,
) -> Result<(T, String), Error> {
    // The proof of the node's name: a client leaf of its own node CA, made for this
    // request and never written (under `enforce` the set's client.crt is the zone's
    // identity, which proves no node name).
    let proof = node
        .node_ca()?
        .authority
        .issue_leaf(LeafKind::Client, &node.identity(), None)?;
    let (cert_pem, key_pem) = (proof.chain_pem, proof.key_pem);
    let tls = ClientTls {
        roots_pem: &node.zone_ca_pem,
        cert_pem: &cert_pem,
        key_pem: &key_pem,
    };
    let mut refused = None;
    let mut reasons = Vec::new();
    for member in node.members.iter().filter(|m| m.node_name != node.name) {
        let url = signer_url(member);
        if member.protocol == Protocol::Cyfs {
            reasons.push(format!(
                "{url}: a cyfs member (the gateway carries no identity endpoint)"
            ));
            continue;
        }
        match f(&url, &tls) {
            Ok(answer) => return Ok((answer, url)),
            Err(Failure::Refused(line)) => {
                tracing::debug!("{url}: {line}");
                refused.get_or_insert(line);
            }
            Err(Failure::Failed(why) | Failure::NotYet(why) | Failure::AuthOff(why)) => {
                reasons.push(format!("{url}: {why}"))
            }
        }
    }
    if let Some(line) = refused {
        return Err(refusal(line));
    }
    let others = node.members.iter().filter(|m| m.node_name != node.name);
    let mut others = others.peekable();
    if others.peek().is_some() && others.all(|m| m.protocol == Protocol::Cyfs) {
        return Err(Error::new(format!(
            "every other member of zone {} is a cyfs member, and cyfs gateways carry no identity endpoint: no member can give this node an identity",
            node.zone
        ))
        .fix("give the zone one member reached directly (protocol = \"https\", its peer_port + 2 reachable from this node), or make this node an etcd member"));
    }
    Err(Error::new(format!(
        "no member of the zone answered ({})",
        if reasons.is_empty() {
            "the member list names no other member".to_string()
        } else {
            reasons.join("; ")
        }
    ))
    .fix("check that the members run and that this node reaches them on peer_port + 2 (their identity endpoint)"))
}

/// A member's refusal, as the error.
pub fn refusal(line: String) -> Error {
    Error::new(line).fix("the zone's owner names the nodes of each service in the zone file's [access] (then zone-etcd zone sign)")
}

/// Posts `body` to `path` (for `name`) at the endpoint `url`: the answer's body.
pub fn post(
    url: &str,
    tls: &ClientTls<'_>,
    path: &str,
    name: Option<&str>,
    body: &str,
) -> Result<String, Failure> {
    let failed = |why: String| Failure::Failed(why);
    let certs = |pem: &str| -> Result<Vec<Certificate<'static>>, String> {
        CertificateDer::pem_slice_iter(pem.as_bytes())
            .map(|c| c.map(|d| Certificate::from_der(d.as_ref()).to_owned()))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())
    };
    let roots = certs(tls.roots_pem).map_err(|e| failed(format!("the zone roots: {e}")))?;
    let chain = certs(tls.cert_pem).map_err(|e| failed(format!("this node's certificate: {e}")))?;
    let key = PrivateKey::from_pem(tls.key_pem.as_bytes())
        .map_err(|_| failed("this node's key: not a PEM private key".into()))?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_global(Some(super::wire::answer_time(path, REQUEST_TIMEOUT)))
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .tls_config(
            TlsConfig::builder()
                .root_certs(RootCerts::Specific(Arc::new(roots)))
                .client_cert(Some(ClientCert::new_with_certs(&chain, key)))
                .build(),
        )
        .build()
        .into();
    let target = match name {
        Some(service) => format!("{url}{path}?name={}", escape(service)),
        None => format!("{url}{path}"),
    };
    let mut answer = agent.post(&target).send(body).map_err(|e| {
        use rustls::{AlertDescription, Error as Tls};
        failed(match zone_backup::destination::tls::rustls_error(&e) {
            // Past our side of the handshake, an alert is the member refusing us.
            Some(tls @ Tls::AlertReceived(AlertDescription::CertificateRevoked)) => format!(
                "refused this node's certificate at the handshake: its node CA is revoked ({tls})"
            ),
            Some(tls @ Tls::AlertReceived(_)) => {
                format!("refused this node's certificate at the handshake ({tls})")
            }
            Some(tls) => format!("TLS: {tls}"),
            // Not rustls': ureq's own TLS failure, or no TLS failure at all.
            None => match zone_backup::destination::tls::tls_failure(&e) {
                Some(tls) => format!("TLS: {tls}"),
                None => e.to_string(),
            },
        })
    })?;
    let status = answer.status().as_u16();
    let body = answer
        .body_mut()
        .with_config()
        .limit(ANSWER_BYTES)
        .read_to_string()
        .map_err(|e| failed(format!("answered {status}, then: {e}")))?;
    let line = body.lines().next().unwrap_or_default().trim().to_string();
    match status {
        200 => Ok(body),
        403 => Err(Failure::Refused(line)),
        503 | 429 => Err(Failure::NotYet(format!("answered {status}: {line}"))),
        409 => Err(Failure::AuthOff(format!("answered {status}: {line}"))),
        _ => Err(failed(format!("answered {status}: {line}"))),
    }
}

/// `name` for a query: anything but letters, digits and `-._~` percent-encoded.
fn escape(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_escaped_for_the_query() {
        assert_eq!(escape("photos"), "photos");
        assert_eq!(escape("a b&name=root"), "a%20b%26name%3Droot");
    }
}
