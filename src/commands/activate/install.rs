//! `zone-etcd activate install --request REQ_DIR --answer ANSWER_DIR --out BUNDLE_DIR`, on
//! the node: its key (from `activate request`) and the owner's answer (from `activate
//! --request`) put together into a bundle laid out as `activate --node` lays one out.
//!
//! Invariants: nothing is written unless the answer is for this request: its node.crt
//! names the request's node and holds the request's key, is a CA and chains to the
//! answer's ca.crt, and its node.toml names the same node and the bundle's usual files;
//! REQ_DIR's key must be the request's. The files are copied byte for byte, the key 0600
//! in a private bundle directory that appears whole or not at all; the key is never
//! printed.

use std::path::Path;

use zone_io::Error;
use zone_io::{Staging, KEY_MODE, PUBLIC_MODE};
use zone_pki::profile::peer_name;
use zone_pki::NodeRequest;

use super::request;
use zone_model::config::node::{trusted_roots, NodeFile};
use zone_node::bundle::{CA_FILE, CERT_FILE, CONFIG_FILE, KEY_FILE};

pub fn run(request_dir: &Path, answer_dir: &Path, out: &Path) -> Result<(), Error> {
    let csr_path = request_dir.join(request::REQUEST_FILE);
    let key_path = request_dir.join(request::KEY_FILE);
    let request =
        NodeRequest::from_pem(&zone_io::read_text(&csr_path)?).map_err(|e| e.file(&csr_path))?;
    zone_io::check_key_mode(&key_path)?;
    let key_pem = zone_io::read_text(&key_path)?;
    let key = zone_pki::key::parse_key(&key_pem).map_err(|e| e.file(&key_path))?;
    if !request.key_matches(&key) {
        return Err(Error::new(format!(
            "this key is not the key of {}",
            csr_path.display()
        ))
        .file(&key_path)
        .fix("give --request the directory `zone-etcd activate request` wrote, as it wrote it"));
    }

    let (cert_path, ca_path) = (answer_dir.join(CERT_FILE), answer_dir.join(CA_FILE));
    let cert_pem = zone_io::read_text(&cert_path)?;
    let ca_pem = zone_io::read_text(&ca_path)?;
    // What launch will trust: zone roots only (one, or two during a CA rotation).
    trusted_roots(&ca_pem).map_err(|e| e.file(&ca_path))?;
    let (node_ca, root) = zone_pki::request::check_answer(&request, &cert_pem, &ca_pem)
        .map_err(|e| e.file(&cert_path))?;

    let config_path = answer_dir.join(CONFIG_FILE);
    let config_text = zone_io::read_text(&config_path)?;
    let zone = check_config(&config_path, &config_text, request.node_name())?;
    if let Some(root_zone) = root.subject_cn.strip_suffix(" root CA") {
        if root_zone != zone {
            return Err(Error::new(format!(
                "node.toml is for zone {zone:?}, but the zone root that signed pki/node.crt is zone {root_zone:?}'s"
            ))
            .file(&config_path)
            .field("zone")
            .fix("use the answer directory `zone-etcd activate --request` wrote, unchanged"));
        }
    }

    let staging = Staging::new(out)?;
    let dir = staging.path();
    zone_io::ensure_private_dir(&dir.join("pki"))?;
    zone_io::write_new(&dir.join(CA_FILE), ca_pem.as_bytes(), PUBLIC_MODE)?;
    zone_io::write_new(&dir.join(CERT_FILE), cert_pem.as_bytes(), PUBLIC_MODE)?;
    zone_io::write_new(&dir.join(KEY_FILE), key_pem.as_bytes(), KEY_MODE)?;
    // A zone with [access]: the client CA comes with the answer (checked when the node
    // loads its node.toml).
    let client_ca = zone_node::identities::ca::CLIENT_CA_FILE;
    let file = NodeFile::parse(&config_path, &config_text)?;
    if file.client_ca.as_deref() == Some(client_ca) {
        let pem = zone_io::read_text(&answer_dir.join(client_ca))?;
        zone_io::write_new(&dir.join(client_ca), pem.as_bytes(), PUBLIC_MODE)?;
    }
    // A member's signer, issued for this request's key (node.toml names pki/node.key as
    // its key): checked against the key before it is copied.
    if let Some(signer) = file.signer.as_deref() {
        let signer_path = answer_dir.join(signer);
        let pem = zone_io::read_text(&signer_path)?;
        zone_pki::Authority::from_pem(&pem, &key_pem).map_err(|e| {
            e.file(&signer_path)
                .fix("use the answer directory `zone-etcd activate --request` wrote for this request, unchanged")
        })?;
        zone_io::write_new(&dir.join(signer), pem.as_bytes(), PUBLIC_MODE)?;
    }
    zone_io::write_new(&dir.join(CONFIG_FILE), config_text.as_bytes(), PUBLIC_MODE)?;
    staging.commit()?;

    let member = node_ca.permitted.contains(&peer_name(&zone));
    if member {
        // The disk the member's data will be on, measured before its first start (as
        // `join` does; `check` measures it again any time).
        if let Ok(config) = zone_model::config::node::NodeConfig::load(&out.join(CONFIG_FILE)) {
            zone_node::disk_probe::tell(&config.state_dir, &config.data_dir);
        }
    }
    let (role, next) = super::role_and_next_step(member, out, None);
    eprintln!(
        "zone-etcd: installed {} as {role}: bundle in {} (zone root SHA-256 {}: the one the owner's `activate --request` printed); run {next}; {} may be removed once the node runs",
        request.node_name(),
        out.display(),
        root.fingerprint_hex(),
        request_dir.display(),
    );
    Ok(())
}

/// Checks the answer's node.toml: it names the request's node and the files of a bundle
/// as `activate` writes them. Returns the zone's name.
fn check_config(path: &Path, text: &str, node_name: &str) -> Result<String, Error> {
    let file = NodeFile::parse(path, text)?;
    zone_node::unknown_keys::warn(&file.ignored);
    let (name, zone) = file.names().map_err(|e| e.file(path))?;
    if name != node_name {
        return Err(Error::new(format!(
            "the answer is for another node: node.toml is for {name:?}, the request for {node_name:?}"
        ))
        .file(path)
        .field("name")
        .fix("install the answer the owner made from this request's request.csr"));
    }
    let signer = zone_node::identities::ca::SIGNER_FILE;
    for (field, value, expected) in [
        ("ca", &file.ca, Some(CA_FILE)),
        ("cert", &file.cert, Some(CERT_FILE)),
        ("key", &file.key, Some(KEY_FILE)),
        // A member's signer takes the node's own key: nothing else may be named.
        ("signer", &file.signer, file.signer.as_ref().map(|_| signer)),
        (
            "signer_key",
            &file.signer_key,
            file.signer.as_ref().map(|_| KEY_FILE),
        ),
    ] {
        if value.as_deref() != expected {
            let shown = |v: Option<&str>| v.map_or("nothing".into(), |v| format!("{v:?}"));
            return Err(Error::new(format!(
                "names {}, but an answer's bundle names {} there",
                shown(value.as_deref()),
                shown(expected)
            ))
            .file(path)
            .field(field)
            .fix("use the answer directory `zone-etcd activate --request` wrote, unchanged"));
        }
    }
    Ok(zone)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "name = \"node1.example.zone\"\nzone = \"example.zone\"\nca = \"pki/ca.crt\"\ncert = \"pki/node.crt\"\nkey = \"pki/node.key\"\n";

    #[test]
    fn an_answers_node_toml_names_the_request_node_and_the_bundle_files() {
        let path = Path::new("answer/node.toml");
        assert_eq!(
            check_config(path, CONFIG, "node1.example.zone").unwrap(),
            "example.zone"
        );
        let err = check_config(path, CONFIG, "node2.example.zone").unwrap_err();
        assert!(err.to_string().contains("another node"), "{err}");
        assert_eq!(err.field_name(), Some("name"));
        let moved = CONFIG.replace("pki/node.key", "/etc/elsewhere.key");
        let err = check_config(path, &moved, "node1.example.zone").unwrap_err();
        assert_eq!(err.field_name(), Some("key"), "{err}");
        let inline = CONFIG.replace("\"pki/ca.crt\"", "\"-----BEGIN CERTIFICATE-----\"");
        let err = check_config(path, &inline, "node1.example.zone").unwrap_err();
        assert_eq!(err.field_name(), Some("ca"), "{err}");
    }
}
