//! Which etcd versions the launcher runs, and the flags each one gets: the one table from
//! an etcd release to its command line, its known defects and the upgrades it allows.
//!
//! Everything here is pure (no process is run, no file read), so the table is unit-tested
//! version by version. Invariants:
//! - every supported version gets mutual TLS on both ports and a peer port that refuses
//!   client certificates (`--peer-cert-allowed-hostname`, etcd 3.4 and later), and never a
//!   TLS setting weaker than forward-secret AEAD suites;
//! - an etcd the table does not support is refused before anything is written, in one line
//!   that names what was found and the oldest supported version;
//! - a member never starts an etcd older than the cluster's version, nor one that skips a
//!   minor version (etcd upgrades one minor version at a time), nor the next minor version
//!   before every member runs the patch etcd's upgrade guide asks for first;
//! - every release of 3.4 to [`NEWEST_KNOWN`] gets exactly the flags it has: no
//!   `--experimental-*` flag from 3.6 on (3.7 exits on them), feature gates instead.

pub use super::release::{from_version_output, Version};

/// The oldest etcd the launcher runs: 3.4 brought `--peer-cert-allowed-hostname`, without
/// which the peer port would accept any certificate of the zone, a client's too.
pub const OLDEST_SUPPORTED: Version = Version::new(3, 4, 0);
/// The newest minor series whose flags the table knows; later 3.x runs with its flags.
pub const NEWEST_KNOWN: (u32, u32) = (3, 7);

/// The upgrade etcd's guides require before a member of `from`'s series may run the next
/// minor: every member on at least this release first (3.5 -> 3.6 needs 3.5.32, for the
/// learner and zombie-member fixes; 3.6 -> 3.7 needs 3.6.11).
pub fn minimum_before_next_minor(from: (u32, u32)) -> Option<Version> {
    match from {
        (3, 5) => Some(Version::new(3, 5, 32)),
        (3, 6) => Some(Version::new(3, 6, 11)),
        _ => None,
    }
}

/// How a version's TLS is held to forward secrecy and AEAD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsFloor {
    /// `--tls-min-version=TLS1.3` (3.4.25+, 3.5.8+): every TLS 1.3 suite is ECDHE + AEAD,
    /// and etcd refuses a cipher list beside it.
    Tls13Only,
    /// `--cipher-suites=…` where `--tls-min-version` does not exist: TLS 1.2 keeps only
    /// these suites (TLS 1.3, which Go offers too, has only strong ones).
    CipherSuites(&'static [&'static str]),
}

/// The TLS 1.2 suites an older etcd keeps: ECDHE with ECDSA (the zone's keys are P-256)
/// and an AEAD cipher. Every etcd from 3.4 on knows these names (3.4 lists them in its own
/// table, 3.5 takes Go's names and keeps the short ChaCha20 name as an alias).
pub const FORWARD_SECRET_AEAD: &[&str] = &[
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
];

/// How a release is told to check its data against its peers' before serving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorruptCheck {
    /// `--experimental-initial-corrupt-check=true` (3.3 to 3.5).
    ExperimentalFlag,
    /// `--feature-gates=InitialCorruptCheck=true` (3.6 renamed its experimental flags).
    FeatureGate,
}

impl CorruptCheck {
    /// The (flag, value) pair for etcd's command line.
    pub fn flag(self) -> (&'static str, String) {
        match self {
            CorruptCheck::ExperimentalFlag => ("experimental-initial-corrupt-check", "true".into()),
            CorruptCheck::FeatureGate => ("feature-gates", "InitialCorruptCheck=true".into()),
        }
    }
}

/// What the launcher does with one etcd release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub version: Version,
    pub tls: TlsFloor,
    pub corrupt_check: CorruptCheck,
    /// Whether it takes `--unsafe-no-fsync` (3.5 and later): only ever given to a
    /// throwaway scratch member, never to a member of the zone.
    pub unsafe_no_fsync: bool,
    /// The flag that turns off the peer port's check of a dialling peer's certificate
    /// against the address its connection comes from: 3.6 dropped `experimental-`.
    pub peer_skip_san_check: &'static str,
    /// Lines to show at launch, in `status` and in `check`: known defects of this release.
    pub warnings: Vec<String>,
}

/// The table: the profile of a release, or why it is refused.
pub fn profile(version: Version) -> Result<Profile, String> {
    let v = |major, minor, patch| Version::new(major, minor, patch);
    if version < OLDEST_SUPPORTED {
        return Err(format!(
            "etcd {version} is older than {OLDEST_SUPPORTED}, the oldest etcd zone-etcd runs (before 3.4 etcd has no --peer-cert-allowed-hostname, so its peer port could not refuse the zone's client certificates)"
        ));
    }
    if version.major > 3 {
        return Err(format!(
            "etcd {version} is a new major version that zone-etcd does not know yet (it knows 3.4 to {}.{})",
            NEWEST_KNOWN.0, NEWEST_KNOWN.1
        ));
    }
    let has_tls_min_version = match version.series() {
        (3, 4) => version >= v(3, 4, 25),
        (3, 5) => version >= v(3, 5, 8),
        _ => true,
    };
    let tls = if has_tls_min_version {
        TlsFloor::Tls13Only
    } else {
        TlsFloor::CipherSuites(FORWARD_SECRET_AEAD)
    };
    let mut warnings = Vec::new();
    if (v(3, 5, 1)..=v(3, 5, 19)).contains(&version) {
        warnings.push(format!(
            "etcd {version} records a learner's promotion only in its v2 store (etcd #19557): a zone that grew by join may fail a later upgrade to 3.6 (\"too many learner member\"); upgrade every member to etcd 3.5.32 or later (the bundle carries 3.5.34) before the next join or any upgrade to 3.6"
        ));
    }
    warnings.extend(super::advisories::security_warnings(version));
    if version.series() > NEWEST_KNOWN {
        warnings.push(format!(
            "etcd {version} is newer than the newest etcd zone-etcd knows ({}.{}); it is started with the flags of {}.{}",
            NEWEST_KNOWN.0, NEWEST_KNOWN.1, NEWEST_KNOWN.0, NEWEST_KNOWN.1
        ));
    }
    let corrupt_check = if version.series() >= (3, 6) {
        CorruptCheck::FeatureGate
    } else {
        CorruptCheck::ExperimentalFlag
    };
    Ok(Profile {
        version,
        tls,
        corrupt_check,
        unsafe_no_fsync: version.series() >= (3, 5),
        peer_skip_san_check: if version.series() >= (3, 6) {
            "peer-skip-client-san-verification"
        } else {
            "experimental-peer-skip-client-san-verification"
        },
        warnings,
    })
}

/// Whether a cluster version is one the members agreed on: etcd starts a cluster at 3.0 and
/// raises it to the lowest member's version once it has heard from every member, so 3.0
/// (older than any release the launcher runs) says "not decided yet".
pub fn cluster_version_decided(cluster: Version) -> bool {
    cluster.series() >= OLDEST_SUPPORTED.series()
}

/// Why a member running `binary` must not start in a cluster at `cluster` (etcd's cluster
/// version: the lowest minor series of its members) whose other members run `members`
/// (name and release, of those that told), if it must not, with the fix. etcd would stop
/// such a member with a fatal error of its own, or, for a step from too old a patch, let
/// it run where its upgrade guide forbids; this says what to do instead.
pub fn upgrade_refusal(
    binary: Version,
    cluster: Version,
    members: &[(String, Version)],
) -> Option<(String, String)> {
    let (have, want) = (binary.series(), cluster.series());
    if !cluster_version_decided(cluster) {
        return None;
    }
    if have < want {
        return Some((
            format!(
                "this node's etcd is {binary}, older than the cluster's version {}.{} (etcd never runs a member older than its cluster; a zone goes back one minor version only through etcd's downgrade)",
                want.0, want.1
            ),
            format!(
                "point etcd_bin to etcd {}.{} or later, or remove it to use the bundled etcd",
                want.0, want.1
            ),
        ));
    }
    if have.0 != want.0 || have.1 > want.1 + 1 {
        return Some((
            format!(
                "this node's etcd is {binary}, more than one minor version ahead of the cluster's version {}.{} (etcd upgrades one minor version at a time)",
                want.0, want.1
            ),
            format!(
                "first upgrade every member to etcd {}.{}, one at a time (README: rolling upgrade), or point etcd_bin to it here",
                want.0,
                want.1 + 1
            ),
        ));
    }
    if have == want {
        return None;
    }
    // One minor version up: every member must be on the release the step needs first.
    let minimum = minimum_before_next_minor(want)?;
    let behind: Vec<String> = members
        .iter()
        .filter(|(_, version)| version.series() == want && *version < minimum)
        .map(|(name, version)| format!("{name} runs {version}"))
        .collect();
    if behind.is_empty() {
        return None;
    }
    Some((
        format!(
            "this node's etcd is {binary}, but etcd {}.{} needs every member on etcd {minimum} or later first (etcd's upgrade guide), and {}",
            have.0,
            have.1,
            behind.join(", ")
        ),
        format!(
            "first move every member to the newest etcd {}.{} (the bundle carries it), one at a time, then this one",
            want.0, want.1
        ),
    ))
}

/// The minor version (`3.6`) a cluster at `cluster` whose members run `members` (name and
/// release; `None` for one that did not tell) may be downgraded to when asked for `to`, or
/// why not, with the fix. etcd downgrades one minor version at a time, from 3.6 on, and
/// only a cluster whose every member runs its version (no move under way).
pub fn downgrade_target(
    cluster: Version,
    members: &[(String, Option<Version>)],
    to: Version,
) -> Result<String, (String, String)> {
    let (from, want) = (cluster.series(), to.series());
    if !cluster_version_decided(cluster) {
        return Err((
            "the cluster has not decided its version yet".into(),
            "wait until zone-etcd status shows a cluster version, then ask again".into(),
        ));
    }
    if from < (3, 6) {
        return Err((
            format!(
                "the cluster runs etcd {}.{}; etcd downgrades only from 3.6 on",
                from.0, from.1
            ),
            "restore a snapshot into the older etcd instead (README: backups and disaster recovery)".into(),
        ));
    }
    if want.0 != from.0 || want.1 + 1 != from.1 {
        return Err((
            format!(
                "--to {}.{} is not one minor version below the cluster's {}.{} (etcd downgrades one minor version at a time)",
                want.0, want.1, from.0, from.1
            ),
            format!("ask for --to {}.{} first", from.0, from.1 - 1),
        ));
    }
    let unready: Vec<String> = members
        .iter()
        .filter_map(|(name, version)| match version {
            None => Some(format!("{name} did not answer")),
            Some(v) if v.series() != from => Some(format!("{name} runs {v}")),
            Some(_) => None,
        })
        .collect();
    if !unready.is_empty() {
        return Err((
            format!(
                "every member must run etcd {}.{} and answer before a downgrade, and {}",
                from.0,
                from.1,
                unready.join(", ")
            ),
            "start or finish moving those members (zone-etcd status shows them), then ask again"
                .into(),
        ));
    }
    Ok(format!("{}.{}", want.0, want.1))
}

/// Why `binary` must not start over a log that still holds, after its last snapshot, the
/// v2 request at index `last_v2` (etcd 3.5 wrote it; see [`crate::wal::entries_before_3_6`]):
/// etcd 3.7 and later panic replaying one. `None` when it may start.
pub fn replay_refusal(binary: Version, last_v2: Option<u64>) -> Option<(String, String)> {
    let index = last_v2?;
    (binary.series() >= (3, 7)).then(|| {
        (
            format!(
                "this node's etcd is {binary}, and its log still holds, past its last snapshot, entries etcd 3.5 wrote (up to index {index}): etcd 3.7 cannot replay them (it stops with \"unmarshal should never fail\")"
            ),
            "run etcd 3.6 on this member until it has taken a snapshot past them (every snapshot_count entries, 10000 by default; a lower snapshot_count in the zone's [settings] takes one sooner), then launch 3.7 again".to_string(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> Result<Profile, String> {
        profile(Version::parse(text).unwrap())
    }

    #[test]
    fn reads_etcd_version_output() {
        let out = "etcd Version: 3.5.30\nGit SHA: GitNotFound\nGo Version: go1.24.4\nGo OS/Arch: linux/amd64\n";
        assert_eq!(from_version_output(out), Some(Version::new(3, 5, 30)));
        assert_eq!(
            from_version_output("etcd Version: 3.6.0-rc.2\n"),
            Some(Version::new(3, 6, 0))
        );
        for garbage in [
            "",
            "hello\n",
            "etcd Version:\n",
            "etcd Version: three\n",
            "etcd Version: 3\n",
            "etcd Version: 3.5.x\n",
            "etcd Version: 3.5.1.2\n",
            "Version: 3.5.30\n",
        ] {
            assert_eq!(from_version_output(garbage), None, "{garbage:?}");
        }
        assert_eq!(Version::parse("3.5"), Some(Version::new(3, 5, 0)));
    }

    #[test]
    fn tls_follows_the_version() {
        let ciphers = TlsFloor::CipherSuites(FORWARD_SECRET_AEAD);
        assert_eq!(table("3.4.0").unwrap().tls, ciphers);
        assert_eq!(table("3.4.23").unwrap().tls, ciphers);
        assert_eq!(table("3.4.24").unwrap().tls, ciphers);
        assert_eq!(table("3.4.25").unwrap().tls, TlsFloor::Tls13Only);
        assert_eq!(table("3.5.0").unwrap().tls, ciphers);
        assert_eq!(table("3.5.7").unwrap().tls, ciphers);
        assert_eq!(table("3.5.8").unwrap().tls, TlsFloor::Tls13Only);
        assert_eq!(table("3.5.16").unwrap().tls, TlsFloor::Tls13Only);
        assert_eq!(table("3.5.30").unwrap().tls, TlsFloor::Tls13Only);
        assert_eq!(table("3.6.4").unwrap().tls, TlsFloor::Tls13Only);
        assert_eq!(
            table("3.4.23").unwrap().corrupt_check,
            CorruptCheck::ExperimentalFlag
        );
        assert_eq!(
            table("3.5.30").unwrap().corrupt_check,
            CorruptCheck::ExperimentalFlag
        );
        assert_eq!(
            table("3.6.4").unwrap().corrupt_check,
            CorruptCheck::FeatureGate
        );
        // Only forward-secret AEAD suites, never CBC or static RSA.
        for suite in FORWARD_SECRET_AEAD {
            assert!(suite.starts_with("TLS_ECDHE_ECDSA_WITH_"), "{suite}");
            assert!(
                suite.contains("GCM") || suite.contains("CHACHA20"),
                "{suite}"
            );
        }
    }

    #[test]
    fn learner_promotion_defect_is_warned_about_in_3_5_1_to_3_5_19() {
        let warned = |v: &str| {
            table(v)
                .unwrap()
                .warnings
                .iter()
                .any(|w| w.contains("#19557") && w.contains("3.5.32"))
        };
        for affected in ["3.5.1", "3.5.16", "3.5.19"] {
            assert!(warned(affected), "{affected}");
        }
        for fine in ["3.4.23", "3.4.25", "3.5.0", "3.5.20", "3.5.30", "3.6.4"] {
            assert!(!warned(fine), "{fine}");
        }
        for clean in ["3.5.34", "3.6.14", "3.6.15", "3.7.1", "3.7.2"] {
            assert!(table(clean).unwrap().warnings.is_empty(), "{clean}");
        }
    }

    #[test]
    fn too_old_or_unknown_majors_are_refused() {
        let refused = table("3.3.25").unwrap_err();
        assert!(
            refused.contains("3.3.25") && refused.contains("3.4.0"),
            "{refused}"
        );
        assert!(table("2.3.8").is_err());
        assert!(table("4.0.0").unwrap_err().contains("4.0.0"));
        // 3.7 is known: no warning. A later 3.x runs with the newest known flags, and says so.
        assert!(table("3.7.2").unwrap().warnings.is_empty());
        let later = table("3.8.0").unwrap();
        assert_eq!(later.tls, TlsFloor::Tls13Only);
        assert_eq!(later.corrupt_check, CorruptCheck::FeatureGate);
        assert_eq!(
            later.peer_skip_san_check,
            "peer-skip-client-san-verification"
        );
        assert!(later.warnings[0].contains("newer"), "{:?}", later.warnings);
    }

    #[test]
    fn downgrades_go_one_minor_version_down_from_a_settled_cluster() {
        let v = |s: &str| Version::parse(s).unwrap();
        let all = |s: &str| -> Vec<(String, Option<Version>)> {
            ["n1", "n2", "n3"]
                .iter()
                .map(|n| (n.to_string(), Some(v(s))))
                .collect()
        };
        assert_eq!(
            downgrade_target(v("3.7.0"), &all("3.7.2"), v("3.6")).unwrap(),
            "3.6"
        );
        assert_eq!(
            downgrade_target(v("3.6.0"), &all("3.6.15"), v("3.5")).unwrap(),
            "3.5"
        );
        let (skip, fix) = downgrade_target(v("3.7.0"), &all("3.7.2"), v("3.5")).unwrap_err();
        assert!(skip.contains("one minor version at a time"), "{skip}");
        assert!(fix.contains("--to 3.6"), "{fix}");
        assert!(downgrade_target(v("3.7.0"), &all("3.7.2"), v("3.7")).is_err());
        assert!(downgrade_target(v("3.7.0"), &all("3.7.2"), v("3.8")).is_err());
        let (old, _) = downgrade_target(v("3.5.0"), &all("3.5.34"), v("3.4")).unwrap_err();
        assert!(old.contains("only from 3.6"), "{old}");
        let mut moving = all("3.7.2");
        moving[1].1 = Some(v("3.6.15"));
        moving[2].1 = None;
        let (problem, _) = downgrade_target(v("3.6.0"), &moving, v("3.5")).unwrap_err();
        assert!(
            problem.contains("n1 runs 3.7.2") && problem.contains("n3 did not answer"),
            "{problem}"
        );
        assert!(downgrade_target(v("3.0.0"), &all("3.6.15"), v("3.5")).is_err());
    }

    #[test]
    fn etcd_3_7_never_replays_what_3_5_wrote() {
        let v = |s: &str| Version::parse(s).unwrap();
        let (problem, fix) = replay_refusal(v("3.7.2"), Some(1234)).unwrap();
        assert!(
            problem.contains("3.7.2") && problem.contains("1234"),
            "{problem}"
        );
        assert!(fix.contains("snapshot_count"), "{fix}");
        assert_eq!(replay_refusal(v("3.7.2"), None), None);
        assert_eq!(replay_refusal(v("3.6.15"), Some(1234)), None);
        assert_eq!(replay_refusal(v("3.5.34"), Some(1234)), None);
        assert!(replay_refusal(v("3.8.0"), Some(1)).is_some());
    }

    #[test]
    fn a_minor_step_waits_for_every_member_on_the_release_it_needs() {
        let v = |s: &str| Version::parse(s).unwrap();
        let members = |list: &[(&str, &str)]| -> Vec<(String, Version)> {
            list.iter().map(|(n, s)| (n.to_string(), v(s))).collect()
        };
        // 3.5 -> 3.6: every member on 3.5.32 first.
        let (problem, fix) = upgrade_refusal(
            v("3.6.15"),
            v("3.5.0"),
            &members(&[("node2", "3.5.34"), ("node3", "3.5.30")]),
        )
        .unwrap();
        assert!(
            problem.contains("3.5.32") && problem.contains("node3 runs 3.5.30"),
            "{problem}"
        );
        assert!(!problem.contains("node2"), "{problem}");
        assert!(fix.contains("newest etcd 3.5"), "{fix}");
        let ready = members(&[("node2", "3.5.34"), ("node3", "3.5.32")]);
        assert_eq!(upgrade_refusal(v("3.6.15"), v("3.5.0"), &ready), None);
        // A member already moved to 3.6 is no obstacle.
        let moving = members(&[("node2", "3.6.15"), ("node3", "3.5.34")]);
        assert_eq!(upgrade_refusal(v("3.6.15"), v("3.5.0"), &moving), None);
        // 3.6 -> 3.7: every member on 3.6.11 first.
        let (problem, _) =
            upgrade_refusal(v("3.7.2"), v("3.6.0"), &members(&[("node2", "3.6.10")])).unwrap();
        assert!(
            problem.contains("3.6.11") && problem.contains("node2 runs 3.6.10"),
            "{problem}"
        );
        assert_eq!(
            upgrade_refusal(v("3.7.2"), v("3.6.0"), &members(&[("node2", "3.6.11")])),
            None
        );
        // Patches within a series are free; 3.4 -> 3.5 has no minimum.
        assert_eq!(
            upgrade_refusal(v("3.5.34"), v("3.5.0"), &members(&[("n", "3.5.1")])),
            None
        );
        assert_eq!(
            upgrade_refusal(v("3.5.34"), v("3.4.0"), &members(&[("n", "3.4.1")])),
            None
        );
    }

    #[test]
    fn upgrades_go_one_minor_version_at_a_time_and_never_back() {
        let v = |s: &str| Version::parse(s).unwrap();
        let upgrade_refusal = |binary, cluster| super::upgrade_refusal(binary, cluster, &[]);
        // Rolling 3.4 -> 3.5: the cluster stays at 3.4 until every member runs 3.5.
        assert_eq!(upgrade_refusal(v("3.4.23"), v("3.4.0")), None);
        assert_eq!(upgrade_refusal(v("3.5.30"), v("3.4.0")), None);
        assert_eq!(upgrade_refusal(v("3.5.16"), v("3.5.0")), None);
        assert_eq!(upgrade_refusal(v("3.6.4"), v("3.5.0")), None);
        let (older, fix) = upgrade_refusal(v("3.4.23"), v("3.5.0")).unwrap();
        assert!(
            older.contains("older than the cluster's version 3.5"),
            "{older}"
        );
        assert!(fix.contains("etcd 3.5 or later"), "{fix}");
        let (skip, fix) = upgrade_refusal(v("3.6.4"), v("3.4.0")).unwrap();
        assert!(skip.contains("one minor version at a time"), "{skip}");
        assert!(fix.contains("every member to etcd 3.5"), "{fix}");
        assert!(upgrade_refusal(v("4.0.0"), v("3.6.0")).is_some());
        // 3.0 is etcd's cluster version until every member has been seen: no refusal.
        assert_eq!(upgrade_refusal(v("3.5.30"), v("3.0.0")), None);
        assert_eq!(upgrade_refusal(v("3.6.4"), v("3.0.0")), None);
    }
}
