//! Keys: every key zone-pki makes is ECDSA P-256 (signing with SHA-256), written as
//! PKCS#8 PEM.
//!
//! Invariants: a key file is read only after [`zone_io::check_key_mode`] found it private
//! (0600); a key that does not parse is refused with the file to restore; a signing
//! failure is one error naming what failed (`sign_error`).

use std::path::Path;

use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivateKeyDer;
use zone_io::{read_text, Error, Result};

/// A fresh ECDSA P-256 key.
pub(crate) fn new_key() -> Result<KeyPair> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
        .map_err(|e| Error::new(format!("cannot generate an ECDSA P-256 key: {e}")))
}

/// The error of a failed signature (rcgen's reason).
pub(crate) fn sign_error(e: rcgen::Error) -> Error {
    Error::new(format!("cannot sign the certificate: {e}"))
}

/// Loads a private key file after checking that only its owner can read it.
pub fn load_key(path: &Path) -> Result<KeyPair> {
    zone_io::check_key_mode(path)?;
    parse_key(&read_text(path)?).map_err(|e| e.file(path))
}

/// Parses a PEM private key (PKCS#8, or SEC1 "EC PRIVATE KEY").
pub fn parse_key(pem: &str) -> Result<KeyPair> {
    let der = PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|_| {
        Error::new("no private key found (expected a PEM block of a PKCS#8 or EC private key)")
            .fix("point to the .key file written together with the certificate")
    })?;
    KeyPair::try_from(&der).map_err(|e| {
        Error::new(format!("unusable private key: {e}"))
            .fix("use an ECDSA P-256 key in PKCS#8 PEM, as zone-etcd writes them")
    })
}
