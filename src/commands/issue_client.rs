//! `zone-etcd issue-client`: a client certificate for a local service (the nameservice,
//! an operator's tool), written as `ca.crt`, `client.crt` and `client.key` (0600) into a
//! new `--out` directory, whole or not at all.
//!
//! In a zone with `[access]` (the node holds identities) the certificate is the service's
//! identity `<service>@<node>` from the zone's signers ([`zone_node::identities::request`]):
//! its key is made here and never sent, and a signer issues it only when the zone's
//! policy names this node for the service; a refusal is the one line the member gave.
//!
//! Without `[access]` it comes from this node's CA, with CN = the service name so etcd's
//! RBAC (which maps a client certificate's CN to a user) can tell services apart. The
//! certificate names the node (DNS SAN), so its node CA's name constraints bind it to
//! this node. Name constraints do not cover the CN, so the names that would let a service
//! speak as someone else are refused: `root` (etcd's superuser), the zone's peer name, and
//! the names of the zone's nodes.

use std::path::Path;

use time::format_description::well_known::Rfc3339;
use zone_io::Error;
use zone_io::{Staging, KEY_MODE, PUBLIC_MODE};
use zone_pki::{CertInfo, LeafKind};

use zone_node::identities::request;
use zone_node::identities::service::check_service_name;
use zone_node::node::Node;

pub fn run(config: &Path, service: &str, out: &Path) -> Result<(), Error> {
    let node = Node::load(config)?;
    check_service_name(&node, service)?;
    if node.identities.is_some() {
        return from_zone(&node, service, out);
    }
    let identity = node.identity();
    let issued = node
        .node_ca()
        .map_err(|e| e.file(config))?
        .authority
        .issue_leaf(LeafKind::Client, &identity, Some(service))?;
    let staging = Staging::new(out).map_err(|e| e.field("--out"))?;
    write_out(staging, &node, &issued.chain_pem, &issued.key_pem)?;
    println!(
        "zone-etcd: issued a client certificate for {service} (CN={service}, RBAC user {service:?}) from the CA of {} into {}: ca.crt, client.crt, client.key; valid until {}",
        node.name,
        out.display(),
        valid_until(&issued.chain_pem)?
    );
    Ok(())
}

/// The service's identity from the zone's signers (a zone with `[access]`).
fn from_zone(node: &Node, service: &str, out: &Path) -> Result<(), Error> {
    // Staged first: a used --out is refused before anything is asked, and a refusal
    // leaves nothing behind.
    let staging = Staging::new(out).map_err(|e| e.field("--out"))?;
    let obtained = request::obtain(node, Some(service))?;
    write_out(staging, node, &obtained.chain_pem, obtained.key_pem())?;
    println!(
        "zone-etcd: issued the identity {user} (etcd user {user:?}) for service {service} on {} by {} into {}: ca.crt, client.crt, client.key; valid until {}",
        node.name,
        obtained.from,
        out.display(),
        valid_until(&obtained.chain_pem)?,
        user = obtained.user,
    );
    Ok(())
}

/// Writes ca.crt (the zone roots: what verifies the members), client.crt and client.key
/// into `staging`, then makes it the --out directory.
fn write_out(staging: Staging, node: &Node, chain_pem: &str, key_pem: &str) -> Result<(), Error> {
    let files = [
        ("ca.crt", node.zone_ca_pem.as_str(), PUBLIC_MODE),
        ("client.crt", chain_pem, PUBLIC_MODE),
        ("client.key", key_pem, KEY_MODE),
    ];
    for (name, text, mode) in files {
        zone_io::write_new(&staging.path().join(name), text.as_bytes(), mode)?;
    }
    staging.commit().map(|_| ())
}

fn valid_until(chain_pem: &str) -> Result<String, Error> {
    Ok(CertInfo::parse_pem(chain_pem)?
        .not_after
        .format(&Rfc3339)
        .unwrap_or_default())
}
