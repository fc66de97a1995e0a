//! One connection of a member's identity endpoint ([`super::endpoint`]): the TLS settings
//! it is served with, the handshake, the request and the answer.
//!
//! Invariants: see [`super::endpoint`]; every connection reads the server leaf and the
//! CRL anew and uses one [`Shared`] whole.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use zone_pki::{Authority, CertInfo, Error, LeafKind, NodeRequest};

use super::grant::{decide, requester, IDENTITY_DAYS};
use super::password::NotSet;
use super::wire::{read_request, response, Answer, Kind};
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

/// What every connection needs, copied from the node.
pub(super) struct Shared {
    pub(super) zone: String,
    pub(super) policy: Policy,
    pub(super) members: Vec<String>,
    pub(super) roots: Vec<CertInfo>,
    pub(super) signer: Authority,
    /// The member's branches, when its signer issues them ([`super::branch`]).
    pub(super) branches: Option<super::branch::Branches>,
    pub(super) leaves: LeafPaths,
    pub(super) crl: PathBuf,
    /// This member's client URL: where issued identities are recorded ([`super::ledger`]),
    /// and its state directory, where they wait when its etcd does not answer.
    pub(super) etcd: String,
    pub(super) state_dir: PathBuf,
}

/// The [`Shared`] the next connection uses, replaced whole by the endpoint's handle.
pub(super) type Current = Arc<RwLock<Arc<Shared>>>;

/// What `current` holds now.
pub(super) fn now(current: &Current) -> Arc<Shared> {
    current.read().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Accepts connections, each on its own thread, at most [`CONNECTIONS`] at once.
pub(super) fn serve(listener: TcpListener, current: Current) {
    let busy = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming().flatten() {
        if busy.fetch_add(1, Ordering::SeqCst) >= CONNECTIONS {
            busy.fetch_sub(1, Ordering::SeqCst);
            continue;
        }
        let (shared, busy) = (now(&current), busy.clone());
        std::thread::spawn(move || {
            answer(stream, &shared);
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
            let name = request.name.as_deref();
            let outcome = match request.kind {
                Kind::Identity => issue(shared, &node, name, &request.body, false),
                Kind::Gateway => gateway_password(shared, &node, name, &request.body),
                Kind::Revocations => revocations(shared),
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

/// `node`'s request for `name` (a service; `None`: its own identity) with the request
/// `csr`: the identity's chain and the log line, or the answer that refuses it.
fn issue(
    shared: &Shared,
    node: &str,
    name: Option<&str>,
    csr: &[u8],
    gateway: bool,
) -> Result<(String, String), Answer> {
    let asked = match name {
        Some(service) => format!("service {service:?}"),
        None => "its own identity".into(),
    };
    let user = decide(&shared.policy, &shared.members, &shared.zone, node, name)
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
    // A signer the owner revoked (`revoke --identity` of it) signs nothing more: the node
    // asks another member.
    if signer_revoked(shared) {
        return Err(Answer::new(
            503,
            "this member's signer is revoked (on the zone's CRL): ask another member; the zone's owner re-activates this member for a new signer",
        ));
    }
    // The node's branch signs it when the signer issues branches; the branch is in the
    // ledger before it signs anything.
    let branch = match &shared.branches {
        Some(branches) => Some(
            branches
                .for_node(&shared.signer, node, &shared.crl, |branch| {
                    record(shared, node, &branch.subject_cn, branch, None)
                })
                .map_err(|e| {
                    Answer::new(
                        503,
                        format!("the branch that signs {node}'s identities was not made or not recorded: {e}; ask again"),
                    )
                })?,
        ),
        None => None,
    };
    let issuer = branch.as_ref().unwrap_or(&shared.signer);
    let chain = match gateway {
        true => issuer.issue_gateway_for(&user, &shared.zone, &request, IDENTITY_DAYS),
        false => issuer.issue_identity_for(&user, &shared.zone, &request, IDENTITY_DAYS),
    }
    .map_err(|e| Answer::new(500, format!("the signer could not issue {user}: {e}")))?;
    let info = CertInfo::parse_pem(&chain)
        .map_err(|e| Answer::new(500, format!("the signer issued what does not parse: {e}")))?;
    let serial = zone_pki::revocation::serial_hex(info.serial());
    // In the zone's ledger first: an identity the zone does not know of could never be
    // revoked with its node.
    let branch_serial = branch
        .as_ref()
        .and_then(|b| CertInfo::parse(b.cert_der()).ok())
        .map(|b| zone_pki::revocation::serial_hex(b.serial()));
    record(shared, node, &user, &info, branch_serial).map_err(|e| {
        Answer::new(
            503,
            format!("the zone's etcd did not record {user} (serial {serial}), so it is not handed out: {e}; ask again"),
        )
    })?;
    let what = if gateway {
        "a gateway certificate of "
    } else {
        ""
    };
    let line = format!(
        "asked for {asked}: issued {what}{user} for {IDENTITY_DAYS} days (serial {serial}, key {})",
        request.key_fingerprint_hex()
    );
    Ok((chain, line))
}

/// The zone's revocations document this member holds (empty: none yet). Public in the
/// zone (every node's `status` shows it); asked by nodes that are not members.
fn revocations(shared: &Shared) -> Result<(String, String), Answer> {
    let path = shared.state_dir.join(crate::revocation::store::DOC_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok((text, "asked for the zone's revocations".into())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((
            String::new(),
            "asked for the zone's revocations: none yet".into(),
        )),
        Err(e) => Err(Answer::new(
            500,
            format!("cannot read the zone's revocations: {e}"),
        )),
    }
}

/// Whether the member's signer is on the CRL it keeps.
fn signer_revoked(shared: &Shared) -> bool {
    let Ok(der) = std::fs::read(&shared.crl) else {
        return false;
    };
    let Ok(crl) = zone_pki::revocation::Crl::parse_der(&der) else {
        return false;
    };
    CertInfo::parse(shared.signer.cert_der()).is_ok_and(|signer| crl.revokes(signer.serial()))
}

/// Records the certificate `info` issued to `node` (an identity of `user`, or a branch
/// under its CN) in the ledger, with the serial of the branch that signed it.
fn record(
    shared: &Shared,
    node: &str,
    user: &str,
    info: &CertInfo,
    branch: Option<String>,
) -> Result<(), String> {
    let serial = zone_pki::revocation::serial_hex(info.serial());
    let entry = super::ledger::Entry {
        user: user.to_string(),
        not_after: info
            .not_after
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        branch,
    };
    super::ledger::record(
        &shared.etcd,
        &shared.leaves,
        &shared.state_dir,
        node,
        &serial,
        &entry,
    )
}

/// `node`'s request for its service `name`'s gateway: `body` is the service's password,
/// a line feed, and a certificate request. The password is set on the service's user when
/// the policy gives the node that service ([`super::password`]), then a gateway
/// certificate issued for the request ([`zone_pki::client::gateway_certificate`]) and
/// recorded like an identity. Neither the answer nor the log line holds the password.
fn gateway_password(
    shared: &Shared,
    node: &str,
    name: Option<&str>,
    body: &[u8],
) -> Result<(String, String), Answer> {
    if !shared.policy.enforce {
        return Err(Answer::new(
            403,
            format!(
                "refused: zone {} does not enforce its policy: etcd's gateway needs no password",
                shared.zone
            ),
        ));
    }
    let user = decide(&shared.policy, &shared.members, &shared.zone, node, name)
        .map_err(|refusal| Answer::new(403, refusal))?;
    if user == node {
        return Err(Answer::new(
            400,
            "bad request: a gateway password is a service's: name=<service>",
        ));
    }
    let (password, csr) = split_body(body).ok_or_else(|| {
        Answer::new(
            400,
            "bad request: the body is not a password zone-etcd makes (43 to 128 URL-safe base64 characters) and a line feed",
        )
    })?;
    match super::password::set(&shared.etcd, &shared.leaves, &user, password) {
        Ok(()) => {}
        Err(NotSet::AuthOff) => {
            return Err(Answer::new(
                503,
                format!("etcd's auth is not on yet, so {user} can have no password; ask again"),
            ))
        }
        Err(NotSet::Failed(why)) => {
            return Err(Answer::new(
                502,
                format!("the gateway password of {user} was not set: {why}; ask again"),
            ))
        }
    }
    let (chain, line) = issue(shared, node, name, csr, true)?;
    Ok((chain, format!("{line}; set its gateway password")))
}

/// A gateway request's body: the password and the certificate request after it.
fn split_body(body: &[u8]) -> Option<(&str, &[u8])> {
    let at = body.iter().position(|&b| b == b'\n')?;
    let password = std::str::from_utf8(&body[..at]).ok()?;
    super::password::well_formed(password).then_some((password, &body[at + 1..]))
}
