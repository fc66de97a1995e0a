//! `zone-etcd activate`: the owner issues one node its bundle (node.toml, the zone root
//! certificate, and the node's own name-constrained CA). The root key never enters it.

use std::path::Path;

use zone_io::{Staging, KEY_MODE, PUBLIC_MODE};
use zone_pki::{Authority, Error, NodeIdentity};

use crate::config::check_dns_name;
use crate::config::node::NodeFile;
use crate::config::zone::{check_name_is_not_reserved, is_parent_domain, RawMember, Zone};
use crate::nameservice::check_url;

/// Where an activated node finds the zone's member list.
#[derive(Debug, Clone, Copy)]
pub enum MemberList<'a> {
    /// A copy in node.toml, as it is now (offline zones).
    Copy,
    /// The nameservice at this base URL: the node follows the owner's signed document.
    Nameservice(&'a str),
}

pub fn run(
    ca_dir: &Path,
    zone_file: &Path,
    node_name: &str,
    nameservice: Option<&str>,
    out: &Path,
) -> Result<(), Error> {
    let zone = Zone::load(zone_file)?;
    check_node_name(&zone, node_name)?;
    let members = match nameservice {
        Some(url) => {
            check_url(url).map_err(|p| {
                Error::new(p)
                    .field("--nameservice")
                    .fix("give the nameservice's base URL, e.g. http://127.0.0.1:3456")
            })?;
            MemberList::Nameservice(url)
        }
        None => MemberList::Copy,
    };
    let root = super::load_root(ca_dir, &zone.name)?;
    let staging = Staging::new(out)?;
    let trust = super::ca_rotation::trust_pem(ca_dir, &root)?;
    write_bundle(staging.path(), &root, &trust, &zone, node_name, members)?;
    staging.commit()?;
    let config = out.join("node.toml");
    let (role, next) = match zone.member(node_name) {
        Some(_) => (
            "etcd member",
            format!(
                "`zone-etcd launch --config {0}` in a new zone, or `zone-etcd join --config {0}` to add it to a running one",
                config.display()
            ),
        ),
        None => (
            "client node (not an etcd member)",
            format!("`zone-etcd env --config {}`", config.display()),
        ),
    };
    eprintln!(
        "zone-etcd: activated {node_name} as {role}: bundle in {} (copy it to the node, then run {next})",
        out.display(),
    );
    Ok(())
}

/// Refuses a node name that is not a DNS name, or whose CA could issue for a member's name.
pub fn check_node_name(zone: &Zone, node_name: &str) -> Result<(), Error> {
    let fix = "give the node's DNS name, e.g. node1.example.zone";
    check_dns_name(node_name).map_err(|p| Error::new(p).field("--node").fix(fix))?;
    check_name_is_not_reserved(&zone.name, node_name).map_err(|e| e.field("--node"))?;
    if let Some(member) = zone
        .members
        .iter()
        .find(|m| is_parent_domain(node_name, &m.node_name))
    {
        return Err(Error::new(format!(
            "{node_name:?} is a parent domain of member {:?}: its node CA could issue certificates for that member",
            member.node_name
        ))
        .field("--node")
        .fix(fix));
    }
    Ok(())
}

/// Writes a node bundle into `dir` (a staging directory): node.toml, pki/ca.crt,
/// pki/node.crt (node CA, then nothing: the root is in ca.crt), pki/node.key.
/// `trust` is what the node trusts: the root, or both roots during a zone CA rotation.
pub fn write_bundle(
    dir: &Path,
    root: &Authority,
    trust: &str,
    zone: &Zone,
    node_name: &str,
    members: MemberList<'_>,
) -> Result<(), Error> {
    let member = zone.member(node_name);
    let identity = NodeIdentity {
        zone: zone.name.clone(),
        node_name: node_name.to_string(),
        address: member.and_then(|m| m.address.clone()),
        member: member.is_some(),
        tunneled: false,
    };
    let node_ca = root.issue_node_ca(&identity)?;
    let pki = dir.join("pki");
    zone_io::ensure_private_dir(&pki)?;
    zone_io::write_new(&pki.join("ca.crt"), trust.as_bytes(), PUBLIC_MODE)?;
    zone_io::write_new(
        &pki.join("node.crt"),
        node_ca.chain_pem().as_bytes(),
        PUBLIC_MODE,
    )?;
    zone_io::write_new(
        &pki.join("node.key"),
        node_ca.key_pem().as_bytes(),
        KEY_MODE,
    )?;
    let config = NodeFile {
        name: Some(node_name.to_string()),
        zone: Some(zone.name.clone()),
        ca: Some("pki/ca.crt".into()),
        cert: Some("pki/node.crt".into()),
        key: Some("pki/node.key".into()),
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
        ..NodeFile::default()
    };
    let text =
        toml::to_string(&config).map_err(|e| Error::new(format!("cannot write node.toml: {e}")))?;
    let header = format!(
        "# zone-etcd node config for {node_name} (zone {}), written by zone-etcd.\n# Paths are relative to this file. Optional: state_dir, data_dir, etcd_bin, nameservice.\n# [settings] and [backup], when present, are the zone file's: keep them the same on every node.\n\n",
        zone.name
    );
    zone_io::write_new(
        &dir.join("node.toml"),
        (header + &text).as_bytes(),
        PUBLIC_MODE,
    )
}
