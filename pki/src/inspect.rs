//! Reading certificates back: what a file really says, independent of how it was made.
//!
//! The launcher decides from these facts whether a leaf can be reused, and the tests use
//! them to hold the profile to the design, so nothing here trusts [`crate::profile`].

use std::net::IpAddr;

use rcgen::KeyPair;
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;
use zone_io::{Error, Result};

use crate::profile::Host;

/// Renew a leaf (a node's, a service identity's, a backup signer's) once this fraction
/// of its life has passed.
pub const RENEW_AT_LIFE_USED: f64 = 2.0 / 3.0;

/// The facts of one certificate that zone-etcd cares about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    pub subject_cn: String,
    /// The subject's first OU, or empty (a gateway certificate names its user there).
    pub subject_ou: String,
    pub issuer_cn: String,
    pub serial_hex: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub is_ca: bool,
    pub path_len: Option<u32>,
    pub key_cert_sign: bool,
    pub digital_signature: bool,
    pub server_auth: bool,
    pub client_auth: bool,
    /// The codeSigning extended key usage: what a backup signer has, and a TLS leaf not.
    pub code_signing: bool,
    /// Subject alternative names: DNS names and IP addresses.
    pub sans: Vec<Host>,
    /// Permitted name-constraint subtrees: DNS names, and IP networks as `addr/prefix`.
    pub permitted: Vec<String>,
    /// Whether the name constraints extension is marked critical.
    pub name_constraints_critical: bool,
    spki: Vec<u8>,
    serial: Vec<u8>,
    raw_subject: Vec<u8>,
    raw_issuer: Vec<u8>,
    der: Vec<u8>,
}

impl CertInfo {
    pub fn parse(der: &CertificateDer<'_>) -> Result<Self> {
        let (_, cert) = X509Certificate::from_der(der.as_ref())
            .map_err(|e| Error::new(format!("not a valid X.509 certificate: {e}")))?;
        let bad = |what: &str, e: x509_parser::error::X509Error| {
            Error::new(format!("certificate has an invalid {what} extension: {e}"))
        };
        let basic = cert
            .basic_constraints()
            .map_err(|e| bad("basicConstraints", e))?;
        let key_usage = cert.key_usage().map_err(|e| bad("keyUsage", e))?;
        let eku = cert
            .extended_key_usage()
            .map_err(|e| bad("extendedKeyUsage", e))?;
        let mut sans = Vec::new();
        if let Some(ext) = cert
            .subject_alternative_name()
            .map_err(|e| bad("subjectAltName", e))?
        {
            for name in &ext.value.general_names {
                match name {
                    GeneralName::DNSName(dns) => sans.push(Host::Dns(dns.to_string())),
                    GeneralName::IPAddress(bytes) => {
                        if let Some(ip) = ip_from_bytes(bytes) {
                            sans.push(Host::Ip(ip));
                        }
                    }
                    _ => {}
                }
            }
        }
        let mut permitted = Vec::new();
        let mut name_constraints_critical = false;
        if let Some(ext) = cert
            .name_constraints()
            .map_err(|e| bad("nameConstraints", e))?
        {
            name_constraints_critical = ext.critical;
            for subtree in ext.value.permitted_subtrees.iter().flatten() {
                match &subtree.base {
                    GeneralName::DNSName(dns) => permitted.push(dns.to_string()),
                    GeneralName::IPAddress(bytes) if bytes.len() == 8 || bytes.len() == 32 => {
                        let (addr, mask) = bytes.split_at(bytes.len() / 2);
                        let prefix: u32 = mask.iter().map(|b| b.count_ones()).sum();
                        if let Some(ip) = ip_from_bytes(addr) {
                            permitted.push(format!("{ip}/{prefix}"));
                        }
                    }
                    other => permitted.push(format!("{other}")),
                }
            }
        }
        let time = |t: x509_parser::time::ASN1Time| t.to_datetime();
        Ok(CertInfo {
            subject_cn: common_name(cert.subject()),
            subject_ou: organizational_unit(cert.subject()),
            issuer_cn: common_name(cert.issuer()),
            serial_hex: cert.raw_serial_as_string(),
            serial: crate::encoding::normalize_serial(cert.raw_serial()),
            not_before: time(cert.validity().not_before),
            not_after: time(cert.validity().not_after),
            is_ca: basic.as_ref().is_some_and(|b| b.value.ca),
            path_len: basic.and_then(|b| b.value.path_len_constraint),
            key_cert_sign: key_usage.as_ref().is_some_and(|k| k.value.key_cert_sign()),
            digital_signature: key_usage
                .as_ref()
                .is_some_and(|k| k.value.digital_signature()),
            server_auth: eku.as_ref().is_some_and(|e| e.value.server_auth),
            client_auth: eku.as_ref().is_some_and(|e| e.value.client_auth),
            code_signing: eku.as_ref().is_some_and(|e| e.value.code_signing),
            sans,
            permitted,
            name_constraints_critical,
            spki: cert.public_key().subject_public_key.data.to_vec(),
            raw_subject: cert.subject().as_raw().to_vec(),
            raw_issuer: cert.issuer().as_raw().to_vec(),
            der: der.as_ref().to_vec(),
        })
    }

    /// Parses the first certificate of a PEM text.
    pub fn parse_pem(pem: &str) -> Result<Self> {
        let chain = crate::encoding::parse_cert_chain(pem)?;
        Self::parse(&chain[0])
    }

    /// This certificate alone as PEM.
    pub fn pem(&self) -> String {
        crate::encoding::pem_lf(&pem::Pem::new("CERTIFICATE", self.der.clone()))
    }

    /// True when `key` is the private half of this certificate's public key.
    pub fn public_key_matches(&self, key: &KeyPair) -> bool {
        key.public_key_raw() == self.spki.as_slice()
    }

    /// The subject public key (the BIT STRING's bytes of its SubjectPublicKeyInfo).
    pub fn public_key_bits(&self) -> &[u8] {
        &self.spki
    }

    /// The serial number's bytes, big-endian, without leading zeros (as a CRL lists it
    /// after [`crate::encoding::normalize_serial`]).
    pub fn serial(&self) -> &[u8] {
        &self.serial
    }

    /// True for a certificate whose issuer is itself (a root).
    pub fn is_self_issued(&self) -> bool {
        self.raw_subject == self.raw_issuer
    }

    /// True when `issuer` signed this certificate (names chain and the signature verifies).
    pub fn is_signed_by(&self, issuer: &CertInfo) -> bool {
        if self.raw_issuer != issuer.raw_subject {
            return false;
        }
        let (Ok((_, me)), Ok((_, them))) = (
            X509Certificate::from_der(&self.der),
            X509Certificate::from_der(&issuer.der),
        ) else {
            return false;
        };
        me.verify_signature(Some(them.public_key())).is_ok()
    }

    /// Parses every certificate of a PEM chain, in order.
    pub fn parse_chain_pem(pem: &str) -> Result<Vec<CertInfo>> {
        crate::encoding::parse_cert_chain(pem)?
            .iter()
            .map(CertInfo::parse)
            .collect()
    }

    /// True when `signature` (DER, ECDSA P-256 with SHA-256) over `message` was made with
    /// this certificate's key. Any other key type simply does not verify.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_ASN1};
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &self.spki)
            .verify(message, signature)
            .is_ok()
    }

    /// True when this CA's name constraints permit `host`: a DNS name equal to or below a
    /// permitted name, or an IP address inside a permitted network. A CA without name
    /// constraints permits everything.
    pub fn permits(&self, host: &Host) -> bool {
        if self.permitted.is_empty() {
            return true;
        }
        self.permitted.iter().any(|subtree| match host {
            Host::Dns(name) => {
                name == subtree
                    || (name.len() > subtree.len()
                        && name.ends_with(subtree.as_str())
                        && name[..name.len() - subtree.len()].ends_with('.'))
            }
            Host::Ip(ip) => subtree
                .split_once('/')
                .and_then(|(net, prefix)| {
                    Some((net.parse::<IpAddr>().ok()?, prefix.parse::<u32>().ok()?))
                })
                .is_some_and(|(net, prefix)| in_network(*ip, net, prefix)),
        })
    }

    /// Fraction of the lifetime elapsed at `now` (0 at not_before, 1 at not_after).
    pub fn life_used(&self, now: OffsetDateTime) -> f64 {
        let total = (self.not_after - self.not_before).as_seconds_f64();
        if total <= 0.0 {
            return 1.0;
        }
        (now - self.not_before).as_seconds_f64() / total
    }

    /// SHA-256 of the DER, for identifying a CA in derived values (the cluster token).
    pub fn fingerprint(&self) -> [u8; 32] {
        let digest = ring::digest::digest(&ring::digest::SHA256, &self.der);
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        out
    }

    /// The certificate itself, in DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The fingerprint in lowercase hex, as `openssl x509 -fingerprint -sha256` shows it
    /// (without the colons).
    pub fn fingerprint_hex(&self) -> String {
        self.fingerprint()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

fn in_network(ip: IpAddr, net: IpAddr, prefix: u32) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) if prefix <= 32 => {
            let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) if prefix <= 128 => {
            let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

fn organizational_unit(name: &x509_parser::x509::X509Name<'_>) -> String {
    name.iter_organizational_unit()
        .next()
        .and_then(|ou| ou.as_str().ok())
        .unwrap_or_default()
        .to_string()
}

fn common_name(name: &x509_parser::x509::X509Name<'_>) -> String {
    name.iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// True when `chain` (a certificate, then the CAs that issued it, in order) is signed
/// link by link, each link after the first a CA, and its last certificate is signed by
/// one of `roots` (a CA). An empty chain chains to nothing.
pub fn chains_to(chain: &[CertInfo], roots: &[CertInfo]) -> bool {
    let Some(last) = chain.last() else {
        return false;
    };
    chain
        .windows(2)
        .all(|pair| pair[1].is_ca && pair[0].is_signed_by(&pair[1]))
        && roots
            .iter()
            .any(|root| root.is_ca && last.is_signed_by(root))
}
