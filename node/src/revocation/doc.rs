//! The zone's revocations as published: the root-signed CRL, the node name of each serial
//! it lists, and the root's signature over both (the names are what `status` shows).
//!
//! **Format 2** (the zone's format level 2, [`format_for_level`]) adds what each serial
//! is ([`Kind`]: a node CA, or a certificate of the client root's chains) and a second
//! root-signed CRL, `client_crl`, listing only the latter: what a member's client port
//! needs once it trusts the client root alone (no client chain holds a node CA there), at
//! half the cost per connection (etcd parses its CRL file at every handshake). A format-2
//! document keeps every field of format 1 with its signature, so a release that reads
//! format 1 only still enforces the whole CRL on both ports; format 2's fields have their
//! own signature (`signature_v2`) over the CRLs and every serial's node and kind.
//!
//! Invariants: a document is read for the fields this release knows, and fields a later
//! release added are kept as they are (a newer zone-etcd's revocations take effect here,
//! and are never put back in an older form over its own); [`Revocations::verify`]
//! accepts a document only when one root the node trusts signed the CRL and the names,
//! and the names cover the CRL's serials exactly, and, from format 2, when the same root
//! signed the client CRL (same number) and the kinds, and the client CRL lists exactly
//! the serials whose kind a client chain may hold; [`offer`] accepts only a strictly
//! higher CRL number, or the very document in force, so neither an older CRL nor another
//! one under the same number ever replaces it. A kind this release does not know is
//! taken as a client chain's (listed on both ports: never less revoked than signed).

use serde::{Deserialize, Serialize};
use zone_io::hex;
use zone_io::Error;
use zone_pki::revocation::{parse_hex, parse_serial_hex, serial_hex, Crl, RevokedCa};
use zone_pki::{Authority, CertInfo};

pub use super::kind::Kind;

/// The etcd key the zone's revocations are published under (the reserved prefix).
pub const KEY: &str = "zone-etcd/revocations";

/// What the root signs besides the CRL itself.
const DOMAIN: &[u8] = b"zone-etcd revocations v1\n";
/// What the root signs for format 2's fields.
const DOMAIN_V2: &[u8] = b"zone-etcd revocations v2\n";

/// The document's format that says each serial's kind (the zone's format level 2).
pub const FORMAT_KINDS: u32 = 2;

/// The format of the document a zone at format level `level` takes: 2 from level 2 (every
/// member reads it), 1 below (zone-etcd 0.1.0 refuses a field it does not know).
pub fn format_for_level(level: u32) -> u32 {
    if level >= FORMAT_KINDS {
        FORMAT_KINDS
    } else {
        1
    }
}

/// One revoked serial and the node it was issued to (and, from format 2, its kind).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedNode {
    pub node: String,
    pub serial: Vec<u8>,
    /// Absent in a format-1 document.
    pub kind: Option<Kind>,
}

/// A serial to list: the node it names, the CRL entry, and what it is.
#[derive(Debug, Clone)]
pub struct Listed {
    pub node: String,
    pub entry: RevokedCa,
    pub kind: Kind,
}

/// Format 2's fields ([`FORMAT_KINDS`]).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Kinds {
    format: u32,
    client_crl: Crl,
    signature: Vec<u8>,
}

/// Two documents are the same when their signed content is (the CRLs, the names and
/// kinds, the signatures): what another release added beside it (`added`) is not
/// signed by what this release checks, so it never makes a document newer or another.
#[derive(Debug, Clone)]
pub struct Revocations {
    pub crl: Crl,
    pub nodes: Vec<RevokedNode>,
    signature: Vec<u8>,
    /// From format 2.
    kinds: Option<Kinds>,
    /// Fields a later release of zone-etcd added to the document, kept as they were read
    /// (written back with the document, never read).
    added: serde_json::Map<String, serde_json::Value>,
}

impl PartialEq for Revocations {
    fn eq(&self, other: &Self) -> bool {
        (&self.crl, &self.nodes, &self.signature, &self.kinds)
            == (&other.crl, &other.nodes, &other.signature, &other.kinds)
    }
}

impl Eq for Revocations {}

/// The document's fields. Read leniently: a later release only adds fields (its own
/// signature over them beside this one's), so what it publishes is read here for what
/// this release knows, and its revocations take effect on every member.
#[derive(Serialize, Deserialize)]
struct Raw {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    format: Option<u32>,
    crl: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_crl: Option<String>,
    nodes: Vec<RawNode>,
    signature: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signature_v2: Option<String>,
    #[serde(flatten)]
    added: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize, Deserialize)]
struct RawNode {
    node: String,
    serial: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kind: Option<String>,
}

fn message(crl: &Crl, nodes: &[RevokedNode]) -> Vec<u8> {
    let mut m = DOMAIN.to_vec();
    m.extend_from_slice(crl.der());
    for n in nodes {
        m.extend_from_slice(format!("\n{} {}", serial_hex(&n.serial), n.node).as_bytes());
    }
    m
}

/// What `signature_v2` signs: both CRLs (DER, self-delimiting) and each serial's kind and
/// node.
fn message_v2(format: u32, crl: &Crl, client_crl: &Crl, nodes: &[RevokedNode]) -> Vec<u8> {
    let mut m = DOMAIN_V2.to_vec();
    m.extend_from_slice(format!("format {format}\n").as_bytes());
    m.extend_from_slice(crl.der());
    m.extend_from_slice(client_crl.der());
    for n in nodes {
        let kind = n.kind.as_ref().map_or("", Kind::as_str);
        m.extend_from_slice(format!("\n{} {kind} {}", serial_hex(&n.serial), n.node).as_bytes());
    }
    m
}

fn not_the_roots(what: &str, field: &str) -> Error {
    Error::new(format!(
        "{what} not signed by the zone root this node trusts"
    ))
    .field(field)
    .fix("publish revocations only with `zone-etcd revoke --ca CA_DIR` (the zone root)")
}

impl Revocations {
    /// The document listing `listed`: the CRL numbered `number` signed by `root` at `now`,
    /// and the names signed by it too; in `format` 2 ([`format_for_level`]) also each
    /// serial's kind and the client port's CRL.
    pub fn issue(
        root: &Authority,
        number: u64,
        listed: &[Listed],
        now: time::OffsetDateTime,
        format: u32,
    ) -> Result<Self, Error> {
        let all: Vec<RevokedCa> = listed.iter().map(|l| l.entry.clone()).collect();
        let crl = Crl::parse_pem(&root.sign_crl(number, &all, now)?)?;
        let with_kinds = format >= FORMAT_KINDS;
        let names: Vec<RevokedNode> = listed
            .iter()
            .map(|l| RevokedNode {
                node: l.node.clone(),
                serial: l.entry.serial.clone(),
                kind: with_kinds.then(|| l.kind.clone()),
            })
            .collect();
        let mut doc = Revocations::sign(root, crl, names)?;
        if with_kinds {
            let client: Vec<RevokedCa> = listed
                .iter()
                .filter(|l| l.kind.on_client_port())
                .map(|l| l.entry.clone())
                .collect();
            let client_crl = Crl::parse_pem(&root.sign_crl(number, &client, now)?)?;
            let signature =
                root.sign(&message_v2(FORMAT_KINDS, &doc.crl, &client_crl, &doc.nodes))?;
            doc.kinds = Some(Kinds {
                format: FORMAT_KINDS,
                client_crl,
                signature,
            });
        }
        Ok(doc)
    }

    /// Signs the names of `crl`'s serials with `root` (which signed `crl`): a format-1
    /// document.
    pub fn sign(root: &Authority, crl: Crl, nodes: Vec<RevokedNode>) -> Result<Self, Error> {
        let signature = root.sign(&message(&crl, &nodes))?;
        Ok(Revocations {
            crl,
            nodes,
            signature,
            kinds: None,
            added: serde_json::Map::new(),
        })
    }

    /// The document's format (1, or what a format-2 document says).
    pub fn format(&self) -> u32 {
        self.kinds.as_ref().map_or(1, |k| k.format)
    }

    /// The CRL a client port that trusts the client root alone enforces: format 2's client
    /// CRL, or the whole CRL of a format-1 document.
    pub fn client_crl(&self) -> &Crl {
        self.kinds.as_ref().map_or(&self.crl, |k| &k.client_crl)
    }

    pub fn to_json(&self) -> String {
        let raw = Raw {
            format: self.kinds.as_ref().map(|k| k.format),
            crl: self.crl.pem(),
            client_crl: self.kinds.as_ref().map(|k| k.client_crl.pem()),
            nodes: self
                .nodes
                .iter()
                .map(|n| RawNode {
                    node: n.node.clone(),
                    serial: serial_hex(&n.serial),
                    kind: n.kind.as_ref().map(|k| k.as_str().to_string()),
                })
                .collect(),
            signature: hex(&self.signature),
            signature_v2: self.kinds.as_ref().map(|k| hex(&k.signature)),
            added: self.added.clone(),
        };
        serde_json::to_string_pretty(&raw).unwrap_or_default() + "\n"
    }

    /// Reads a document back (not yet verified: see [`Revocations::verify`]).
    pub fn parse(text: &str) -> Result<Self, Error> {
        let raw: Raw = serde_json::from_str(text)
            .map_err(|e| Error::new(format!("not a zone-etcd revocations document: {e}")))?;
        let crl = Crl::parse_pem(&raw.crl).map_err(|e| e.field("crl"))?;
        let mut nodes = Vec::with_capacity(raw.nodes.len());
        for n in raw.nodes {
            let serial = parse_serial_hex(&n.serial).ok_or_else(|| {
                Error::new(format!("serial {:?} is not hex", n.serial)).field("nodes")
            })?;
            nodes.push(RevokedNode {
                node: n.node,
                serial,
                kind: n.kind.as_deref().map(Kind::parse),
            });
        }
        let signature = parse_hex(&raw.signature)
            .ok_or_else(|| Error::new("the signature is not hex").field("signature"))?;
        let format = raw.format.unwrap_or(1);
        let kinds = if format >= FORMAT_KINDS {
            let missing = |field: &str| {
                Error::new(format!("a format-{format} document without its {field}")).field(field)
            };
            let client_crl = raw.client_crl.ok_or_else(|| missing("client_crl"))?;
            let client_crl = Crl::parse_pem(&client_crl).map_err(|e| e.field("client_crl"))?;
            let signature = raw.signature_v2.ok_or_else(|| missing("signature_v2"))?;
            let signature = parse_hex(&signature)
                .ok_or_else(|| Error::new("the signature is not hex").field("signature_v2"))?;
            if nodes.iter().any(|n| n.kind.is_none()) {
                return Err(missing("kind of every serial").field("nodes"));
            }
            Some(Kinds {
                format,
                client_crl,
                signature,
            })
        } else {
            None
        };
        Ok(Revocations {
            crl,
            nodes,
            signature,
            kinds,
            added: raw.added,
        })
    }

    /// Checks that one of `roots` signed the CRL and the names, and that the names cover
    /// the CRL's serials exactly; from format 2, that the same root signed the client CRL
    /// and the kinds, and that the client CRL lists exactly the serials a client chain may
    /// hold. Returns the root that signed.
    pub fn verify<'r>(&self, roots: &'r [CertInfo]) -> Result<&'r CertInfo, Error> {
        let number = self.crl.number;
        let root = roots
            .iter()
            .find(|r| self.crl.is_signed_by(r))
            .ok_or_else(|| not_the_roots(&format!("CRL number {number} is"), "crl"))?;
        if !root.verifies(&message(&self.crl, &self.nodes), &self.signature) {
            return Err(not_the_roots(
                &format!("the node names of CRL number {number} are"),
                "signature",
            ));
        }
        let named: Vec<&[u8]> = self.nodes.iter().map(|n| n.serial.as_slice()).collect();
        if !same_serials(named, &self.crl) {
            return Err(Error::new(format!(
                "the node names of CRL number {number} do not match its serials"
            ))
            .field("nodes"));
        }
        if let Some(kinds) = &self.kinds {
            let client = &kinds.client_crl;
            if !client.is_signed_by(root) || client.number != number {
                return Err(not_the_roots(
                    &format!("the client CRL of CRL number {number} is"),
                    "client_crl",
                ));
            }
            let signed = message_v2(kinds.format, &self.crl, client, &self.nodes);
            if !root.verifies(&signed, &kinds.signature) {
                return Err(not_the_roots(
                    &format!("the kinds of CRL number {number} are"),
                    "signature_v2",
                ));
            }
            let on_client: Vec<&[u8]> = self
                .nodes
                .iter()
                .filter(|n| n.kind.as_ref().is_some_and(Kind::on_client_port))
                .map(|n| n.serial.as_slice())
                .collect();
            if !same_serials(on_client, client) {
                return Err(Error::new(format!(
                    "the client CRL of CRL number {number} does not list the serials its kinds give to client chains"
                ))
                .field("client_crl"));
            }
        }
        Ok(root)
    }

    /// The names of the revoked nodes, sorted, each once.
    pub fn node_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.nodes.iter().map(|n| n.node.clone()).collect();
        names.sort();
        names.dedup();
        names
    }
}

/// Whether `serials` are exactly the serials `crl` lists.
fn same_serials(mut serials: Vec<&[u8]>, crl: &Crl) -> bool {
    let mut listed: Vec<&[u8]> = crl.entries.iter().map(|e| e.serial.as_slice()).collect();
    serials.sort();
    listed.sort();
    serials == listed
}

/// What a node does with a verified document offered while `current` is in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// Newer: install it.
    Install,
    /// The one in force: nothing to do.
    Same,
}

/// Accepts a strictly higher CRL number, or the document in force; refuses an older one
/// (a replay) and another one under the same number.
pub fn offer(current: Option<&Revocations>, offered: &Revocations) -> Result<Offer, Error> {
    let Some(current) = current else {
        return Ok(Offer::Install);
    };
    let (have, got) = (current.crl.number, offered.crl.number);
    if got > have {
        Ok(Offer::Install)
    } else if current == offered {
        Ok(Offer::Same)
    } else if got < have {
        Err(Error::new(format!(
            "CRL number {got} is older than number {have}, in force here: a CRL never goes back"
        ))
        .field("crl")
        .fix("publish a newer one with `zone-etcd revoke`"))
    } else {
        Err(Error::new(format!(
            "another CRL with number {got}, the number of the one in force here"
        ))
        .field("crl")
        .fix("publish a newer one with `zone-etcd revoke`"))
    }
}

#[cfg(test)]
#[path = "doc_tests.rs"]
mod tests;
