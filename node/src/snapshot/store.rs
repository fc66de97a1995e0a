//! A node's snapshot files: where a save writes ([`Place`]: `--out FILE` or
//! `<state>/snapshots/`), how a whole snapshot is kept (renamed into place, then its
//! manifest `<file>.json`), finding them again, and pruning.
//!
//! Invariants: a snapshot under its final name is whole and durable (written under a
//! temporary name, fsynced, renamed without replacing anything, its directory fsynced);
//! files are 0600 in a 0700 directory; nothing is ever replaced: an existing file or
//! manifest is refused; pruning keeps the newest by their manifests' time and removes
//! only temporary files older than an hour (a live save's is never that old).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use zone_io::Error;
use zone_io::{ensure_private_dir, sync_dir, write_atomic};

use crate::node::Node;
use crate::snapshot::{self, Manifest};
use zone_etcd_kit::cluster_api::hex_id;
use zone_etcd_kit::etcd::etcdutl::snapshot_revision;

const SNAPSHOT_MODE: u32 = 0o600;
/// Temporary files of a save; `prune` removes those older than [`STALE`] (a save writes
/// its file continuously, so a live one is never that old).
const TMP_PREFIX: &str = ".tmp-snapshot-";
const STALE: Duration = Duration::from_secs(3600);

/// The default snapshot directory of a node.
pub fn default_dir(node: &Node) -> PathBuf {
    node.state_dir.join("snapshots")
}

/// Where a save writes: the directory, and the file when `--out` names one.
pub struct Place {
    dir: PathBuf,
    target: Option<PathBuf>,
}

/// A whole snapshot in its temporary file, and what its manifest says of it.
pub struct Taken {
    pub tmp: tempfile::NamedTempFile,
    pub taken_at: OffsetDateTime,
    pub size: u64,
    /// SHA-256 (hex) of the whole file.
    pub sha256: String,
    pub cluster_id: u64,
    pub member: String,
    pub member_id: u64,
    pub etcd_version: String,
}

impl Place {
    /// `--out FILE` (its directory made private if missing; an existing file refused), or
    /// the node's snapshot directory.
    pub fn of(node: &Node, out: Option<&Path>) -> Result<Place, Error> {
        match out {
            Some(file) => Place::file(file),
            None => {
                let dir = default_dir(node);
                ensure_private_dir(&dir)?;
                Ok(Place { dir, target: None })
            }
        }
    }

    /// FILE, its directory made private if missing; an existing file (or manifest) refused.
    pub fn file(file: &Path) -> Result<Place, Error> {
        let dir = match file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            ensure_private_dir(&dir)?;
        }
        refuse_existing(file)?;
        refuse_existing(&manifest_path(file))?;
        Ok(Place {
            dir,
            target: Some(file.to_path_buf()),
        })
    }

    /// The directory it writes in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A temporary file in the directory, 0600, removed unless kept.
    pub fn temporary(&self) -> Result<tempfile::NamedTempFile, Error> {
        tempfile::Builder::new()
            .prefix(TMP_PREFIX)
            .permissions(fs::Permissions::from_mode(SNAPSHOT_MODE))
            .tempfile_in(&self.dir)
            .map_err(|e| Error::io("create a temporary file in", &self.dir, &e))
    }

    /// Makes a whole snapshot durable under its final name, then its manifest; prunes.
    pub fn keep(
        &self,
        zone: &str,
        etcdutl: &Path,
        taken: Taken,
        keep: Option<usize>,
    ) -> Result<Manifest, Error> {
        let Taken { tmp, taken_at, .. } = &taken;
        tmp.as_file()
            .sync_all()
            .map_err(|e| Error::io("sync", tmp.path(), &e))?;
        let revision = snapshot_revision(etcdutl, tmp.path())?;
        let name = snapshot::file_name(zone, *taken_at, revision);
        let path = self.target.clone().unwrap_or_else(|| self.dir.join(&name));
        refuse_existing(&path)?;
        refuse_existing(&manifest_path(&path))?;
        let manifest = Manifest {
            format: snapshot::MANIFEST_FORMAT,
            zone: zone.to_string(),
            cluster_id: hex_id(taken.cluster_id),
            member: taken.member.clone(),
            member_id: hex_id(taken.member_id),
            revision,
            taken_at: taken_at
                .replace_nanosecond(0)
                .unwrap_or(*taken_at)
                .format(&Rfc3339)
                .map_err(|e| Error::new(format!("cannot format the time: {e}")))?,
            size: taken.size,
            sha256: taken.sha256.clone(),
            etcd_version: taken.etcd_version.clone(),
        };
        taken
            .tmp
            .persist_noclobber(&path)
            .map_err(|e| Error::io("rename into place", &path, &e.error))?;
        let manifest_path = manifest_path(&path);
        let text = serde_json::to_string_pretty(&manifest)
            .map_err(|e| Error::new(format!("cannot write the manifest: {e}")))?;
        write_atomic(&manifest_path, (text + "\n").as_bytes(), SNAPSHOT_MODE)?;
        sync_dir(&self.dir)?;
        println!(
            "snapshot of zone {} at revision {} from {}: {} ({}, sha256 {})",
            manifest.zone,
            manifest.revision,
            manifest.member,
            path.display(),
            crate::maintenance::human_size(manifest.size as i64),
            &manifest.sha256[..16]
        );
        if let Some(keep) = keep {
            prune_dir(&self.dir, keep)?;
        }
        Ok(manifest)
    }
}

fn refuse_existing(path: &Path) -> Result<(), Error> {
    if fs::symlink_metadata(path).is_ok() {
        return Err(
            Error::new("exists already; a snapshot never replaces a file")
                .file(path)
                .fix("choose another --out, or move that file away first"),
        );
    }
    Ok(())
}

/// `<snapshot>.json` beside the snapshot.
pub fn manifest_path(snapshot: &Path) -> PathBuf {
    let mut name = snapshot.as_os_str().to_os_string();
    name.push(".json");
    PathBuf::from(name)
}

/// One snapshot found in a directory: its file, and its manifest when it has a valid one.
pub struct Found {
    pub file: PathBuf,
    pub manifest: Result<Manifest, String>,
}

/// The snapshots in `dir` (files ending in `.db`, with or without a manifest), by name.
pub fn find(dir: &Path) -> Result<Vec<Found>, Error> {
    let mut found = Vec::new();
    for entry in zone_io::entries(dir)? {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(snapshot::EXTENSION) || name.starts_with('.') {
            continue;
        }
        let file = entry.path();
        let manifest = read_manifest(&manifest_path(&file));
        found.push(Found { file, manifest });
    }
    found.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(found)
}

/// Reads a manifest (small: at most 64 KiB).
pub fn read_manifest(path: &Path) -> Result<Manifest, String> {
    // The caller gives its own fix: the read's own would make two in one line.
    let text =
        zone_io::read_text(path).map_err(|e| format!("{}: {}", path.display(), e.problem()))?;
    Manifest::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Keeps the newest `keep` snapshots of `dir` (by their manifests' time), removes the
/// others with their manifests, and temporary files of saves that died.
pub fn prune_dir(dir: &Path, keep: usize) -> Result<(), Error> {
    let found = find(dir)?;
    let dated: Vec<(String, String)> = found
        .iter()
        .filter_map(|f| {
            let m = f.manifest.as_ref().ok()?;
            Some((f.file.to_string_lossy().into_owned(), m.taken_at.clone()))
        })
        .collect();
    for file in snapshot::to_prune(dated, keep) {
        let file = PathBuf::from(file);
        remove(&file)?;
        remove(&manifest_path(&file))?;
        println!("removed {}", file.display());
    }
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            let stale = entry.file_name().to_string_lossy().starts_with(TMP_PREFIX)
                && entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| SystemTime::now().duration_since(t).unwrap_or_default() > STALE);
            if stale {
                remove(&entry.path())?;
            }
        }
    }
    sync_dir(dir)
}

fn remove(path: &Path) -> Result<(), Error> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove", path, &e)),
    }
}
