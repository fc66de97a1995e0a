//! A node's side of the identities: the client root's certificate it was given and, on an
//! etcd member, its signer, both checked when node.toml is loaded.
//!
//! Invariants: a signer is used only after it was checked to be a CA the client root
//! signed, with its key matching; the client root must be a self-signed CA named for the
//! node's zone. Errors name the node.toml field and the fix.

use std::path::Path;

use zone_io::Error;
use zone_pki::client::client_root_name;
use zone_pki::{Authority, CertInfo};

use crate::config::node_file::NodeFile;
use crate::config::trust::read_pem_field;

/// The identities' part of a loaded node.
pub struct Identities {
    /// The client roots' certificates (PEM): one, or two while the owner rotates the
    /// zone's roots (the new one first).
    pub client_ca_pem: String,
    pub client_cas: Vec<CertInfo>,
    /// This member's signer; `None` on a node that is not an etcd member.
    pub signer: Option<Authority>,
}

/// Loads `client_ca` and, when present, `signer` and `signer_key` from node.toml.
pub fn load(base: &Path, file: &NodeFile, zone: &str) -> Result<Option<Identities>, Error> {
    let Some(field) = &file.client_ca else {
        if file.signer.is_some() || file.signer_key.is_some() {
            return Err(Error::new("a signer without the client CA it chains to")
                .field("client_ca")
                .fix("add client_ca = \"pki/client-ca.crt\" (written with the signer)"));
        }
        return Ok(None);
    };
    let (client_ca_pem, file_path) = read_pem_field(base, field, "client_ca")?;
    let at = |e: Error| match &file_path {
        Some(p) => e.file(p).field("client_ca"),
        None => e.field("client_ca"),
    };
    let client_cas = CertInfo::parse_chain_pem(&client_ca_pem).map_err(at)?;
    if client_cas.is_empty() {
        return Err(at(Error::new("holds no certificate").fix(
            "copy pki/client-ca.crt from the bundle activate or bootstrap wrote",
        )));
    }
    if let Some(other) = client_cas.iter().find(|client_ca| {
        !client_ca.is_ca
            || !client_ca.is_self_issued()
            || client_ca.subject_cn != client_root_name(zone)
    }) {
        return Err(at(Error::new(format!(
            "{:?} is not the client CA of zone {zone:?}",
            other.subject_cn
        ))
        .fix(
            "copy pki/client-ca.crt from the bundle activate or bootstrap wrote",
        )));
    }
    let signer = match (&file.signer, &file.signer_key) {
        (None, None) => None,
        (Some(cert), Some(key)) => Some(load_signer(base, cert, key, &client_cas)?),
        (Some(_), None) => {
            return Err(Error::new("missing while signer is set")
                .field("signer_key")
                .fix("add signer_key = \"pki/signer.key\""))
        }
        (None, Some(_)) => {
            return Err(Error::new("missing while signer_key is set")
                .field("signer")
                .fix("add signer = \"pki/signer.crt\""))
        }
    };
    Ok(Some(Identities {
        client_ca_pem,
        client_cas,
        signer,
    }))
}

fn load_signer(
    base: &Path,
    cert: &str,
    key: &str,
    client_cas: &[CertInfo],
) -> Result<Authority, Error> {
    let cert_path = base.join(cert);
    let key_path = base.join(key);
    zone_io::check_key_mode(&key_path).map_err(|e| e.field("signer_key"))?;
    let signer = Authority::load(&cert_path, &key_path).map_err(|e| e.field("signer"))?;
    let info = CertInfo::parse(signer.cert_der()).map_err(|e| e.file(&cert_path))?;
    if !client_cas
        .iter()
        .any(|client_ca| info.is_signed_by(client_ca))
    {
        return Err(Error::new(format!(
            "the signer {:?} is not signed by the zone's client CA",
            info.subject_cn
        ))
        .file(&cert_path)
        .field("signer")
        .fix("copy pki/signer.crt and pki/signer.key from the same bundle as pki/client-ca.crt"));
    }
    Ok(signer)
}
