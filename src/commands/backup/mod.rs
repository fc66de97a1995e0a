//! `backup run|status|drill|export`: the zone's continuous, encrypted, signed backups (issue 22;
//! the machinery is in [`zone_backup`], what it takes of a node in
//! [`zone_node::backup_node`]). Here, what the backup commands share: the zone's targets,
//! and where a drill's result is kept (written by [`drill`], read by [`status`]).
//!
//! Invariants: a zone without a backup target is refused naming the field to add; a
//! drill's result is kept in `<state>/backup/drill.json` and under [`DRILL_KEY`] in etcd,
//! and one that cannot be read is no result (never an error).

pub mod drill;
pub mod drill_owner;
pub mod export;
pub mod status;

use std::path::Path;
use std::sync::Arc;

use zone_io::Error;

use zone_backup::destination::{self, Target};
use zone_backup::report::Drill;
use zone_node::node::Node;

/// `backup run`: never returns while it works.
pub fn run(config: &Path) -> Result<(), Error> {
    zone_node::backup_node::run(config)
}

/// The zone's targets, opened with this node's credentials.
pub fn open_targets(node: &Node) -> Result<Vec<Arc<dyn Target>>, Error> {
    let config = &node.path;
    if !node.backup.enabled() {
        return Err(Error::new("the zone has no backup target")
            .file(config)
            .field("backup.target")
            .fix("add [backup] with recipients and a [[backup.target]] to the zone file"));
    }
    let base = config.parent().unwrap_or(Path::new("."));
    node.backup
        .targets
        .iter()
        .map(|spec| destination::open(spec, base).map(Arc::from))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.file(config))
}

/// Where the last drill's result is kept in etcd, so `status` on any member shows it.
pub const DRILL_KEY: &str = "zone-etcd/backup/last-drill";
/// And on the drilling node, in its local backup directory (`<state>/backup/`).
pub const DRILL_FILE: &str = "drill.json";

/// The last drill this node recorded, if any.
pub fn last_local(node: &Node) -> Option<Drill> {
    let path = node.state_dir.join("backup").join(DRILL_FILE);
    let bytes = zone_io::read_small_file(&path, zone_io::Links::Refuse).ok()?;
    serde_json::from_slice(&bytes).ok()
}
