//! A local chain after the machine restarted. A delta link's three files are written
//! without fsyncs ([`LocalChain::write_soon`]), so a power cut or a crash of the machine
//! can leave the newest of them missing, empty or partly written. Before the first such
//! write of a boot, the boot's ID (`/proc/sys/kernel/random/boot_id`) is written durably
//! to `<state>/backup/unsynced-boot`; a chain whose file names another boot holds files
//! no one checked since the restart.
//!
//! Invariants:
//! - `backup run` checks such a chain before it reads or continues it ([`settle`], under
//!   its lock): every manifest must verify, and every delta link's encrypted object must
//!   have the size and SHA-256 its manifest names and its plain copy must decode to the
//!   link's revisions (the first link may have neither: a link adopted from the targets),
//!   and the links must make a chain (no manifest lost between two that remain).
//!   A torn chain is moved aside, never deleted; what it held that the targets do not,
//!   the next term takes again from etcd's history (past etcd's compaction: a gap link,
//!   then a full snapshot at once, as for any writer that fell behind). Then the record
//!   is removed;
//! - the readers of the local chain (the drill, `undo`, `backup export --from local`)
//!   check it the same way before trusting it ([`readable`]), and say a torn chain is this
//!   node's copy torn by the restart, not a bad backup;
//! - a chain holding another boot's unchecked files is never written to: the record is
//!   never overwritten ([`LocalChain::write_soon`]).

use std::fs;
use std::path::PathBuf;

use zone_io::Error;
use zone_pki::CertInfo;

use super::chain::{check_links, Kind};
use super::local::{sha256_hex, LocalChain};
use super::manifest;
use super::segment::{self, MAX_SEGMENT_BYTES};

/// The first link of the chain whose files are not whole, and why (see the module's rule).
pub fn first_torn(
    local: &LocalChain,
    zone: &str,
    roots: &[CertInfo],
) -> Result<Option<String>, Error> {
    let mut verified = Vec::new();
    for (i, name) in local.manifests()?.iter().enumerate() {
        let stored = match local.read_manifest(name) {
            Ok(stored) => stored,
            Err(e) => return Ok(Some(format!("{name}: {}", e.problem()))),
        };
        let link = match manifest::verify(&stored, zone, roots) {
            Ok(v) => {
                verified.push(v.clone());
                v.link
            }
            Err(p) => return Ok(Some(format!("{name}: {p}"))),
        };
        let Some(object) = link.object.as_deref().filter(|_| link.kind == Kind::Delta) else {
            continue;
        };
        let (encrypted, plain) = (local.object_path(object), local.plain_path(object));
        if i == 0 && !encrypted.exists() && !plain.exists() {
            continue; // adopted from the targets: no local copy
        }
        let whole = fs::read(&encrypted)
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                if bytes.len() as u64 == link.object_size
                    && sha256_hex(&bytes) == link.object_sha256
                {
                    Ok(())
                } else {
                    Err(format!(
                        "{} bytes that do not match its manifest",
                        bytes.len()
                    ))
                }
            });
        if let Err(problem) = whole {
            return Ok(Some(format!("{}: {problem}", encrypted.display())));
        }
        let decoded = fs::read(&plain)
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                let (header, _) = segment::decode(&bytes, zone, MAX_SEGMENT_BYTES)?;
                if (header.first_revision, header.last_revision)
                    == (link.first_revision, link.last_revision)
                {
                    Ok(())
                } else {
                    Err(format!("holds other revisions than {name} names"))
                }
            });
        if let Err(problem) = decoded {
            return Ok(Some(format!("{}: {problem}", plain.display())));
        }
    }
    // A manifest lost between two that reached the disk: the chain has a hole.
    Ok(check_links(zone, &verified).err().map(|b| b.to_string()))
}

/// At `backup run`'s start, under its lock: after a restart of the machine, checks the
/// chain, moves a torn one aside, and removes the record. Returns where a torn chain went.
pub fn settle(
    local: &LocalChain,
    zone: &str,
    roots: &[CertInfo],
) -> Result<Option<PathBuf>, Error> {
    let Some(earlier) = local.earlier_boot() else {
        return Ok(None);
    };
    let aside = match first_torn(local, zone, roots)? {
        Some(problem) => {
            let aside = local.move_aside()?;
            tracing::warn!(
                "the local backup chain was torn when this machine stopped (boot {earlier}): {problem}; moved aside to {} (the targets hold what was shipped, and the next term takes the rest from etcd)",
                aside.display()
            );
            Some(aside)
        }
        None => {
            tracing::info!("the local backup chain written before this machine restarted is whole");
            None
        }
    };
    local.forget_boot()?;
    Ok(aside)
}

/// For the chain's readers: `Err` when it holds files of an earlier boot and is torn.
pub fn readable(local: &LocalChain, zone: &str, roots: &[CertInfo]) -> Result<(), String> {
    if local.earlier_boot().is_none() {
        return Ok(());
    }
    match first_torn(local, zone, roots).map_err(|e| e.to_string())? {
        None => Ok(()),
        Some(problem) => Err(format!(
            "this node's local backup chain was torn when the machine stopped before its newest files reached the disk ({problem}): that is this node's copy, not the targets' backup; `backup run` moves it aside when it starts, and the targets can be read with the owner's identity (--from TARGET)"
        )),
    }
}

#[cfg(test)]
#[path = "torn_tests.rs"]
mod tests;
