//! `zone-etcd ca init`: the zone owner makes the zone root CA, once, with the client CA
//! and the zone's defaults ([`zone_node::ca_dir::zone_defaults`]: least privilege).

use std::path::Path;

use zone_io::Error;
use zone_io::Staging;
use zone_pki::Authority;

use zone_model::config::check_dns_name;
use zone_node::ca_dir::{CA_CERT, CA_KEY};

pub fn run(zone: &str, out: &Path) -> Result<(), Error> {
    check_dns_name(zone).map_err(|p| {
        Error::new(p)
            .field("--zone")
            .fix("give the zone's DNS name, e.g. example.zone")
    })?;
    if out.join(CA_KEY).exists() || out.join(CA_CERT).exists() {
        return Err(
            Error::new("already holds a zone CA; refusing to overwrite it")
                .file(out)
                .fix("keep the existing CA, or choose another --out directory"),
        );
    }
    let root = Authority::new_root(zone)?;
    let staging = Staging::new(out)?;
    zone_node::ca_dir::write_root(staging.path(), &root)?;
    zone_node::identities::ca::write_client_root(staging.path(), zone)?;
    zone_node::ca_dir::zone_defaults::write(staging.path())?;
    staging.commit()?;
    eprintln!(
        "zone-etcd: zone {zone}: root CA and client CA written to {} (keep {CA_KEY} and client-ca.key offline; nodes need only {CA_CERT}); least privilege by default: each node its own prefix, services what [access] grants, the owner root (`zone-etcd ca admin`)",
        out.display()
    );
    Ok(())
}
