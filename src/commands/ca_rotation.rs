//! Zone CA rotation, in phases the owner runs (the guide has the whole procedure):
//!
//! 1. `ca rotate --ca OLD --out NEW`: a new root for the same zone, and `NEW/trust.crt`
//!    holding both roots. Every node installs it (`zone-etcd trust`); members restart one
//!    at a time, as etcd loads trusted CAs only at start.
//! 2. Nodes are re-activated with `--ca NEW` (their bundles trust both roots) and rotate
//!    their leaves: no restart, as both roots are trusted already.
//! 3. `ca retire --ca NEW` drops the old root from NEW; every node installs `NEW/ca.crt`
//!    alone and members restart one at a time. The old root key can then be destroyed.
//!
//! While `trust.crt` exists, `activate` and `bootstrap` put it in the bundles they write.

use std::path::{Path, PathBuf};

use zone_io::{Staging, PUBLIC_MODE};
use zone_pki::{Authority, CertInfo, Error};

use super::{CA_CERT, CA_KEY};

/// Both roots, new first, while a rotation is in progress.
pub const TRUST_FILE: &str = "trust.crt";

/// What a bundle written from `dir` trusts: `trust.crt` during a rotation, else the root.
pub fn trust_pem(dir: &Path, root: &Authority) -> Result<String, Error> {
    let trust = dir.join(TRUST_FILE);
    if trust.exists() {
        zone_io::read_text(&trust)
    } else {
        Ok(root.chain_pem().to_string())
    }
}

/// The zone a root CA belongs to, from its subject (`<zone> root CA`).
pub(super) fn zone_of(dir: &Path) -> Result<(Authority, String), Error> {
    let cert = dir.join(CA_CERT);
    let root = Authority::load(&cert, &dir.join(CA_KEY))?;
    let info = CertInfo::parse(root.cert_der()).map_err(|e| e.file(&cert))?;
    let zone = info
        .subject_cn
        .strip_suffix(" root CA")
        .filter(|_| info.is_self_issued())
        .ok_or_else(|| {
            Error::new(format!("{:?} is not a zone root CA", info.subject_cn))
                .file(&cert)
                .fix("point --ca to the directory made by `zone-etcd ca init`")
        })?
        .to_string();
    Ok((root, zone))
}

/// Phase 1: a new root beside the old one, and the trust file with both.
pub fn begin(old_dir: &Path, out: &Path) -> Result<(), Error> {
    if old_dir.join(TRUST_FILE).exists() {
        return Err(
            Error::new("a previous zone CA rotation is not finished (trust.crt exists)")
                .file(old_dir.join(TRUST_FILE))
                .fix(format!(
                    "finish it first: zone-etcd ca retire --ca {}",
                    old_dir.display()
                )),
        );
    }
    let (old, zone) = zone_of(old_dir)?;
    let new = Authority::new_root(&zone)?;
    let staging = Staging::new(out).map_err(|e| e.field("--out"))?;
    super::write_root(staging.path(), &new)?;
    let trust = format!("{}{}", new.chain_pem(), old.chain_pem());
    zone_io::write_new(
        &staging.path().join(TRUST_FILE),
        trust.as_bytes(),
        PUBLIC_MODE,
    )?;
    staging.commit()?;
    let trust_path: PathBuf = out.join(TRUST_FILE);
    println!(
        "zone-etcd: new root CA of zone {zone} in {out}. Phase 1: on every node run `zone-etcd trust --config node.toml --ca {trust}` (a copy of it), then restart the members one at a time, each healthy before the next. Phase 2: re-activate every node with --ca {out} and run `zone-etcd rotate` there. Phase 3: zone-etcd ca retire --ca {out}.",
        out = out.display(),
        trust = trust_path.display()
    );
    Ok(())
}

/// Phase 3: the new root alone from now on.
pub fn retire(dir: &Path) -> Result<(), Error> {
    let trust = dir.join(TRUST_FILE);
    if !trust.exists() {
        return Err(
            Error::new("no zone CA rotation in progress here (no trust.crt)")
                .file(dir)
                .fix("point --ca to the directory `zone-etcd ca rotate` made"),
        );
    }
    let (_, zone) = zone_of(dir)?;
    std::fs::remove_file(&trust).map_err(|e| Error::io("remove", &trust, &e))?;
    zone_io::sync_dir(dir)?;
    println!(
        "zone-etcd: zone {zone} now trusts only {ca}. On every node run `zone-etcd trust --config node.toml --ca {ca}` (a copy of it), then restart the members one at a time. Re-sign the zone document with --ca {dir}. The old root key can then be destroyed.",
        ca = dir.join(CA_CERT).display(),
        dir = dir.display()
    );
    Ok(())
}
