//! The zone's revocations as published: the root-signed CRL, the node name of each serial
//! it lists, and the root's signature over both (the names are what `status` shows).
//!
//! Invariants: a document is read for the fields this release knows, and fields a later
//! release added are kept as they are (a newer zone-etcd's revocations take effect here,
//! and are never put back in an older form over its own); [`Revocations::verify`]
//! accepts a document only when one root the node
//! trusts signed the CRL and the names, and the names cover the CRL's serials exactly;
//! [`offer`] accepts only a strictly higher CRL number, or the very document in force,
//! so neither an older CRL nor another one under the same number ever replaces it.

use serde::{Deserialize, Serialize};
use zone_io::Error;
use zone_pki::revocation::{hex, parse_hex, parse_serial_hex, serial_hex, Crl, RevokedCa};
use zone_pki::{Authority, CertInfo};

/// The etcd key the zone's revocations are published under (the reserved prefix).
pub const KEY: &str = "zone-etcd/revocations";

/// What the root signs besides the CRL itself.
const DOMAIN: &[u8] = b"zone-etcd revocations v1\n";

/// One revoked node CA: its serial and the node it was issued to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedNode {
    pub node: String,
    pub serial: Vec<u8>,
}

/// Two documents are the same when their signed content is (the CRL, the names, the
/// signature): what another release added beside it (`added`) is not
/// signed by what this release checks, so it never makes a document newer or another.
#[derive(Debug, Clone)]
pub struct Revocations {
    pub crl: Crl,
    pub nodes: Vec<RevokedNode>,
    signature: Vec<u8>,
    /// Fields a later release of zone-etcd added to the document, kept as they were read
    /// (written back with the document, never read).
    added: serde_json::Map<String, serde_json::Value>,
}

impl PartialEq for Revocations {
    fn eq(&self, other: &Self) -> bool {
        (&self.crl, &self.nodes, &self.signature) == (&other.crl, &other.nodes, &other.signature)
    }
}

impl Eq for Revocations {}

/// The document's fields. Read leniently: a later release only adds fields (its own
/// signature over them beside this one's), so what it publishes is read here for what
/// this release knows, and its revocations take effect on every member.
#[derive(Serialize, Deserialize)]
struct Raw {
    crl: String,
    nodes: Vec<RawNode>,
    signature: String,
    #[serde(flatten)]
    added: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize, Deserialize)]
struct RawNode {
    node: String,
    serial: String,
}

fn message(crl: &Crl, nodes: &[RevokedNode]) -> Vec<u8> {
    let mut m = DOMAIN.to_vec();
    m.extend_from_slice(crl.der());
    for n in nodes {
        m.extend_from_slice(format!("\n{} {}", serial_hex(&n.serial), n.node).as_bytes());
    }
    m
}

impl Revocations {
    /// The document listing `entries` (each node's name and its revoked node CA): the
    /// CRL numbered `number` signed by `root` at `now`, and the names signed by it too.
    pub fn issue(
        root: &Authority,
        number: u64,
        entries: &[(String, RevokedCa)],
        now: time::OffsetDateTime,
    ) -> Result<Self, Error> {
        let crl_entries: Vec<RevokedCa> = entries.iter().map(|(_, e)| e.clone()).collect();
        let crl = Crl::parse_pem(&root.sign_crl(number, &crl_entries, now)?)?;
        let names = entries
            .iter()
            .map(|(node, e)| RevokedNode {
                node: node.clone(),
                serial: e.serial.clone(),
            })
            .collect();
        Revocations::sign(root, crl, names)
    }

    /// Signs the names of `crl`'s serials with `root` (which signed `crl`).
    pub fn sign(root: &Authority, crl: Crl, nodes: Vec<RevokedNode>) -> Result<Self, Error> {
        let signature = root.sign(&message(&crl, &nodes))?;
        Ok(Revocations {
            crl,
            nodes,
            signature,
            added: serde_json::Map::new(),
        })
    }

    pub fn to_json(&self) -> String {
        let raw = Raw {
            crl: self.crl.pem(),
            nodes: self
                .nodes
                .iter()
                .map(|n| RawNode {
                    node: n.node.clone(),
                    serial: serial_hex(&n.serial),
                })
                .collect(),
            signature: hex(&self.signature),
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
            });
        }
        let signature = parse_hex(&raw.signature)
            .ok_or_else(|| Error::new("the signature is not hex").field("signature"))?;
        Ok(Revocations {
            crl,
            nodes,
            signature,
            added: raw.added,
        })
    }

    /// Checks that one of `roots` signed the CRL and the names, and that the names cover
    /// the CRL's serials exactly. Returns the root that signed.
    pub fn verify<'r>(&self, roots: &'r [CertInfo]) -> Result<&'r CertInfo, Error> {
        let root = roots
            .iter()
            .find(|r| self.crl.is_signed_by(r))
            .ok_or_else(|| {
                Error::new(format!(
                    "CRL number {} is not signed by the zone root this node trusts",
                    self.crl.number
                ))
                .field("crl")
                .fix("publish revocations only with `zone-etcd revoke --ca CA_DIR` (the zone root)")
            })?;
        if !root.verifies(&message(&self.crl, &self.nodes), &self.signature) {
            return Err(Error::new(format!(
                "the node names of CRL number {} are not signed by the zone root",
                self.crl.number
            ))
            .field("signature")
            .fix("publish revocations only with `zone-etcd revoke --ca CA_DIR` (the zone root)"));
        }
        let mut named: Vec<&[u8]> = self.nodes.iter().map(|n| n.serial.as_slice()).collect();
        let mut listed: Vec<&[u8]> = self
            .crl
            .entries
            .iter()
            .map(|e| e.serial.as_slice())
            .collect();
        named.sort();
        listed.sort();
        if named != listed {
            return Err(Error::new(format!(
                "the node names of CRL number {} do not match its serials",
                self.crl.number
            ))
            .field("nodes"));
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
mod tests {
    use super::*;
    use time::OffsetDateTime;

    fn doc(root: &Authority, number: u64, nodes: &[(&str, Vec<u8>)]) -> Revocations {
        let now = OffsetDateTime::now_utc();
        let entries: Vec<(String, RevokedCa)> = nodes
            .iter()
            .map(|(n, s)| {
                let entry = RevokedCa {
                    serial: s.clone(),
                    revoked_at: now,
                };
                (n.to_string(), entry)
            })
            .collect();
        Revocations::issue(root, number, &entries, now).unwrap()
    }

    fn roots(root: &Authority) -> Vec<CertInfo> {
        vec![CertInfo::parse(root.cert_der()).unwrap()]
    }

    #[test]
    fn a_document_round_trips_and_verifies_against_its_root_only() {
        let root = Authority::new_root("example.zone").unwrap();
        let other = Authority::new_root("example.zone").unwrap();
        let d = doc(&root, 3, &[("laptop.example.zone", vec![0x11, 0x22])]);
        let back = Revocations::parse(&d.to_json()).unwrap();
        assert_eq!(back, d);
        assert!(back.verify(&roots(&root)).is_ok());
        let err = back.verify(&roots(&other)).unwrap_err().to_string();
        assert!(err.contains("not signed by the zone root"), "{err}");
        assert_eq!(back.node_names(), vec!["laptop.example.zone".to_string()]);
    }

    /// What a later release adds beside the fields this one knows is read past, kept, and
    /// never makes the document another: its revocations take effect here all the same.
    #[test]
    fn a_later_releases_added_fields_are_read_past_and_kept() {
        let root = Authority::new_root("example.zone").unwrap();
        let d = doc(&root, 3, &[("laptop.example.zone", vec![0x11, 0x22])]);
        let mut value: serde_json::Value = serde_json::from_str(&d.to_json()).unwrap();
        value["services"] = serde_json::json!([{"service": "svc:web", "serial": "abcd"}]);
        value["level"] = 2.into();
        let later = Revocations::parse(&value.to_string()).unwrap();
        assert!(later.verify(&roots(&root)).is_ok());
        assert_eq!(later, d);
        assert_eq!(offer(Some(&d), &later).unwrap(), Offer::Same);
        let kept: serde_json::Value = serde_json::from_str(&later.to_json()).unwrap();
        assert_eq!(kept["services"], value["services"]);
        assert_eq!(kept["level"], 2);
        // A field this release knows, changed, still fails the signature.
        value["nodes"][0]["node"] = "desk.example.zone".into();
        let changed = Revocations::parse(&value.to_string()).unwrap();
        assert!(changed.verify(&roots(&root)).is_err());
    }

    #[test]
    fn renamed_or_unnamed_serials_are_refused() {
        let root = Authority::new_root("example.zone").unwrap();
        let d = doc(&root, 3, &[("laptop.example.zone", vec![0x11, 0x22])]);
        let mut renamed = d.clone();
        renamed.nodes[0].node = "desk.example.zone".into();
        assert!(renamed
            .verify(&roots(&root))
            .unwrap_err()
            .to_string()
            .contains("names of CRL number 3 are not signed"));
        // Names signed but not matching the CRL's serials.
        let crl = d.crl.clone();
        let wrong = Revocations::sign(
            &root,
            crl,
            vec![RevokedNode {
                node: "laptop.example.zone".into(),
                serial: vec![0x33],
            }],
        )
        .unwrap();
        assert!(wrong
            .verify(&roots(&root))
            .unwrap_err()
            .to_string()
            .contains("do not match its serials"));
    }

    #[test]
    fn only_a_higher_number_replaces_the_one_in_force() {
        let root = Authority::new_root("example.zone").unwrap();
        let two = doc(&root, 2, &[("a.example.zone", vec![1])]);
        let three = doc(
            &root,
            3,
            &[("a.example.zone", vec![1]), ("b.example.zone", vec![2])],
        );
        let other_three = doc(&root, 3, &[("a.example.zone", vec![1])]);
        assert_eq!(offer(None, &two).unwrap(), Offer::Install);
        assert_eq!(offer(Some(&two), &three).unwrap(), Offer::Install);
        assert_eq!(offer(Some(&three), &three).unwrap(), Offer::Same);
        let older = offer(Some(&three), &two).unwrap_err().to_string();
        assert!(
            older.contains("CRL number 2 is older than number 3"),
            "{older}"
        );
        let same = offer(Some(&three), &other_three).unwrap_err().to_string();
        assert!(same.contains("another CRL with number 3"), "{same}");
    }
}
