//! `zone-etcd activate --ca CA_DIR --zone ZONE_FILE --request REQUEST_FILE --out
//! ANSWER_DIR`, on the owner's machine: a node's bundle without its key, for the key the
//! node's request carries.
//!
//! Invariants: the request's signature is verified before anything else is believed of
//! it; its node name must be a member of the zone file or a name under the zone's name,
//! and pass the checks `activate --node` applies; the node CA says what the zone file
//! gives for that name (members, address, name constraints), never what the request
//! asks; ANSWER_DIR holds node.toml, pki/ca.crt and pki/node.crt, and no key (in a zone
//! with `[access]` also pki/client-ca.crt, and for a member pki/signer.crt: its signer,
//! issued for the request's key, recorded in the CA directory like its node CA).

use std::path::Path;

use zone_io::Error;
use zone_io::Staging;
use zone_pki::NodeRequest;

use zone_model::config::zone::{is_parent_domain, Zone};
use zone_node::bundle::{node_identity, write_answer};

pub fn run(
    ca_dir: &Path,
    zone_file: &Path,
    request_file: &Path,
    nameservice: Option<&str>,
    out: &Path,
) -> Result<(), Error> {
    let zone = zone_node::ca_dir::zone_defaults::load_zone(zone_file, ca_dir)?;
    let request = NodeRequest::from_pem(&zone_io::read_text(request_file)?)
        .map_err(|e| e.file(request_file))?;
    let node_name = request.node_name();
    check_requested_name(&zone, zone_file, node_name).map_err(|e| e.file(request_file))?;
    let members = super::member_list(nameservice)?;
    let root = zone_node::ca_dir::load_root(ca_dir, &zone.name)?;
    let trust = zone_node::ca_dir::trust_pem(ca_dir, &root)?;
    let identity = node_identity(&zone, node_name);
    // The output directory is checked before the CA directory records anything.
    let staging = Staging::new(out)?;
    let node_ca = root.issue_node_ca_for(&identity, &request)?;
    zone_node::revocation::issued::record(ca_dir, node_name, &node_ca)?;
    // A member's signer is issued for its request's key: no key travels with the answer.
    let client_root = zone_node::bundle::client_root(ca_dir, &zone)?;
    let signer = if identity.member {
        zone_node::identities::ca::SignerFor::Request(&request)
    } else {
        zone_node::identities::ca::SignerFor::NoSigner
    };
    let client = client_root.as_ref().map(|root| (root, signer));
    write_answer(
        staging.path(),
        &trust,
        &node_ca,
        &zone,
        node_name,
        members,
        client,
    )?;
    if client_root.is_some() && identity.member {
        // Recorded like the node CA, so that `revoke` puts it on the CRL with its node.
        let chain =
            zone_io::read_text(&staging.path().join(zone_node::identities::ca::SIGNER_FILE))?;
        zone_node::revocation::issued::record(ca_dir, node_name, &chain)?;
    }
    staging.commit()?;
    let (role, _) = super::role_and_next_step(identity.member, out, None);
    eprintln!(
        "zone-etcd: answered the request of {node_name} (key SHA-256 {}) as {role}: {} holds node.toml, pki/ca.crt and pki/node.crt, no key; carry it to the node, which runs `zone-etcd activate install --request REQ_DIR --answer ANSWER_DIR --out BUNDLE_DIR` (zone root SHA-256 {})",
        request.key_fingerprint_hex(),
        out.display(),
        root_fingerprint(&root)?,
    );
    Ok(())
}

/// Refuses a requested node name the zone file does not allow: a member of the zone, or
/// a client-only node named under the zone's name, and nothing `activate --node` refuses.
fn check_requested_name(zone: &Zone, zone_file: &Path, node_name: &str) -> Result<(), Error> {
    let field = "subject CN";
    if zone.member(node_name).is_none() && !is_parent_domain(&zone.name, node_name) {
        return Err(Error::new(format!(
            "the request asks for node {node_name:?}, which is neither a member of zone {:?} ({}) nor a name under it",
            zone.name,
            zone_file.display()
        ))
        .field(field)
        .fix(format!(
            "add {node_name} to the zone file as an [[etcd]] member, or have the node make a new request for a name under {} (zone-etcd activate request --node <name>.{})",
            zone.name, zone.name
        )));
    }
    super::check_node_name_in(zone, node_name, field)
}

/// The SHA-256 of the zone root's certificate (DER), lowercase hex.
fn root_fingerprint(root: &zone_pki::Authority) -> Result<String, Error> {
    Ok(zone_pki::CertInfo::parse(root.cert_der())?.fingerprint_hex())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_may_name_a_member_or_a_node_under_the_zone_only() {
        let file = Path::new("zone.toml");
        let zone = Zone::parse(
            file,
            "name = \"example.zone\"\n[[etcd]]\nnode_name = \"node1.example.zone\"\naddress = \"10.0.0.1\"\n",
        )
        .unwrap();
        check_requested_name(&zone, file, "node1.example.zone").unwrap();
        check_requested_name(&zone, file, "laptop.example.zone").unwrap();
        for outside in ["node1.other.zone", "example.zone", "zone", "xexample.zone"] {
            let err = check_requested_name(&zone, file, outside).unwrap_err();
            assert!(err.problem().contains(&format!("{outside:?}")), "{err}");
            assert!(
                err.fix_text()
                    .is_some_and(|f| f.contains("activate request")),
                "{err}"
            );
        }
        // What `activate --node` refuses, a request may not ask either.
        for refused in ["etcd-peer.example.zone", "Node2.example.zone"] {
            let err = check_requested_name(&zone, file, refused).unwrap_err();
            assert_eq!(err.field_name(), Some("subject CN"), "{err}");
        }
    }
}
