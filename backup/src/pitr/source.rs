//! Where a point is rebuilt from: a target, read and decrypted with the owner's identity,
//! or a node's own chain, whose plain copies need no identity. Blocking.
//!
//! Invariants: every manifest is verified up to the zone CA and the links are checked
//! ([`crate::verify`]) before any object is used; a target's object must have the
//! size and SHA-256 its manifest names before it is decrypted; a segment must hold
//! exactly the revisions its link names; a full snapshot must hold the revision its link
//! names. The first problem is one line naming the object.

use std::path::Path;

use zone_pki::CertInfo;

use crate::chain::Verified;
use crate::crypto::{self, Identities};
use crate::destination::Target;
use crate::local::LocalChain;
use crate::segment::{self, Revision};
use crate::verify;

/// Where a node reads a point's history from.
pub enum Origin<'a> {
    /// Its own chain: the plain copies only the node that wrote the chain keeps.
    Local,
    /// A target, read with the owner's CA and identity, from any node.
    Target(TargetAccess<'a>),
}

/// How the owner reaches a target: its URL (with the S3 endpoint and region, for an
/// `s3://` one), the owner's CA directory and age identity.
#[derive(Clone, Copy)]
pub struct TargetAccess<'a> {
    pub url: &'a str,
    pub endpoint: Option<&'a str>,
    pub region: Option<&'a str>,
    pub ca: &'a Path,
    pub identity: &'a Path,
}

/// Opens a target with the owner's CA and identity: the source, and the roots its
/// manifests are verified against (the CA directory's `trust.crt` during a rotation, else
/// its `ca.crt`).
pub fn open_target(access: &TargetAccess<'_>) -> Result<(Source, Vec<CertInfo>), zone_io::Error> {
    let roots = owner_roots(access.ca)?;
    let identities = crypto::load_identities(access.identity)?;
    let target = crate::destination::open_url(access.url, access.endpoint, access.region, None)?;
    Ok((Source::Target { target, identities }, roots))
}

/// The roots the owner's CA directory trusts: its `trust.crt` during a CA rotation, else
/// its `ca.crt`.
pub fn owner_roots(ca_dir: &Path) -> Result<Vec<CertInfo>, zone_io::Error> {
    let trust = ca_dir.join("trust.crt");
    let ca_file = if trust.exists() {
        trust
    } else {
        ca_dir.join("ca.crt")
    };
    zone_model::config::trusted_roots(&zone_io::read_text(&ca_file)?).map_err(|e| e.file(&ca_file))
}

/// The most a delta segment may hold, decompressed.
const MAX_SEGMENT_BYTES: u64 = crate::segment::MAX_SEGMENT_BYTES;

pub enum Source {
    /// A node's own chain (`<state>/backup/`), of its zone.
    Local { chain: LocalChain, zone: String },
    /// A target; its zone is learned from the chain and every link verified against the
    /// owner's CA.
    Target {
        target: Box<dyn Target>,
        identities: Identities,
    },
}

impl Source {
    /// What the source is, for messages.
    pub fn describe(&self) -> String {
        match self {
            Source::Local { chain, .. } => format!("the local chain {}", chain.root().display()),
            Source::Target { target, .. } => target.url().to_string(),
        }
    }

    /// Every link, verified and checked, in chain order.
    pub fn links(&self, roots: &[CertInfo]) -> Result<Vec<Verified>, String> {
        match self {
            Source::Local { chain, zone } => verify::local_links(chain, zone, roots),
            Source::Target { target, .. } => {
                verify::target_links(target.as_ref(), None, roots).map(|(links, _)| links)
            }
        }
    }

    /// The plain full snapshot of link `v` at `out` (under `work` for a target),
    /// checked to hold the link's revision with `etcdutl`.
    pub fn full(&self, v: &Verified, out: &Path, etcdutl: &Path) -> Result<(), String> {
        let object = object_of(v)?;
        match self {
            Source::Local { chain, .. } => {
                let plain = chain.plain_path(object);
                if !plain.is_file() {
                    return Err(no_plain_copy(object));
                }
                std::fs::copy(&plain, out)
                    .map_err(|e| format!("cannot copy {}: {e}", plain.display()))?;
            }
            Source::Target { identities, .. } => {
                let encrypted = out.with_extension("age");
                self.fetch(v, &encrypted)?;
                crypto::decrypt_file(&encrypted, out, identities)
                    .map_err(|e| format!("{object}: {}", e.problem()))?;
                let _ = std::fs::remove_file(&encrypted);
            }
        }
        let revision = zone_etcd_kit::etcd::etcdutl::snapshot_revision(etcdutl, out)
            .map_err(|e| format!("{object}: {}", e.problem()))?;
        if revision != v.link.last_revision {
            return Err(format!(
                "{object}: holds revision {revision}, {} names {}",
                v.name, v.link.last_revision
            ));
        }
        Ok(())
    }

    /// The revisions of delta link `v`, decoded and checked (`work` holds the download).
    pub fn segment(&self, v: &Verified, zone: &str, work: &Path) -> Result<Vec<Revision>, String> {
        let object = object_of(v)?;
        let plain = match self {
            Source::Local { chain, .. } => {
                let path = chain.plain_path(object);
                match std::fs::read(&path) {
                    Ok(bytes) => bytes,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        return Err(no_plain_copy(object))
                    }
                    Err(e) => return Err(format!("{}: {e}", path.display())),
                }
            }
            Source::Target { identities, .. } => {
                let encrypted = work.join("segment.age");
                self.fetch(v, &encrypted)?;
                let bytes = std::fs::read(&encrypted)
                    .map_err(|e| format!("{}: {e}", encrypted.display()))?;
                crypto::decrypt_bytes(&bytes, identities)
                    .map_err(|e| format!("{object}: {}", e.problem()))?
            }
        };
        let (header, revisions) = segment::decode(&plain, zone, MAX_SEGMENT_BYTES)
            .map_err(|p| format!("{object}: {p}"))?;
        if (header.first_revision, header.last_revision)
            != (v.link.first_revision, v.link.last_revision)
        {
            return Err(format!(
                "{object}: holds other revisions than {} names",
                v.name
            ));
        }
        Ok(revisions)
    }

    /// Downloads a target's object of link `v` to `to` and checks its size and SHA-256.
    fn fetch(&self, v: &Verified, to: &Path) -> Result<(), String> {
        let Source::Target { target, .. } = self else {
            return Err("not a target".into());
        };
        let object = object_of(v)?;
        let found = target.get_to_file(object, to).map_err(|e| e.to_string())?;
        if !found {
            return Err(format!("{object} is missing (named by {})", v.name));
        }
        let (size, sha) = zone_io::sha256_file(to).map_err(|e| e.to_string())?;
        if size != v.link.object_size || zone_io::hex(&sha) != v.link.object_sha256 {
            return Err(format!(
                "{object}: its bytes are not those {} names (changed or replaced)",
                v.name
            ));
        }
        Ok(())
    }
}

fn object_of(v: &Verified) -> Result<&str, String> {
    v.link
        .object
        .as_deref()
        .ok_or_else(|| format!("{}: names no object", v.name))
}

fn no_plain_copy(object: &str) -> String {
    format!(
        "this node keeps no plain copy of {object} (another node wrote it): export from a target with the owner's identity (--from TARGET --ca CA_DIR --identity FILE)"
    )
}
