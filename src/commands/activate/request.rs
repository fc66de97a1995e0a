//! `zone-etcd activate request --node NODE_NAME --out REQ_DIR`, on the node: the node
//! CA's key and a PKCS#10 request for it, for the owner to answer.
//!
//! Invariants: the key is made here and written once, to `REQ_DIR/node.key` (0600) in a
//! private (0700) directory that appears whole or not at all; it is never printed, and
//! `request.csr` holds only the node name and the public key, signed with the key.

use std::path::Path;

use zone_io::Error;
use zone_io::{Staging, KEY_MODE, PUBLIC_MODE};
use zone_pki::NodeRequest;

use zone_model::config::check_dns_name;

/// The files of a request directory.
pub const KEY_FILE: &str = "node.key";
pub const REQUEST_FILE: &str = "request.csr";

pub fn run(node_name: &str, out: &Path) -> Result<(), Error> {
    check_dns_name(node_name).map_err(|p| {
        Error::new(p)
            .field("--node")
            .fix("give the node's DNS name, e.g. node1.example.zone")
    })?;
    let staging = Staging::new(out)?;
    let new = zone_pki::request::new_request(node_name)?;
    let fingerprint = NodeRequest::from_pem(&new.csr_pem)?.key_fingerprint_hex();
    zone_io::write_new(
        &staging.path().join(KEY_FILE),
        new.key_pem().as_bytes(),
        KEY_MODE,
    )?;
    zone_io::write_new(
        &staging.path().join(REQUEST_FILE),
        new.csr_pem.as_bytes(),
        PUBLIC_MODE,
    )?;
    staging.commit()?;
    eprintln!(
        "zone-etcd: made the key of {node_name}'s node CA in {key} (it stays on this machine) and its request in {csr} (key SHA-256 {fingerprint}); give request.csr to the zone's owner, who answers with `zone-etcd activate --ca CA_DIR --zone ZONE_FILE --request request.csr --out ANSWER_DIR`; then run here `zone-etcd activate install --request {dir} --answer ANSWER_DIR --out BUNDLE_DIR`",
        key = out.join(KEY_FILE).display(),
        csr = out.join(REQUEST_FILE).display(),
        dir = out.display(),
    );
    Ok(())
}
