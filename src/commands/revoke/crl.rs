//! The CRL's publication shared by `revoke --node` and `revoke --identity`: the owner's
//! root checked against the zone's, the next CRL (every revocation before, the new
//! serials, expired identities left off), its publication in one compare-and-put, and the
//! CA directory's copy.

use std::path::Path;

use etcd_client::{Compare, CompareOp, Txn, TxnOp};
use time::OffsetDateTime;
use zone_io::Error;
use zone_pki::revocation::RevokedCa;
use zone_pki::CertInfo;

use crate::identities::ledger;
use crate::node::Node;
use crate::revocation::doc::{Revocations, KEY};
use zone_etcd_kit::cluster_api::{self, Credentials};

/// The zone root in `ca_dir`, checked to be the one `node`'s zone trusts, and every root
/// the zone trusts (with a rotation's).
pub(super) fn owner_root(
    ca_dir: &Path,
    node: &Node,
) -> Result<(zone_pki::Authority, Vec<CertInfo>), Error> {
    let root = crate::commands::load_root(ca_dir, &node.zone)?;
    let trusted = zone_model::config::trust::trusted_roots(&node.zone_ca_pem)?;
    if !trusted.iter().any(|r| r.der() == root.cert_der().as_ref()) {
        return Err(Error::new(format!(
            "the root CA in {} is not the root this zone trusts (its nodes would refuse what it signs)",
            ca_dir.display()
        ))
        .field("--ca")
        .fix("point --ca to the zone's own CA directory (the one its bundles were activated from)"));
    }
    let roots = zone_model::config::trust::trusted_roots(
        &crate::commands::ca_rotation::trust_pem(ca_dir, &root)?,
    )?;
    Ok((root, roots))
}

/// Signs the next CRL (everything revoked before, and `serials` under `name`) and
/// publishes it in the zone, making room when a tenant filled the database; the CA
/// directory keeps it. Returns its number.
#[allow(clippy::too_many_arguments)]
pub(super) fn publish_crl(
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
    let ca_doc_path = ca_dir.join(crate::commands::CA_DOC);
    let ca_doc = if ca_doc_path.exists() {
        let doc = Revocations::parse(&zone_io::read_text(&ca_doc_path)?)
            .map_err(|e| e.file(&ca_doc_path))?;
        doc.verify(roots).map_err(|e| e.file(&ca_doc_path))?;
        Some(doc)
    } else {
        None
    };

    // Identities that expired since they were revoked leave the CRL: the handshake
    // refuses them anyway, and every connection rereads the CRL.
    let expired = cluster
        .runtime
        .block_on(async {
            let mut client =
                cluster_api::connect_many(&endpoints, &cluster.creds, cluster_api::REQUEST_TIMEOUT)
                    .await?;
            ledger::expired(&mut client, now).await
        })
        .unwrap_or_else(|reason| {
            tracing::warn!(
                "expired identities not read ({}): none left off the CRL: {reason}",
                ledger::PREFIX
            );
            Vec::new()
        });
    let gone: Vec<Vec<u8>> = expired.iter().map(|(_, s)| s.clone()).collect();
    let (number, mut entries) = next_list(zone_doc.as_ref(), ca_doc.as_ref(), name, serials, now);
    let before = entries.len();
    entries.retain(|(_, e)| !gone.contains(&e.serial) || serials.contains(&e.serial));
    if entries.len() < before {
        tracing::info!(
            "{} expired identity(ies) left off CRL number {number}",
            before - entries.len()
        );
    }
    let doc = Revocations::issue(root, number, &entries, now)?;

    let json = doc.to_json();
    // A tenant may have filled the database: the owner's emergency makes room first.
    crate::commands::maintain::with_room(config, || {
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
    // The expired entries' ledger records go too (best effort: the next revocation
    // finds any left).
    if !expired.is_empty() {
        let removed = cluster.runtime.block_on(async {
            let client =
                cluster_api::connect_many(&endpoints, &cluster.creds, cluster_api::REQUEST_TIMEOUT)
                    .await?;
            for (key, _) in &expired {
                let key = key.as_str();
                cluster_api::ask(&client, |mut c| async move { c.delete(key, None).await }).await?;
            }
            Ok::<(), String>(())
        });
        if let Err(reason) = removed {
            tracing::warn!(
                "expired identities' records not all removed from {}: {reason}",
                ledger::PREFIX
            );
        }
    }
    Ok(number)
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
/// the first of `endpoints` to answer, within [`cluster_api::CALL_DEADLINE`], asked again
/// only while etcd refuses it for its auth store's change (never applied: see
/// [`cluster_api::ask`]). A write whose outcome is unknown is not retried blindly: the
/// next run reads anew.
async fn publish(
    endpoints: &[String],
    creds: &Credentials,
    mod_revision: i64,
    json: &str,
) -> Result<(), String> {
    let client = cluster_api::connect_many(endpoints, creds, cluster_api::REQUEST_TIMEOUT).await?;
    let txn = Txn::new()
        .when([Compare::mod_revision(KEY, CompareOp::Equal, mod_revision)])
        .and_then([TxnOp::put(KEY, json, None)]);
    let response = cluster_api::txn(&client, txn).await?;
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
