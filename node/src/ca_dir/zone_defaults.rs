//! `<ca>/zone-defaults.json`: what a zone file leaves out means for the zone of this CA
//! directory, written once by `ca init`, read by every owner's command that reads a zone
//! file beside the CA (`bootstrap`, `activate`, `zone sign`, `zone publish`).
//!
//! ```json
//! {"format":1,"access":"least-privilege"}
//! ```
//!
//! `access`: `least-privilege` (zone-etcd 0.2 and later) reads a zone file without
//! `[access]` as [`Policy::by_default`], enforced; a CA directory without this file (a zone
//! made before) reads it as before: no policy, every client certificate root, until the
//! owner moves the zone (docs/src/access.md). The choice belongs to the zone, not to the
//! release that reads the zone file: an old zone never flips by a newer tool alone.
//!
//! Invariants: a file of a newer `format`, or with an `access` value this release does
//! not know, is refused naming the file and field (never read as the old meaning); the
//! file is written atomically, public (it holds no secret).

use std::path::Path;

use serde::{Deserialize, Serialize};
use zone_io::Error;

use zone_model::config::zone::Zone;
use zone_model::policy::Policy;

/// The file's name in a CA directory.
pub const FILE: &str = "zone-defaults.json";
/// The format this release writes and reads.
const FORMAT: u32 = 1;
/// The value of `access` of a zone made with least privilege as its default.
const LEAST_PRIVILEGE: &str = "least-privilege";

#[derive(Debug, Serialize, Deserialize)]
struct Defaults {
    format: u32,
    access: String,
}

/// The zone's defaults, as `write` writes them, at `ca_dir` (a CA directory being made).
pub fn write(ca_dir: &Path) -> Result<(), Error> {
    let text = serde_json::to_string(&Defaults {
        format: FORMAT,
        access: LEAST_PRIVILEGE.into(),
    })
    .map_err(|e| Error::new(format!("cannot write {FILE}: {e}")))?;
    zone_io::write_atomic(
        &ca_dir.join(FILE),
        format!("{text}\n").as_bytes(),
        zone_io::PUBLIC_MODE,
    )
}

/// Whether the zone of `ca_dir` reads a zone file without `[access]` as least privilege.
pub fn least_privilege(ca_dir: &Path) -> Result<bool, Error> {
    let path = ca_dir.join(FILE);
    if !path.exists() {
        return Ok(false);
    }
    parse(&zone_io::read_text(&path)?).map_err(|e| e.file(&path))
}

fn parse(text: &str) -> Result<bool, Error> {
    let defaults: Defaults = serde_json::from_str(text).map_err(|e| {
        Error::new(format!("does not read as zone defaults: {e}"))
            .fix(format!("restore it from the CA's backup (`ca init` wrote {{\"format\":{FORMAT},\"access\":\"{LEAST_PRIVILEGE}\"}})"))
    })?;
    if defaults.format > FORMAT {
        return Err(Error::new(format!(
            "format {} is newer than this zone-etcd reads ({FORMAT})",
            defaults.format
        ))
        .field("format")
        .fix(
            "run the owner's commands with the zone-etcd release that made the CA, or a newer one",
        ));
    }
    match defaults.access.as_str() {
        LEAST_PRIVILEGE => Ok(true),
        other => Err(Error::new(format!("unknown value {other:?}"))
            .field("access")
            .fix(format!(
                "write \"access\": \"{LEAST_PRIVILEGE}\", or use a newer zone-etcd"
            ))),
    }
}

/// The zone file at `zone_file`, with `[access]` as the zone of `ca_dir` reads it
/// ([`resolve`]); a key this release does not know is said in a warning, and so is an
/// opt-out of least privilege in a zone whose default it is.
pub fn load_zone(zone_file: &Path, ca_dir: &Path) -> Result<Zone, Error> {
    let mut zone = Zone::load_reporting(zone_file, crate::unknown_keys::warn)?;
    let least_privilege = least_privilege(ca_dir)?;
    if opts_out(&zone.access, least_privilege) {
        eprintln!(
            "zone-etcd: warning: {}: access.enforce = false: every client certificate of zone {} is etcd's root, though least privilege is its default (remove the line to enforce the policy)",
            zone_file.display(),
            zone.name
        );
    }
    zone.access = resolve(zone.access, least_privilege);
    Ok(zone)
}

/// The policy a zone file's `access` (absent: not `present`) means in a zone whose
/// default is least privilege or not: in such a zone, no `[access]` is
/// [`Policy::by_default`], and an `[access]` without `enforce` (written to grant a
/// service) is enforced; only `enforce = false` opts out.
pub fn resolve(access: Policy, least_privilege: bool) -> Policy {
    match (least_privilege, access.present) {
        (false, _) => access,
        (true, false) => Policy::by_default(),
        (true, true) if !access.enforce_given => Policy {
            enforce: true,
            enforce_given: true,
            ..access
        },
        (true, true) => access,
    }
}

/// Whether `access` opts a zone whose default is least privilege out of it.
fn opts_out(access: &Policy, least_privilege: bool) -> bool {
    least_privilege && access.present && access.enforce_given && !access.enforce
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Golden: what `ca init` writes, read by every later release.
    const WRITTEN: &str = "{\"format\":1,\"access\":\"least-privilege\"}\n";

    #[test]
    fn the_file_ca_init_writes_reads_as_least_privilege() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join(FILE)).unwrap(),
            WRITTEN
        );
        assert!(least_privilege(dir.path()).unwrap());
        // A later release may add keys; this one reads past them.
        assert!(parse(r#"{"format":1,"access":"least-privilege","later":true}"#).unwrap());
    }

    #[test]
    fn a_ca_without_the_file_keeps_the_old_meaning_and_anything_unknown_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!least_privilege(dir.path()).unwrap());
        let newer = parse(r#"{"format":2,"access":"least-privilege"}"#).unwrap_err();
        assert_eq!(newer.field_name(), Some("format"), "{newer}");
        let unknown = parse(r#"{"format":1,"access":"open"}"#).unwrap_err();
        assert_eq!(unknown.field_name(), Some("access"), "{unknown}");
        std::fs::write(dir.path().join(FILE), "{").unwrap();
        let broken = least_privilege(dir.path()).unwrap_err().to_string();
        assert!(broken.contains(FILE), "{broken}");
    }

    #[test]
    fn only_an_absent_access_in_a_least_privilege_zone_becomes_the_default() {
        assert_eq!(resolve(Policy::default(), true), Policy::by_default());
        assert_eq!(resolve(Policy::default(), false), Policy::default());
        let default = Policy::by_default();
        assert!(default.enforce && default.any_node() && default.services.is_empty());
    }

    #[test]
    fn an_access_table_is_enforced_in_a_least_privilege_zone_unless_it_says_enforce_false() {
        // Written to grant a service, without `enforce` (issue 68, item 8).
        let granted = Policy {
            present: true,
            nodes: vec!["nas.example.zone".into()],
            ..Policy::default()
        };
        let read = resolve(granted.clone(), true);
        assert!(read.enforce, "{read:?}");
        assert_eq!(read.nodes, granted.nodes, "the table's own grants stay");
        assert!(!opts_out(&granted, true));
        // Only `enforce = false` opts out, and is said.
        let opted_out = Policy {
            enforce_given: true,
            ..granted.clone()
        };
        assert!(!resolve(opted_out.clone(), true).enforce);
        assert!(opts_out(&opted_out, true));
        // A zone made before 0.2 keeps the table's old meaning: not enforced.
        assert!(!resolve(granted.clone(), false).enforce);
        assert!(!opts_out(&opted_out, false));
        // How it was written is not what it means.
        assert_eq!(opted_out, granted);
    }
}
