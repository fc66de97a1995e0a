//! The owner's CA directory (`--ca DIR`, made by `ca init`): the zone root CA's files
//! ([`load_root`], [`write_root`]), the trust a bundle written from it carries
//! ([`trust_pem`]: `trust.crt` while a rotation is in progress), the last revocations
//! document `revoke` published from it ([`CA_DOC`]), and what a zone file leaves out
//! means for its zone ([`zone_defaults`]). The client CA's files beside them are
//! [`crate::identities::ca`]'s.
//!
//! Invariants: a root is loaded with its key and only when self-issued; [`load_root`]
//! refuses a root whose subject (`<zone> root CA`) names another zone than the caller's;
//! the key is written 0600, the certificate public.

pub mod zone_defaults;

use std::path::Path;

use zone_io::Error;
use zone_pki::{Authority, CertInfo};

/// The zone root CA files inside a CA directory.
pub const CA_CERT: &str = "ca.crt";
pub const CA_KEY: &str = "ca.key";
/// In a CA directory: the last revocations document `revoke` published from it.
pub const CA_DOC: &str = "revocations.json";
/// Both roots, new first, while a rotation is in progress.
pub const TRUST_FILE: &str = "trust.crt";

/// Writes a root CA's key (0600) and certificate into a staging directory.
pub fn write_root(dir: &Path, root: &Authority) -> Result<(), Error> {
    use zone_io::{write_new, KEY_MODE, PUBLIC_MODE};
    write_new(&dir.join(CA_KEY), root.key_pem().as_bytes(), KEY_MODE)?;
    write_new(&dir.join(CA_CERT), root.chain_pem().as_bytes(), PUBLIC_MODE)
}

/// Loads the zone root CA from `dir` and checks it is the root of `zone`.
pub fn load_root(dir: &Path, zone: &str) -> Result<Authority, Error> {
    let cert = dir.join(CA_CERT);
    let root = Authority::load(&cert, &dir.join(CA_KEY))?;
    let info = CertInfo::parse(root.cert_der()).map_err(|e| e.file(&cert))?;
    if !info.is_self_issued() {
        return Err(
            Error::new("not a root certificate (its issuer is another CA)")
                .file(&cert)
                .fix("point --ca to the directory made by `zone-etcd ca init`"),
        );
    }
    if let Some(ca_zone) = info.subject_cn.strip_suffix(" root CA") {
        if ca_zone != zone {
            return Err(Error::new(format!(
                "this is the root CA of zone {ca_zone:?}, but the zone file names zone {zone:?}"
            ))
            .file(&cert)
            .fix(
                "use the CA directory of the zone being activated, or fix name in the zone file",
            ));
        }
    }
    Ok(root)
}

/// What a bundle written from `dir` trusts: `trust.crt` during a rotation, else the root.
pub fn trust_pem(dir: &Path, root: &Authority) -> Result<String, Error> {
    let trust = dir.join(TRUST_FILE);
    if trust.exists() {
        zone_io::read_text(&trust)
    } else {
        Ok(root.chain_pem().to_string())
    }
}

/// The zone a root CA belongs to, from its subject (`<zone> root CA`).
pub fn zone_of(dir: &Path) -> Result<(Authority, String), Error> {
    let cert = dir.join(CA_CERT);
    let root = Authority::load(&cert, &dir.join(CA_KEY))?;
    let info = CertInfo::parse(root.cert_der()).map_err(|e| e.file(&cert))?;
    let zone = info
        .subject_cn
        .strip_suffix(" root CA")
        .filter(|_| info.is_self_issued())
        .ok_or_else(|| {
            Error::new(format!("{:?} is not a zone root CA", info.subject_cn))
                .file(&cert)
                .fix("point --ca to the directory made by `zone-etcd ca init`")
        })?
        .to_string();
    Ok((root, zone))
}
