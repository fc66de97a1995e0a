//! What the identities add to a member's TLS set (see [`crate::leaves`]):
//!
//! - `client-trust.crt`, etcd's `--trusted-ca-file` (the client port's anchors): the
//!   client root alone once the policy is enforced, the zone roots and the client root
//!   while a zone moves over (every certificate of the zone still works);
//! - under `enforce`, the set's `client.crt` is the member's identity from its signer
//!   (CN its node name, no SAN) instead of a node-CA leaf: the identity zone-etcd's own
//!   commands on that node use;
//! - under `enforce`, `gateway.crt` (and its key), a certificate from the member's signer
//!   *without* a CN: etcd's `--client-cert-file`, what its HTTP gateway dials its own
//!   client port with. etcd takes that certificate's CN for the caller of a gateway
//!   request that carries neither a token nor an `Accept` header: with the member's
//!   identity there, any client past the handshake was the member (root); without a CN
//!   it is nobody ("user name is empty").
//!
//! Pure but for [`write_trust`]; a node without identities gets nothing of this.

use std::path::Path;

use zone_etcd_kit::etcd::args::ClientPort;

use zone_io::Error;
use zone_io::PUBLIC_MODE;
use zone_pki::Authority;

use crate::node::Node;

/// The client port's trust file inside a set.
pub const TRUST_FILE: &str = "client-trust.crt";
/// etcd's `--client-cert-file` inside a set (and `gateway.key`), under `enforce`.
pub const GATEWAY_CERT: &str = "gateway.crt";
pub const GATEWAY_KEY: &str = "gateway.key";

/// The client port's files of `node`, or `None` for a node without identities (etcd
/// then trusts the set's `ca.crt`, as before).
pub fn client_port(node: &Node, state_dir: &Path) -> Option<ClientPort> {
    node.identities.as_ref()?;
    let dir = state_dir.join("tls").join("current");
    Some(ClientPort {
        trust: dir.join(TRUST_FILE),
        identity: enforced_signer(node).map(|_| (dir.join(GATEWAY_CERT), dir.join(GATEWAY_KEY))),
    })
}

/// Refuses to run etcd `version` for `node` when it cannot enforce the node's policy:
/// etcd 3.4 has no `--client-cert-file`, so under `enforce` its HTTP gateway could not
/// dial its own client port (which then takes the client CA's identities alone).
pub fn runs_on(node: &Node, version: zone_etcd_kit::etcd::release::Version) -> Result<(), Error> {
    if node.identities.is_none() || !node.access.enforce || version.series() != (3, 4) {
        return Ok(());
    }
    Err(Error::new(format!(
        "etcd {version} cannot enforce least privilege (etcd 3.4 has no --client-cert-file), and this zone enforces it"
    ))
    .field("access.enforce")
    .fix("run etcd 3.5 or later (`zone-etcd upgrade-etcd`), or opt the zone out in its zone file with [access] enforce = false and bootstrap or activate its members again"))
}

/// Whether `node`'s client port trusts the client root alone (no node CA, nor any leaf
/// it issued, is a client there).
pub fn client_root_alone(node: &Node) -> bool {
    node.identities.is_some() && node.access.enforce
}

/// The CRL files etcd is given on `node` ([`crate::revocation::store::CrlFiles`]).
pub fn crl_files(node: &Node) -> crate::revocation::store::CrlFiles {
    crate::revocation::store::CrlFiles::of(&node.state_dir, client_root_alone(node))
}

/// The client port's anchors `node` should have, or `None` without identities.
pub fn trust_pem(node: &Node) -> Option<String> {
    let ids = node.identities.as_ref()?;
    Some(if client_root_alone(node) {
        ids.client_ca_pem.clone()
    } else {
        format!("{}{}", node.zone_ca_pem, ids.client_ca_pem)
    })
}

/// Who issues a node's own client leaf (the set's `client.crt`).
pub enum ClientIssuer<'a> {
    /// Its node CA, as in a zone without `[access]` or before `enforce`.
    NodeCa,
    /// Under `enforce`, a member's own signer.
    Signer(&'a Authority),
    /// Under `enforce`, a node without a signer: a member's signer, asked over the
    /// identity endpoint ([`super::request::obtain`]).
    Zone,
}

/// Who issues `node`'s own client leaf.
pub fn client_issuer(node: &Node) -> ClientIssuer<'_> {
    match &node.identities {
        Some(ids) if node.access.enforce => match &ids.signer {
            Some(signer) => ClientIssuer::Signer(signer),
            None => ClientIssuer::Zone,
        },
        _ => ClientIssuer::NodeCa,
    }
}

/// The signer that issues this node's own client leaf: its own, when the policy is
/// enforced and the node is a member.
pub fn enforced_signer(node: &Node) -> Option<&Authority> {
    match client_issuer(node) {
        ClientIssuer::Signer(signer) => Some(signer),
        ClientIssuer::NodeCa | ClientIssuer::Zone => None,
    }
}

/// Why `chain_pem` is not an identity of `node` from one of the zone's signers, if it is
/// not: the leaf names the node, has no SAN, and chains to the client root through a
/// signer presented with it.
pub fn zone_identity_problem(node: &Node, chain_pem: &str) -> Option<String> {
    let Ok(leaf) = zone_pki::CertInfo::parse_pem(chain_pem) else {
        return Some("unparsable".into());
    };
    if leaf.subject_cn != node.name || !leaf.sans.is_empty() {
        return Some(format!(
            "names {:?}, not this node's identity",
            leaf.subject_cn
        ));
    }
    chain_problem(node, chain_pem)
}

/// Why `chain_pem` (an identity, then its branch if any, then its signer) does not chain
/// to the zone's client root, if it does not, or why the zone refuses it: a certificate
/// of it on the CRL in force on this node (the identity, its branch or its signer).
pub fn chain_problem(node: &Node, chain_pem: &str) -> Option<String> {
    let ids = node.identities.as_ref()?;
    let Ok(infos) = zone_pki::CertInfo::parse_chain_pem(chain_pem) else {
        return Some("unparsable".into());
    };
    // An identity, then its branch when it has one, then the signer.
    let shaped = (2..=3).contains(&infos.len()) && !infos[0].is_ca;
    if !(shaped && zone_pki::inspect::chains_to(&infos, &ids.client_cas)) {
        return Some("not issued by a signer of the zone's client CA".into());
    }
    revoked(node, &infos).then(|| "revoked (on the zone's CRL)".into())
}

/// Whether a certificate of `chain` is on the CRL in force on `node`.
fn revoked(node: &Node, chain: &[zone_pki::CertInfo]) -> bool {
    let Ok(roots) = zone_model::config::trust::trusted_roots(&node.zone_ca_pem) else {
        return false;
    };
    let Ok(Some(doc)) = crate::revocation::store::in_force(&node.state_dir, &roots) else {
        return false;
    };
    chain.iter().any(|c| doc.crl.revokes(c.serial()))
}

/// Writes the trust file into a set being staged, and under `enforce` on a member the
/// gateway's certificate.
pub fn write_trust(node: &Node, set_dir: &Path) -> Result<(), Error> {
    if let Some(signer) = enforced_signer(node) {
        let issued = signer.issue_gateway(&node.name, &node.zone)?;
        zone_io::write_new(
            &set_dir.join(GATEWAY_KEY),
            issued.key_pem.as_bytes(),
            zone_io::KEY_MODE,
        )?;
        zone_io::write_new(
            &set_dir.join(GATEWAY_CERT),
            issued.chain_pem.as_bytes(),
            PUBLIC_MODE,
        )?;
    }
    match trust_pem(node) {
        Some(pem) => zone_io::write_new(&set_dir.join(TRUST_FILE), pem.as_bytes(), PUBLIC_MODE),
        None => Ok(()),
    }
}

/// Why the set in `set_dir` no longer fits the node's identities, if it does not.
pub fn trust_problem(node: &Node, set_dir: &Path) -> Option<String> {
    let want = trust_pem(node)?;
    if enforced_signer(node).is_some() {
        let gateway = std::fs::read_to_string(set_dir.join(GATEWAY_CERT));
        match gateway.as_deref().map(zone_pki::CertInfo::parse_pem) {
            Ok(Ok(leaf)) if leaf.subject_cn.is_empty() => {}
            _ => {
                return Some(
                    "no gateway certificate without a CN yet (etcd's --client-cert-file)".into(),
                )
            }
        }
    }
    match std::fs::read_to_string(set_dir.join(TRUST_FILE)) {
        Ok(have) if have == want => None,
        Ok(_) => Some("the client port's trust changed (the access policy's enforce)".into()),
        Err(_) => Some("no client port trust file yet".into()),
    }
}
