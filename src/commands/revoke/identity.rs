//! `zone-etcd revoke --ca CA_DIR --identity CERT_FILE --config NODE_FILE`: the owner
//! revokes one identity (issue 48): the leaf in the file goes on the zone's CRL under its
//! name, published as a node's revocation is ([`super::crl::publish_crl`]).
//!
//! Invariants: only a leaf of this zone's is taken (the client CA issued it, or a signer
//! in its chain that the client CA issued); a signer is refused, since everything its
//! member uses chains through it; the identity's etcd user stays (a new certificate for
//! it works); the identity is recorded in the zone's ledger with its expiry, so a later
//! revocation leaves it off the CRL once it expired.

use std::path::Path;

use time::OffsetDateTime;
use zone_pki::revocation::serial_hex;
use zone_pki::{CertInfo, Error};

use super::crl::{owner_root, publish_crl};
use crate::cluster_api;
use crate::config::node::Node;
use crate::identities::ledger;

/// `revoke --identity CERT_FILE`: the one identity in the file (the owner's `ca admin`
/// identity, a service instance's, a node's own) goes on the CRL under its name; its etcd
/// user stays (a new certificate for the same identity works). A signer (a CA) is
/// refused: everything its member uses chains through it.
pub fn run_identity(ca_dir: &Path, file: &Path, config: &Path) -> Result<(), Error> {
    let node = Node::load(config)?;
    let (root, roots) = owner_root(ca_dir, &node)?;
    let client_roots = crate::identities::ca::client_roots(ca_dir)?;
    let chain = zone_pki::encoding::parse_cert_chain(&zone_io::read_text(file)?)
        .map_err(|e| e.file(file).field("--identity"))?;
    let certs: Vec<CertInfo> = chain
        .iter()
        .map(|der| CertInfo::parse(der))
        .collect::<Result<_, _>>()
        .map_err(|e| e.file(file).field("--identity"))?;
    let name = identity_of(&certs, &client_roots).map_err(|why| {
        Error::new(why)
            .file(file)
            .field("--identity")
            .fix("give the client.crt of an identity of this zone: the owner's (zone-etcd ca admin), a service's (issue-client, env --service) or a node's own")
    })?;
    let leaf = &certs[0];
    let cluster = crate::access::ask_cluster(&node, config)?;
    let now = OffsetDateTime::now_utc();
    let number = publish_crl(
        ca_dir,
        &root,
        &roots,
        config,
        &cluster,
        &name,
        &[leaf.serial().to_vec()],
        now,
    )?;
    // In the ledger with its expiry (the owner's own identities are in no member's), so
    // a later revocation leaves it off the CRL once it expired.
    let entry = ledger::Entry {
        user: name.clone(),
        not_after: leaf
            .not_after
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        branch: None,
    };
    let endpoints = cluster.view.client_urls();
    cluster
        .runtime
        .block_on(async {
            let mut client =
                cluster_api::connect_many(&endpoints, &cluster.creds, cluster_api::REQUEST_TIMEOUT)
                    .await?;
            ledger::put_entry(&mut client, &name, &serial_hex(leaf.serial()), &entry).await
        })
        .unwrap_or_else(|reason| {
            tracing::warn!(
                "{name} is revoked, but its record in {} was not written ({reason}): it stays on later CRLs after it expires",
                ledger::PREFIX
            )
        });
    println!(
        "zone-etcd: revoked the identity {name} (serial {}): CRL number {number} published; every member refuses it at the handshake within seconds and cuts its open connections",
        serial_hex(leaf.serial())
    );
    Ok(())
}

/// The name of the identity at the head of `certs` when it is one of this zone's: a
/// leaf (no CA) a client root issued (the owner's), or that chains to one through the
/// CAs after it (a signer, and the branch for its node when the signer issues them).
fn identity_of(certs: &[CertInfo], client_roots: &[CertInfo]) -> Result<String, String> {
    let leaf = certs.first().ok_or("holds no certificate")?;
    if leaf.is_ca {
        return Err(format!(
            "{:?} is a CA (a signer): every identity its member uses chains through it, so it is revoked with its member (revoke --node), not alone",
            leaf.subject_cn
        ));
    }
    let by_root = client_roots.iter().any(|root| leaf.is_signed_by(root));
    let by_signer =
        (2..=certs.len()).any(|n| zone_pki::inspect::chains_to(&certs[..n], client_roots));
    if !(by_root || by_signer) {
        return Err(format!(
            "{:?} is not an identity of this zone: neither its client CA nor a signer it issued signed it",
            leaf.subject_cn
        ));
    }
    // A gateway certificate has no CN: its OU names the user it was issued for.
    match zone_pki::client::gateway_user(leaf) {
        Some(user) => Ok(user.to_string()),
        None => Ok(leaf.subject_cn.clone()),
    }
}
