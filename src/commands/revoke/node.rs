//! `revoke --node NODE_NAME`: the node's CAs and every identity the zone issued to it
//! go on the CRL ([`super::crl::publish_crl`]); a revoked member is then removed.

use std::path::Path;

use time::OffsetDateTime;
use zone_io::Error;
use zone_pki::revocation::{parse_serial_hex, serial_hex};
use zone_pki::CertInfo;

use super::crl::{owner_root, publish_crl};
use zone_etcd_kit::cluster_api;
use zone_model::config::check_dns_name;
use zone_node::identities::ledger;
use zone_node::node::Node;
use zone_node::revocation::issued;
use zone_node::revocation::kind::Kind;

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

    let cluster = zone_node::reach::ask_cluster(&node)?;
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
    // The ledger is etcd root's to write, not the owner's: a serial the owner's records
    // give to another node (its node CA, a member's signer) or that is a root of the zone
    // is never taken from it.
    let others = issued::others_than(ca_dir, target)?;
    let mut ours: Vec<Vec<u8>> = roots.iter().map(|r| r.serial().to_vec()).collect();
    ours.extend(client_roots(ca_dir));
    let identities: Vec<Vec<u8>> = identities
        .iter()
        .filter_map(|hex| {
            let Some(serial) = parse_serial_hex(hex) else {
                tracing::warn!("{}{target}/{hex}: not a serial; left out", ledger::PREFIX);
                return None;
            };
            let whose = others
                .get(&serial_hex(&serial))
                .map(|other| format!("a certificate the owner issued to {other}"))
                .or_else(|| ours.contains(&serial).then(|| "a root of the zone".to_string()));
            match whose {
                Some(whose) => {
                    eprintln!(
                        "zone-etcd: warning: {}{target}/{hex} names {whose}, not an identity of {target}: left out of the CRL (only etcd's root can write there: a member, the owner, or a certificate that was once root)",
                        ledger::PREFIX
                    );
                    None
                }
                None => Some(serial),
            }
        })
        .collect();
    // Its node CAs (the zone root's) are no client chain's under the client root; its
    // signer (a member's), branches and identities are.
    let mut serials: Vec<(Vec<u8>, Kind)> = cas
        .iter()
        .map(|c| (c.serial().to_vec(), Kind::of(c, &roots)))
        .collect();
    serials.extend(identities.iter().map(|s| (s.clone(), Kind::Client)));
    let number = publish_crl(
        ca_dir, &root, &roots, &node, &cluster, target, &serials, now,
    )?;
    let ca_serials: Vec<String> = cas.iter().map(|c| serial_hex(c.serial())).collect();
    println!(
        "zone-etcd: revoked {target} (node CA serial {}, and {} branch(es) and identity(ies) the members issued to it): CRL number {number} published; every member refuses them within seconds and cuts their open connections",
        ca_serials.join(", "),
        identities.len()
    );

    match zone_node::member_removal::find(&cluster.view, &node, target) {
        None => Ok(()),
        Some(member) => zone_node::member_removal::remove(&cluster, &member, target, force, config)
            .map_err(|e| {
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
            }),
    }
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

/// The serials of the CA directory's client CA (`client-ca.crt`, when it has one): no
/// ledger entry may revoke it.
fn client_roots(ca_dir: &Path) -> Vec<Vec<u8>> {
    std::fs::read_to_string(ca_dir.join(zone_node::identities::ca::CLIENT_CA_CERT))
        .ok()
        .and_then(|pem| CertInfo::parse_pem(&pem).ok())
        .map(|c| vec![c.serial().to_vec()])
        .unwrap_or_default()
}
