//! The warning of a key this release does not know (issue 50, item 4): node.toml, the
//! zone file and the signed zone document are read for the keys this release knows
//! ([`zone_model::config::ignored`]); every other key is said here, one line each, and
//! the command or keeper goes on.
//!
//! Invariants: a line names the file (or the document and where it came from), the key,
//! both of what it may be (a newer release's key, a typo) and both fixes; each line is
//! logged once per process: a keeper reads the same document every round, and the first
//! reading says all there is to say.

use std::collections::BTreeSet;
use std::sync::Mutex;

use zone_model::config::Ignored;

/// The lines this process said already.
static SAID: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Logs a warning for each key of `ignored` not warned about yet in this process.
pub fn warn(ignored: &Ignored) {
    for line in new_lines(ignored) {
        tracing::warn!("{line}");
    }
}

/// The lines of `ignored` not said yet, marked said.
fn new_lines(ignored: &Ignored) -> Vec<String> {
    let mut said = SAID.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    ignored
        .keys()
        .iter()
        .map(|key| key.line(crate::this_build::RELEASE))
        .filter(|line| said.insert(line.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_line_is_said_once_per_process() {
        let ignored = Ignored::of(
            "/tmp/unknown-keys-test/node.toml",
            "remove it from /tmp/unknown-keys-test/node.toml",
            vec!["raft_log".into(), "etcd #1 learner".into()],
        );
        let lines = new_lines(&ignored);
        assert_eq!(lines.len(), 2);
        assert!(
            lines[0].starts_with("/tmp/unknown-keys-test/node.toml: raft_log: unknown key"),
            "{}",
            lines[0]
        );
        assert!(lines[0].contains(crate::this_build::RELEASE));
        assert!(new_lines(&ignored).is_empty());
        let other = Ignored::of(
            "/tmp/unknown-keys-test/zone.toml",
            "remove it",
            vec!["raft_log".into()],
        );
        assert_eq!(new_lines(&other).len(), 1);
    }
}
