//! `zone-etcd trust`: a node installs the zone roots the owner hands out during a zone CA
//! rotation (see [`super::ca_rotation`]). Refuses a trust file that would cut the node off
//! from its own chain: it must hold the root that signed this node's CA.

use std::path::Path;

use zone_io::PUBLIC_MODE;
use zone_pki::Error;

use crate::config::node::{base_dir, inline_pem, trusted_roots, Node, NodeFile};
use crate::config::{parse, read_config};

pub fn run(config: &Path, trust_file: &Path) -> Result<(), Error> {
    let node = Node::load(config)?;
    let text = zone_io::read_text(trust_file).map_err(|e| e.field("--ca"))?;
    let roots = trusted_roots(&text).map_err(|e| e.file(trust_file).field("--ca"))?;
    let expected_cn = format!("{} root CA", node.zone);
    if let Some(other) = roots.iter().find(|r| r.subject_cn != expected_cn) {
        return Err(Error::new(format!(
            "holds {:?}, not a root of zone {}",
            other.subject_cn, node.zone
        ))
        .file(trust_file)
        .field("--ca")
        .fix("use the trust.crt or ca.crt of this zone's CA directory"));
    }
    let ours = node.zone_ca_info.fingerprint_hex();
    if !roots.iter().any(|r| r.fingerprint_hex() == ours) {
        return Err(Error::new(format!(
            "does not hold the root that signed this node's CA ({}…); the node would refuse its own certificates",
            &ours[..16]
        ))
        .file(trust_file)
        .field("--ca")
        .fix("re-activate the node under the new root first (phase 2), then install the new root alone"));
    }
    let file: NodeFile = parse(config, &read_config(config)?)?;
    let ca_field = file.ca.unwrap_or_default();
    if inline_pem(&ca_field) {
        return Err(Error::new("the zone CA is inline in this config")
            .file(config)
            .field("ca")
            .fix("replace the ca value with the trust file's PEM by hand, or point ca to a file"));
    }
    let target = base_dir(config).join(&ca_field);
    zone_io::write_atomic(&target, text.as_bytes(), PUBLIC_MODE)?;
    let names: Vec<String> = roots
        .iter()
        .map(|r| r.fingerprint_hex()[..16].to_string())
        .collect();
    println!(
        "zone-etcd: {} now trusts {} root{} of zone {} ({}); restart its etcd member (one member at a time) so etcd loads them",
        node.name,
        roots.len(),
        if roots.len() == 1 { "" } else { "s" },
        node.zone,
        names.join(", ")
    );
    Ok(())
}
