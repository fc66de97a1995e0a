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

use crate::authority::{new_key, parse_cert_chain, sign_error};
use crate::inspect::CertInfo;

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
mod tests {
    use super::*;
    use crate::{Authority, Host, NodeIdentity};

    fn node(name: &str, member: bool) -> NodeIdentity {
        NodeIdentity {
            zone: "example.zone".into(),
            node_name: name.into(),
            address: Some(Host::parse("10.0.0.1")),
            member,
            tunneled: false,
        }
    }

    /// The request's DER with one byte of its signature changed.
    fn with_flipped_signature_byte(csr_pem: &str) -> Vec<u8> {
        let mut der = CertificateSigningRequestDer::from_pem_slice(csr_pem.as_bytes())
            .unwrap()
            .as_ref()
            .to_vec();
        // The signature is the last BIT STRING: its last byte is inside the ECDSA s value.
        let last = der.len() - 1;
        der[last] ^= 0x01;
        der
    }

    #[test]
    fn a_new_request_verifies_and_names_its_node_and_key() {
        let new = new_request("node1.example.zone").unwrap();
        assert!(new
            .csr_pem
            .starts_with("-----BEGIN CERTIFICATE REQUEST-----"));
        assert!(!format!("{new:?}").contains(new.key_pem()), "Debug redacts");
        let request = NodeRequest::from_pem(&new.csr_pem).unwrap();
        assert_eq!(request.node_name(), "node1.example.zone");
        let key = crate::authority::parse_key(new.key_pem()).unwrap();
        assert!(request.key_matches(&key));
        let other =
            crate::authority::parse_key(new_request("node1.example.zone").unwrap().key_pem())
                .unwrap();
        assert!(!request.key_matches(&other));
        assert_eq!(request.key_fingerprint_hex().len(), 64);
        // The request does not carry the key.
        assert!(!new.csr_pem.contains(&new.key_pem()[40..80]));
    }

    #[test]
    fn a_request_with_a_flipped_signature_byte_is_refused() {
        let new = new_request("node1.example.zone").unwrap();
        let good = CertificateSigningRequestDer::from_pem_slice(new.csr_pem.as_bytes()).unwrap();
        NodeRequest::from_der(good.as_ref()).unwrap();
        let bad = with_flipped_signature_byte(&new.csr_pem);
        let err = NodeRequest::from_der(&bad).unwrap_err();
        assert!(err.problem().contains("signature does not verify"), "{err}");
        assert!(NodeRequest::from_pem("not a request").is_err());
        assert!(NodeRequest::from_der(b"\x30\x03\x02\x01\x00").is_err());
    }

    #[test]
    fn a_request_not_p256_is_refused() {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "node1.example.zone");
        let pem = params.serialize_request(&key).unwrap().pem().unwrap();
        let err = NodeRequest::from_pem(&pem).unwrap_err();
        assert!(err.problem().contains("P-256"), "{err}");
    }

    #[test]
    fn the_node_ca_of_a_request_has_the_profile_and_ignores_what_the_request_asks() {
        let root = Authority::new_root("example.zone").unwrap();
        // A request asking for much more: a SAN of another node, an unconstrained CA.
        let key = new_key().unwrap();
        let mut params = CertificateParams::new(vec!["node2.example.zone".into()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "node1.example.zone");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let pem = params.serialize_request(&key).unwrap().pem().unwrap();
        let request = NodeRequest::from_pem(&pem).unwrap();

        let identity = node("node1.example.zone", true);
        let chain = root.issue_node_ca_for(&identity, &request).unwrap();
        let issued = CertInfo::parse_pem(&chain).unwrap();
        let reference = CertInfo::parse(root.issue_node_ca(&identity).unwrap().cert_der()).unwrap();
        assert_eq!(issued.subject_cn, "node1.example.zone");
        assert!(
            issued.public_key_matches(&key),
            "certifies the request's key"
        );
        assert!(issued.sans.is_empty(), "no SAN from the request");
        assert_eq!(issued.path_len, Some(0));
        // The same profile as a node CA issued with a fresh key.
        assert_eq!(issued.permitted, reference.permitted);
        assert_eq!(issued.is_ca, reference.is_ca);
        assert_eq!(issued.key_cert_sign, reference.key_cert_sign);
        assert_eq!(issued.issuer_cn, reference.issuer_cn);
        assert_eq!(
            issued.name_constraints_critical,
            reference.name_constraints_critical
        );
        assert_eq!(
            (issued.not_after - issued.not_before).whole_days(),
            (reference.not_after - reference.not_before).whole_days()
        );
        assert!(issued.is_signed_by(&CertInfo::parse(root.cert_der()).unwrap()));
        // And an Authority of it with the node's key issues leaves.
        let node_ca = Authority::with_key(&chain, key).unwrap();
        node_ca
            .issue_leaf(crate::LeafKind::Server, &identity, None)
            .unwrap();

        let err = root
            .issue_node_ca_for(&node("node2.example.zone", true), &request)
            .unwrap_err();
        assert!(err.problem().contains("node2.example.zone"), "{err}");
    }

    #[test]
    fn an_answer_is_checked_against_its_request() {
        let root = Authority::new_root("example.zone").unwrap();
        let trust = root.chain_pem().to_string();
        let ask = |name: &str| NodeRequest::from_pem(&new_request(name).unwrap().csr_pem).unwrap();
        let mine = ask("node1.example.zone");
        let answer = root
            .issue_node_ca_for(&node("node1.example.zone", false), &mine)
            .unwrap();
        let (info, signer) = check_answer(&mine, &answer, &trust).unwrap();
        assert_eq!(info.subject_cn, "node1.example.zone");
        assert!(signer.is_self_issued());

        // Another request for the same node: another key.
        let again = ask("node1.example.zone");
        let err = check_answer(&again, &answer, &trust).unwrap_err();
        assert!(err.problem().contains("another key"), "{err}");

        // A request of another node.
        let theirs = ask("node2.example.zone");
        let err = check_answer(&theirs, &answer, &trust).unwrap_err();
        assert!(err.problem().contains("another node"), "{err}");
        assert!(err.problem().contains("node2.example.zone"), "{err}");

        // Signed by another root than the one sent along.
        let other_root = Authority::new_root("example.zone").unwrap();
        let err = check_answer(&mine, &answer, other_root.chain_pem()).unwrap_err();
        assert!(err.problem().contains("not signed"), "{err}");
        // During a CA rotation ca.crt holds both roots: either may have signed.
        let both = format!("{}{}", other_root.chain_pem(), root.chain_pem());
        check_answer(&mine, &answer, &both).unwrap();
    }
}
