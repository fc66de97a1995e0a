//! The encodings certificates share: PEM chains read back, PEM written with `\n` line
//! ends, serial numbers as numbers.
//!
//! Invariants: a chain that parses holds at least one CERTIFICATE block, in the file's
//! order; PEM this crate writes uses `\n` line endings only; serials compare as numbers
//! ([`normalize_serial`] strips DER's sign padding), so a serial read from a certificate
//! and from a CRL compares equal. Pure: nothing here reads a file.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use zone_io::{Error, Result};

/// Parses every CERTIFICATE block of a PEM text, in order.
pub fn parse_cert_chain(pem: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| {
            Error::new(format!("malformed PEM: {e}"))
                .fix("restore the file from the bundle it came with")
        })?;
    if certs.is_empty() {
        return Err(Error::new("no CERTIFICATE block found")
            .fix("point to a PEM certificate file (-----BEGIN CERTIFICATE-----)"));
    }
    Ok(certs)
}

/// PEM with `\n` line endings (the `pem` crate's default is `\r\n`).
pub(crate) fn pem_lf(block: &pem::Pem) -> String {
    pem::encode_config(
        block,
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// A serial as a number's big-endian bytes, without DER's leading zero bytes.
pub fn normalize_serial(raw: &[u8]) -> Vec<u8> {
    let first = raw.iter().position(|b| *b != 0).unwrap_or(raw.len());
    raw[first..].to_vec()
}
