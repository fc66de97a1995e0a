//! The owner's record of the node CAs a CA directory issued, so `revoke --node NAME` can
//! name them all: `CA_DIR/issued/<node name>/<serial>.crt`, one certificate a file.
//!
//! Invariants: every node CA that `activate`, `activate --request` and `bootstrap` issue
//! is recorded before their output is committed (and so is an etcd member's signer in a
//! zone with `[access]`, under its node's name: revoking the node revokes it too) (a bundle never exists unrecorded; a
//! record whose bundle was never committed revokes nothing anyone holds); records are
//! certificates only, never keys; the directory is private (0700), as the CA's.

use std::path::{Path, PathBuf};

use zone_io::Error;
use zone_pki::revocation::serial_hex;
use zone_pki::CertInfo;

pub const ISSUED_DIR: &str = "issued";

/// Where the node CAs issued to `node_name` are recorded.
pub fn dir_of(ca_dir: &Path, node_name: &str) -> PathBuf {
    ca_dir.join(ISSUED_DIR).join(node_name)
}

/// Records the node CA at the head of `chain_pem`, issued to `node_name`.
pub fn record(ca_dir: &Path, node_name: &str, chain_pem: &str) -> Result<(), Error> {
    let certs = zone_pki::encoding::parse_cert_chain(chain_pem)?;
    let Some(first) = certs.first() else {
        return Ok(());
    };
    let info = CertInfo::parse(first)?;
    let dir = zone_io::ensure_private_tree(ca_dir, &Path::new(ISSUED_DIR).join(node_name))?;
    zone_io::write_atomic(
        &dir.join(format!("{}.crt", serial_hex(info.serial()))),
        info.pem().as_bytes(),
        zone_io::PUBLIC_MODE,
    )
}

/// Every node CA recorded as issued to `node_name` (none: an empty list).
pub fn issued_to(ca_dir: &Path, node_name: &str) -> Result<Vec<CertInfo>, Error> {
    let mut found = Vec::new();
    for entry in zone_io::entries(&dir_of(ca_dir, node_name))? {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "crt") {
            found
                .push(CertInfo::parse_pem(&zone_io::read_text(&path)?).map_err(|e| e.file(&path))?);
        }
    }
    found.sort_by_key(|c| c.not_before);
    Ok(found)
}

/// Every certificate the owner recorded (node CAs, members' signers), with the node each
/// was issued to.
pub fn all(ca_dir: &Path) -> Result<Vec<(String, CertInfo)>, Error> {
    let mut found = Vec::new();
    for entry in zone_io::entries(&ca_dir.join(ISSUED_DIR))? {
        if !entry.path().is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        for cert in issued_to(ca_dir, &name)? {
            found.push((name.clone(), cert));
        }
    }
    Ok(found)
}

/// Every certificate the owner recorded as issued to a node other than `node_name` (node
/// CAs, members' signers), by serial (hex): what a ledger entry under `node_name` must
/// never put on the CRL (a planted one naming a member's signer would lock out its
/// keepers).
pub fn others_than(
    ca_dir: &Path,
    node_name: &str,
) -> Result<std::collections::BTreeMap<String, String>, Error> {
    Ok(all(ca_dir)?
        .into_iter()
        .filter(|(name, _)| name != node_name)
        .map(|(name, cert)| (serial_hex(cert.serial()), name))
        .collect())
}
