//! What `activate` and `bootstrap` write: a node's bundle (node.toml, pki/ca.crt,
//! pki/node.crt, pki/node.key) or, answering a node's request, the same without the key.
//!
//! Invariants: a bundle and an answer come from one writer ([`write_answer`]), so an
//! answer installed beside its key is byte for byte what `activate --node` lays out;
//! node.toml names the files as `pki/ca.crt`, `pki/node.crt`, `pki/node.key` in both;
//! the node CA is always issued for the identity the owner's zone file gives.

use std::path::Path;

use zone_io::Error;
use zone_io::{KEY_MODE, PUBLIC_MODE};
use zone_pki::{Authority, NodeIdentity};

use crate::identities::ca::SignerFor;
use crate::identities::ca::{ClientRoot, SignerKey};
use zone_model::config::node::NodeFile;
use zone_model::config::zone::{RawMember, Zone};

/// Where an activated node finds the zone's member list.
#[derive(Debug, Clone, Copy)]
pub enum MemberList<'a> {
    /// A copy in node.toml, as it is now (offline zones).
    Copy,
    /// The nameservice at this base URL: the node follows the owner's signed document.
    Nameservice(&'a str),
}

/// The files of a bundle, relative to its directory (node.toml names them so).
pub const CA_FILE: &str = "pki/ca.crt";
pub const CERT_FILE: &str = "pki/node.crt";
pub const KEY_FILE: &str = "pki/node.key";
pub const CONFIG_FILE: &str = "node.toml";

/// Who `node_name` is in `zone`, as its node CA says it: a member with its address, or
/// a client node reached by its name.
pub fn node_identity(zone: &Zone, node_name: &str) -> NodeIdentity {
    let member = zone.member(node_name);
    NodeIdentity {
        zone: zone.name.clone(),
        node_name: node_name.to_string(),
        address: member.and_then(|m| m.address.clone()),
        member: member.is_some(),
        // Only leaves differ for a zone with tunnels; a node CA permits loopback anyway.
        tunneled: false,
    }
}

/// Writes a node bundle into `dir` (a staging directory): node.toml, pki/ca.crt,
/// pki/node.crt (node CA, then nothing: the root is in ca.crt), pki/node.key.
/// `trust` is what the node trusts: the root, or both roots during a zone CA rotation.
/// The node CA is recorded in `ca_dir` ([`crate::revocation::issued`]) first.
pub fn write_bundle(
    ca_dir: &Path,
    dir: &Path,
    root: &Authority,
    trust: &str,
    zone: &Zone,
    node_name: &str,
    members: MemberList<'_>,
) -> Result<(), Error> {
    let node_ca = root.issue_node_ca(&node_identity(zone, node_name))?;
    crate::revocation::issued::record(ca_dir, node_name, node_ca.chain_pem())?;
    let client_root = client_root(ca_dir, zone)?;
    let signer = if zone.member(node_name).is_some() {
        SignerFor::FreshKey
    } else {
        SignerFor::NoSigner
    };
    let client = client_root.as_ref().map(|root| (root, signer));
    write_answer(
        dir,
        trust,
        node_ca.chain_pem(),
        zone,
        node_name,
        members,
        client,
    )?;
    if client_root.is_some() && zone.member(node_name).is_some() {
        // Recorded like the node CA: `revoke` puts its serial on the CRL too (etcd checks
        // every certificate of a client's chain), so a revoked member's signer mints
        // nothing any member takes.
        let signer = zone_io::read_text(&dir.join(crate::identities::ca::SIGNER_FILE))?;
        crate::revocation::issued::record(ca_dir, node_name, &signer)?;
    }
    zone_io::write_new(&dir.join(KEY_FILE), node_ca.key_pem().as_bytes(), KEY_MODE)
}

/// The zone's client root, for a zone with `[access]` ([`crate::identities`]).
pub fn client_root(ca_dir: &Path, zone: &Zone) -> Result<Option<ClientRoot>, Error> {
    if !zone.access.present {
        return Ok(None);
    }
    ClientRoot::of(ca_dir, &zone.name).map(Some)
}

/// What the owner does with the bundle in `dir` once it is on its node (issue 68): its keys
/// need not stay on the owner's machine, and a member's signer key mints identities of
/// the zone (etcd's `root` among them).
pub fn keys_advice(dir: &Path) -> &'static str {
    if dir.join(crate::identities::ca::SIGNER_KEY_FILE).exists() {
        "then delete it here: its pki/node.key and pki/signer.key act as that member (the signer mints identities of the zone, etcd's root among them)"
    } else {
        "then delete it here: its pki/node.key acts as that node"
    }
}

/// Writes everything of a bundle but the key into `dir` (a staging directory):
/// node.toml, pki/ca.crt (`trust`), pki/node.crt (`node_ca_chain`); with `client` (a
/// zone with `[access]`: its client root, and whether to issue the node a signer),
/// pki/client-ca.crt and the signer ([`crate::identities::ca`]).
pub fn write_answer(
    dir: &Path,
    trust: &str,
    node_ca_chain: &str,
    zone: &Zone,
    node_name: &str,
    members: MemberList<'_>,
    client: Option<(&ClientRoot, SignerFor<'_>)>,
) -> Result<(), Error> {
    zone_io::ensure_private_dir(&dir.join("pki"))?;
    let signer_key = match client {
        Some((root, signer)) => {
            crate::identities::ca::write_bundle_part(dir, root, &zone.name, node_name, signer)?
        }
        None => None,
    }
    .map(|key| match key {
        SignerKey::Own => crate::identities::ca::SIGNER_KEY_FILE,
        SignerKey::NodeKey => KEY_FILE,
    });
    let files = Files {
        client_ca: client.is_some(),
        signer_key,
    };
    zone_io::write_new(&dir.join(CA_FILE), trust.as_bytes(), PUBLIC_MODE)?;
    zone_io::write_new(&dir.join(CERT_FILE), node_ca_chain.as_bytes(), PUBLIC_MODE)?;
    zone_io::write_new(
        &dir.join(CONFIG_FILE),
        node_toml(zone, node_name, members, files)?.as_bytes(),
        PUBLIC_MODE,
    )
}

/// Which of the identities' files a bundle holds.
#[derive(Debug, Clone, Copy)]
struct Files {
    client_ca: bool,
    /// The signer's key file, when the bundle has a signer.
    signer_key: Option<&'static str>,
}

/// The text of a bundle's node.toml.
fn node_toml(
    zone: &Zone,
    node_name: &str,
    members: MemberList<'_>,
    files: Files,
) -> Result<String, Error> {
    use crate::identities::ca::{CLIENT_CA_FILE, SIGNER_FILE};
    let config = NodeFile {
        client_ca: files.client_ca.then(|| CLIENT_CA_FILE.into()),
        signer: files.signer_key.map(|_| SIGNER_FILE.into()),
        signer_key: files.signer_key.map(String::from),
        name: Some(node_name.to_string()),
        zone: Some(zone.name.clone()),
        ca: Some(CA_FILE.into()),
        cert: Some(CERT_FILE.into()),
        key: Some(KEY_FILE.into()),
        etcd: match members {
            MemberList::Copy => Some(zone.members.iter().map(RawMember::from).collect()),
            MemberList::Nameservice(_) => None,
        },
        nameservice: match members {
            MemberList::Copy => None,
            MemberList::Nameservice(url) => Some(url.to_string()),
        },
        settings: match members {
            MemberList::Copy if !zone.settings.is_empty() => {
                Some(serde_json::Value::Object(zone.settings.to_value()))
            }
            _ => None,
        },
        backup: match members {
            MemberList::Copy if zone.backup.present => {
                Some(serde_json::Value::Object(zone.backup.to_value()))
            }
            _ => None,
        },
        access: match members {
            MemberList::Copy if zone.access.present => {
                Some(serde_json::Value::Object(zone.access.to_value()))
            }
            _ => None,
        },
        ..NodeFile::default()
    };
    let text =
        toml::to_string(&config).map_err(|e| Error::new(format!("cannot write node.toml: {e}")))?;
    let header = format!(
        "# zone-etcd node config for {node_name} (zone {}), written by zone-etcd.\n# Paths are relative to this file. Optional: state_dir, data_dir, etcd_bin, nameservice.\n# [settings], [backup] and [access], when present, are the zone file's: keep them the same on every node.\n\n",
        zone.name
    );
    Ok(header + &text)
}
