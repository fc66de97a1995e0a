//! `zone-etcd activate`: the owner issues one node its bundle (node.toml, the zone root
//! certificate, and the node's own name-constrained CA). The root key never enters it.
//!
//! Activation by request keeps the node CA's key on the node as well, in three steps:
//! [`request`] (on the node: the key and a PKCS#10 request), [`answer`] (the owner:
//! `activate --request`, a bundle without the key) and [`install`] (on the node: the key
//! and the answer together, laid out as [`zone_node::bundle::write_bundle`] lays out a bundle).
//!
//! Invariants: every step checks all its input before it writes, and writes its whole
//! output directory through a staging directory (private, renamed into place), so a
//! refusal leaves the disk as it was; a node CA is issued only for a node name the zone
//! file allows ([`check_node_name`]); no step prints a key.

pub mod answer;
pub mod install;
pub mod request;

use std::path::Path;

use zone_io::Error;
use zone_io::Staging;

use zone_model::config::check_dns_name;
use zone_model::config::node_file::check_url;
use zone_model::config::zone::{check_name_is_not_reserved, is_parent_domain, Zone};
use zone_node::bundle::{write_bundle, MemberList};

pub fn run(
    ca_dir: &Path,
    zone_file: &Path,
    node_name: &str,
    nameservice: Option<&str>,
    out: &Path,
) -> Result<(), Error> {
    let zone = zone_node::ca_dir::zone_defaults::load_zone(zone_file, ca_dir)?;
    check_node_name(&zone, node_name)?;
    let members = member_list(nameservice)?;
    let root = zone_node::ca_dir::load_root(ca_dir, &zone.name)?;
    let staging = Staging::new(out)?;
    let trust = zone_node::ca_dir::trust_pem(ca_dir, &root)?;
    write_bundle(
        ca_dir,
        staging.path(),
        &root,
        &trust,
        &zone,
        node_name,
        members,
    )?;
    staging.commit()?;
    let (role, next) = role_and_next_step(
        zone.member(node_name).is_some(),
        out,
        Some((ca_dir, zone_file)),
    );
    eprintln!(
        "zone-etcd: activated {node_name} as {role}: bundle in {} (copy it to the node, then run {next}; {})",
        out.display(),
        zone_node::bundle::keys_advice(out),
    );
    Ok(())
}

/// Where the node will find the member list: `--nameservice URL`, checked, or a copy.
pub fn member_list(nameservice: Option<&str>) -> Result<MemberList<'_>, Error> {
    match nameservice {
        Some(url) => {
            check_url(url).map_err(|p| {
                Error::new(p)
                    .field("--nameservice")
                    .fix("give the nameservice's base URL, e.g. http://127.0.0.1:3456")
            })?;
            Ok(MemberList::Nameservice(url))
        }
        None => Ok(MemberList::Copy),
    }
}

/// What the node is, and the command that starts it from the bundle in `bundle`. For a
/// member added to a running zone, the owner first publishes the zone file that lists it
/// (`publish`: that command, when the owner's CA directory and zone file are known here):
/// the members' keepers then make its etcd user, which its `join` needs under least
/// privilege.
pub fn role_and_next_step(
    member: bool,
    bundle: &Path,
    publish: Option<(&Path, &Path)>,
) -> (&'static str, String) {
    let config = bundle.join(zone_node::bundle::CONFIG_FILE);
    if member {
        let publish = match publish {
            Some((ca_dir, zone_file)) => format!(
                "`zone-etcd zone publish --ca {} --zone {} --config {}` here",
                ca_dir.display(),
                zone_file.display(),
                config.display()
            ),
            None => {
                "`zone-etcd zone publish` of the zone file that lists it on the owner's machine"
                    .to_string()
            }
        };
        (
            "etcd member",
            format!(
                "`zone-etcd launch --config {0}` in a new zone; to add it to a running one, first {publish} (the zone makes its etcd user), then `zone-etcd join --config {0}` on the node",
                config.display()
            ),
        )
    } else {
        (
            "client node (not an etcd member)",
            format!("`zone-etcd env --config {}`", config.display()),
        )
    }
}

/// Refuses a node name that is not a DNS name, or whose CA could issue for a member's name.
pub fn check_node_name(zone: &Zone, node_name: &str) -> Result<(), Error> {
    check_node_name_in(zone, node_name, "--node")
}

/// [`check_node_name`] for a name given in `field` (an option, or a request's subject).
pub fn check_node_name_in(zone: &Zone, node_name: &str, field: &str) -> Result<(), Error> {
    let fix = "give the node's DNS name, e.g. node1.example.zone";
    check_dns_name(node_name).map_err(|p| Error::new(p).field(field).fix(fix))?;
    check_name_is_not_reserved(&zone.name, node_name).map_err(|e| e.field(field))?;
    if let Some(member) = zone
        .members
        .iter()
        .find(|m| is_parent_domain(node_name, &m.node_name))
    {
        return Err(Error::new(format!(
            "{node_name:?} is a parent domain of member {:?}: its node CA could issue certificates for that member",
            member.node_name
        ))
        .field(field)
        .fix(fix));
    }
    Ok(())
}
