//! One module per command. Each `run` validates all its input before it writes anything,
//! and writes through staging directories or atomic renames, so a failure changes nothing.
//!
//! Commands sit on top: nothing outside `commands/` (but the CLI's dispatch) uses them,
//! and a command does not reach into another's internals for what several need: the
//! checks before etcd starts are [`crate::preflight`], reaching the cluster is
//! [`crate::access`], detached helpers are [`crate::detached`]. What stays here is the
//! zone root CA's files, which only the CA and activation commands handle.

pub mod activate;
pub mod backup;
pub mod bootstrap;
pub mod ca_admin;
pub mod ca_init;
pub mod ca_rotation;
pub mod check;
pub mod demo;
pub mod downgrade;
pub mod env;
pub mod gateway;
pub mod generate;
pub mod issue_client;
pub mod join;
pub mod launch;
pub mod leave;
pub mod maintain;
pub mod promote_learner;
pub mod quota_free;
pub mod raise_level;
pub mod restore;
pub mod revoke;
pub mod rotate;
pub mod snapshot;
pub mod status;
pub mod trust;
pub mod undo;
pub mod upgrade_etcd;
pub mod zone_defaults;
pub mod zone_publish;
pub mod zone_room;
pub mod zone_sign;

use std::path::Path;

use zone_io::Error;
use zone_pki::{Authority, CertInfo};

/// The zone root CA files inside a CA directory.
pub const CA_CERT: &str = "ca.crt";
pub const CA_KEY: &str = "ca.key";
/// In a CA directory: the last revocations document `revoke` published from it.
pub const CA_DOC: &str = "revocations.json";

/// Writes a root CA's key (0600) and certificate into a staging directory.
pub fn write_root(dir: &Path, root: &Authority) -> Result<(), Error> {
    use zone_io::{write_new, KEY_MODE, PUBLIC_MODE};
    write_new(&dir.join(CA_KEY), root.key_pem().as_bytes(), KEY_MODE)?;
    write_new(&dir.join(CA_CERT), root.chain_pem().as_bytes(), PUBLIC_MODE)
}

/// Loads the zone root CA from `dir` and checks it is the root of `zone`.
pub fn load_root(dir: &Path, zone: &str) -> Result<Authority, Error> {
    let cert = dir.join(CA_CERT);
    let root = Authority::load(&cert, &dir.join(CA_KEY))?;
    let info = CertInfo::parse(root.cert_der()).map_err(|e| e.file(&cert))?;
    if !info.is_self_issued() {
        return Err(
            Error::new("not a root certificate (its issuer is another CA)")
                .file(&cert)
                .fix("point --ca to the directory made by `zone-etcd ca init`"),
        );
    }
    if let Some(ca_zone) = info.subject_cn.strip_suffix(" root CA") {
        if ca_zone != zone {
            return Err(Error::new(format!(
                "this is the root CA of zone {ca_zone:?}, but the zone file names zone {zone:?}"
            ))
            .file(&cert)
            .fix(
                "use the CA directory of the zone being activated, or fix name in the zone file",
            ));
        }
    }
    Ok(root)
}
