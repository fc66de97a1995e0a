//! `zone-etcd bootstrap`: offline bootstrap, one bundle per etcd member, in one process.
//! All bundles appear together under `--out` or none does.

use std::path::Path;

use zone_io::Error;
use zone_io::Staging;

use zone_node::bundle::{write_bundle, MemberList};

pub fn run(ca_dir: &Path, zone_file: &Path, out: &Path) -> Result<(), Error> {
    let zone = zone_node::ca_dir::zone_defaults::load_zone(zone_file, ca_dir)?;
    // A new zone: no node was issued an identity yet.
    zone_node::policy::room::check(&zone, zone_file, &[])?;
    let root = zone_node::ca_dir::load_root(ca_dir, &zone.name)?;
    let trust = zone_node::ca_dir::trust_pem(ca_dir, &root)?;
    let staging = Staging::new(out)?;
    for member in &zone.members {
        let dir = staging.subdir(Path::new(&member.node_name))?;
        write_bundle(
            ca_dir,
            &dir,
            &root,
            &trust,
            &zone,
            &member.node_name,
            MemberList::Copy,
        )?;
    }
    staging.commit()?;
    let advice = zone.members.first().map_or("", |m| {
        zone_node::bundle::keys_advice(&out.join(&m.node_name))
    });
    eprintln!(
        "zone-etcd: zone {}: {} member bundles in {} (copy each <node_name>/ to its node, {advice})",
        zone.name,
        zone.members.len(),
        out.display()
    );
    Ok(())
}
