//! `zone-etcd revoke --ca CA_DIR --identity CERT_FILE --config NODE_FILE`: the owner
//! revokes one identity (issue 48): the leaf in the file goes on the zone's CRL under its
//! name, published as a node's revocation is ([`super::crl::publish_crl`]).
//!
//! Invariants: only a certificate of this zone's is taken (an identity the client CA
//! issued, or that chains to it through the CAs after it; a member's signer or a branch,
//! with everything they signed); a client root is refused (roots are rotated); the identity's etcd user stays (a new certificate for
//! it works); the identity is recorded in the zone's ledger with its expiry, so a later
//! revocation leaves it off the CRL once it expired.

use std::path::Path;

use time::OffsetDateTime;
use zone_io::Error;
use zone_pki::revocation::serial_hex;
use zone_pki::CertInfo;

use super::crl::{owner_root, publish_crl};
use zone_etcd_kit::cluster_api;
use zone_node::identities::ledger;
use zone_node::node::Node;

/// `revoke --identity CERT_FILE`: the one identity in the file (the owner's `ca admin`
/// identity, a service instance's, a node's own) goes on the CRL under its name; its etcd
/// user stays (a new certificate for the same identity works). A member's signer goes with
/// every identity it signed, its member's own: the member needs a new one (re-activation).
pub fn run_identity(ca_dir: &Path, file: &Path, config: &Path) -> Result<(), Error> {
    let node = Node::load(config)?;
    let (root, roots) = owner_root(ca_dir, &node)?;
    let client_roots = zone_node::identities::ca::client_roots(ca_dir)?;
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
    let cluster = zone_node::reach::ask_cluster(&node)?;
    let now = OffsetDateTime::now_utc();
    let kind = zone_node::revocation::kind::Kind::of(leaf, &roots);
    let number = publish_crl(
        ca_dir,
        &root,
        &roots,
        &node,
        &cluster,
        &name,
        &[(leaf.serial().to_vec(), kind)],
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
    // A gateway certificate's password ends with it (issue 68): it would authenticate
    // with any other CN-less certificate of the zone.
    let password = match zone_pki::client::gateway_user(leaf) {
        None => String::new(),
        Some(user) => match cluster.runtime.block_on(end_password(&cluster, user)) {
            Ok(()) => format!(" Its gateway password no longer authenticates: the node's next `zone-etcd env --service {} --gateway` makes a new one.", user.split('@').next().unwrap_or(user)),
            Err(reason) => {
                return Err(Error::new(format!(
                    "{name}'s gateway certificate is revoked (CRL number {number}), but its password still authenticates: {reason}"
                ))
                .file(config)
                .fix("run the same command again once the zone answers (zone-etcd status)"))
            }
        },
    };
    let signed = match zone_pki::client::signer_of(leaf) {
        Some(member) => format!(" The member's signer and every identity it signed are refused, the member's own included: it issues nothing until it has a new signer. Re-activate it (zone-etcd activate --ca {} --zone ZONE_FILE --node {member} --out NEW_BUNDLE), put NEW_BUNDLE/pki/signer.crt and signer.key in place of its own and restart it; the zone's other nodes get new identities from the other members.", ca_dir.display()),
        None if leaf.is_ca => " Every identity it signed is refused; its member signs that node new ones under a new branch.".to_string(),
        None => String::new(),
    };
    println!(
        "zone-etcd: revoked the identity {name} (serial {}): CRL number {number} published; every member refuses it at the handshake within seconds and cuts its open connections.{password}{signed}",
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
        // A member's signer (pki/signer.crt) or a branch: every identity it signed goes
        // with it. A client root is not revoked but rotated.
        if leaf.is_self_issued() {
            return Err(format!(
                "{:?} is a root: the zone's roots are rotated (zone-etcd ca rotate), not revoked",
                leaf.subject_cn
            ));
        }
        if !zone_pki::inspect::chains_to(certs, client_roots) {
            return Err(format!(
                "{:?} is not a signer of this zone: its client CA did not sign it",
                leaf.subject_cn
            ));
        }
        return Ok(leaf.subject_cn.clone());
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

/// Ends `user`'s gateway password: a random one no one holds (never written nor printed;
/// its mark stays, so the keepers leave it, and the node's next `env` sets a new one).
async fn end_password(cluster: &zone_node::reach::Cluster, user: &str) -> Result<(), String> {
    let endpoints = cluster.view.client_urls();
    let mut client =
        cluster_api::connect_many(&endpoints, &cluster.creds, cluster_api::REQUEST_TIMEOUT).await?;
    let unknown = zone_node::identities::password::random_password();
    let mut tries = 0;
    loop {
        let changed = cluster_api::within(async {
            client
                .user_change_password(user.to_string(), unknown.clone())
                .await
                .map(drop)
                .map_err(cluster_api::EtcdError::from)
        })
        .await;
        match changed {
            // The auth store moved meanwhile (the keepers apply): asked again.
            Err(e) if e.kind() == cluster_api::Kind::AuthOldRevision && tries < 20 => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            other => return other.map_err(|e| format!("changing {user}'s password: {e}")),
        }
    }
}
