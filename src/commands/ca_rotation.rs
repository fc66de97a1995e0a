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
//!
//! A zone with a client root (`[access]`) rotates it with the zone root, in the same
//! phases: `NEW/client-ca.crt` is a new client root (its signers issue branches), and
//! `NEW/client-roots.crt` holds both, installed with `trust --client-ca`; re-activated
//! members get signers of the new client root, and every identity is renewed from them
//! once a node trusts the new client root alone (phase 3). `ca admin --ca NEW` gives the
//! owner an identity of the new one.
//!
//! Invariants: NEW carries over what belongs to the zone, not to a root: the zone's kind
//! (`zone-defaults.json`), the record of issued node CAs and signers (`issued/`, so
//! `revoke --node` with NEW still names a node activated under the old root) and the last
//! revocations document (`revocations.json`); OLD is never changed.

use std::path::{Path, PathBuf};

use zone_io::Error;
use zone_io::{Staging, PUBLIC_MODE};
use zone_pki::Authority;

use zone_node::ca_dir::{write_root, zone_defaults, zone_of, CA_CERT, CA_DOC, TRUST_FILE};
use zone_node::identities::ca::{CLIENT_CA_CERT, CLIENT_TRUST};

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
    // The old client root, checked before anything is written.
    let old_client = match old_dir.join(CLIENT_CA_CERT).exists() {
        true => Some(zone_node::identities::ca::ensure_client_root(
            old_dir, &zone,
        )?),
        false => None,
    };
    let new = Authority::new_root(&zone)?;
    let staging = Staging::new(out).map_err(|e| e.field("--out"))?;
    write_root(staging.path(), &new)?;
    let trust = format!("{}{}", new.chain_pem(), old.chain_pem());
    zone_io::write_new(
        &staging.path().join(TRUST_FILE),
        trust.as_bytes(),
        PUBLIC_MODE,
    )?;
    if let Some(old_client) = &old_client {
        zone_node::identities::ca::write_client_root(staging.path(), &zone)?;
        let new_client = zone_io::read_text(&staging.path().join(CLIENT_CA_CERT))?;
        zone_io::write_new(
            &staging.path().join(CLIENT_TRUST),
            format!("{new_client}{}", old_client.chain_pem()).as_bytes(),
            PUBLIC_MODE,
        )?;
    }
    carry_over(old_dir, staging.path())?;
    staging.commit()?;
    let trust_path: PathBuf = out.join(TRUST_FILE);
    let client = match old_client {
        Some(_) => format!(" --client-ca {}", out.join(CLIENT_TRUST).display()),
        None => String::new(),
    };
    println!(
        "zone-etcd: new root CA of zone {zone} in {out}{also}. Phase 1: on every node run `zone-etcd trust --config node.toml --ca {trust}{client}` (copies of them), then restart the members one at a time, each healthy before the next. Phase 2: re-activate every node with --ca {out} and run `zone-etcd rotate` there. Phase 3: zone-etcd ca retire --ca {out}.",
        out = out.display(),
        also = if client.is_empty() { "" } else { ", with a new client CA" },
        trust = trust_path.display()
    );
    Ok(())
}

/// Copies what belongs to the zone rather than to a root from `old_dir` into `new_dir`
/// (a staging directory): its kind, its record of issued CAs, its last revocations.
fn carry_over(old_dir: &Path, new_dir: &Path) -> Result<(), Error> {
    for file in [zone_defaults::FILE, CA_DOC] {
        let from = old_dir.join(file);
        if from.exists() {
            let text = zone_io::read_text(&from)?;
            zone_io::write_new(&new_dir.join(file), text.as_bytes(), PUBLIC_MODE)?;
        }
    }
    let issued = old_dir.join(zone_node::revocation::issued::ISSUED_DIR);
    let Ok(nodes) = std::fs::read_dir(&issued) else {
        return Ok(());
    };
    for node in nodes {
        let node = node.map_err(|e| Error::io("read", &issued, &e))?;
        let name = node.file_name().to_string_lossy().into_owned();
        for cert in zone_node::revocation::issued::issued_to(old_dir, &name)? {
            zone_node::revocation::issued::record(new_dir, &name, &cert.pem())?;
        }
    }
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
    let client_trust = dir.join(CLIENT_TRUST);
    let client = match client_trust.exists() {
        true => format!(" --client-ca {}", dir.join(CLIENT_CA_CERT).display()),
        false => String::new(),
    };
    if client_trust.exists() {
        std::fs::remove_file(&client_trust).map_err(|e| Error::io("remove", &client_trust, &e))?;
    }
    std::fs::remove_file(&trust).map_err(|e| Error::io("remove", &trust, &e))?;
    zone_io::sync_dir(dir)?;
    let admin = match client.is_empty() {
        true => String::new(),
        false => format!(
            " Take a new admin identity with `zone-etcd ca admin --ca {} --out ADMIN_DIR`: the old one is refused from then on.",
            dir.display()
        ),
    };
    println!(
        "zone-etcd: zone {zone} now trusts only {ca}. On every node run `zone-etcd trust --config node.toml --ca {ca}{client}` (copies of them), then restart the members one at a time. Re-sign the zone document with --ca {dir}.{admin} The old root key can then be destroyed.",
        ca = dir.join(CA_CERT).display(),
        dir = dir.display()
    );
    Ok(())
}
