//! The `format` every machine-written object names (`<name>/<version>` in JSON, or a
//! number), read before anything else of it: a reader that meets another version of its
//! format says so in one line naming both, who wrote it and the fix, rather than failing
//! on a field. Pure; the reading release's name (`release`) is the caller's.
//!
//! Invariant: a machine-written format changes its `format` for every change a reader
//! must not ignore; a field it only adds is read past (issue 50, item 4). So only another
//! version of the *same* format name is refused here; anything else (another kind of
//! object, or none) is left to the caller's own parse and check.

/// Why release `release` does not read something of format `found` (it reads `reads`),
/// for a refusal's line: both formats, who wrote it and the fix.
pub fn unread_format(
    found: impl std::fmt::Display,
    reads: impl std::fmt::Display,
    release: &str,
) -> String {
    format!(
        "format {found} is not one zone-etcd {release} reads (it reads {reads}): a newer zone-etcd wrote it; read it with that release or a later one"
    )
}

/// Checks the `format` (`<name>/<version>`) of a JSON object before anything else of it
/// is read: `Err` (the line of [`unread_format`]) when it names another version of the
/// format `reads`; `Ok` otherwise: the format read, or no such format at all (another
/// kind of object, or none), which the caller's own parse and check refuse.
pub fn check_format(json: &[u8], reads: &str, release: &str) -> Result<(), String> {
    #[derive(serde::Deserialize)]
    struct Format {
        format: String,
    }
    let name = |format: &str| format.rsplit_once('/').map(|(name, _)| name.to_string());
    match serde_json::from_slice::<Format>(json) {
        Ok(Format { format }) if format != reads && name(&format) == name(reads) => Err(
            unread_format(format!("{format:?}"), format!("{reads:?}"), release),
        ),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_format_other_than_the_one_read_is_named_with_the_fix() {
        let newer = br#"{"format":"zone-etcd-backup/2","seq":"not a number"}"#;
        let line = check_format(newer, "zone-etcd-backup/1", "0.2.0").unwrap_err();
        assert_eq!(
            line,
            "format \"zone-etcd-backup/2\" is not one zone-etcd 0.2.0 reads (it reads \"zone-etcd-backup/1\"): a newer zone-etcd wrote it; read it with that release or a later one"
        );
        assert!(check_format(
            br#"{"format":"zone-etcd-backup/1","added":1}"#,
            "zone-etcd-backup/1",
            "0.2.0"
        )
        .is_ok());
        // No format of this name to read: the caller's parse and check say what is wrong.
        assert!(check_format(b"[1]", "zone-etcd-backup/1", "0.2.0").is_ok());
        assert!(check_format(br#"{"format":2}"#, "zone-etcd-backup/1", "0.2.0").is_ok());
        assert!(check_format(
            br#"{"format":"zone-etcd-signed/1"}"#,
            "zone-etcd-head/1",
            "0.2.0"
        )
        .is_ok());
        assert_eq!(
            unread_format(2, 1, "0.3.0"),
            "format 2 is not one zone-etcd 0.3.0 reads (it reads 1): a newer zone-etcd wrote it; read it with that release or a later one"
        );
    }
}
