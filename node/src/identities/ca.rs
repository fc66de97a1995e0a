//! The owner's side of the identities: the client root in the CA directory, and the
//! signer and client root certificate in a bundle.
//!
//! Invariants: a CA directory's client root is made once and never replaced (its key is
//! written before its certificate, and a directory holding one without the other is
//! refused, never repaired): a new one comes only with a new directory, from `ca rotate`;
//! a signer is issued with a fresh key for an etcd member only; its key is written 0600.

use std::path::Path;

use zone_io::Error;
use zone_io::{write_new, KEY_MODE, PUBLIC_MODE};
use zone_pki::client::client_root_name;
use zone_pki::{Authority, CertInfo};

/// The client root's files inside a CA directory.
pub const CLIENT_CA_CERT: &str = "client-ca.crt";
pub const CLIENT_CA_KEY: &str = "client-ca.key";

/// In a CA directory while the owner rotates the zone's roots
/// (`zone_etcd::commands::ca_rotation`): both client roots, the new one first. Bundles
/// written meanwhile trust both, as `trust.crt` does for the zone roots.
pub const CLIENT_TRUST: &str = "client-roots.crt";

/// The files of a bundle the identities add, relative to its directory.
pub const CLIENT_CA_FILE: &str = "pki/client-ca.crt";
pub const SIGNER_FILE: &str = "pki/signer.crt";
pub const SIGNER_KEY_FILE: &str = "pki/signer.key";

/// Writes a new client root for `zone` into `dir` (a staging directory of `ca init` or
/// `ca rotate`).
pub fn write_client_root(dir: &Path, zone: &str) -> Result<(), Error> {
    let root = Authority::new_client_root(zone)?;
    write_authority(&root, &dir.join(CLIENT_CA_CERT), &dir.join(CLIENT_CA_KEY))
}

/// Writes `authority`'s key (0600) and then its chain (a reader that finds the chain
/// finds the key).
fn write_authority(authority: &Authority, cert: &Path, key: &Path) -> Result<(), Error> {
    write_new(key, authority.key_pem().as_bytes(), KEY_MODE)?;
    write_new(cert, authority.chain_pem().as_bytes(), PUBLIC_MODE)
}

/// The client root of `zone` in `ca_dir`, made there first when the directory has none
/// (a CA directory made before the client root existed).
pub fn ensure_client_root(ca_dir: &Path, zone: &str) -> Result<Authority, Error> {
    let cert = ca_dir.join(CLIENT_CA_CERT);
    let key = ca_dir.join(CLIENT_CA_KEY);
    match (cert.exists(), key.exists()) {
        (false, false) => {
            write_client_root(ca_dir, zone)?;
            eprintln!(
                "zone-etcd: zone {zone}: client CA written to {} (keep {CLIENT_CA_KEY} offline, like ca.key)",
                ca_dir.display()
            );
        }
        (true, true) => {}
        (has_cert, _) => {
            let (missing, present) = if has_cert {
                (&key, &cert)
            } else {
                (&cert, &key)
            };
            return Err(Error::new(format!(
                "holds {} without {}",
                present.display(),
                missing.display()
            ))
            .file(ca_dir)
            .fix("restore the missing file from the CA directory's backup (both were written together)"));
        }
    }
    let root = Authority::load(&cert, &key)?;
    let info = CertInfo::parse(root.cert_der()).map_err(|e| e.file(&cert))?;
    if info.subject_cn != client_root_name(zone) {
        return Err(Error::new(format!(
            "this is {:?}, not the client CA of zone {zone:?}",
            info.subject_cn
        ))
        .file(&cert)
        .fix("point --ca to the zone's own CA directory"));
    }
    Ok(root)
}

/// The client root of a CA directory and what the bundles it writes trust on the client
/// port: [`CLIENT_TRUST`] during a rotation, else the root alone.
pub struct ClientRoot {
    pub authority: Authority,
    pub trust_pem: String,
}

impl ClientRoot {
    /// `ca_dir`'s client root ([`ensure_client_root`]) and its trust.
    pub fn of(ca_dir: &Path, zone: &str) -> Result<ClientRoot, Error> {
        let authority = ensure_client_root(ca_dir, zone)?;
        let trust = ca_dir.join(CLIENT_TRUST);
        let trust_pem = if trust.exists() {
            zone_io::read_text(&trust)?
        } else {
            authority.chain_pem().to_string()
        };
        Ok(ClientRoot {
            authority,
            trust_pem,
        })
    }
}

/// The client roots `ca_dir` answers for: both during a rotation ([`CLIENT_TRUST`]), else
/// its own.
pub fn client_roots(ca_dir: &Path) -> Result<Vec<CertInfo>, Error> {
    let trust = ca_dir.join(CLIENT_TRUST);
    let file = if trust.exists() {
        trust
    } else {
        ca_dir.join(CLIENT_CA_CERT)
    };
    CertInfo::parse_chain_pem(&zone_io::read_text(&file)?).map_err(|e| e.file(&file))
}

/// Which signer a bundle gets.
#[derive(Clone, Copy)]
pub enum SignerFor<'a> {
    /// None: a node that is not an etcd member.
    NoSigner,
    /// A member activated with `--node`: a signer with a fresh key.
    FreshKey,
    /// A member activated by request: a signer for its request's key, which the node
    /// keeps (as `pki/node.key`); no key travels with the answer.
    Request(&'a zone_pki::NodeRequest),
}

/// Which key a bundle's signer has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignerKey {
    /// Its own, [`SIGNER_KEY_FILE`].
    Own,
    /// The node's key (a member activated by request).
    NodeKey,
}

/// Writes the identities' part of a bundle into `dir`: the client roots it trusts, and
/// for an etcd member its signer (with its key when fresh). Returns which key the signer
/// has, or `None` without a signer.
pub fn write_bundle_part(
    dir: &Path,
    client: &ClientRoot,
    zone: &str,
    node_name: &str,
    signer: SignerFor<'_>,
) -> Result<Option<SignerKey>, Error> {
    let client_root = &client.authority;
    write_new(
        &dir.join(CLIENT_CA_FILE),
        client.trust_pem.as_bytes(),
        PUBLIC_MODE,
    )?;
    match signer {
        SignerFor::NoSigner => Ok(None),
        SignerFor::FreshKey => {
            let signer = client_root.issue_signer(node_name, zone)?;
            write_authority(&signer, &dir.join(SIGNER_FILE), &dir.join(SIGNER_KEY_FILE))?;
            Ok(Some(SignerKey::Own))
        }
        SignerFor::Request(request) => {
            let chain = client_root.issue_signer_for(node_name, zone, request)?;
            write_new(&dir.join(SIGNER_FILE), chain.as_bytes(), PUBLIC_MODE)?;
            Ok(Some(SignerKey::NodeKey))
        }
    }
}
