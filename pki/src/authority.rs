//! Certificate authorities of a zone: the root, and each node's own CA.
//!
//! An [`Authority`] is a CA certificate with its key, loaded from disk or freshly made. It
//! signs what [`crate::profile`] describes. Keys are ECDSA P-256 with SHA-256 signatures,
//! serialised as PKCS#8 PEM; serial numbers are 20 bytes, positive, 158 of their bits
//! random (the CA/B Forum asks for at least 64).

use std::path::Path;

use rcgen::{
    Certificate, CertificateParams, Issuer, KeyPair, PublicKeyData, SerialNumber,
    PKCS_ECDSA_P256_SHA256,
};
use ring::rand::{SecureRandom, SystemRandom};
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;
use zone_io::{read_text, Error, Result};

use crate::encoding::parse_cert_chain;
use crate::inspect::CertInfo;
use crate::key::{load_key, new_key, parse_key, sign_error};
use crate::profile::{self, LeafKind, NodeIdentity};
use crate::request::NodeRequest;

/// A CA certificate (with the chain above it, root excluded) and its signing key.
pub struct Authority {
    cert: CertificateDer<'static>,
    /// PEM of this CA's certificate followed by its parents below the root.
    chain_pem: String,
    /// A root's certificate stays out of the chains it issues (verifiers hold it).
    is_root: bool,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate and key freshly issued, as PEM text ready for files.
pub struct Issued {
    /// The certificate, then the certificates of the CAs below the root that issued it.
    pub chain_pem: String,
    /// PKCS#8 PEM of the private key. Never print it.
    pub key_pem: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

impl Authority {
    /// Makes a new zone root CA.
    pub fn new_root(zone: &str) -> Result<Self> {
        let params = with_serial(profile::root_ca(zone, OffsetDateTime::now_utc()))?;
        let key = new_key()?;
        let cert = params.self_signed(&key).map_err(sign_error)?;
        let cert_der = cert.der().clone();
        Ok(Authority {
            chain_pem: cert.pem(),
            is_root: true,
            cert: cert_der,
            issuer: Issuer::new(params, key),
        })
    }

    /// Loads a CA from its certificate (chain) and key files, checking that they belong
    /// together and that the certificate is a CA.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self> {
        let chain_pem = read_text(cert_path)?;
        let certs = parse_cert_chain(&chain_pem).map_err(|e| e.file(cert_path))?;
        let key = load_key(key_path)?;
        Self::from_parts(certs, &chain_pem, key).map_err(|e| e.file(cert_path))
    }

    /// Builds an authority from PEM text already in memory (for configs with inline PEM).
    pub fn from_pem(chain_pem: &str, key_pem: &str) -> Result<Self> {
        let certs = parse_cert_chain(chain_pem)?;
        let key = parse_key(key_pem)?;
        Self::from_parts(certs, chain_pem, key)
    }

    /// Builds an authority from a certificate (chain) PEM and an already loaded key.
    pub fn with_key(chain_pem: &str, key: KeyPair) -> Result<Self> {
        Self::from_parts(parse_cert_chain(chain_pem)?, chain_pem, key)
    }

    fn from_parts(
        certs: Vec<CertificateDer<'static>>,
        chain_pem: &str,
        key: KeyPair,
    ) -> Result<Self> {
        let cert = certs
            .into_iter()
            .next()
            .ok_or_else(|| Error::new("no certificate found"))?;
        let info = CertInfo::parse(&cert)?;
        if !info.is_ca {
            return Err(Error::new(format!(
                "certificate {:?} is not a CA certificate (no basicConstraints CA:TRUE)",
                info.subject_cn
            ))
            .fix("point to a CA certificate made by `zone-etcd ca init` or `zone-etcd activate`"));
        }
        // The zone is ECDSA P-256 throughout: zone documents are verified as such, and
        // an RSA CA would hand etcd certificates its ECDSA-only TLS settings refuse.
        if key.algorithm() != &PKCS_ECDSA_P256_SHA256 {
            return Err(Error::new(format!(
                "the key of CA {:?} is not an ECDSA P-256 key",
                info.subject_cn
            ))
            .fix("use a CA made by `zone-etcd ca init` or `zone-etcd activate` (ECDSA P-256)"));
        }
        if !info.public_key_matches(&key) {
            return Err(Error::new(format!(
                "the private key does not match certificate {:?}",
                info.subject_cn
            ))
            .fix("use the key file that was written together with this certificate"));
        }
        let issuer = Issuer::from_ca_cert_der(&cert, key)
            .map_err(|e| Error::new(format!("cannot use certificate as an issuer: {e}")))?;
        Ok(Authority {
            cert,
            is_root: info.is_self_issued(),
            chain_pem: chain_pem.trim_end().to_string() + "\n",
            issuer,
        })
    }

    /// What signs for this CA (certificates, CRLs).
    pub(crate) fn issuer(&self) -> &Issuer<'static, KeyPair> {
        &self.issuer
    }

    /// This CA's certificate in DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    /// This CA's certificate (and its chain below the root) in PEM.
    pub fn chain_pem(&self) -> &str {
        &self.chain_pem
    }

    /// This CA's private key as PKCS#8 PEM. Never print it.
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// Signs `message` with this CA's key: ECDSA P-256 over SHA-256, the signature in DER
    /// (what `openssl dgst -sha256 -sign` writes). The zone document is signed this way.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        use rcgen::SigningKey;
        self.issuer
            .key()
            .sign(message)
            .map_err(|e| Error::new(format!("cannot sign: {e}")))
    }

    /// Issues a node its own name-constrained CA, with a fresh key.
    pub fn issue_node_ca(&self, node: &NodeIdentity) -> Result<Authority> {
        let key = new_key()?;
        let (params, cert) = self.sign_node_ca(node, &key)?;
        Ok(Authority {
            chain_pem: format!("{}{}", cert.pem(), self.chain_below_root()),
            is_root: false,
            cert: cert.der().clone(),
            issuer: Issuer::new(params, key),
        })
    }

    /// Issues a node its own name-constrained CA for the public key of its request: the
    /// same profile as [`Authority::issue_node_ca`], for the key the node keeps. Only the
    /// request's key is used; what the certificate says comes from `node` (the owner's
    /// zone file), never from the request. Returns the chain PEM (node CA, then the CAs
    /// below the root), what `node.crt` holds.
    pub fn issue_node_ca_for(&self, node: &NodeIdentity, request: &NodeRequest) -> Result<String> {
        if request.node_name() != node.node_name {
            return Err(Error::new(format!(
                "the request is for node {:?}, not {:?}",
                request.node_name(),
                node.node_name
            )));
        }
        let (_, cert) = self.sign_node_ca(node, request.public_key())?;
        Ok(format!("{}{}", cert.pem(), self.chain_below_root()))
    }

    /// The one path every node CA is signed on: the node-CA profile, a fresh serial,
    /// this CA's signature over `public_key`.
    fn sign_node_ca(
        &self,
        node: &NodeIdentity,
        public_key: &impl PublicKeyData,
    ) -> Result<(CertificateParams, Certificate)> {
        let params = with_serial(profile::node_ca(node, OffsetDateTime::now_utc())?)?;
        let cert = params
            .signed_by(public_key, &self.issuer)
            .map_err(sign_error)?;
        Ok((params, cert))
    }

    /// Issues a leaf (server, peer or client) for `node`; `client_name` sets a client's CN.
    pub fn issue_leaf(
        &self,
        kind: LeafKind,
        node: &NodeIdentity,
        client_name: Option<&str>,
    ) -> Result<Issued> {
        let params = profile::leaf(kind, node, client_name, OffsetDateTime::now_utc())?;
        self.issue(params)
    }

    /// Signs arbitrary parameters with a fresh key. Used for leaves and by tests that need
    /// certificates outside the profile (to show they are refused).
    pub fn issue(&self, params: CertificateParams) -> Result<Issued> {
        let params = with_serial(params)?;
        let key = new_key()?;
        let cert = params.signed_by(&key, &self.issuer).map_err(sign_error)?;
        Ok(Issued {
            chain_pem: format!("{}{}", cert.pem(), self.chain_below_root()),
            key_pem: key.serialize_pem(),
        })
    }

    /// The chain a certificate issued by this CA carries after itself: this CA unless it
    /// is the root (verifiers hold the root already).
    pub(crate) fn chain_below_root(&self) -> &str {
        if self.is_root {
            ""
        } else {
            &self.chain_pem
        }
    }
}

pub(crate) fn with_serial(mut params: CertificateParams) -> Result<CertificateParams> {
    let mut bytes = [0u8; 20];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Error::new("the system random number generator failed"))?;
    bytes[0] &= 0x7f; // positive
    bytes[0] |= 0x01; // and exactly 20 bytes long
    params.serial_number = Some(SerialNumber::from_slice(&bytes));
    Ok(params)
}
