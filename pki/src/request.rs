//! Activation by request: the node makes its node CA's key and a PKCS#10 request; the
//! owner issues the node CA for the request's public key; the node checks the answer
//! against its key. The node CA's private key never leaves the node.
//!
//! Invariants this module keeps:
//! - a request is believed only after its self-signature verifies with the public key it
//!   carries (proof that its maker holds the private key), and only ECDSA P-256 keys are
//!   taken (the zone is P-256 throughout: a node CA of any other key is refused later);
//! - a request yields two things and nothing else: the node name of its subject CN and
//!   its public key. Whatever else it asks for (SANs, CA flags, key usages, name
//!   constraints) is ignored: the certificate is made from the owner's zone file, on the
//!   same path as every node CA ([`crate::Authority::issue_node_ca_for`]);
//! - an answer is accepted only for the request it answers: a node certificate whose
//!   subject is the request's node name, whose public key is the request's, that is a CA,
//!   and that one of the zone roots sent with it signed;
//! - the key of a new request is only ever handed out as PEM behind
//!   [`NewRequest::key_pem`], never in `Debug`.

use rcgen::{
    CertificateParams, DistinguishedName, DnType, KeyPair, PublicKeyData, SubjectPublicKeyInfo,
    PKCS_ECDSA_P256_SHA256,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateSigningRequestDer;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::FromDer;
use zone_io::{Error, Result};

use crate::encoding::parse_cert_chain;
use crate::inspect::CertInfo;
use crate::key::{new_key, sign_error};

/// A fresh node CA key and the request for it, as PEM text ready for files.
pub struct NewRequest {
    /// The PKCS#10 request (`-----BEGIN CERTIFICATE REQUEST-----`).
    pub csr_pem: String,
    key_pem: String,
}

impl NewRequest {
    /// PKCS#8 PEM of the node CA's private key. Never print it.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }
}

impl std::fmt::Debug for NewRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewRequest")
            .field("csr_pem", &self.csr_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// Makes a new ECDSA P-256 key for a node CA and a request for it, subject CN
/// `node_name`, signed with that key.
pub fn new_request(node_name: &str) -> Result<NewRequest> {
    let key = new_key()?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, node_name);
    params.distinguished_name = dn;
    let csr = params.serialize_request(&key).map_err(sign_error)?;
    let csr_pem = csr
        .pem()
        .map_err(|e| Error::new(format!("cannot encode the request: {e}")))?;
    Ok(NewRequest {
        csr_pem,
        key_pem: key.serialize_pem(),
    })
}

/// A request whose signature verified: the node name it asks for, and its key.
#[derive(Debug, Clone)]
pub struct NodeRequest {
    node_name: String,
    public_key: SubjectPublicKeyInfo,
    /// The SubjectPublicKeyInfo in DER, for the fingerprint.
    spki_der: Vec<u8>,
}

impl NodeRequest {
    /// Reads a request from its PEM text (`-----BEGIN CERTIFICATE REQUEST-----`).
    pub fn from_pem(text: &str) -> Result<Self> {
        let der = CertificateSigningRequestDer::from_pem_slice(text.as_bytes()).map_err(|_| {
            Error::new("no CERTIFICATE REQUEST block found")
                .fix("give the request.csr that `zone-etcd activate request` wrote")
        })?;
        Self::from_der(der.as_ref())
    }

    /// Reads a request from its DER, verifying its signature.
    pub fn from_der(der: &[u8]) -> Result<Self> {
        let remake = "make the request again on the node (zone-etcd activate request) and carry request.csr whole";
        let (rest, csr) = X509CertificationRequest::from_der(der).map_err(|e| {
            Error::new(format!("not a valid PKCS#10 certificate request: {e}")).fix(remake)
        })?;
        if !rest.is_empty() {
            return Err(Error::new(format!(
                "{} bytes after the certificate request",
                rest.len()
            ))
            .fix(remake));
        }
        csr.verify_signature().map_err(|e| {
            Error::new(format!(
                "the request's signature does not verify with the key it carries ({e}): it was altered, or not made with that key"
            ))
            .fix(remake)
        })?;
        let info = &csr.certification_request_info;
        let spki_der = info.subject_pki.raw.to_vec();
        let public_key = SubjectPublicKeyInfo::from_der(&spki_der)
            .ok()
            .filter(|key| key.algorithm() == &PKCS_ECDSA_P256_SHA256)
            .ok_or_else(|| {
                Error::new("the request's key is not an ECDSA P-256 key (the zone's CAs are P-256)")
                    .fix(remake)
            })?;
        let mut names = info.subject.iter_common_name();
        let node_name = match (names.next(), names.next()) {
            (Some(cn), None) => cn.as_str().ok().map(str::to_string),
            _ => None,
        }
        .filter(|name| !name.is_empty())
        .ok_or_else(|| {
            Error::new("the request's subject has no single common name (the node name)")
                .fix(remake)
        })?;
        Ok(NodeRequest {
            node_name,
            public_key,
            spki_der,
        })
    }

    /// The node name the request asks for (its subject CN), not yet checked against any
    /// zone.
    pub fn node_name(&self) -> &str {
        &self.node_name
    }

    /// The public key to certify.
    pub fn public_key(&self) -> &SubjectPublicKeyInfo {
        &self.public_key
    }

    /// True when `key` is the private half of the request's key.
    pub fn key_matches(&self, key: &KeyPair) -> bool {
        key.public_key_raw() == self.public_key.der_bytes()
    }

    /// SHA-256 of the request's SubjectPublicKeyInfo (DER), lowercase hex: what
    /// `openssl req -in request.csr -pubkey -noout | openssl pkey -pubin -outform DER |
    /// sha256sum` prints. The node and the owner can read it to each other.
    pub fn key_fingerprint_hex(&self) -> String {
        ring::digest::digest(&ring::digest::SHA256, &self.spki_der)
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// Checks the owner's answer to `request`: `node_ca_pem` (node.crt) must name the
/// request's node, hold the request's key, be a CA, and be signed by one of the roots in
/// `trust_pem` (ca.crt). Returns the node CA's facts and the root's. The errors say
/// which part is wrong; the caller names the file.
pub fn check_answer(
    request: &NodeRequest,
    node_ca_pem: &str,
    trust_pem: &str,
) -> Result<(CertInfo, CertInfo)> {
    let node_ca = CertInfo::parse(&parse_cert_chain(node_ca_pem)?[0])?;
    if node_ca.subject_cn != request.node_name {
        return Err(Error::new(format!(
            "the answer is for another node: its certificate is for {:?}, the request for {:?}",
            node_ca.subject_cn, request.node_name
        ))
        .fix("install the answer the owner made from this request's request.csr"));
    }
    if node_ca.public_key_bits() != request.public_key.der_bytes() {
        return Err(Error::new(format!(
            "the answer is for another key: its certificate for {:?} holds another public key than this request's node.key (an answer to another request for the same node)",
            request.node_name
        ))
        .fix("install the answer the owner made from this request's request.csr (each request has its own key)"));
    }
    if !node_ca.is_ca {
        return Err(Error::new(format!(
            "the certificate for {:?} is not a CA certificate, not a node CA",
            request.node_name
        ))
        .fix("ask the owner to answer the request with zone-etcd activate --request"));
    }
    let mut roots = Vec::new();
    for der in parse_cert_chain(trust_pem)? {
        roots.push(CertInfo::parse(&der)?);
    }
    let Some(root) = roots
        .into_iter()
        .find(|root| root.is_ca && node_ca.is_signed_by(root))
    else {
        return Err(Error::new(format!(
            "the certificate for {:?} is not signed by the zone root that came with it (pki/ca.crt)",
            request.node_name
        ))
        .fix("carry the answer directory whole: node.crt and ca.crt of one answer belong together"));
    };
    Ok((node_ca, root))
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
