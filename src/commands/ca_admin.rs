//! `zone-etcd ca admin --ca DIR --out DIR`: the owner's administrative identity, etcd's
//! `root` user, issued by the client CA on the owner's machine. No member's signer issues
//! CN `root` (see [`zone_model::policy::rbac`]: members hold the root role under their own
//! names), so no node can obtain it.
//!
//! Invariants: the key is made here and written 0600 into a new directory, with the
//! zone roots (`ca.crt`, what verifies the members) and the identity (`client.crt`);
//! nothing is written when the CA directory has no client CA of this zone.

use std::path::Path;

use zone_io::Error;
use zone_io::{Staging, KEY_MODE, PUBLIC_MODE};

pub fn run(ca_dir: &Path, out: &Path) -> Result<(), Error> {
    let (root, zone) = zone_node::ca_dir::zone_of(ca_dir)?;
    let trust = zone_node::ca_dir::trust_pem(ca_dir, &root)?;
    let client_root = zone_node::identities::ca::ensure_client_root(ca_dir, &zone)?;
    let issued = client_root.issue_identity("root", &zone)?;
    let staging = Staging::new(out).map_err(|e| e.field("--out"))?;
    zone_io::write_new(
        &staging.path().join("ca.crt"),
        trust.as_bytes(),
        PUBLIC_MODE,
    )?;
    zone_io::write_new(
        &staging.path().join("client.crt"),
        issued.chain_pem.as_bytes(),
        PUBLIC_MODE,
    )?;
    zone_io::write_new(
        &staging.path().join("client.key"),
        issued.key_pem.as_bytes(),
        KEY_MODE,
    )?;
    staging.commit()?;
    eprintln!(
        "zone-etcd: the administrative identity of zone {zone} (etcd user root) in {}: ca.crt, client.crt, client.key; use it with etcdctl --cacert, --cert, --key; keep it with the CA",
        out.display()
    );
    Ok(())
}
