//! A node's side of the identity endpoint: an identity (a service's, or the node's own)
//! obtained from the zone. The key is made here and never leaves the process but into
//! the caller's files; only its request travels.
//!
//! - A member with a signer signs for itself, through the same [`decide`] as its
//!   endpoint: it depends on no other member being up.
//! - Any other node asks the members in turn ([`ask`]) over mutual TLS: it proves its
//!   name with a client leaf its node CA makes for the request (kept in memory only) and
//!   verifies each member against the zone roots.
//!   A member that does not answer within [`CONNECT_TIMEOUT`] / [`REQUEST_TIMEOUT`], or
//!   refuses, is passed for the next; when none issues, a refusal's line is the error
//!   (verbatim), else one line with every member's reason.
//!
//! Invariants: what comes back is used only when it is an identity of the user asked
//! for, for this request's key, issued by a signer the zone's client root signed.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig};
use zone_pki::request::new_request;
use zone_pki::{CertInfo, Error, LeafKind, NodeRequest};

use super::grant::{decide, IDENTITY_DAYS};
use super::password::NotSet;
use super::wire::{GATEWAY_PATH, PATH};
use crate::cluster::signer_url;
use crate::config::node::Node;
use crate::config::zone::Protocol;
use crate::policy::rbac::service_user;

/// How long connecting to one member may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one member may take for the whole request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The most of an answer that is read.
const ANSWER_BYTES: u64 = 64 * 1024;

/// An identity from the zone: its chain (the identity, then the signer) and its key.
pub struct Obtained {
    /// The etcd user it names.
    pub user: String,
    pub chain_pem: String,
    key_pem: String,
    /// Who issued it: a member's endpoint URL, or this member's own signer.
    pub from: String,
}

impl Obtained {
    /// PKCS#8 PEM of the identity's key. Never print it.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }
}

impl std::fmt::Debug for Obtained {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Obtained")
            .field("user", &self.user)
            .field("from", &self.from)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// Why one member issued nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// It answered 403: the refusal's line.
    Refused(String),
    /// It answered 503: it could not do it now (its etcd, or etcd's auth not on yet).
    NotYet(String),
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

/// Obtains `node`'s identity for `name` (a service; `None`: the node's own).
pub fn obtain(node: &Node, name: Option<&str>) -> Result<Obtained, Error> {
    Ok(obtain_as(node, name, None)?)
}

/// Obtains a gateway certificate for `service` on `node`, having its gateway `password`
/// set on the service's user ([`super::password`]). `Ok(Err(NotSet))` when no member
/// could set it yet (etcd's auth not on yet, or its etcd failing).
pub fn obtain_gateway(
    node: &Node,
    service: &str,
    password: &str,
) -> Result<Result<Obtained, NotSet>, Error> {
    match obtain_as(node, Some(service), Some(password)) {
        Ok(obtained) => Ok(Ok(obtained)),
        Err(Obtain::NotSet(why)) => Ok(Err(why)),
        Err(Obtain::Error(e)) => Err(e),
    }
}

/// Why [`obtain_as`] gave nothing.
enum Obtain {
    NotSet(NotSet),
    Error(Error),
}

impl From<Error> for Obtain {
    fn from(e: Error) -> Obtain {
        Obtain::Error(e)
    }
}

impl From<Obtain> for Error {
    fn from(o: Obtain) -> Error {
        match o {
            Obtain::Error(e) => e,
            Obtain::NotSet(NotSet::AuthOff) => Error::new("etcd's auth is not on yet"),
            Obtain::NotSet(NotSet::Failed(why)) => Error::new(why),
        }
    }
}

/// An identity, or with `gateway` (the service's password) a gateway certificate.
fn obtain_as(node: &Node, name: Option<&str>, gateway: Option<&str>) -> Result<Obtained, Obtain> {
    let ids = node.identities.as_ref().ok_or_else(|| {
        Error::new(format!(
            "zone {} has no [access]: its members issue no identities",
            node.zone
        ))
        .fix("without [access], issue-client issues from this node's CA")
    })?;
    let name = name.filter(|n| !n.is_empty());
    let user = match name {
        Some(service) => service_user(service, &node.name),
        None => node.name.clone(),
    };
    let request = new_request(&user)?;
    let members: Vec<String> = node.members.iter().map(|m| m.node_name.clone()).collect();
    let (chain_pem, from) = match (&ids.signer, node.member()) {
        (Some(signer), Some(member)) => {
            let user =
                decide(&node.access, &members, &node.zone, &node.name, name).map_err(refusal)?;
            let parsed = NodeRequest::from_pem(&request.csr_pem)?;
            let chain = match gateway {
                Some(password) => {
                    let endpoint = crate::cluster::client_url(member);
                    super::password::set(&endpoint, &node.leaf_paths(), &user, password)
                        .map_err(Obtain::NotSet)?;
                    signer.issue_gateway_for(&user, &node.zone, &parsed, IDENTITY_DAYS)?
                }
                None => signer.issue_identity_for(&user, &node.zone, &parsed, IDENTITY_DAYS)?,
            };
            (chain, "this member's own signer".to_string())
        }
        _ => match gateway {
            None => from_members(node, name, &request.csr_pem)?,
            Some(password) => {
                let body = format!("{password}\n{}", request.csr_pem);
                let (answer, url) = each_member(node, |url, tls| {
                    match post(url, tls, GATEWAY_PATH, name, &body) {
                        Ok(chain) => Ok(Ok(chain)),
                        Err(Failure::NotYet(line)) if line.contains("auth is not on") => {
                            Ok(Err(NotSet::AuthOff))
                        }
                        Err(other) => Err(other),
                    }
                })?;
                (answer.map_err(Obtain::NotSet)?, url)
            }
        },
    };
    let cn = if gateway.is_some() { "" } else { user.as_str() };
    check_identity(&chain_pem, &ids.client_cas, cn, request.key_pem()).map_err(|why| {
        Error::new(format!("{from} answered with {why}"))
            .fix("tell the zone's owner: that member's signer misbehaves")
    })?;
    Ok(Obtained {
        user,
        chain_pem,
        key_pem: request.key_pem().to_string(),
        from,
    })
}

/// Asks each member but this node in turn; the first identity wins.
fn from_members(node: &Node, name: Option<&str>, csr_pem: &str) -> Result<(String, String), Error> {
    each_member(node, |url, tls| ask(url, tls, name, csr_pem))
}

/// Calls `f` with each member but this node in turn, over mutual TLS with a proof of the
/// node's name; the first answer wins, with the member's URL.
pub(super) fn each_member<T>(
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
            Err(Failure::Failed(why) | Failure::NotYet(why)) => {
                reasons.push(format!("{url}: {why}"))
            }
        }
    }
    if let Some(line) = refused {
        return Err(refusal(line));
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
fn refusal(line: String) -> Error {
    Error::new(line).fix("the zone's owner names the nodes of each service in the zone file's [access] (then zone-etcd zone sign)")
}

/// Asks the endpoint at `url` (`https://host:port`) for the identity `name` (`None`: the
/// node's own) of `csr_pem`'s key: the identity's chain in PEM.
pub fn ask(
    url: &str,
    tls: &ClientTls<'_>,
    name: Option<&str>,
    csr_pem: &str,
) -> Result<String, Failure> {
    post(url, tls, PATH, name, csr_pem)
}

/// Posts `body` to `path` (for `name`) at the endpoint `url`: the answer's body.
pub(super) fn post(
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
        .timeout_global(Some(REQUEST_TIMEOUT))
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
        failed(match crate::nameservice::tls_failure(&e) {
            // Past our side of the handshake, an alert is the member refusing us.
            Some(tls) if tls.contains("CertificateRevoked") => format!(
                "refused this node's certificate at the handshake: its node CA is revoked ({tls})"
            ),
            Some(tls) if tls.contains("received fatal alert") => {
                format!("refused this node's certificate at the handshake ({tls})")
            }
            Some(tls) => format!("TLS: {tls}"),
            None => e.to_string(),
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
        503 => Err(Failure::NotYet(format!("answered {status}: {line}"))),
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

/// Why `chain_pem` is not the identity `user` (its CN; empty for a gateway certificate)
/// for `key_pem`, signed by a signer of one of `client_cas` (through its branch for the
/// node, when the signer issues branches).
fn check_identity(
    chain_pem: &str,
    client_cas: &[CertInfo],
    user: &str,
    key_pem: &str,
) -> Result<(), String> {
    let infos =
        CertInfo::parse_chain_pem(chain_pem).map_err(|e| format!("no certificate chain ({e})"))?;
    let Some(leaf) = infos.first().filter(|_| (2..=3).contains(&infos.len())) else {
        return Err(format!(
            "{} certificates, not an identity, its branch and its signer",
            infos.len()
        ));
    };
    if !zone_pki::inspect::chains_to(&infos, client_cas) {
        return Err("a chain the zone's client CA did not sign".into());
    }
    if leaf.subject_cn != user || leaf.is_ca || !leaf.client_auth {
        return Err(format!("the identity {:?}, not {user:?}", leaf.subject_cn));
    }
    let key = zone_pki::key::parse_key(key_pem).map_err(|e| e.to_string())?;
    if !leaf.public_key_matches(&key) {
        return Err("a certificate for another key".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use zone_pki::Authority;

    #[test]
    fn only_the_identity_asked_for_this_key_from_the_zones_client_root_is_taken() {
        let zone = "example.zone";
        let root = Authority::new_client_root(zone).unwrap();
        let roots = [CertInfo::parse(root.cert_der()).unwrap()];
        let signer = root.issue_signer("node1.example.zone", zone).unwrap();
        let request = new_request("x").unwrap();
        let parsed = NodeRequest::from_pem(&request.csr_pem).unwrap();
        let user = "photos@nas.example.zone";
        let chain = signer
            .issue_identity_for(user, zone, &parsed, IDENTITY_DAYS)
            .unwrap();
        let key = request.key_pem();
        assert_eq!(check_identity(&chain, &roots, user, key), Ok(()));

        let other = new_request("x").unwrap();
        assert!(check_identity(&chain, &roots, user, other.key_pem())
            .unwrap_err()
            .contains("another key"));
        assert!(check_identity(&chain, &roots, "root", key)
            .unwrap_err()
            .contains("not \"root\""));
        let stranger = Authority::new_client_root(zone).unwrap();
        let stranger_info = CertInfo::parse(stranger.cert_der()).unwrap();
        assert!(check_identity(&chain, &[stranger_info], user, key)
            .unwrap_err()
            .contains("did not sign"));
        let leaf_only = chain
            .split_inclusive("-----END CERTIFICATE-----\n")
            .next()
            .unwrap();
        assert!(check_identity(leaf_only, &roots, user, key)
            .unwrap_err()
            .contains("1 certificates"));
        // Through a branch, as members whose signer issues branches answer.
        let branch = signer
            .issue_branch("nas.example.zone", "node1.example.zone", zone)
            .unwrap();
        let through = branch
            .issue_identity_for(user, zone, &parsed, IDENTITY_DAYS)
            .unwrap();
        assert_eq!(check_identity(&through, &roots, user, key), Ok(()));
        // A leaf whose branch was left out chains to nothing.
        let mut parts = through.split_inclusive("-----END CERTIFICATE-----\n");
        let without = format!("{}{}", parts.next().unwrap(), parts.nth(1).unwrap());
        assert!(check_identity(&without, &roots, user, key)
            .unwrap_err()
            .contains("did not sign"));
        // The signer itself (a CA) is no identity, even for its own key.
        let by_root = root.issue_identity_for(user, zone, &parsed, 1).unwrap();
        assert!(check_identity(&by_root, &roots, user, key).is_err());
    }

    #[test]
    fn a_name_is_escaped_for_the_query() {
        assert_eq!(escape("photos"), "photos");
        assert_eq!(escape("a b&name=root"), "a%20b%26name%3Droot");
    }
}
