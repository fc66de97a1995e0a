//! The chain of trust a node config points to: the zone roots it trusts, its node CA (signed
//! by one of them, its key matching and private, valid now, permitting the node's name),
//! and `[external]` leaves. Loading refuses, naming the PEM file and the node.toml field,
//! anything etcd or its peers would refuse later.

use std::path::{Path, PathBuf};

use zone_io::Error;
use zone_pki::{Authority, CertInfo};

use super::node_file::{required, ExternalFiles, NodeFile};
use crate::leaf_paths::LeafPaths;

/// A node CA with its key, and what its certificate says.
pub struct NodeCa {
    pub authority: Authority,
    pub info: CertInfo,
}

/// Loads and verifies the node CA (`cert`, `key`): signed by a trusted root, its key
/// matching and private, its constraints permitting the node name. Returns it with the
/// root that signed it.
pub(super) fn load_node_ca(
    path: &Path,
    base: &Path,
    file: &NodeFile,
    trusted_roots: &[CertInfo],
    name: &str,
) -> Result<(NodeCa, CertInfo), Error> {
    let cert_field = required(&file.cert, "cert", "add cert = \"pki/node.crt\"")?;
    let key_field = required(&file.key, "key", "add key = \"pki/node.key\"")?;
    let (cert_pem, cert_file) = read_pem_field(base, &cert_field, "cert")?;
    let node_ca_info =
        first_cert(&cert_pem).map_err(|e| locate(e, cert_file.as_deref(), "cert"))?;
    let (key, key_file) = if inline_pem(&key_field) {
        // The config itself holds the key (the seed's JSON form): it must be private.
        zone_io::check_key_mode(path)?;
        let key = zone_pki::key::parse_key(&key_field).map_err(|e| e.field("key"))?;
        (key, None)
    } else {
        let key_path = base.join(&key_field);
        let key = zone_pki::key::load_key(&key_path).map_err(|e| e.field("key"))?;
        (key, Some(key_path))
    };
    if !node_ca_info.public_key_matches(&key) {
        return Err(locate(
            Error::new(format!(
                "the private key does not match the node certificate {:?}",
                node_ca_info.subject_cn
            ))
            .fix(
                "restore node.key from the bundle made with this node.crt, or re-activate the node",
            ),
            key_file.as_deref(),
            "key",
        ));
    }
    let node_ca =
        Authority::with_key(&cert_pem, key).map_err(|e| locate(e, cert_file.as_deref(), "cert"))?;
    let Some(zone_ca_info) = trusted_roots
        .iter()
        .find(|root| node_ca_info.is_signed_by(root))
        .cloned()
    else {
        let names: Vec<&str> = trusted_roots
            .iter()
            .map(|r| r.subject_cn.as_str())
            .collect();
        return Err(locate(
            Error::new(format!(
                "the node certificate {:?} is not signed by the zone CA {:?}",
                node_ca_info.subject_cn,
                names.join("\" or \"")
            ))
            .fix("re-activate this node with the zone's CA (zone-etcd activate), or point ca to the right ca.crt"),
            cert_file.as_deref(),
            "cert",
        ));
    };
    // Go (and so etcd and its peers) refuses every leaf under an expired CA.
    for (info, file, field) in [
        (&node_ca_info, cert_file.as_deref(), "cert"),
        (&zone_ca_info, ca_file_of(file, base).as_deref(), "ca"),
    ] {
        check_validity(info).map_err(|e| locate(e, file, field))?;
    }
    if !node_ca_info.permitted.iter().any(|p| p == name) {
        return Err(locate(
            Error::new(format!(
                "the node certificate does not permit the node name {name:?} (it permits {})",
                node_ca_info.permitted.join(", ")
            ))
            .fix("use the bundle activated for this node, or re-activate it"),
            cert_file.as_deref(),
            "cert",
        ));
    }
    Ok((
        NodeCa {
            authority: node_ca,
            info: node_ca_info,
        },
        zone_ca_info,
    ))
}

/// The paths of `[external]` leaves; etcd also needs the trusted CA as a file.
pub(super) fn external_paths(
    base: &Path,
    files: &ExternalFiles,
    ca_file: Option<&Path>,
) -> Result<LeafPaths, Error> {
    let ca = ca_file.map(Path::to_path_buf).ok_or_else(|| {
        Error::new("external certificates need the zone CA in a file (etcd reads it by path)")
            .field("ca")
            .fix("write the PEM to a file and set ca = \"<that file>\"")
    })?;
    let pair = |cert: &Option<String>, key: &Option<String>| {
        (
            base.join(cert.as_deref().unwrap_or_default()),
            base.join(key.as_deref().unwrap_or_default()),
        )
    };
    Ok(LeafPaths::external(
        ca,
        [
            pair(&files.server_cert, &files.server_key),
            pair(&files.peer_cert, &files.peer_key),
            pair(&files.client_cert, &files.client_key),
        ],
    ))
}

pub fn inline_pem(value: &str) -> bool {
    value.trim_start().starts_with("-----BEGIN")
}

/// A PEM field is either inline PEM (seed JSON) or a path relative to the config.
pub fn read_pem_field(
    base: &Path,
    value: &str,
    field: &str,
) -> Result<(String, Option<PathBuf>), Error> {
    if inline_pem(value) {
        return Ok((value.to_string(), None));
    }
    let path = base.join(value);
    let text = zone_io::read_text(&path).map_err(|e| e.field(field))?;
    Ok((text, Some(path)))
}

/// Every certificate of a trust file, each a self-signed CA: the zone root, or the old
/// and new roots during a zone CA rotation.
pub fn trusted_roots(pem: &str) -> Result<Vec<CertInfo>, Error> {
    let certs = zone_pki::encoding::parse_cert_chain(pem)?;
    let mut roots = Vec::with_capacity(certs.len());
    for der in &certs {
        let info = CertInfo::parse(der)?;
        if !info.is_ca || !info.is_self_issued() {
            return Err(Error::new(format!(
                "{:?} is not a root CA certificate",
                info.subject_cn
            ))
            .fix("point ca to the zone's ca.crt from `zone-etcd ca init` (or the trust.crt of a CA rotation)"));
        }
        roots.push(info);
    }
    Ok(roots)
}

/// Refuses a CA certificate outside its validity period.
fn check_validity(info: &CertInfo) -> Result<(), Error> {
    let now = time::OffsetDateTime::now_utc();
    let at = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| t.to_string())
    };
    let problem = if now >= info.not_after {
        format!(
            "the certificate {:?} expired at {}",
            info.subject_cn,
            at(info.not_after)
        )
    } else if now < info.not_before {
        format!(
            "the certificate {:?} is not valid until {} (is the clock right?)",
            info.subject_cn,
            at(info.not_before)
        )
    } else {
        return Ok(());
    };
    Err(Error::new(problem)
        .fix("re-activate the node with a valid zone CA (zone-etcd activate), and check the clock"))
}

/// The file the `ca` field names, when it is a path.
fn ca_file_of(file: &NodeFile, base: &Path) -> Option<PathBuf> {
    file.ca
        .as_deref()
        .filter(|v| !inline_pem(v))
        .map(|v| base.join(v))
}

fn first_cert(pem: &str) -> Result<CertInfo, Error> {
    CertInfo::parse_pem(pem)
}

/// Names the PEM file (when the field points to one) and the node.toml field.
pub(super) fn locate(err: Error, file: Option<&Path>, field: &str) -> Error {
    match file {
        Some(path) => err.file(path).field(field),
        None => err.field(field),
    }
}
