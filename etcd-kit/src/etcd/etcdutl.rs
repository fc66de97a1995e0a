//! etcdutl, the offline tool beside etcd: which one to run, and what it reads from a
//! snapshot file.
//!
//! Invariants: the etcdutl beside the node's etcd is preferred (same release), else the
//! bundled one; a snapshot's revision is what etcdutl reads from the file itself, never
//! what a manifest says; a status etcdutl cannot give is one error with the fix.

use std::path::{Path, PathBuf};

use zone_io::Error;

/// The etcdutl to read and restore snapshots with: beside the node's etcd (`etcd_bin`
/// of node.toml), else the bundled one (an etcd 3.4 has none: its snapshots are 3.5's format too).
pub fn etcdutl(etcd_bin: Option<&Path>, config: &Path) -> Result<PathBuf, Error> {
    crate::etcd::find_tool("etcdutl", etcd_bin, config)
        .or_else(|_| crate::etcd::find_tool("etcdutl", None, config))
}

/// The revision a snapshot file holds, as `etcdutl snapshot status` reads it from the
/// file itself.
pub fn snapshot_revision(etcdutl: &Path, file: &Path) -> Result<i64, Error> {
    let out = std::process::Command::new(etcdutl)
        .args(["snapshot", "status", "--write-out", "json"])
        .arg(file)
        .output()
        .map_err(|e| Error::io("run", etcdutl, &e))?;
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|_| {
        Error::new(format!(
            "etcdutl snapshot status could not read it: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
        .fix("run snapshot save again")
    })?;
    status["revision"].as_i64().ok_or_else(|| {
        Error::new(format!(
            "etcdutl snapshot status gave no revision: {status}"
        ))
        .fix("run snapshot save again")
    })
}
