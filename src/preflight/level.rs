//! Before etcd starts: the zone's format level ([`zone_model::release::Level`] at
//! [`LEVEL_KEY`]), as the other members hold it, or as this member last saw it
//! ([`FILE`] in its state directory, for a start while the others are down). A zone at a
//! level above what this release reads is refused in one line (exit 78) that names the
//! release it needs: a member moved back to an older package never writes formats the
//! zone's newer members no longer expect, and never fights over their documents.
//!
//! Invariants: the level seen here only goes up (the higher of the zone's and the file's
//! counts, and the file is rewritten only with a higher one); the file is written
//! atomically under the state lock; a file that does not parse is refused like a level
//! this release cannot read, with its path (it is only ever written by zone-etcd).

use std::path::Path;
use std::time::Duration;

use zone_io::Error;
use zone_model::release::{refusal, Level, LEVEL_KEY, READS};

use crate::node::Node;
use zone_etcd_kit::cluster_api::{self, Credentials};
use zone_etcd_kit::wal::LocalMember;

/// In the node's state directory: the highest zone level this member has seen.
pub const FILE: &str = "zone-level.json";

/// How long a starting member asks the others (as for the revocations).
const ASK_OTHERS: Duration = Duration::from_millis(1500);

/// Refuses to start in a zone whose level this release does not read.
pub fn before_start(node: &Node, local: Option<LocalMember>, config: &Path) -> Result<(), Error> {
    let path = node.state_dir.join(FILE);
    let seen = match std::fs::read(&path) {
        Ok(text) => Some(Level::parse(&text).map_err(|e| {
            Error::new(e)
                .file(&path)
                .fix("a newer zone-etcd wrote it: install the release this zone runs (zone-etcd status on another node names it)")
                .permanent()
        })?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io("read", &path, &e)),
    };
    let zone = asked(node, local);
    let highest = match (seen, zone.clone()) {
        (Some(a), Some(b)) => Some(if b.level > a.level { b } else { a }),
        (a, b) => a.or(b),
    };
    let Some(highest) = highest else {
        return Ok(());
    };
    if let Some((problem, fix)) = refusal(&highest, READS, crate::this_build::RELEASE) {
        return Err(Error::new(problem).file(config).fix(fix).permanent());
    }
    if zone.as_ref() == Some(&highest)
        && std::fs::read(&path).ok() != Some(highest.render().into_bytes())
    {
        let _lock = zone_io::state::lock(&node.state_dir)?;
        zone_io::write_atomic(&path, highest.render().as_bytes(), zone_io::PUBLIC_MODE)?;
    }
    Ok(())
}

/// The level the other members hold (`None`: none answered, or the zone is at level 1).
fn asked(node: &Node, local: Option<LocalMember>) -> Option<Level> {
    let others = node.other_members();
    if others.is_empty() {
        return None;
    }
    let creds = Credentials::load(&node.leaf_paths()).ok()?;
    let runtime = cluster_api::runtime().ok()?;
    let text = runtime
        .block_on(async {
            tokio::time::timeout(
                ASK_OTHERS,
                crate::revocation::ask_others(node, &others, creds, local, LEVEL_KEY),
            )
            .await
        })
        .ok()??;
    match Level::parse(&text) {
        Ok(level) => Some(level),
        Err(e) => {
            tracing::warn!("{LEVEL_KEY}: {e}");
            None
        }
    }
}
