//! `zone-etcd revoke --ca CA_DIR --node NODE_NAME --config NODE_FILE`: the owner locks a
//! node out of the zone. Every node CA the CA directory issued to the node (and any given
//! with `--node-ca`) goes on a new CRL signed by the zone root, with a CRL number above
//! every one before; the CRL is published in the running zone ([`KEY`]), where each
//! member's keeper installs it and cuts the connections opened before it
//! ([`crate::revocation`]). Then a revoked member is removed from the cluster, with the
//! safety rules of `leave --node`.
//!
//! Invariants: everything is checked before anything is written; the publication is one
//! transaction that succeeds only when the zone's document is still the one read (two
//! owners' revocations never overwrite each other); the CA directory keeps the last
//! document it published (`revocations.json`), so a number never repeats even when the
//! zone's copy was lost; revoking a node revoked before signs a fresh CRL (the way to
//! renew one past its next update).

use std::path::Path;

use etcd_client::{Compare, CompareOp, Txn, TxnOp};
use time::OffsetDateTime;
use zone_pki::revocation::{parse_serial_hex, serial_hex, RevokedCa};
use zone_pki::{CertInfo, Error};

use crate::cluster_api::{self, Credentials};
use crate::config::check_dns_name;
use crate::config::node::Node;
use crate::identities::ledger;
use crate::revocation::doc::{Revocations, KEY};
use crate::revocation::issued;

/// The last document this CA directory published.
pub const CA_DOC: &str = "revocations.json";

pub fn run(
    ca_dir: &Path,
    target: &str,
    config: &Path,
    node_ca_files: &[std::path::PathBuf],
    force: bool,
) -> Result<(), Error> {
    let node = Node::load(config)?;
    check_dns_name(target).map_err(|p| {
        Error::new(format!("node name {p}"))
            .field("--node")
            .fix("give the node's name, e.g. laptop.example.zone")
    })?;
    if target == node.name {
        return Err(Error::new(format!(
            "--config is the bundle of {target}, the node being revoked: its certificates stop working the moment the revocation takes effect"
        ))
        .file(config)
        .fix("pass the node.toml of another node of the zone (any member's or client's bundle)"));
    }
    let (root, roots) = owner_root(ca_dir, &node)?;
    let cas = node_cas(ca_dir, target, node_ca_files, &roots)?;

    let cluster = crate::access::ask_cluster(&node, config)?;
    let endpoints = cluster.view.client_urls();
    let now = OffsetDateTime::now_utc();
    // Every identity the members' signers issued to the node (its own, its services'
    // instances) goes on the CRL with its node CAs: refused at the handshake.
    let identities = cluster
        .runtime
        .block_on(async {
            let mut client =
                cluster_api::connect_many(&endpoints, &cluster.creds, cluster_api::REQUEST_TIMEOUT)
                    .await?;
            ledger::issued_to(&mut client, target, now).await
        })
        .map_err(|reason| {
            Error::new(format!(
                "cannot read the identities the zone issued to {target} ({}): {reason}",
                ledger::PREFIX
            ))
            .file(config)
            .fix("see zone-etcd status: a quorum must answer; --config must be a member's node.toml (its identity reads zone-etcd's keys)")
        })?;
    let identities: Vec<Vec<u8>> = identities
        .iter()
        .filter_map(|hex| {
            let serial = parse_serial_hex(hex);
            if serial.is_none() {
                tracing::warn!("{}{target}/{hex}: not a serial; left out", ledger::PREFIX);
            }
            serial
        })
        .collect();
    let mut serials: Vec<Vec<u8>> = cas.iter().map(|c| c.serial().to_vec()).collect();
    serials.extend(identities.iter().cloned());
    let number = publish_crl(
        ca_dir, &root, &roots, config, &cluster, target, &serials, now,
    )?;
    let ca_serials: Vec<String> = cas.iter().map(|c| serial_hex(c.serial())).collect();
    println!(
        "zone-etcd: revoked {target} (node CA serial {}, and {} identity(ies) the members issued to it): CRL number {number} published; every member refuses them within seconds and cuts their open connections",
        ca_serials.join(", "),
        identities.len()
    );

    match super::leave::find(&cluster.view, &node, target) {
        None => Ok(()),
        Some(member) => {
            super::leave::remove(&cluster, &member, target, force, config).map_err(|e| {
                Error::new(format!(
                "{target} is revoked (CRL number {number} is in force), but is still a member: {}",
                e.problem()
            ))
                .field("--node")
                .fix(format!(
                    "{}; then zone-etcd leave --config {} --node {target}",
                    e.fix_text().unwrap_or("see zone-etcd status"),
                    config.display()
                ))
            })
        }
    }
}

/// `revoke --identity CERT_FILE`: the one identity in the file (the owner's `ca admin`
/// identity, a service instance's, a node's own) goes on the CRL under its name; its etcd
/// user stays (a new certificate for the same identity works). A signer (a CA) is
/// refused: everything its member uses chains through it.
pub fn run_identity(ca_dir: &Path, file: &Path, config: &Path) -> Result<(), Error> {
    let node = Node::load(config)?;
    let (root, roots) = owner_root(ca_dir, &node)?;
    let client_root = CertInfo::parse_pem(&zone_io::read_text(
        &ca_dir.join(crate::identities::ca::CLIENT_CA_CERT),
    )?)
    .map_err(|e| e.file(ca_dir.join(crate::identities::ca::CLIENT_CA_CERT)))?;
    let chain = zone_pki::encoding::parse_cert_chain(&zone_io::read_text(file)?)
        .map_err(|e| e.file(file).field("--identity"))?;
    let certs: Vec<CertInfo> = chain
        .iter()
        .map(|der| CertInfo::parse(der))
        .collect::<Result<_, _>>()
        .map_err(|e| e.file(file).field("--identity"))?;
    let name = identity_of(&certs, &client_root).map_err(|why| {
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
    println!(
        "zone-etcd: revoked the identity {name} (serial {}): CRL number {number} published; every member refuses it at the handshake within seconds and cuts its open connections",
        serial_hex(leaf.serial())
    );
    Ok(())
}

/// The name of the identity at the head of `certs` when it is one of this zone's: a
/// leaf (no CA) the client root issued (the owner's), or that a signer in the chain
/// issued, itself issued by the client root.
fn identity_of(certs: &[CertInfo], client_root: &CertInfo) -> Result<String, String> {
    let leaf = certs.first().ok_or("holds no certificate")?;
    if leaf.is_ca {
        return Err(format!(
            "{:?} is a CA (a signer): every identity its member uses chains through it, so it is revoked with its member (revoke --node), not alone",
            leaf.subject_cn
        ));
    }
    let by_root = leaf.is_signed_by(client_root);
    let by_signer = certs[1..]
        .iter()
        .any(|ca| ca.is_ca && leaf.is_signed_by(ca) && ca.is_signed_by(client_root));
    if !(by_root || by_signer) {
        return Err(format!(
            "{:?} is not an identity of this zone: neither its client CA nor a signer it issued signed it",
            leaf.subject_cn
        ));
    }
    Ok(leaf.subject_cn.clone())
}

/// The zone root in `ca_dir`, checked to be the one `node`'s zone trusts, and every root
/// the zone trusts (with a rotation's).
fn owner_root(ca_dir: &Path, node: &Node) -> Result<(zone_pki::Authority, Vec<CertInfo>), Error> {
    let root = super::load_root(ca_dir, &node.zone)?;
    let trusted = crate::config::trust::trusted_roots(&node.zone_ca_pem)?;
    if !trusted.iter().any(|r| r.der() == root.cert_der().as_ref()) {
        return Err(Error::new(format!(
            "the root CA in {} is not the root this zone trusts (its nodes would refuse what it signs)",
            ca_dir.display()
        ))
        .field("--ca")
        .fix("point --ca to the zone's own CA directory (the one its bundles were activated from)"));
    }
    let roots =
        crate::config::trust::trusted_roots(&super::ca_rotation::trust_pem(ca_dir, &root)?)?;
    Ok((root, roots))
}

/// Signs the next CRL (everything revoked before, and `serials` under `name`) and
/// publishes it in the zone, making room when a tenant filled the database; the CA
/// directory keeps it. Returns its number.
#[allow(clippy::too_many_arguments)]
fn publish_crl(
    ca_dir: &Path,
    root: &zone_pki::Authority,
    roots: &[CertInfo],
    config: &Path,
    cluster: &crate::access::Cluster,
    name: &str,
    serials: &[Vec<u8>],
    now: OffsetDateTime,
) -> Result<u64, Error> {
    let endpoints = cluster.view.client_urls();
    let (published, mod_revision) = cluster
        .runtime
        .block_on(crate::revocation::published(
            &endpoints,
            &cluster.creds,
            false,
        ))
        .map_err(|reason| {
            Error::new(format!(
                "cannot read the zone's revocations ({KEY}): {reason}"
            ))
            .file(config)
            .fix("see zone-etcd status: a quorum must answer")
        })?;
    let zone_doc = published.and_then(|text| match Revocations::parse(&text) {
        Ok(doc) if doc.verify(roots).is_ok() => Some(doc),
        _ => {
            tracing::warn!("the document at {KEY} is not signed by this zone root: replacing it");
            None
        }
    });
    let ca_doc_path = ca_dir.join(CA_DOC);
    let ca_doc = if ca_doc_path.exists() {
        let doc = Revocations::parse(&zone_io::read_text(&ca_doc_path)?)
            .map_err(|e| e.file(&ca_doc_path))?;
        doc.verify(roots).map_err(|e| e.file(&ca_doc_path))?;
        Some(doc)
    } else {
        None
    };

    let (number, entries) = next_list(zone_doc.as_ref(), ca_doc.as_ref(), name, serials, now);
    let doc = Revocations::issue(root, number, &entries, now)?;

    let json = doc.to_json();
    // A tenant may have filled the database: the owner's emergency makes room first.
    super::maintain::with_room(config, || {
        cluster
            .runtime
            .block_on(publish(&endpoints, &cluster.creds, mod_revision, &json))
            .map_err(|reason| {
                Error::new(format!(
                    "the zone did not take CRL number {number}: {reason}"
                ))
                .file(config)
                .fix("run zone-etcd revoke again (it reads the zone's revocations anew)")
            })
    })?;
    zone_io::write_atomic(&ca_doc_path, json.as_bytes(), zone_io::PUBLIC_MODE)?;
    Ok(number)
}

/// The node CAs to revoke: those recorded as issued to `target`, and those given, each
/// checked to be a node CA for `target` from one of `roots`.
fn node_cas(
    ca_dir: &Path,
    target: &str,
    files: &[std::path::PathBuf],
    roots: &[CertInfo],
) -> Result<Vec<CertInfo>, Error> {
    let mut cas = issued::issued_to(ca_dir, target)?;
    for file in files {
        let info = CertInfo::parse_pem(&zone_io::read_text(file)?).map_err(|e| e.file(file))?;
        if !info.is_ca || info.subject_cn != target || !roots.iter().any(|r| info.is_signed_by(r)) {
            return Err(Error::new(format!(
                "not a node CA of {target} issued by this zone root (it names {:?})",
                info.subject_cn
            ))
            .file(file)
            .field("--node-ca")
            .fix("give pki/node.crt from the node's bundle"));
        }
        if !cas.iter().any(|c| c.serial() == info.serial()) {
            cas.push(info);
        }
    }
    if cas.is_empty() {
        return Err(Error::new(format!(
            "no node CA issued to {target} is recorded in {}",
            issued::dir_of(ca_dir, target).display()
        ))
        .field("--node")
        .fix("check the node name; for a node activated before zone-etcd kept these records, pass --node-ca with pki/node.crt of its bundle"));
    }
    Ok(cas)
}

/// The next CRL: one above every number seen, listing every node CA revoked before (by
/// the zone or this CA directory) and `cas` (kept at their first revocation time).
fn next_list(
    zone: Option<&Revocations>,
    ca: Option<&Revocations>,
    target: &str,
    serials: &[Vec<u8>],
    now: OffsetDateTime,
) -> (u64, Vec<(String, RevokedCa)>) {
    let number = zone
        .iter()
        .chain(ca.iter())
        .map(|d| d.crl.number)
        .max()
        .unwrap_or(0)
        + 1;
    let mut entries: Vec<(String, RevokedCa)> = Vec::new();
    let mut add = |node: &str, entry: RevokedCa| {
        if !entries.iter().any(|(_, e)| e.serial == entry.serial) {
            entries.push((node.to_string(), entry));
        }
    };
    for doc in zone.iter().chain(ca.iter()) {
        for named in &doc.nodes {
            let at = doc
                .crl
                .entries
                .iter()
                .find(|e| e.serial == named.serial)
                .map_or(now, |e| e.revoked_at);
            add(
                &named.node,
                RevokedCa {
                    serial: named.serial.clone(),
                    revoked_at: at,
                },
            );
        }
    }
    for serial in serials {
        add(
            target,
            RevokedCa {
                serial: serial.clone(),
                revoked_at: now,
            },
        );
    }
    (number, entries)
}

/// Puts the document if the key is still at `mod_revision` (0: still absent), through
/// the first of `endpoints` to answer, within [`cluster_api::CALL_DEADLINE`]. A write
/// whose outcome is unknown is not retried blindly: the next run reads anew.
async fn publish(
    endpoints: &[String],
    creds: &Credentials,
    mod_revision: i64,
    json: &str,
) -> Result<(), String> {
    let mut client =
        cluster_api::connect_many(endpoints, creds, cluster_api::REQUEST_TIMEOUT).await?;
    let txn = Txn::new()
        .when([Compare::mod_revision(KEY, CompareOp::Equal, mod_revision)])
        .and_then([TxnOp::put(KEY, json, None)]);
    let response =
        cluster_api::within(async { client.txn(txn).await.map_err(|e| cluster_api::describe(&e)) })
            .await?;
    if response.succeeded() {
        Ok(())
    } else {
        Err("another revocation was published meanwhile".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zone_pki::{Authority, NodeIdentity};

    fn node_ca(root: &Authority, name: &str) -> CertInfo {
        let ca = root
            .issue_node_ca(&NodeIdentity {
                zone: "example.zone".into(),
                node_name: name.into(),
                address: None,
                member: false,
                tunneled: false,
            })
            .unwrap();
        CertInfo::parse(ca.cert_der()).unwrap()
    }

    fn doc(root: &Authority, number: u64, entries: &[(String, RevokedCa)]) -> Revocations {
        Revocations::issue(root, number, entries, OffsetDateTime::now_utc()).unwrap()
    }

    #[test]
    fn the_next_list_keeps_every_revocation_and_numbers_above_all() {
        let root = Authority::new_root("example.zone").unwrap();
        let laptop = node_ca(&root, "laptop.example.zone");
        let phone = node_ca(&root, "phone.example.zone");
        let then = OffsetDateTime::now_utc() - time::Duration::days(3);
        let now = OffsetDateTime::now_utc();
        let first = RevokedCa {
            serial: laptop.serial().to_vec(),
            revoked_at: then,
        };
        let zone = doc(&root, 4, &[("laptop.example.zone".into(), first.clone())]);
        // The CA directory's copy is older than the zone's (published from elsewhere).
        let ca = doc(&root, 2, &[]);
        let (number, entries) = next_list(
            Some(&zone),
            Some(&ca),
            "phone.example.zone",
            &[phone.serial().to_vec()],
            now,
        );
        assert_eq!(number, 5);
        assert_eq!(entries.len(), 2);
        // Kept from the zone's CRL (which holds whole seconds).
        assert_eq!(entries[0].0, "laptop.example.zone");
        assert_eq!(entries[0].1.serial, first.serial);
        assert_eq!(
            entries[0].1.revoked_at.unix_timestamp(),
            then.unix_timestamp()
        );
        assert_eq!(entries[1].0, "phone.example.zone");
        // Revoking the laptop again: a fresh number, its first revocation time kept.
        let (number, again) = next_list(
            Some(&zone),
            None,
            "laptop.example.zone",
            &[laptop.serial().to_vec()],
            now,
        );
        assert_eq!(number, 5);
        assert_eq!(again.len(), 1);
        assert_eq!(
            again[0].1.revoked_at.unix_timestamp(),
            then.unix_timestamp()
        );
        // Nothing before: number 1.
        assert_eq!(
            next_list(
                None,
                None,
                "phone.example.zone",
                &[phone.serial().to_vec()],
                now
            )
            .0,
            1
        );
    }
}
