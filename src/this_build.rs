//! This build of zone-etcd: its release, the commit it was built from (`build.rs`) and the
//! format levels it reads and writes ([`zone_model::release`]), as `--version` says them
//! and each member records them in its zone ([`crate::agent::recorded`]).

use zone_model::release::{Record, READS, WRITES};

/// The release's name (the package's version).
pub const RELEASE: &str = env!("CARGO_PKG_VERSION");
/// The commit this build was made from (`unknown` outside a git checkout).
pub const COMMIT: &str = env!("ZONE_ETCD_COMMIT");

/// What `zone-etcd --version` prints after the program's name.
pub fn long_version() -> String {
    format!("{RELEASE} (commit {COMMIT})\nformats: reads level {READS}, writes level {WRITES}")
}

/// This build's record for a member that first ran it at `since` (RFC 3339).
pub fn record(since: &str) -> Record {
    Record::new(RELEASE, COMMIT, since)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_names_the_release_the_commit_and_the_levels() {
        let text = long_version();
        assert!(text.starts_with(&format!("{RELEASE} (commit ")), "{text}");
        assert!(
            text.ends_with("formats: reads level 1, writes level 1"),
            "{text}"
        );
        assert!(!COMMIT.is_empty());
        assert_eq!(record("t").release, RELEASE);
    }
}
