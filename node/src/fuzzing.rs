//! Entry points of the fuzz targets (fuzz/) and of the test that replays what they found
//! (tests/zone/fuzz_regressions.rs): bytes in, the parsing and validation the commands do on
//! them, no I/O. Each must return (any `Result`), never panic, whatever the bytes.

use std::path::Path;

use zone_pki::CertInfo;

use zone_model::config::node::{inline_pem, trusted_roots, NodeFile};
use zone_model::config::zone::{validate_members, Zone};

/// The zone the fuzzed node configs and zone documents belong to.
pub const ZONE: &str = "example.zone";

/// A zone file, read as TOML and as the seed's JSON form.
pub fn zone_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for name in ["zone.toml", "zone.json"] {
        let _ = Zone::parse(Path::new(name), text);
    }
}

/// A node config (node.toml, or the seed's JSON form with inline PEM): everything
/// `Node::load` checks before it touches a file or the network.
pub fn node_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for name in ["node.toml", "node.json"] {
        let Ok(file) = NodeFile::parse(Path::new(name), text) else {
            continue;
        };
        let Ok((_, zone)) = file.names() else {
            continue;
        };
        if let Some(url) = &file.nameservice {
            let _ = zone_model::config::node_file::check_url(url);
        }
        if let Some(members) = &file.etcd {
            let _ = validate_members(&zone, members);
        }
        if let Some(ca) = file.ca.as_deref().filter(|v| inline_pem(v)) {
            let _ = trusted_roots(ca);
        }
        if let Some(cert) = file.cert.as_deref().filter(|v| inline_pem(v)) {
            let _ = CertInfo::parse_pem(cert);
        }
        if let Some(key) = file.key.as_deref().filter(|v| inline_pem(v)) {
            let _ = zone_pki::key::parse_key(key);
        }
    }
}

/// A zone document as the nameservice serves it, verified against `roots`.
pub fn zone_document(data: &[u8], roots: &[CertInfo]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = zone_model::zone_doc::verify(text, ZONE, roots);
}
