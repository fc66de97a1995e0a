//! The CRL's publication shared by `revoke --node` and `revoke --identity`: the owner's
//! root checked against the zone's, the next CRL (every revocation before, the new
//! serials, expired identities left off), its publication in one compare-and-put, and the
//! CA directory's copy. In a zone at format level 2 the document says what each serial is
//! ([`Kind`]) and carries the client port's CRL without the node CAs; below, format 1.

use std::path::Path;

use etcd_client::{Compare, CompareOp, Txn, TxnOp};
use time::OffsetDateTime;
use zone_io::Error;
use zone_pki::revocation::RevokedCa;
use zone_pki::CertInfo;

use zone_etcd_kit::cluster_api::{self, Credentials};
use zone_node::identities::ledger;
use zone_node::node::Node;
use zone_node::revocation::doc::{format_for_level, Listed, Revocations, RevokedNode, KEY};
use zone_node::revocation::kind::Kind;

/// The zone root in `ca_dir`, checked to be the one `node`'s zone trusts, and every root
/// the zone trusts (with a rotation's).
pub(super) fn owner_root(
    ca_dir: &Path,
    node: &Node,
) -> Result<(zone_pki::Authority, Vec<CertInfo>), Error> {
    let root = zone_node::ca_dir::load_root(ca_dir, &node.zone)?;
    let trusted = zone_model::config::trust::trusted_roots(&node.zone_ca_pem)?;
    if !trusted.iter().any(|r| r.der() == root.cert_der().as_ref()) {
        return Err(Error::new(format!(
            "the root CA in {} is not the root this zone trusts (its nodes would refuse what it signs)",
            ca_dir.display()
        ))
        .field("--ca")
        .fix("point --ca to the zone's own CA directory (the one its bundles were activated from)"));
    }
    let roots =
        zone_model::config::trust::trusted_roots(&zone_node::ca_dir::trust_pem(ca_dir, &root)?)?;
    Ok((root, roots))
}

/// Signs the next CRL (everything revoked before, and `serials` under `name`, each with
/// its kind) and publishes it in the zone (`node`'s), making room when a tenant filled
/// the database; the CA directory keeps it. Returns its number.
#[allow(clippy::too_many_arguments)]
pub(super) fn publish_crl(
    ca_dir: &Path,
    root: &zone_pki::Authority,
    roots: &[CertInfo],
    node: &Node,
    cluster: &zone_node::reach::Cluster,
    name: &str,
    serials: &[(Vec<u8>, Kind)],
    now: OffsetDateTime,
) -> Result<u64, Error> {
    let config = &node.path;
    let endpoints = cluster.view.client_urls();
    let format =
        format_for_level(zone_level(node, roots, cluster).min(zone_node::this_build::writes()));
    let (published, mod_revision) = cluster
        .runtime
        .block_on(zone_node::revocation::published(
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
    let ca_doc_path = ca_dir.join(zone_node::ca_dir::CA_DOC);
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
    let recorded = recorded_kinds(ca_dir, roots)?;
    let old_kind = |named: &RevokedNode| {
        named
            .kind
            .clone()
            .unwrap_or_else(|| recorded.get(&named.serial).cloned().unwrap_or(Kind::Client))
    };
    let (number, mut entries) = next_list(
        (zone_doc.as_ref(), ca_doc.as_ref()),
        name,
        serials,
        now,
        old_kind,
    );
    let before = entries.len();
    entries.retain(|l| {
        !gone.contains(&l.entry.serial) || serials.iter().any(|(s, _)| *s == l.entry.serial)
    });
    if entries.len() < before {
        tracing::info!(
            "{} expired identity(ies) left off CRL number {number}",
            before - entries.len()
        );
    }
    let doc = Revocations::issue(root, number, &entries, now, format)?;

    let json = doc.to_json();
    // A tenant may have filled the database: the owner's emergency makes room first.
    zone_node::maintenance::reclaim::with_room(config, || {
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

/// The zone's format level as the owner's root signed it (1 when it cannot be read, or
/// does not bind: format 1 is read by every release).
fn zone_level(node: &Node, roots: &[CertInfo], cluster: &zone_node::reach::Cluster) -> u32 {
    use zone_model::release::{Level, LEVEL_KEY};
    let read = cluster.runtime.block_on(zone_node::revocation::read_key(
        &cluster.view.client_urls(),
        &cluster.creds,
        LEVEL_KEY,
        false,
    ));
    match read {
        Ok((Some(text), _)) => match Level::binding(&text, &node.zone, roots) {
            Ok(level) => level.level,
            Err(e) => {
                tracing::warn!("{LEVEL_KEY}: {e}: the revocations are written in format 1");
                1
            }
        },
        Ok((None, _)) => 1,
        Err(reason) => {
            tracing::warn!(
                "{LEVEL_KEY} not read ({reason}): the revocations are written in format 1"
            );
            1
        }
    }
}

/// The kind of every certificate the owner recorded as issued (by serial): what a
/// format-1 document's serials are, when the owner issued them.
fn recorded_kinds(
    ca_dir: &Path,
    roots: &[CertInfo],
) -> Result<std::collections::BTreeMap<Vec<u8>, Kind>, Error> {
    Ok(zone_node::revocation::issued::all(ca_dir)?
        .into_iter()
        .map(|(_, cert)| (cert.serial().to_vec(), Kind::of(&cert, roots)))
        .collect())
}

/// The next CRL: one above every number seen, listing every serial revoked before (by
/// the zone or this CA directory, each with `old_kind`) and `serials` (kept at their
/// first revocation time).
fn next_list(
    (zone, ca): (Option<&Revocations>, Option<&Revocations>),
    target: &str,
    serials: &[(Vec<u8>, Kind)],
    now: OffsetDateTime,
    old_kind: impl Fn(&RevokedNode) -> Kind,
) -> (u64, Vec<Listed>) {
    let number = zone
        .iter()
        .chain(ca.iter())
        .map(|d| d.crl.number)
        .max()
        .unwrap_or(0)
        + 1;
    let mut entries: Vec<Listed> = Vec::new();
    let mut add = |node: &str, entry: RevokedCa, kind: Kind| {
        if !entries.iter().any(|l| l.entry.serial == entry.serial) {
            entries.push(Listed {
                node: node.to_string(),
                entry,
                kind,
            });
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
            let entry = RevokedCa {
                serial: named.serial.clone(),
                revoked_at: at,
            };
            add(&named.node, entry, old_kind(named));
        }
    }
    for (serial, kind) in serials {
        let entry = RevokedCa {
            serial: serial.clone(),
            revoked_at: now,
        };
        add(target, entry, kind.clone());
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
    use zone_pki::Authority;

    /// A node CA of `name` from `root`, as read back (as zone-node's revocation tests make
    /// one: their helper is compiled for zone-node's own tests only).
    fn node_ca(root: &Authority, name: &str) -> CertInfo {
        let ca = root
            .issue_node_ca(&zone_pki::NodeIdentity {
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
        let listed: Vec<Listed> = entries
            .iter()
            .map(|(node, entry)| Listed {
                node: node.clone(),
                entry: entry.clone(),
                kind: Kind::NodeCa,
            })
            .collect();
        Revocations::issue(root, number, &listed, OffsetDateTime::now_utc(), 1).unwrap()
    }

    /// What a format-1 document's serial is, in these tests: a node CA.
    fn as_recorded(_: &RevokedNode) -> Kind {
        Kind::NodeCa
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
            (Some(&zone), Some(&ca)),
            "phone.example.zone",
            &[(phone.serial().to_vec(), Kind::Client)],
            now,
            as_recorded,
        );
        assert_eq!(number, 5);
        assert_eq!(entries.len(), 2);
        // Kept from the zone's CRL (which holds whole seconds).
        assert_eq!(entries[0].node, "laptop.example.zone");
        assert_eq!(entries[0].entry.serial, first.serial);
        assert_eq!(
            entries[0].entry.revoked_at.unix_timestamp(),
            then.unix_timestamp()
        );
        assert_eq!(
            entries[0].kind,
            Kind::NodeCa,
            "a format-1 serial: as recorded"
        );
        assert_eq!(entries[1].node, "phone.example.zone");
        assert_eq!(entries[1].kind, Kind::Client);
        // Revoking the laptop again: a fresh number, its first revocation time kept.
        let (number, again) = next_list(
            (Some(&zone), None),
            "laptop.example.zone",
            &[(laptop.serial().to_vec(), Kind::NodeCa)],
            now,
            as_recorded,
        );
        assert_eq!(number, 5);
        assert_eq!(again.len(), 1);
        assert_eq!(
            again[0].entry.revoked_at.unix_timestamp(),
            then.unix_timestamp()
        );
        // Nothing before: number 1.
        assert_eq!(
            next_list(
                (None, None),
                "phone.example.zone",
                &[(phone.serial().to_vec(), Kind::Client)],
                now,
                as_recorded,
            )
            .0,
            1
        );
    }
}
