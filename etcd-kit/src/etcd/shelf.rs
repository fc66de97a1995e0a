//! The etcd releases on this machine a zone can move between (the shelf), and the release
//! this member's keeper chose for its next start (the step file).
//!
//! The shelf is the directory of the bundled etcd: `etcd` itself and every
//! `etcd-<version>/etcd` beside it (the package's /usr/lib/zone-etcd/ carries the bundle
//! and etcd-3.5.34/; scripts/fetch-etcd.sh fills bin/ the same way), plus a configured
//! `etcd_bin`. Each is identified by its own `--version` (remembered, see
//! [`super::identify`]); one that is not an etcd the launcher runs is left out.
//!
//! Invariants: the step file is written atomically into the state directory, under its
//! lock, only by the keeper; `launch` runs the step's binary only while it still reports
//! the step's release, else it falls back to `etcd_bin` or the bundle (and the preflight
//! checks every start alike).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zone_io::Error;
use zone_io::{read_small_file, Links, PUBLIC_MODE};

use super::{Remember, Version};

/// The step file in the state directory.
pub const STEP_FILE: &str = "etcd-step.json";

/// One release on the shelf.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shelved {
    pub version: String,
    pub binary: PathBuf,
}

impl Shelved {
    pub fn release(&self) -> Option<Version> {
        Version::parse(&self.version)
    }
}

/// The releases on this machine: the bundle's directory (the etcd found without
/// `etcd_bin`) and `configured`, newest first, one binary per release.
pub fn releases(configured: Option<&Path>, state_dir: &Path, config_file: &Path) -> Vec<Shelved> {
    let mut binaries: Vec<PathBuf> = configured.map(Path::to_path_buf).into_iter().collect();
    if let Some(dir) = super::find_binary(None, config_file)
        .ok()
        .and_then(|b| b.parent().map(Path::to_path_buf))
    {
        binaries.push(dir.join("etcd"));
        if let Ok(entries) = std::fs::read_dir(&dir) {
            let mut more: Vec<PathBuf> = entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("etcd-"))
                .map(|e| e.path().join("etcd"))
                .filter(|p| p.is_file())
                .collect();
            more.sort();
            binaries.extend(more);
        }
    }
    let mut shelf: Vec<Shelved> = Vec::new();
    for binary in binaries {
        let Ok(profile) = super::identify(&binary, state_dir, Remember::Yes, config_file) else {
            continue;
        };
        let version = profile.version.to_string();
        if !shelf.iter().any(|s| s.version == version) {
            shelf.push(Shelved { version, binary });
        }
    }
    shelf.sort_by_key(|s| std::cmp::Reverse(s.release()));
    shelf
}

/// The release the keeper chose for this member's next start, if any.
pub fn read_step(state_dir: &Path) -> Option<Shelved> {
    let bytes = read_small_file(&state_dir.join(STEP_FILE), Links::Refuse).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Records `step` for the next start (under the state directory's lock).
pub fn write_step(state_dir: &Path, step: &Shelved) -> Result<(), Error> {
    let _lock = zone_io::state::lock(state_dir)?;
    let text = serde_json::to_vec_pretty(step)
        .map_err(|e| Error::new(format!("cannot write the etcd step: {e}")))?;
    zone_io::write_atomic(&state_dir.join(STEP_FILE), &text, PUBLIC_MODE)
}
