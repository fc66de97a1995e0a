//! This build of zone-etcd: its release, the commit it was built from (`build.rs`) and the
//! format levels it reads and writes ([`zone_model::release`]), as `--version` says them
//! and each member records them in its zone ([`crate::agent::recorded`]).

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

/// Why this build does not read something of format `found` (it reads `reads`), for a
/// refusal's line: both formats, who wrote it and the fix. A machine-written format
/// changes its `format` for every change a reader must not ignore; a field it only adds
/// is read past (issue 50, item 4).
pub fn unread_format(found: impl std::fmt::Display, reads: impl std::fmt::Display) -> String {
    format!(
        "format {found} is not one zone-etcd {RELEASE} reads (it reads {reads}): a newer zone-etcd wrote it; read it with that release or a later one"
    )
}

/// Checks the `format` (`<name>/<version>`) of a JSON object before anything else of it
/// is read: `Err` (the line of [`unread_format`]) when it names another version of the
/// format `reads`; `Ok` otherwise: the format read, or no such format at all (another
/// kind of object, or none), which the caller's own parse and check refuse.
pub fn check_format(json: &[u8], reads: &str) -> Result<(), String> {
    #[derive(serde::Deserialize)]
    struct Format {
        format: String,
    }
    let name = |format: &str| format.rsplit_once('/').map(|(name, _)| name.to_string());
    match serde_json::from_slice::<Format>(json) {
        Ok(Format { format }) if format != reads && name(&format) == name(reads) => {
            Err(unread_format(format!("{format:?}"), format!("{reads:?}")))
        }
        _ => Ok(()),
    }
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
    }

    #[test]
    fn a_format_other_than_the_one_read_is_named_with_the_fix() {
        let newer = br#"{"format":"zone-etcd-backup/2","seq":"not a number"}"#;
        let line = check_format(newer, "zone-etcd-backup/1").unwrap_err();
        assert_eq!(
            line,
            format!("format \"zone-etcd-backup/2\" is not one zone-etcd {RELEASE} reads (it reads \"zone-etcd-backup/1\"): a newer zone-etcd wrote it; read it with that release or a later one")
        );
        assert!(check_format(
            br#"{"format":"zone-etcd-backup/1","added":1}"#,
            "zone-etcd-backup/1"
        )
        .is_ok());
        // No format of this name to read: the caller's parse and check say what is wrong.
        assert!(check_format(b"[1]", "zone-etcd-backup/1").is_ok());
        assert!(check_format(br#"{"format":2}"#, "zone-etcd-backup/1").is_ok());
        assert!(check_format(br#"{"format":"zone-etcd-signed/1"}"#, "zone-etcd-head/1").is_ok());
    }
}
