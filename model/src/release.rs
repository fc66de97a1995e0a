//! zone-etcd's own releases in a zone: the format levels a release reads and writes, and
//! the record each member keeps in the zone of the release it runs.
//!
//! **Format levels.** Every format zone-etcd writes to disk or to etcd (node.toml, the
//! zone and revocations documents, the access policy, the state files, the backups, its
//! keys under `zone-etcd/`) belongs to a level. Level 1 is every format as zone-etcd 0.1.0
//! writes it. A release reads every level up to its [`READS`] and writes at most its
//! [`WRITES`]; a release that brings a new format raises both, and writes the new format
//! only once every member of the zone reads it.
//!
//! **The record** ([`Record`], at [`PREFIX`]`<member>`): what the member's keeper runs,
//! put when it starts on a build the record does not name yet. `status` reads them.
//!
//! Invariants: a record reads whatever release wrote it: fields this release does not
//! know are skipped, and a newer `format` is read for the fields it shares with this one
//! (a later release only adds fields); the text this release writes is pinned by a golden
//! test, as later releases read it.

use serde::{Deserialize, Serialize};

/// The highest format level this release reads.
pub const READS: u32 = 2;
/// The highest format level this release writes.
pub const WRITES: u32 = 2;
/// The first release that reads each level: what a level's document names, so a member
/// on an older release is told which one to install (a build on the way to that release
/// names it too).
pub const FIRST_READERS: [(u32, &str); 2] = [(1, "0.1.0"), (2, "0.3.0")];

/// The release a level's document names: the first that reads `level`, or `release`
/// (the raising one) for a level this table does not know yet.
pub fn first_reader(level: u32, release: &str) -> String {
    FIRST_READERS
        .iter()
        .find(|(l, _)| *l == level)
        .map_or(release, |(_, r)| r)
        .to_string()
}

/// Where each member's record is: `<PREFIX><member's node name>`.
pub const PREFIX: &str = "zone-etcd/releases/";
/// The format of the record this release writes.
pub const FORMAT: u32 = 1;

/// Where the zone's format level is ([`Level`]); absent, the zone is at level 1.
pub const LEVEL_KEY: &str = "zone-etcd/level";

/// The zone's format level, as the release that raised it wrote it at [`LEVEL_KEY`]: the
/// formats every member may now write. It only goes up, and only once every member reads
/// it; a member whose release reads less does not start ([`refusal`]).
///
/// Invariant: a level above 1 binds a member only signed by the zone root for its zone
/// ([`Level::binding`]): a value anyone else put at the key (a planted level 99 would stop
/// every member's next start for good) is ignored. Level 1 binds unsigned: every release
/// reads it, so it never stops a member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Level {
    /// The document's own format (1).
    pub format: u32,
    /// The zone's level.
    pub level: u32,
    /// The release that raised it (the oldest release that reads it).
    pub release: String,
    /// When it was raised (RFC 3339).
    pub at: String,
    /// The zone it was signed for (absent in an unsigned level, as 0.2.0 wrote them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// The zone root's signature over the rest, as a zone document's `sign`
    /// ([`crate::zone_doc::sign_value`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign: Option<String>,
}

impl Level {
    /// A level document as some release wrote it (fields it adds are skipped).
    pub fn parse(text: &[u8]) -> Result<Level, String> {
        serde_json::from_slice(text)
            .map_err(|e| format!("not a zone-etcd format level document: {e}"))
    }

    /// This level for `zone`, signed by the zone root `root`.
    pub fn signed(
        mut self,
        zone: &str,
        root: &zone_pki::Authority,
    ) -> Result<Level, zone_io::Error> {
        self.zone = Some(zone.to_string());
        self.sign = None;
        let value = serde_json::to_value(&self)
            .map_err(|e| zone_io::Error::new(format!("cannot render the level: {e}")))?;
        self.sign = Some(crate::zone_doc::sign_value(&value, root)?);
        Ok(self)
    }

    /// The level document `text` read at [`LEVEL_KEY`], when it binds the members of `zone`
    /// (trusting `roots`): level 1 always; above, only with a signature of a zone root over
    /// the document as written (fields a later release adds included) for this zone.
    /// `Err`: why it is ignored, for one line of a log.
    pub fn binding(text: &[u8], zone: &str, roots: &[zone_pki::CertInfo]) -> Result<Level, String> {
        let level = Level::parse(text)?;
        if level.level <= 1 {
            return Ok(level);
        }
        let ignored = |why: String| {
            format!(
                "level {} ignored: {why} (only the zone's owner raises it: zone-etcd zone raise-level --ca)",
                level.level
            )
        };
        let Some(sign) = level.sign.as_deref() else {
            return Err(ignored("not signed by the zone root".into()));
        };
        if level.zone.as_deref() != Some(zone) {
            return Err(ignored(format!(
                "signed for zone {:?}, not {zone}",
                level.zone.as_deref().unwrap_or_default()
            )));
        }
        let mut value: serde_json::Value = serde_json::from_slice(text)
            .map_err(|e| format!("not a zone-etcd format level document: {e}"))?;
        if let Some(object) = value.as_object_mut() {
            object.remove("sign");
        }
        crate::zone_doc::check_signature(&value, sign, roots)
            .map_err(|e| ignored(e.problem().to_string()))?;
        Ok(level)
    }

    /// The document's text.
    pub fn render(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Why a release that reads up to level `reads` must not start in a zone at `zone`'s
/// level (pure): the problem, then the fix naming the release it needs; `None` when it
/// may.
pub fn refusal(zone: &Level, reads: u32, release: &str) -> Option<(String, String)> {
    (zone.level > reads).then(|| {
        (
            format!(
                "the zone is at format level {} (raised by zone-etcd {} at {}); zone-etcd {release} reads formats up to level {reads}",
                zone.level, zone.release, zone.at
            ),
            format!(
                "install zone-etcd {} or later on this node (a zone's level never goes back)",
                zone.release
            ),
        )
    })
}

/// What `zone raise-level` does ([`raise`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Raise {
    /// The zone is at this level or above already: nothing to write (a level never goes
    /// back).
    Already(u32),
    /// The level document to put.
    To(Level),
}

/// Whether the zone may go from level `current` to `to` (pure): only when this release
/// (`release`, writing levels up to `writes`) writes `to`, and every member of the zone
/// (`members`: each node name with its release record, `None` when it has none) runs a
/// release that reads it. `Err` is the refusal: the problem, then the fix.
pub fn raise(
    current: u32,
    to: u32,
    writes: u32,
    release: &str,
    members: &[(String, Option<Record>)],
    at: &str,
) -> Result<Raise, (String, String)> {
    if to <= current {
        return Ok(Raise::Already(current));
    }
    if to > writes {
        return Err((
            format!("zone-etcd {release} writes formats up to level {writes}, not level {to}"),
            format!("raise the zone to level {to} with a release that writes it"),
        ));
    }
    let unrecorded: Vec<&str> = members
        .iter()
        .filter(|(_, r)| r.is_none())
        .map(|(m, _)| m.as_str())
        .collect();
    if !unrecorded.is_empty() {
        return Err((
            format!(
                "no release record of {} (zone-etcd 0.1.0 records none; a member that never started has none either)",
                unrecorded.join(", ")
            ),
            format!("start each on a release that reads level {to} (zone-etcd status shows every member's release), then raise again"),
        ));
    }
    let behind: Vec<String> = members
        .iter()
        .filter_map(|(m, r)| {
            let r = r.as_ref()?;
            (r.reads < to)
                .then(|| format!("{m} runs {} (reads up to level {})", r.release, r.reads))
        })
        .collect();
    if !behind.is_empty() {
        return Err((
            format!("{}: it would refuse to start in a zone at level {to}", behind.join(", ")),
            format!("move each to a release that reads level {to} first (zone-etcd status shows every member's release), then raise again"),
        ));
    }
    Ok(Raise::To(Level {
        format: 1,
        level: to,
        release: first_reader(to, release),
        at: at.into(),
        zone: None,
        sign: None,
    }))
}

/// The zone-etcd release a member runs, as its keeper records it in the zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The record's own format ([`FORMAT`] when this release wrote it).
    pub format: u32,
    /// The release's name (`0.1.0`).
    pub release: String,
    /// The commit it was built from (`unknown` when built outside a git checkout).
    pub commit: String,
    /// The highest format level it reads.
    pub reads: u32,
    /// The highest format level it writes.
    pub writes: u32,
    /// When the member first ran this build (RFC 3339).
    pub since: String,
}

impl Record {
    /// The record of a member running `release` built from `commit`, since `since`.
    pub fn new(release: &str, commit: &str, since: &str) -> Record {
        Record {
            format: FORMAT,
            release: release.into(),
            commit: commit.into(),
            reads: READS,
            writes: WRITES,
            since: since.into(),
        }
    }

    /// A record as some release wrote it.
    pub fn parse(text: &[u8]) -> Result<Record, String> {
        serde_json::from_slice(text).map_err(|e| format!("not a zone-etcd release record: {e}"))
    }

    /// The record's text, as it is put in etcd.
    pub fn render(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Whether `other` names the same build (when either started it aside).
    pub fn same_build(&self, other: &Record) -> bool {
        (&self.release, &self.commit, self.reads, self.writes)
            == (&other.release, &other.commit, other.reads, other.writes)
    }

    /// How `status` names it: `0.1.0 (75da28a1b2)`.
    pub fn short(&self) -> String {
        format!("{} ({})", self.release, self.commit)
    }
}

/// The releases `records` name, each with the members that run it, when there is more
/// than one (pure; members without a record are not counted: they have not said yet).
pub fn mixed(records: &[(String, Record)]) -> Option<Vec<(String, Vec<String>)>> {
    let mut by_build: Vec<(String, Vec<String>)> = Vec::new();
    for (member, record) in records {
        let build = record.short();
        match by_build.iter_mut().find(|(b, _)| *b == build) {
            Some((_, members)) => members.push(member.clone()),
            None => by_build.push((build, vec![member.clone()])),
        }
    }
    (by_build.len() > 1).then_some(by_build)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The record as this release writes it (golden: members of every later release read it).
    const GOLDEN: &str = r#"{"format":1,"release":"0.1.0","commit":"75da28a1b2","reads":2,"writes":2,"since":"2026-11-27T02:00:00Z"}"#;
    /// As 0.2.0 wrote it (levels 1): read the same way.
    const GOLDEN_0_2: &str = r#"{"format":1,"release":"0.2.0","commit":"75da28a1b2","reads":1,"writes":1,"since":"2026-11-27T02:00:00Z"}"#;

    #[test]
    fn the_record_this_release_writes_is_pinned() {
        let record = Record::new("0.1.0", "75da28a1b2", "2026-11-27T02:00:00Z");
        assert_eq!(record.render(), GOLDEN);
        assert_eq!(Record::parse(GOLDEN.as_bytes()).unwrap(), record);
        let old = Record::parse(GOLDEN_0_2.as_bytes()).unwrap();
        assert_eq!(
            (old.release.as_str(), old.reads, old.writes),
            ("0.2.0", 1, 1)
        );
    }

    #[test]
    fn a_newer_releases_record_reads_for_what_it_shares() {
        let newer = r#"{"format":2,"release":"0.3.0","commit":"abc","reads":3,"writes":2,"since":"2027-01-01T00:00:00Z","features":["x"]}"#;
        let record = Record::parse(newer.as_bytes()).unwrap();
        assert_eq!((record.format, record.reads, record.writes), (2, 3, 2));
        assert_eq!(record.short(), "0.3.0 (abc)");
    }

    #[test]
    fn what_is_not_a_record_is_refused() {
        assert!(Record::parse(b"").is_err());
        assert!(Record::parse(br#"{"release":"0.1.0"}"#).is_err());
    }

    /// The level document as a later release writes it (golden), with a field it may add.
    #[test]
    fn a_zone_above_what_a_release_reads_is_refused_naming_the_release_it_needs() {
        let text =
            r#"{"format":1,"level":2,"release":"0.3.0","at":"2027-03-01T00:00:00Z","by":"owner"}"#;
        let level = Level::parse(text.as_bytes()).unwrap();
        assert_eq!(level.level, 2);
        let (problem, fix) = refusal(&level, 1, "0.2.0").unwrap();
        assert_eq!(problem, "the zone is at format level 2 (raised by zone-etcd 0.3.0 at 2027-03-01T00:00:00Z); zone-etcd 0.2.0 reads formats up to level 1");
        assert_eq!(
            fix,
            "install zone-etcd 0.3.0 or later on this node (a zone's level never goes back)"
        );
        assert_eq!(refusal(&level, 2, "0.3.0"), None);
        assert_eq!(refusal(&level, 3, "0.4.0"), None);
        let golden = r#"{"format":1,"level":2,"release":"0.3.0","at":"2027-03-01T00:00:00Z"}"#;
        assert_eq!(level.render(), golden);
        assert!(Level::parse(b"{}").is_err());
    }

    /// Only the zone root binds a level above 1: unsigned (as 0.2.0 wrote them, or
    /// planted), signed by another root, for another zone, or changed after it was signed,
    /// it is ignored; level 1 binds as written. The signed form is golden but for the
    /// signature (ECDSA's is random).
    #[test]
    fn a_level_above_one_binds_only_signed_by_the_zone_root_for_this_zone() {
        let root = zone_pki::Authority::new_root("example.zone").unwrap();
        let roots = [zone_pki::CertInfo::parse(root.cert_der()).unwrap()];
        let level = |n: u32| Level {
            format: 1,
            level: n,
            release: "0.3.0".into(),
            at: "2027-03-01T00:00:00Z".into(),
            zone: None,
            sign: None,
        };
        let unsigned = level(2).render();
        let err = Level::binding(unsigned.as_bytes(), "example.zone", &roots).unwrap_err();
        assert_eq!(err, "level 2 ignored: not signed by the zone root (only the zone's owner raises it: zone-etcd zone raise-level --ca)");
        assert!(Level::binding(level(1).render().as_bytes(), "example.zone", &roots).is_ok());
        let signed = level(2).signed("example.zone", &root).unwrap().render();
        let key_id = roots[0].fingerprint_hex();
        let golden = format!(
            r#"{{"format":1,"level":2,"release":"0.3.0","at":"2027-03-01T00:00:00Z","zone":"example.zone","sign":"ecdsa-sha256:{key_id}:"#
        );
        assert!(signed.starts_with(&golden), "{signed}");
        let bound = Level::binding(signed.as_bytes(), "example.zone", &roots).unwrap();
        assert_eq!(bound.level, 2);
        // Read by a release that knows no `zone` or `sign`: the level as before.
        assert_eq!(Level::parse(signed.as_bytes()).unwrap().level, 2);
        // A field a later release adds is covered by the signature.
        let mut later: serde_json::Value = serde_json::from_str(&signed).unwrap();
        later["by"] = "owner".into();
        assert!(Level::binding(later.to_string().as_bytes(), "example.zone", &roots).is_err());
        let raised = signed.replace(r#""level":2"#, r#""level":99"#);
        let err = Level::binding(raised.as_bytes(), "example.zone", &roots).unwrap_err();
        assert!(err.contains("does not verify"), "{err}");
        let err = Level::binding(signed.as_bytes(), "other.zone", &roots).unwrap_err();
        assert!(
            err.contains("signed for zone \"example.zone\", not other.zone"),
            "{err}"
        );
        let other = zone_pki::Authority::new_root("example.zone").unwrap();
        let forged = level(2).signed("example.zone", &other).unwrap().render();
        let err = Level::binding(forged.as_bytes(), "example.zone", &roots).unwrap_err();
        assert!(err.contains("signed by another CA"), "{err}");
    }

    #[test]
    fn a_level_is_raised_only_when_every_member_reads_it_and_never_back() {
        let rec = |release: &str, reads: u32| {
            let mut r = Record::new(release, "c", "t");
            r.reads = reads;
            r.writes = reads;
            Some(r)
        };
        let members = |list: &[(&str, Option<Record>)]| -> Vec<(String, Option<Record>)> {
            list.iter()
                .map(|(m, r)| (m.to_string(), r.clone()))
                .collect()
        };
        let all_two = members(&[("n1", rec("0.3.0", 2)), ("n2", rec("0.4.0", 3))]);
        assert_eq!(
            raise(1, 2, 2, "0.3.0", &all_two, "T"),
            Ok(Raise::To(Level {
                format: 1,
                level: 2,
                release: "0.3.0".into(),
                at: "T".into(),
                zone: None,
                sign: None,
            }))
        );
        // A build on its way to 0.3.0 (still named 0.2.0) names the first release that
        // reads level 2, what a member on 0.2.0 is told to install; a level the table does
        // not know yet names the raising build.
        match raise(1, 2, 2, "0.2.0", &all_two, "T") {
            Ok(Raise::To(level)) => assert_eq!(level.release, "0.3.0"),
            other => panic!("{other:?}"),
        }
        match raise(
            1,
            3,
            3,
            "0.4.0-rc",
            &members(&[("n2", rec("0.4.0", 3))]),
            "T",
        ) {
            Ok(Raise::To(level)) => assert_eq!(level.release, "0.4.0-rc"),
            other => panic!("{other:?}"),
        }
        // At or above already, or asked lower: nothing, whatever the members run.
        assert_eq!(raise(2, 2, 2, "0.3.0", &[], "T"), Ok(Raise::Already(2)));
        assert_eq!(raise(3, 2, 2, "0.3.0", &[], "T"), Ok(Raise::Already(3)));
        // A level this release does not write.
        let (problem, fix) = raise(1, 3, 2, "0.3.0", &all_two, "T").unwrap_err();
        assert_eq!(
            problem,
            "zone-etcd 0.3.0 writes formats up to level 2, not level 3"
        );
        assert_eq!(
            fix,
            "raise the zone to level 3 with a release that writes it"
        );
        // A member that reads less, or has no record: refused naming it.
        let one_behind = members(&[("n1", rec("0.3.0", 2)), ("n2", rec("0.2.0", 1))]);
        let (problem, _) = raise(1, 2, 2, "0.3.0", &one_behind, "T").unwrap_err();
        assert_eq!(
            problem,
            "n2 runs 0.2.0 (reads up to level 1): it would refuse to start in a zone at level 2"
        );
        let unrecorded = members(&[("n1", rec("0.3.0", 2)), ("n2", None)]);
        let (problem, fix) = raise(1, 2, 2, "0.3.0", &unrecorded, "T").unwrap_err();
        assert!(problem.starts_with("no release record of n2 "), "{problem}");
        assert!(fix.contains("reads level 2"), "{fix}");
    }

    #[test]
    fn a_build_is_the_same_whenever_it_started() {
        let a = Record::new("0.1.0", "abc", "t1");
        assert!(a.same_build(&Record::new("0.1.0", "abc", "t2")));
        assert!(!a.same_build(&Record::new("0.1.0", "abd", "t1")));
        assert!(!a.same_build(&Record::new("0.2.0", "abc", "t1")));
    }

    #[test]
    fn mixed_releases_are_named_with_their_members() {
        let r = |release: &str| Record::new(release, "c", "t");
        assert_eq!(mixed(&[]), None);
        let one = [
            ("n1".to_string(), r("0.1.0")),
            ("n2".to_string(), r("0.1.0")),
        ];
        assert_eq!(mixed(&one), None);
        let two = [
            ("n1".to_string(), r("0.1.0")),
            ("n2".to_string(), r("0.2.0")),
            ("n3".to_string(), r("0.1.0")),
        ];
        assert_eq!(
            mixed(&two),
            Some(vec![
                (
                    "0.1.0 (c)".to_string(),
                    vec!["n1".to_string(), "n3".to_string()]
                ),
                ("0.2.0 (c)".to_string(), vec!["n2".to_string()]),
            ])
        );
    }
}
