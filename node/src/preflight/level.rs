//! Before etcd starts: the zone's format level ([`zone_model::release::Level`] at
//! [`LEVEL_KEY`]), as this member last saw it ([`FILE`] in its state directory, kept by
//! its keeper, `zone_agent::recorded`, which looks at the zone's every
//! `zone_agent::recorded::LEVEL_LOOK`), and as the other members hold it (asked at
//! every start, with the revocations: a member moved back to an older release after a
//! raise it did not see, being down, learns of it from them). A zone at a
//! level above what this release reads is refused in one line (exit 78) that names the
//! release it needs: a member moved back to an older package never writes formats the
//! zone's newer members no longer expect, and never fights over their documents.
//!
//! Invariants: only a level that binds counts ([`Level::binding`]: above 1, signed by the
//! zone root for this zone; a planted one is ignored with a line in the log); the level
//! seen here only goes up (the higher of the zone's and the file's
//! counts, and the file is rewritten only with a higher one); the file is written
//! atomically under the state lock; a file that does not parse is refused like a level
//! this release cannot read, with its path (it is only ever written by zone-etcd).

use std::path::Path;

use zone_io::Error;
use zone_model::release::{refusal, Level, LEVEL_KEY};

use crate::node::Node;

/// What a member needs to tell a binding level from a planted one: its zone and roots
/// ([`Level::binding`]), and its state directory, where the level seen is kept.
pub struct Trust {
    pub zone: String,
    pub roots: Vec<zone_pki::CertInfo>,
    pub state_dir: std::path::PathBuf,
    /// The last line said of a level ignored (said once, not at every look).
    pub said: std::sync::Mutex<Option<String>>,
}

impl Trust {
    /// `node`'s (no roots when its zone CA does not parse: then no level above 1 binds).
    pub fn of(node: &Node) -> Trust {
        Trust {
            zone: node.zone.clone(),
            roots: zone_model::config::trust::trusted_roots(&node.zone_ca_pem).unwrap_or_default(),
            state_dir: node.state_dir.clone(),
            said: std::sync::Mutex::new(None),
        }
    }

    /// The level `text` when it binds this member.
    pub fn binding(&self, text: &[u8]) -> Result<Level, String> {
        Level::binding(text, &self.zone, &self.roots)
    }
}

/// In the node's state directory: the highest zone level this member has seen.
pub const FILE: &str = "zone-level.json";

/// Refuses to start in a zone whose level this release does not read: the level this
/// member remembers, and `asked` (what the others hold, asked before every start,
/// [`crate::revocation::ask_before_start`]; `None` when none answered).
pub fn before_start(node: &Node, asked: Option<&[u8]>) -> Result<(), Error> {
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
    let trust = Trust::of(node);
    let zone = asked.and_then(|text| match trust.binding(text) {
        Ok(level) => Some(level),
        Err(e) => {
            tracing::warn!("{LEVEL_KEY}: {e}");
            None
        }
    });
    let highest = match (seen, zone.clone()) {
        (Some(a), Some(b)) => Some(if b.level > a.level { b } else { a }),
        (a, b) => a.or(b),
    };
    let Some(highest) = highest else {
        return Ok(());
    };
    if let Some((problem, fix)) = refusal(
        &highest,
        crate::this_build::reads(),
        crate::this_build::RELEASE,
    ) {
        return Err(Error::new(problem).file(&node.path).fix(fix).permanent());
    }
    if zone.as_ref() == Some(&highest) {
        remember(&node.state_dir, &highest)?;
    }
    Ok(())
}

/// Keeps `level` in the state directory's [`FILE`] when it is higher than the one there
/// (or there is none).
pub fn remember(state_dir: &Path, level: &Level) -> Result<(), Error> {
    let path = state_dir.join(FILE);
    let _lock = zone_io::state::lock(state_dir)?;
    let kept = std::fs::read(&path)
        .ok()
        .and_then(|t| Level::parse(&t).ok());
    if kept.is_some_and(|k| k.level >= level.level) {
        return Ok(());
    }
    zone_io::write_atomic(&path, level.render().as_bytes(), zone_io::PUBLIC_MODE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use zone_model::release::READS;

    /// The package's preinst refuses to install over a zone above the level this release
    /// reads, as launch would refuse to start: its `READS` is this release's.
    #[test]
    fn the_packages_preinst_reads_the_levels_this_release_reads() {
        let preinst = include_str!("../../../scripts/debian/preinst");
        let line = format!("READS={READS}");
        assert!(
            preinst.lines().any(|l| l == line),
            "scripts/debian/preinst has no line {line}"
        );
        // And it reads the file this module keeps, in the form it is written.
        assert!(preinst.contains(FILE));
        let written = Level {
            format: 1,
            level: 2,
            release: "9.9.0".into(),
            at: "2026-11-27T00:00:00Z".into(),
            zone: Some("example.zone".into()),
            sign: Some("ecdsa-sha256:00:AA==".into()),
        }
        .render();
        assert!(written.contains(r#""level":2"#) && written.contains(r#""release":"9.9.0""#));
    }
}
