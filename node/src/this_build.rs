//! This build of zone-etcd: its release, the commit it was built from (`build.rs`) and the
//! format levels it reads and writes ([`zone_model::release`]), as `--version` says them
//! and each member records them in its zone (`zone_agent::recorded`).

use zone_model::release::{Record, READS, WRITES};

/// In a debug build (the tests' and the dev package's), the format level this build
/// claims to read and write in place of [`READS`] and [`WRITES`] when set above them: a
/// simulated next release beside this one (tests/zone/releases.rs). A release build never
/// reads it.
pub const SIMULATED_LEVEL: &str = "ZONE_ETCD_SIMULATED_LEVEL";

/// The release's name (the package's version).
pub const RELEASE: &str = env!("CARGO_PKG_VERSION");
/// The commit this build was made from (`unknown` outside a git checkout).
pub const COMMIT: &str = env!("ZONE_ETCD_COMMIT");

/// What `zone-etcd --version` prints after the program's name.
pub fn long_version() -> String {
    format!(
        "{RELEASE} (commit {COMMIT})\nformats: reads level {}, writes level {}",
        reads(),
        writes()
    )
}

/// The highest format level this build reads ([`READS`], or [`SIMULATED_LEVEL`]).
pub fn reads() -> u32 {
    simulated().unwrap_or(READS)
}

/// The highest format level this build writes ([`WRITES`], or [`SIMULATED_LEVEL`]).
pub fn writes() -> u32 {
    simulated().unwrap_or(WRITES)
}

fn simulated() -> Option<u32> {
    if !cfg!(debug_assertions) {
        return None;
    }
    let level: u32 = std::env::var(SIMULATED_LEVEL).ok()?.parse().ok()?;
    (level > READS.max(WRITES)).then_some(level)
}

/// This build's record for a member that first ran it at `since` (RFC 3339).
pub fn record(since: &str) -> Record {
    let mut record = Record::new(RELEASE, COMMIT, since);
    record.reads = reads();
    record.writes = writes();
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_names_the_release_the_commit_and_the_levels() {
        let text = long_version();
        assert!(text.starts_with(&format!("{RELEASE} (commit ")), "{text}");
        assert!(
            text.ends_with("formats: reads level 2, writes level 2"),
            "{text}"
        );
        assert!(!COMMIT.is_empty());
        assert_eq!(record("t").release, RELEASE);
        // The backups' user agent and format refusals name the same release.
        assert_eq!(zone_backup::RELEASE, RELEASE);
    }
}
