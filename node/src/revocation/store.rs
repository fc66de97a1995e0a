//! A node's copy of the zone's revocations, in its state directory: `revocations.json`
//! (the verified document in force), `crl.der` (its CRL in DER, the file etcd's
//! `--peer-crl-file` reads on every new connection, and `--client-crl-file` while the
//! client port trusts the zone root) and `client-crl.der` (the client port's CRL, what
//! `--client-crl-file` reads once the port trusts the client root alone: the document's
//! client CRL, [`Revocations::client_crl`], the whole CRL before format 2).
//!
//! Invariants: only a document that verifies against the node's zone roots and passes
//! [`super::doc::offer`] is installed (never an older one); both files are written
//! atomically under the state lock, the document first, and `crl.der` is made to match
//! the document in force on every install and at every start (so a crash between the
//! writes heals at the next one), `client-crl.der` likewise; both always exist once
//! [`ensure_crl_file`] ran, a
//! placeholder that revokes nothing until the zone revokes something (etcd refuses every
//! connection when its CRL file is missing). The file is DER because etcd 3.6 and later
//! read nothing else ("x509: malformed crl" for PEM, every connection refused); 3.4 and
//! 3.5 read DER too.
//!
//! `revocations.none` says that the zone had no revocations when this member's keeper
//! last read it ([`note_none`]): a member that knows the zone's revocations, none or a
//! document, starts without waiting for the others ([`knows`]); one that knows nothing (a
//! new joiner, a copy lost) waits for them. Installing a document removes it, so a copy
//! lost after the zone revoked is never taken for a zone that revoked nothing.

use std::path::{Path, PathBuf};

use zone_io::Error;
use zone_pki::revocation::placeholder_crl;
use zone_pki::CertInfo;

use super::doc::{offer, Offer, Revocations};

pub const CRL_FILE: &str = "crl.der";
pub const CLIENT_CRL_FILE: &str = "client-crl.der";
/// Where zone-etcd before 0.1's etcd-3.6 bundle kept etcd's CRL, as PEM (etcd 3.6 cannot
/// read it): removed once `crl.der` is written.
const OLD_PEM_FILE: &str = "crl.pem";
pub const DOC_FILE: &str = "revocations.json";
/// The note that the zone had no revocations ([`note_none`]).
pub const NONE_FILE: &str = "revocations.none";
/// The note's format: read by later releases (only its presence matters to this one).
const NONE_FORMAT: u32 = 1;

/// The CRL file etcd is given for its peer port (and for a client port that trusts the
/// zone root).
pub fn crl_path(state_dir: &Path) -> PathBuf {
    state_dir.join(CRL_FILE)
}

/// The CRL file etcd is given for a client port that trusts the client root alone.
pub fn client_crl_path(state_dir: &Path) -> PathBuf {
    state_dir.join(CLIENT_CRL_FILE)
}

/// The CRL files etcd is given: the client port's and the peer port's.
pub struct CrlFiles {
    pub client: PathBuf,
    pub peer: PathBuf,
}

impl CrlFiles {
    /// The files in `state_dir` for a client port that trusts the client root alone
    /// (`client_root_alone`: `client-crl.der`, no node CA in it) or the zone root too
    /// (`crl.der`, as the peer port).
    pub fn of(state_dir: &Path, client_root_alone: bool) -> CrlFiles {
        CrlFiles {
            client: if client_root_alone {
                client_crl_path(state_dir)
            } else {
                crl_path(state_dir)
            },
            peer: crl_path(state_dir),
        }
    }

    /// What etcd's argv names.
    pub fn crls(&self) -> zone_etcd_kit::etcd::args::Crls<'_> {
        zone_etcd_kit::etcd::args::Crls {
            client: &self.client,
            peer: &self.peer,
        }
    }

    /// [`CrlFiles::crls`], when both files exist (see [`ensure_crl_file`]).
    pub fn existing(&self) -> Option<zone_etcd_kit::etcd::args::Crls<'_>> {
        (self.client.exists() && self.peer.exists()).then(|| self.crls())
    }
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
        remove_none(state_dir)?;
    }
    let in_force = if decision == Offer::Install {
        offered
    } else {
        current.as_ref().unwrap_or(offered)
    };
    write_crls(state_dir, in_force)?;
    Ok(decision)
}

/// Notes that the zone had no revocations at `at` (RFC 3339), when this node holds no
/// document (one in force says more, and is kept). Written atomically under the state lock.
pub fn note_none(state_dir: &Path, roots: &[CertInfo], at: &str) -> Result<(), Error> {
    let _lock = zone_io::state::lock(state_dir)?;
    if in_force(state_dir, roots)?.is_some() {
        return Ok(());
    }
    zone_io::write_atomic(
        &state_dir.join(NONE_FILE),
        none_text(at).as_bytes(),
        zone_io::PUBLIC_MODE,
    )
}

/// The note's text (pure).
fn none_text(at: &str) -> String {
    serde_json::json!({ "format": NONE_FORMAT, "read_at": at }).to_string() + "\n"
}

/// Whether this node knows the zone's revocations: a document its roots verify, or the
/// note that the zone had none ([`note_none`]).
pub fn knows(state_dir: &Path, roots: &[CertInfo]) -> bool {
    matches!(in_force(state_dir, roots), Ok(Some(_))) || state_dir.join(NONE_FILE).exists()
}

/// Removes the note (a document is in force now; under the state lock).
fn remove_none(state_dir: &Path) -> Result<(), Error> {
    let note = state_dir.join(NONE_FILE);
    match std::fs::remove_file(&note) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(Error::new(format!("cannot remove: {e}")).file(&note))
        }
        _ => Ok(()),
    }
}

/// Makes etcd's CRL files hold the CRLs of `doc` (under the state lock).
fn write_crls(state_dir: &Path, doc: &Revocations) -> Result<(), Error> {
    write_crl(&client_crl_path(state_dir), doc.client_crl().der())?;
    write_crl(&crl_path(state_dir), doc.crl.der())?;
    remove_old_pem(state_dir)
}

/// Writes a CRL file when it does not hold `der` already (under the state lock).
fn write_crl(path: &Path, der: &[u8]) -> Result<(), Error> {
    if std::fs::read(path).ok().as_deref() != Some(der) {
        zone_io::write_atomic(path, der, zone_io::PUBLIC_MODE)?;
    }
    Ok(())
}

fn remove_old_pem(state_dir: &Path) -> Result<(), Error> {
    let old = state_dir.join(OLD_PEM_FILE);
    if old.exists() {
        std::fs::remove_file(&old)
            .map_err(|e| Error::new(format!("cannot remove: {e}")).file(&old))?;
    }
    Ok(())
}

/// Makes etcd's CRL files hold the CRLs of `in_force` (the document in force on this
/// node), or, when the node has none, a placeholder in each file that does not exist yet.
pub fn ensure_crl_file(state_dir: &Path, in_force: Option<&Revocations>) -> Result<(), Error> {
    let _lock = zone_io::state::lock(state_dir)?;
    if let Some(doc) = in_force {
        return write_crls(state_dir, doc);
    }
    for path in [crl_path(state_dir), client_crl_path(state_dir)] {
        if !path.exists() {
            let placeholder = placeholder_crl(time::OffsetDateTime::now_utc())?;
            write_crl(&path, placeholder.der())?;
        }
    }
    remove_old_pem(state_dir)
}
