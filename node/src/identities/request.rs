//! A node's side of the identity endpoint: an identity (a service's, or the node's own)
//! obtained from the zone. The key is made here and never leaves the process but into
//! the caller's files; only its request travels.
//!
//! - A member with a signer signs for itself, through the same [`decide`] as its
//!   endpoint: it depends on no other member being up.
//! - Any other node asks the members in turn ([`ask`]) over mutual TLS: it proves its
//!   name with a client leaf its node CA makes for the request (kept in memory only) and
//!   verifies each member against the zone roots.
//!   A member that does not answer within [`super::client::CONNECT_TIMEOUT`] /
//!   [`super::client::REQUEST_TIMEOUT`], or refuses, is passed for the next
//!   ([`super::client`]); when none issues, a refusal's line is the error
//!   (verbatim), else one line with every member's reason.
//!
//! Invariants: what comes back is used only when it is an identity of the user asked
//! for, for this request's key, issued by a signer the zone's client root signed; under an
//! enforced policy nothing is issued before etcd's auth is on (the members answer 409, a
//! member's own signer asks the members first), and the node asks again every
//! `AUTH_STEP` for up to [`AUTH_WAIT`]: no identity is ever more than its grant.

use std::cell::Cell;
use std::time::{Duration, Instant};

use zone_etcd_kit::cluster_api::{self, Credentials};
use zone_io::Error;
use zone_pki::request::new_request;
use zone_pki::{CertInfo, NodeRequest};

use super::client::{each_member, post, refusal, ClientTls, Failure};
use super::grant::{decide, IDENTITY_DAYS};
use super::password::{NotSet, AUTH_WAIT};
use super::wire::{GATEWAY_PATH, PATH};
use crate::node::Node;
use zone_model::policy::rbac::service_user;

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
            // A service's identity waits for auth like any node's (the gateway's password
            // needs it on anyway); the member's own is etcd's root by design.
            if gateway.is_none() && name.is_some() && node.access.enforce {
                let mut why = None;
                let waited = until_auth_on(&user, || {
                    let on = auth_on(node);
                    why = on.as_ref().err().cloned();
                    Ok(on.unwrap_or(false).then_some(()))
                });
                if let (Err(_), Some(why)) = (&waited, why) {
                    return Err(Obtain::Error(cannot_tell(node, &why)));
                }
                waited?;
            }
            let parsed = NodeRequest::from_pem(&request.csr_pem)?;
            let chain = match gateway {
                Some(password) => {
                    let endpoint = zone_model::cluster::client_url(member);
                    super::password::set(&endpoint, &node.leaf_paths(), &user, password)
                        .map_err(Obtain::NotSet)?;
                    signer.issue_gateway_for(&user, &node.zone, &parsed, IDENTITY_DAYS)?
                }
                None => signer.issue_identity_for(&user, &node.zone, &parsed, IDENTITY_DAYS)?,
            };
            (chain, "this member's own signer".to_string())
        }
        _ => match gateway {
            None => until_auth_on(&user, || from_members(node, name, &request.csr_pem))?,
            Some(password) => {
                let body = format!("{password}\n{}", request.csr_pem);
                let (answer, url) = each_member(node, |url, tls| {
                    match post(url, tls, GATEWAY_PATH, name, &body) {
                        Ok(chain) => Ok(Ok(chain)),
                        Err(Failure::AuthOff(_)) => Ok(Err(NotSet::AuthOff)),
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

/// Asks each member but this node in turn; the first identity wins. `None` when none
/// issued, none refused, and one answered that etcd's auth is not on yet.
fn from_members(
    node: &Node,
    name: Option<&str>,
    csr_pem: &str,
) -> Result<Option<(String, String)>, Error> {
    let (auth_off, refused) = (Cell::new(false), Cell::new(false));
    let asked = each_member(node, |url, tls| match ask(url, tls, name, csr_pem) {
        Err(Failure::AuthOff(why)) => {
            auth_off.set(true);
            Err(Failure::Failed(why))
        }
        Err(Failure::Refused(line)) => {
            refused.set(true);
            Err(Failure::Refused(line))
        }
        other => other,
    });
    match asked {
        Ok(issued) => Ok(Some(issued)),
        Err(_) if auth_off.get() && !refused.get() => Ok(None),
        Err(e) => Err(e),
    }
}

/// How often a node asks again while the zone answers that etcd's auth is not on yet.
const AUTH_STEP: Duration = Duration::from_millis(500);

/// Calls `ask` until it gives something, while it says etcd's auth is not on yet (`None`:
/// a new zone's first seconds, when an identity would be etcd's root), for up to
/// [`AUTH_WAIT`].
fn until_auth_on<T>(
    user: &str,
    mut ask: impl FnMut() -> Result<Option<T>, Error>,
) -> Result<T, Error> {
    let started = Instant::now();
    loop {
        if let Some(answer) = ask()? {
            return Ok(answer);
        }
        if started.elapsed() >= AUTH_WAIT {
            return Err(Error::new(format!(
                "etcd's auth is not on in the zone yet, so no member issues {user} (an identity issued before would be etcd's root)"
            ))
            .fix("wait until zone-etcd status says the policy is enforced, then ask again"));
        }
        std::thread::sleep(AUTH_STEP);
    }
}

/// Whether etcd's auth is on, asked of the zone's members as this member (etcd's root);
/// `Err`: why it could not be told.
fn auth_on(node: &Node) -> Result<bool, String> {
    let creds = Credentials::load(&node.leaf_paths()).map_err(|e| e.to_string())?;
    let endpoints = zone_model::cluster::client_endpoints(&node.members);
    let runtime = cluster_api::runtime().map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let mut client =
            cluster_api::connect_many(&endpoints, &creds, cluster_api::REQUEST_TIMEOUT).await?;
        cluster_api::within(crate::policy::passwords::auth_on(&mut client)).await
    })
}

/// The error of a member that could not tell whether auth is on for [`AUTH_WAIT`].
fn cannot_tell(node: &Node, why: &str) -> Error {
    Error::new(format!(
        "cannot tell whether etcd's auth is on in zone {} ({why}), and an identity issued before it is would be etcd's root",
        node.zone
    ))
    .fix("start the zone's members (zone-etcd launch); once zone-etcd status answers, ask again")
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
}
