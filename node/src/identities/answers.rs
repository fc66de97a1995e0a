//! What a member's identity endpoint answers each request ([`super::wire::Kind`]), given
//! the [`Shared`] state one connection uses: an identity (through the node's branch when
//! the signer issues them), a gateway password and certificate, the zone's revocations.
//! [`super::connection`] carries the bytes.
//!
//! Invariants: see [`super::endpoint`]; a certificate is recorded in the zone's ledger
//! before it is handed out (a branch before it signs anything); a revoked signer signs
//! nothing; neither an answer nor a log line holds a password or a key.

use std::path::PathBuf;

use zone_io::Error;
use zone_pki::{Authority, CertInfo, NodeRequest};

use super::grant::{decide, IDENTITY_DAYS};
use super::password::NotSet;
use super::wire::Answer;
use zone_model::leaf_paths::LeafPaths;
use zone_model::policy::Policy;

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
    /// Whether etcd's auth was on at the keeper's last look ([`super::endpoint::Handle::set_auth_on`]),
    /// shared by every [`Shared`] the endpoint serves with.
    pub(super) auth_on: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Shared {
    /// Whether an identity issued now could be more than its grant: the policy enforces
    /// and etcd's auth is not on yet, so every client certificate would be etcd's root.
    pub(super) fn open_window(&self) -> bool {
        self.policy.enforce && !self.auth_on.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// The answer while [`Shared::open_window`]: the node asks again (its side waits).
pub(super) fn auth_not_on(zone: &str) -> Answer {
    Answer::new(
        409,
        format!("etcd's auth is not on in zone {zone} yet, so an identity issued now would be etcd's root; ask again"),
    )
}

/// `node`'s request for `name` (a service; `None`: its own identity) with the request
/// `csr`: the identity's chain and the log line, or the answer that refuses it.
pub(super) fn issue(
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
    // No window: under an enforced policy nothing is issued before auth is on.
    if shared.open_window() {
        return Err(auth_not_on(&shared.zone));
    }
    let user = decide(&shared.policy, &shared.members, &shared.zone, node, name)
        .map_err(|refusal| Answer::new(403, refusal))?;
    // What a node can make the zone store through the endpoint is bounded.
    let live = super::ledger::live_count(
        &shared.etcd,
        &shared.leaves,
        &shared.state_dir,
        node,
        time::OffsetDateTime::now_utc(),
    );
    if live >= super::limits::LIVE_PER_NODE {
        return Err(Answer::new(429, super::limits::too_many_live(node, live)));
    }
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
pub(super) fn revocations(shared: &Shared) -> Result<(String, String), Answer> {
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
pub(super) fn gateway_password(
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
                409,
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
