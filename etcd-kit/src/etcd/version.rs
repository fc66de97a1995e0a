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

use super::release::Version;

/// The oldest etcd the launcher runs: 3.4 brought `--peer-cert-allowed-hostname`, without
/// which the peer port would accept any certificate of the zone, a client's too.
pub const OLDEST_SUPPORTED: Version = Version::new(3, 4, 0);
/// The newest minor series whose flags the table knows; later 3.x runs with its flags.
pub const NEWEST_KNOWN: (u32, u32) = (3, 7);

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

/// How a release is told to check its data against its peers': before serving (the
/// initial check), and, where the release has it, after each compaction (the compaction
/// hash check: the leader compares the members' hashes of the compacted revisions and
/// raises the CORRUPT alarm on a mismatch). Both are off by default in every release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorruptCheck {
    /// `--experimental-initial-corrupt-check=true` (3.4, and 3.5 before 3.5.5).
    ExperimentalFlag,
    /// That, and `--experimental-compact-hash-check-enabled=true` (3.5.5 and later 3.5).
    ExperimentalFlags,
    /// `--feature-gates=InitialCorruptCheck=true,CompactHashCheck=true` (3.6 renamed its
    /// experimental flags; 3.7 exits on them).
    FeatureGate,
}

impl CorruptCheck {
    /// The (flag, value) pairs for etcd's command line.
    pub fn flags(self) -> Vec<(&'static str, String)> {
        let initial = ("experimental-initial-corrupt-check", "true".to_string());
        match self {
            CorruptCheck::ExperimentalFlag => vec![initial],
            CorruptCheck::ExperimentalFlags => vec![
                initial,
                ("experimental-compact-hash-check-enabled", "true".into()),
            ],
            CorruptCheck::FeatureGate => vec![(
                "feature-gates",
                "InitialCorruptCheck=true,CompactHashCheck=true".into(),
            )],
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
    } else if version >= v(3, 5, 5) {
        CorruptCheck::ExperimentalFlags
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
#[cfg(test)]
mod tests {
    use super::*;
    use crate::etcd::release::from_version_output;

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
            table("3.5.4").unwrap().corrupt_check,
            CorruptCheck::ExperimentalFlag
        );
        assert_eq!(
            table("3.5.5").unwrap().corrupt_check,
            CorruptCheck::ExperimentalFlags
        );
        assert_eq!(
            table("3.5.30").unwrap().corrupt_check,
            CorruptCheck::ExperimentalFlags
        );
        assert_eq!(
            CorruptCheck::FeatureGate.flags(),
            [(
                "feature-gates",
                "InitialCorruptCheck=true,CompactHashCheck=true".to_string()
            )]
        );
        assert_eq!(CorruptCheck::ExperimentalFlags.flags().len(), 2);
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
        for clean in ["3.6.14", "3.6.15", "3.7.1", "3.7.2"] {
            assert!(table(clean).unwrap().warnings.is_empty(), "{clean}");
        }
        // The last 3.5: only NOSPACE's auth gap, which no 3.5 fixes.
        let last = table("3.5.34").unwrap().warnings;
        assert!(
            last.len() == 1 && last[0].contains("etcd-io/etcd#22386"),
            "{last:?}"
        );
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
}
