//! `zone-etcd trust`: a node installs the zone roots the owner hands out during a zone CA
//! rotation (see [`super::ca_rotation`]), and with `--client-ca` the client roots. Refuses
//! a trust file that would cut the node off from its own chain: it must hold the root that
//! signed this node's CA, and the client roots the one that signed a member's signer.
//! Both files are checked before either is written.

use std::path::Path;

use zone_io::Error;
use zone_io::PUBLIC_MODE;

use zone_model::config::node::{base_dir, inline_pem, trusted_roots, NodeFile};
use zone_model::config::{parse, read_config};
use zone_node::node::Node;

pub fn run(config: &Path, trust_file: &Path, client_file: Option<&Path>) -> Result<(), Error> {
    let node = Node::load(config)?;
    let client = client_file
        .map(|file| client_roots(&node, file))
        .transpose()?;
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
    let target = file_of(config, "ca", "the zone CA", file.ca.unwrap_or_default())?;
    if let Some((client_target, client_text, count)) = &client {
        zone_io::write_atomic(client_target, client_text.as_bytes(), PUBLIC_MODE)?;
        println!(
            "zone-etcd: {} now trusts {count} client root{} of zone {}",
            node.name,
            if *count == 1 { "" } else { "s" },
            node.zone
        );
    }
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

/// The client roots in `file` checked for `node`: where node.toml's `client_ca` points,
/// the text, and how many roots it holds.
fn client_roots(node: &Node, file: &Path) -> Result<(std::path::PathBuf, String, usize), Error> {
    let config = &node.path;
    let at = |e: Error| e.file(file).field("--client-ca");
    let Some(ids) = &node.identities else {
        return Err(
            Error::new("this node has no client CA (its zone has no [access])")
                .file(config)
                .field("client_ca")
                .fix("leave --client-ca out: only a zone with [access] has client roots"),
        );
    };
    let text = zone_io::read_text(file).map_err(|e| e.field("--client-ca"))?;
    let roots = zone_pki::CertInfo::parse_chain_pem(&text).map_err(at)?;
    let name = zone_pki::client::client_root_name(&node.zone);
    if roots.is_empty() {
        return Err(at(Error::new("holds no certificate").fix(
            "use the client-roots.crt or client-ca.crt of this zone's CA directory",
        )));
    }
    if let Some(other) = roots
        .iter()
        .find(|r| r.subject_cn != name || !r.is_ca || !r.is_self_issued())
    {
        return Err(at(Error::new(format!(
            "holds {:?}, not a client root of zone {}",
            other.subject_cn, node.zone
        ))
        .fix(
            "use the client-roots.crt or client-ca.crt of this zone's CA directory",
        )));
    }
    if let Some(signer) = &ids.signer {
        let signer = zone_pki::CertInfo::parse(signer.cert_der())?;
        if !roots.iter().any(|r| signer.is_signed_by(r)) {
            return Err(at(Error::new(
                "does not hold the client root that signed this member's signer; the member could no longer issue identities",
            )
            .fix("re-activate the node under the new CA directory first (phase 2), then install the new client root alone")));
        }
    }
    let file: NodeFile = parse(config, &read_config(config)?)?;
    let target = file_of(
        config,
        "client_ca",
        "the client CA",
        file.client_ca.unwrap_or_default(),
    )?;
    Ok((target, text, roots.len()))
}

/// The file node.toml's `field` (`what`) points to, refused when its PEM is inline.
fn file_of(
    config: &Path,
    field: &str,
    what: &str,
    value: String,
) -> Result<std::path::PathBuf, Error> {
    if inline_pem(&value) {
        return Err(Error::new(format!("{what} is inline in this config"))
            .file(config)
            .field(field)
            .fix(format!(
                "replace the {field} value with the file's PEM by hand, or point {field} to a file"
            )));
    }
    Ok(base_dir(config).join(value))
}
