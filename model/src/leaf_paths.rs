//! Where a node's trusted CA file and each leaf certificate and key are: through the
//! `current` link of its state directory (the leaves `leaves` issues), or the
//! operator's own files (`[external]`).
//!
//! Invariant: etcd and every client are given these paths, never a set's own directory,
//! so switching `current` switches every reader at once. Pure: nothing here touches disk.

use std::path::{Path, PathBuf};

use zone_pki::LeafKind;

/// Where etcd and clients find the trusted CA file and each leaf: through the `current`
/// link of the state directory, or the operator's own files (`[external]`).
#[derive(Debug, Clone)]
pub struct LeafPaths {
    ca: PathBuf,
    /// Certificate and key per [`LeafKind`], in [`LeafKind::ALL`] order.
    leaves: [(PathBuf, PathBuf); 3],
}

impl LeafPaths {
    pub fn for_state_dir(state_dir: &Path) -> Self {
        let dir = state_dir.join("tls").join("current");
        let leaf = |kind: LeafKind| {
            let stem = kind.file_stem();
            (
                dir.join(format!("{stem}.crt")),
                dir.join(format!("{stem}.key")),
            )
        };
        LeafPaths {
            ca: dir.join("ca.crt"),
            leaves: LeafKind::ALL.map(leaf),
        }
    }

    /// Paths chosen by the operator; `leaves` in [`LeafKind::ALL`] order.
    pub fn external(ca: PathBuf, leaves: [(PathBuf, PathBuf); 3]) -> Self {
        LeafPaths { ca, leaves }
    }

    pub fn ca(&self) -> PathBuf {
        self.ca.clone()
    }

    pub fn cert(&self, kind: LeafKind) -> PathBuf {
        self.leaves[index(kind)].0.clone()
    }

    pub fn key(&self, kind: LeafKind) -> PathBuf {
        self.leaves[index(kind)].1.clone()
    }
}

fn index(kind: LeafKind) -> usize {
    LeafKind::ALL
        .iter()
        .position(|k| *k == kind)
        .unwrap_or_default()
}
