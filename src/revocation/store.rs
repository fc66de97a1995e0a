//! A node's copy of the zone's revocations, in its state directory: `revocations.json`
//! (the verified document in force) and `crl.der` (its CRL in DER, the file etcd's
//! `--client-crl-file` and `--peer-crl-file` read on every new connection).
//!
//! Invariants: only a document that verifies against the node's zone roots and passes
//! [`super::doc::offer`] is installed (never an older one); both files are written
//! atomically under the state lock, the document first, and `crl.der` is made to match
//! the document in force on every install and at every start (so a crash between the two
//! writes heals at the next one); `crl.der` always exists once [`ensure_crl_file`] ran, a
//! placeholder that revokes nothing until the zone revokes something (etcd refuses every
//! connection when its CRL file is missing). The file is DER because etcd 3.6 and later
//! read nothing else ("x509: malformed crl" for PEM, every connection refused); 3.4 and
//! 3.5 read DER too.

use std::path::{Path, PathBuf};

use zone_io::Error;
use zone_pki::revocation::placeholder_crl;
use zone_pki::CertInfo;

use super::doc::{offer, Offer, Revocations};

pub const CRL_FILE: &str = "crl.der";
/// Where zone-etcd before 0.1's etcd-3.6 bundle kept etcd's CRL, as PEM (etcd 3.6 cannot
/// read it): removed once `crl.der` is written.
const OLD_PEM_FILE: &str = "crl.pem";
pub const DOC_FILE: &str = "revocations.json";

/// The CRL file etcd is given.
pub fn crl_path(state_dir: &Path) -> PathBuf {
    state_dir.join(CRL_FILE)
}

/// The document in force on this node, verified against `roots`. `None` when the node
/// has none, or when its roots no longer sign it (after a zone CA rotation retired the
/// root that did, every node CA it listed is untrusted anyway).
pub fn in_force(state_dir: &Path, roots: &[CertInfo]) -> Result<Option<Revocations>, Error> {
    let path = state_dir.join(DOC_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let doc = Revocations::parse(&zone_io::read_text(&path)?).map_err(|e| e.file(&path))?;
    match doc.verify(roots) {
        Ok(_) => Ok(Some(doc)),
        Err(e) => {
            tracing::warn!("{}: not in force here: {e}", path.display());
            Ok(None)
        }
    }
}

/// Installs `offered` when it is newer than the one in force (see [`offer`]). Returns
/// what was done; an older document, or one no trusted root signed, is an error and
/// changes nothing.
pub fn install(
    state_dir: &Path,
    roots: &[CertInfo],
    offered: &Revocations,
) -> Result<Offer, Error> {
    offered.verify(roots)?;
    let _lock = zone_io::state::lock(state_dir)?;
    let current = in_force(state_dir, roots)?;
    let decision = offer(current.as_ref(), offered)?;
    if decision == Offer::Install {
        zone_io::write_atomic(
            &state_dir.join(DOC_FILE),
            offered.to_json().as_bytes(),
            zone_io::PUBLIC_MODE,
        )?;
    }
    let in_force = if decision == Offer::Install {
        offered
    } else {
        current.as_ref().unwrap_or(offered)
    };
    write_crl(state_dir, in_force.crl.der())?;
    Ok(decision)
}

/// Writes etcd's CRL file when it does not hold `der` already (under the state lock).
fn write_crl(state_dir: &Path, der: &[u8]) -> Result<(), Error> {
    let path = crl_path(state_dir);
    if std::fs::read(&path).ok().as_deref() != Some(der) {
        zone_io::write_atomic(&path, der, zone_io::PUBLIC_MODE)?;
    }
    let old = state_dir.join(OLD_PEM_FILE);
    if old.exists() {
        std::fs::remove_file(&old)
            .map_err(|e| Error::new(format!("cannot remove: {e}")).file(&old))?;
    }
    Ok(())
}

/// Makes etcd's CRL file hold the CRL of `in_force` (the document in force on this node),
/// or, when the node has none, a placeholder when the file does not exist yet.
pub fn ensure_crl_file(state_dir: &Path, in_force: Option<&Revocations>) -> Result<(), Error> {
    let _lock = zone_io::state::lock(state_dir)?;
    match in_force {
        Some(doc) => write_crl(state_dir, doc.crl.der()),
        None if crl_path(state_dir).exists() => Ok(()),
        None => {
            let placeholder = placeholder_crl(time::OffsetDateTime::now_utc())?;
            write_crl(state_dir, placeholder.der())
        }
    }
}
