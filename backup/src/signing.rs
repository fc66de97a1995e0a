//! Signed manifests: every manifest a node writes is signed by that node's backup signer,
//! a leaf of its node CA, so a restore tells the zone's backups from anyone else's.
//!
//! The signer (`<state>/backup/signer.crt`: leaf then node CA; `signer.key`, 0600, in a
//! 0700 directory) has the pki's `backup_signer` profile: CN and SAN the node name,
//! digitalSignature, EKU codeSigning only. A TLS leaf never has codeSigning, so a server,
//! peer or client key cannot sign a manifest, and the signer cannot serve TLS. It is
//! renewed, like the TLS leaves, past two thirds of its life or when it no longer chains
//! to the node's current CA.
//!
//! The envelope (JSON, one object):
//! ```text
//! {"format":"zone-etcd-signed/1","body":"<the body, a UTF-8 string>",
//!  "chain":["-----BEGIN CERTIFICATE-----\n…(signer)","-----BEGIN CERTIFICATE-----\n…(node CA)"],
//!  "signature":"<base64 of the DER ECDSA P-256 SHA-256 signature over the body's bytes>"}
//! ```
//! [`verify`] checks it against the zone's roots at the time the *body* says it was signed,
//! not at "now": a manifest stays valid after its signer expired or was renewed. Its
//! `format` is checked first (another one is refused in one line naming both); a field a
//! later release adds beside these four is ignored.

use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use zone_io::Error;
use zone_io::{read_small_file, Links};
use zone_io::{KEY_MODE, PUBLIC_MODE};
use zone_pki::encoding::parse_cert_chain;
use zone_pki::key::parse_key;
use zone_pki::{CertInfo, Host, NodeIdentity};

use zone_io::state;
use zone_model::config::node::NodeCa;
use zone_pki::inspect::RENEW_AT_LIFE_USED;

/// The `format` of every envelope this version writes and reads.
pub const FORMAT: &str = "zone-etcd-signed/1";

#[derive(Serialize, Deserialize)]
struct Envelope {
    format: String,
    body: String,
    chain: Vec<String>,
    signature: String,
}

/// A node's backup signer: its certificate chain and key. The key is never printed.
pub struct Signer {
    /// The signer leaf, then the node CA, one PEM block each.
    chain: Vec<String>,
    leaf: CertInfo,
    key: EcdsaKeyPair,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("node", &self.leaf.subject_cn)
            .field("serial", &self.leaf.serial_hex)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// What a valid envelope says: its body, and the node that signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub body: Vec<u8>,
    pub node: String,
}

/// The node a signer is for, as [`Signer::for_node`] needs it (the app makes it from its
/// loaded node): who it is, the node CA that issues the signer, and the state directory
/// the signer is kept in.
pub struct SignerNode<'a> {
    /// The signer's name (CN and SAN: `identity.node_name`) and profile.
    pub identity: NodeIdentity,
    pub node_ca: &'a NodeCa,
    pub state_dir: &'a Path,
}

/// Where a node keeps its backup signer: (`signer.crt`, `signer.key`).
pub fn signer_paths(state_dir: &Path) -> (PathBuf, PathBuf) {
    let dir = state_dir.join("backup");
    (dir.join("signer.crt"), dir.join("signer.key"))
}

impl Signer {
    /// Loads the node's signer, or issues a new one from its node CA when there is none or
    /// it is due (see the module docs). Serialised with the node's other state writers.
    pub fn for_node(node: &SignerNode<'_>) -> Result<Signer, Error> {
        let node_ca = node.node_ca;
        let (cert_path, key_path) = signer_paths(node.state_dir);
        let dir = cert_path.parent().unwrap_or(node.state_dir).to_path_buf();
        let _lock = state::lock(node.state_dir)?;
        if let Ok(meta) = fs::symlink_metadata(&dir) {
            if !meta.is_dir() {
                return Err(Error::new(
                    "is a symbolic link or a file, not the directory zone-etcd makes",
                )
                .file(&dir)
                .fix(format!(
                    "remove {} (zone-etcd makes it again)",
                    dir.display()
                )));
            }
        }
        if key_path.exists() {
            // A key others could read was exposed: say so rather than silently replace it.
            zone_io::check_key_mode(&key_path)?;
        }
        let now = OffsetDateTime::now_utc();
        let reason = match Signer::load(&cert_path, &key_path) {
            Ok(signer) => match signer.renewal_reason(node, &node_ca.info, now) {
                None => return Ok(signer),
                Some(reason) => reason,
            },
            Err(reason) => reason,
        };
        let profile = zone_pki::profile::backup_signer(&node.identity, now)?;
        let issued = node_ca.authority.issue(profile)?;
        zone_io::ensure_private_dir(&dir)?;
        // The key first: a kill between the two writes leaves a pair that does not match,
        // which the next call renews.
        zone_io::write_atomic(&key_path, issued.key_pem.as_bytes(), KEY_MODE)?;
        zone_io::write_atomic(&cert_path, issued.chain_pem.as_bytes(), PUBLIC_MODE)?;
        tracing::info!(
            "backup signer of {}: issued ({reason})",
            node.identity.node_name
        );
        Signer::from_pem(&issued.chain_pem, &issued.key_pem)
    }

    /// Reads the signer files; `Err` says why they cannot be used (and a new signer is due).
    fn load(cert_path: &Path, key_path: &Path) -> Result<Signer, String> {
        let read = |path: &Path| {
            read_small_file(path, Links::Refuse)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
        };
        let chain = read(cert_path).ok_or("no signer certificate yet")?;
        let key = read(key_path).ok_or("signer key missing or unreadable")?;
        Signer::from_pem(&chain, &key).map_err(|e| e.problem().to_string())
    }

    /// A signer from PEM text: the chain (leaf, then node CA) and its PKCS#8 key. Checks
    /// that the key belongs to the leaf; what the leaf may do is for [`verify`] to judge.
    fn from_pem(chain_pem: &str, key_pem: &str) -> Result<Signer, Error> {
        let ders = parse_cert_chain(chain_pem)?;
        if ders.len() != 2 {
            return Err(Error::new(format!(
                "the signer chain holds {} certificates, not the leaf and its node CA",
                ders.len()
            )));
        }
        let leaf = CertInfo::parse(&ders[0])?;
        let key = parse_key(key_pem)?;
        if !leaf.public_key_matches(&key) {
            return Err(Error::new("the signer key does not match its certificate"));
        }
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_ASN1_SIGNING,
            &key.serialize_der(),
            &SystemRandom::new(),
        )
        .map_err(|_| Error::new("the signer key is not an ECDSA P-256 key"))?;
        let chain = ders.iter().map(|der| pem(der.as_ref())).collect();
        Ok(Signer { chain, leaf, key })
    }

    /// Why this signer must be replaced for `node`, or `None` when it can sign.
    fn renewal_reason(
        &self,
        node: &SignerNode<'_>,
        node_ca: &CertInfo,
        now: OffsetDateTime,
    ) -> Option<String> {
        let leaf = &self.leaf;
        let reason = if !is_signer_profile(leaf) {
            "not a backup signer certificate"
        } else if !leaf.is_signed_by(node_ca) || self.chain[1] != pem(node_ca.der()) {
            "not issued by this node's current CA"
        } else if leaf.subject_cn != node.identity.node_name
            || leaf.sans != [Host::Dns(node.identity.node_name.clone())]
        {
            "issued for another name"
        } else if now >= leaf.not_after {
            "expired"
        } else if leaf.life_used(now) >= RENEW_AT_LIFE_USED {
            "past two thirds of its life"
        } else {
            return None;
        };
        Some(reason.to_string())
    }

    /// The signer's certificate.
    pub fn certificate(&self) -> &CertInfo {
        &self.leaf
    }

    /// Wraps `body` (UTF-8 text, e.g. a JSON manifest) in a signed envelope.
    pub fn sign(&self, body: &[u8]) -> Result<Vec<u8>, Error> {
        let text = std::str::from_utf8(body)
            .map_err(|_| Error::new("cannot sign: the body is not UTF-8 text"))?;
        let signature = self
            .key
            .sign(&SystemRandom::new(), body)
            .map_err(|_| Error::new("cannot sign: the system random number generator failed"))?;
        let envelope = Envelope {
            format: FORMAT.to_string(),
            body: text.to_string(),
            chain: self.chain.clone(),
            signature: b64().encode(signature.as_ref()),
        };
        serde_json::to_vec(&envelope)
            .map_err(|e| Error::new(format!("cannot serialise the envelope: {e}")))
    }
}

/// The signer profile as read back: an end entity that signs code and nothing else.
fn is_signer_profile(leaf: &CertInfo) -> bool {
    !leaf.is_ca
        && leaf.digital_signature
        && leaf.code_signing
        && !leaf.server_auth
        && !leaf.client_auth
}

/// Checks a signed envelope: its signature with the signer's key, the signer's profile,
/// its chain up to one of the zone's `roots` (name constraints included), that the signer
/// is a node of `zone`, and that every certificate of the chain was valid at the time
/// `signed_at` reads from the body. Errors are one line saying what failed.
pub fn verify(
    envelope: &[u8],
    zone: &str,
    roots: &[CertInfo],
    signed_at: impl Fn(&[u8]) -> Option<OffsetDateTime>,
) -> Result<Verified, String> {
    zone_model::format::check_format(envelope, FORMAT, crate::RELEASE)
        .map_err(|line| format!("the envelope's {line}"))?;
    let envelope: Envelope = serde_json::from_slice(envelope)
        .map_err(|e| format!("not a signed envelope ({FORMAT}): {e}"))?;
    if envelope.format != FORMAT {
        return Err(format!(
            "unknown envelope format {:?} (this version reads {FORMAT:?})",
            envelope.format
        ));
    }
    let [leaf, ca] = envelope.chain.as_slice() else {
        return Err(format!(
            "the envelope's chain holds {} certificates, not the signer and its node CA",
            envelope.chain.len()
        ));
    };
    let (leaf, ca) = (certificate(leaf, "signer")?, certificate(ca, "node CA")?);
    let Some(root) = roots.iter().find(|root| ca.is_signed_by(root)) else {
        return Err(format!(
            "signed by a CA that is not this zone's: node CA {:?} was not issued by the zone root CA",
            ca.subject_cn
        ));
    };
    if !ca.is_ca || !ca.key_cert_sign {
        return Err(format!(
            "the signer's issuer {:?} is not a node CA",
            ca.subject_cn
        ));
    }
    if !leaf.is_signed_by(&ca) {
        return Err(format!(
            "the signer certificate was not issued by node CA {:?}",
            ca.subject_cn
        ));
    }
    if !is_signer_profile(&leaf) {
        return Err(format!(
            "signed with certificate {:?} that is not a backup signer (no codeSigning usage: a TLS or other key)",
            leaf.subject_cn
        ));
    }
    let node = leaf.subject_cn.clone();
    if node != ca.subject_cn || !ca.permits(&Host::Dns(node.clone())) {
        return Err(format!(
            "node CA {:?} may not issue a signer named {node:?}",
            ca.subject_cn
        ));
    }
    if let Some(name) = leaf.sans.iter().find(|name| !ca.permits(name)) {
        return Err(format!(
            "the signer names {name}, which node CA {:?} does not permit",
            ca.subject_cn
        ));
    }
    if !node.ends_with(&format!(".{zone}")) {
        return Err(format!(
            "the signer {node:?} is not a node of zone {zone:?}"
        ));
    }
    let signature = b64()
        .decode(envelope.signature.trim())
        .map_err(|_| "the envelope's signature is not base64".to_string())?;
    let body = envelope.body.into_bytes();
    if !leaf.verifies(&body, &signature) {
        return Err(format!(
            "signature does not match: the body was changed after {node} signed it"
        ));
    }
    let at = signed_at(&body).ok_or("the signed body carries no signing time")?;
    for (what, cert) in [("signer", &leaf), ("node CA", &ca), ("zone root CA", root)] {
        if at < cert.not_before || at > cert.not_after {
            return Err(format!(
                "the {what} certificate {:?} was not valid at the signing time {} (valid {} to {})",
                cert.subject_cn,
                rfc3339(at),
                rfc3339(cert.not_before),
                rfc3339(cert.not_after)
            ));
        }
    }
    Ok(Verified { body, node })
}

/// Parses one PEM certificate of an envelope's chain.
fn certificate(pem: &str, what: &str) -> Result<CertInfo, String> {
    let ders = parse_cert_chain(pem).map_err(|e| format!("the {what} certificate: {e}"))?;
    match ders.as_slice() {
        [der] => CertInfo::parse(der).map_err(|e| format!("the {what} certificate: {e}")),
        _ => Err(format!(
            "the envelope's {what} entry holds {} certificates, not one",
            ders.len()
        )),
    }
}

/// One certificate as PEM, 64 columns, as openssl writes it.
fn pem(der: &[u8]) -> String {
    let text = b64().encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out + "-----END CERTIFICATE-----\n"
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

#[cfg(test)]
#[path = "signing_tests.rs"]
mod tests;
