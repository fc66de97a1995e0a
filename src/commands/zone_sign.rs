//! `zone-etcd zone sign`: the owner signs the zone document the nameservice publishes
//! (seeds/000), with the zone root key, which never leaves the owner's machine. Nodes
//! verify it against the zone CA of their bundle before they use or cache it.

use std::path::Path;

use time::OffsetDateTime;
use zone_io::Error;
use zone_io::PUBLIC_MODE;
use zone_pki::CertInfo;

use zone_model::zone_doc;
use zone_node::nameservice::resolve_url;

pub fn run(ca_dir: &Path, zone_file: &Path, out: &Path) -> Result<(), Error> {
    let zone = zone_node::ca_dir::zone_defaults::load_zone(zone_file, ca_dir)?;
    // Offline: the nodes of its own the file names, none marked.
    zone_node::policy::room::check(&zone, zone_file, &[])?;
    let root = zone_node::ca_dir::load_root(ca_dir, &zone.name)?;
    if out.is_dir() {
        return Err(Error::new("is a directory")
            .file(out)
            .field("--out")
            .fix("give a file name, e.g. --out zone.json"));
    }
    let text = zone_doc::sign(&zone, &root, OffsetDateTime::now_utc())?;
    // What a node will check, checked before it is published.
    let info = CertInfo::parse(root.cert_der())?;
    zone_doc::verify(&text, &zone.name, std::slice::from_ref(&info))?;
    zone_io::write_atomic(out, text.as_bytes(), PUBLIC_MODE)?;
    eprintln!(
        "zone-etcd: signed the zone document of {} ({} etcd members) into {}; the nameservice serves it at {}",
        zone.name,
        zone.members.len(),
        out.display(),
        resolve_url("<nameservice>", &zone.name)
    );
    Ok(())
}
