//! `zone-etcd issue-client`: a client certificate for a local service (the nameservice,
//! an operator's tool) from this node's CA, with CN = the service name so etcd's RBAC
//! (which maps a client certificate's CN to a user) can tell services apart.
//!
//! The certificate names the node (DNS SAN), so its node CA's name constraints bind it
//! to this node. Name constraints do not cover the CN, so the names that would let a
//! service speak as someone else are refused: `root` (etcd's superuser), the zone's peer
//! name, and the names of the zone's nodes.

use std::path::Path;

use time::format_description::well_known::Rfc3339;
use zone_io::{Staging, KEY_MODE, PUBLIC_MODE};
use zone_pki::profile::peer_name;
use zone_pki::{CertInfo, Error, LeafKind};

use crate::config::node::Node;

pub fn run(config: &Path, service: &str, out: &Path) -> Result<(), Error> {
    let node = Node::load(config)?;
    check_service_name(&node, service)?;
    let identity = node.identity();
    let issued = node
        .node_ca()
        .map_err(|e| e.file(config))?
        .authority
        .issue_leaf(LeafKind::Client, &identity, Some(service))?;
    let staging = Staging::new(out).map_err(|e| e.field("--out"))?;
    zone_io::write_new(
        &staging.path().join("ca.crt"),
        node.zone_ca_pem.as_bytes(),
        PUBLIC_MODE,
    )?;
    zone_io::write_new(
        &staging.path().join("client.crt"),
        issued.chain_pem.as_bytes(),
        PUBLIC_MODE,
    )?;
    zone_io::write_new(
        &staging.path().join("client.key"),
        issued.key_pem.as_bytes(),
        KEY_MODE,
    )?;
    staging.commit()?;
    let until = CertInfo::parse_pem(&issued.chain_pem)?
        .not_after
        .format(&Rfc3339)
        .unwrap_or_default();
    println!(
        "zone-etcd: issued a client certificate for {service} (CN={service}, RBAC user {service:?}) from the CA of {} into {}: ca.crt, client.crt, client.key; valid until {until}",
        node.name,
        out.display()
    );
    Ok(())
}

/// Refuses names etcd would map to a user this service must not be.
fn check_service_name(node: &Node, service: &str) -> Result<(), Error> {
    let fix = "choose the service's own name, e.g. --name nameservice";
    let valid = !service.is_empty()
        && service.len() <= 64
        && service
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
    if !valid {
        return Err(Error::new(format!(
            "{service:?} is not a service name (1-64 of a-z, 0-9, '-', '_', '.')"
        ))
        .field("--name")
        .fix(fix));
    }
    let why = if service == "root" {
        Some("etcd maps CN root to its superuser; a node must not mint it".to_string())
    } else if service == peer_name(&node.zone) {
        Some("it is the zone's peer name, which only peer certificates carry".to_string())
    } else if node.members.iter().any(|m| m.node_name == service) || service == node.name {
        Some("it is the name of a node of the zone (node certificates use it)".to_string())
    } else {
        None
    };
    match why {
        Some(why) => Err(Error::new(format!("refusing CN {service:?}: {why}"))
            .field("--name")
            .fix(fix)),
        None => Ok(()),
    }
}
