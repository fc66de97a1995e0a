//! `backup run|status|drill`: the zone's continuous, encrypted, signed backups (issue 22;
//! the machinery is in [`crate::backup`]).

pub mod drill;
pub mod drill_owner;
pub mod export;
pub mod status;

use std::path::Path;
use std::sync::Arc;

use zone_pki::Error;

use crate::backup::target::{self, Target};
use crate::config::node::Node;

/// `backup run`: never returns while it works.
pub fn run(config: &Path) -> Result<(), Error> {
    crate::backup::runner::run(config)
}

/// The zone's targets, opened with this node's credentials.
pub fn open_targets(node: &Node, config: &Path) -> Result<Vec<Arc<dyn Target>>, Error> {
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
        .map(|spec| target::open(spec, base).map(Arc::from))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.file(config))
}
