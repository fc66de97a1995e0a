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
//!   minor version (etcd upgrades one minor version at a time).

use std::fmt;

/// An etcd release, as `etcd --version` prints it (`etcd Version: 3.5.30`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl Version {
    pub const fn new(major: u32, minor: u32, patch: u32) -> Version {
        Version {
            major,
            minor,
            patch,
        }
    }

    /// `3.5.30`, `3.5.30-rc.0` or `3.5` (a cluster version): the numbers in front; a missing
    /// patch reads as 0, anything after a `-` or `+` is ignored.
    pub fn parse(text: &str) -> Option<Version> {
        let core = text.trim().split(['-', '+']).next()?;
        let mut parts = core.split('.');
        let number = |part: Option<&str>| -> Option<u32> {
            let part = part?;
            (!part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
                .then(|| part.parse().ok())
                .flatten()
        };
        let major = number(parts.next())?;
        let minor = number(parts.next())?;
        let patch = match parts.next() {
            None => 0,
            some => number(some)?,
        };
        parts
            .next()
            .is_none()
            .then_some(Version::new(major, minor, patch))
    }

    /// The minor series (`3.5`), what etcd's cluster version counts in.
    pub fn series(self) -> (u32, u32) {
        (self.major, self.minor)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The oldest etcd the launcher runs: 3.4 brought `--peer-cert-allowed-hostname`, without
/// which the peer port would accept any certificate of the zone, a client's too.
pub const OLDEST_SUPPORTED: Version = Version::new(3, 4, 0);
/// The newest minor series whose flags the table knows; later 3.x runs with its flags.
pub const NEWEST_KNOWN: (u32, u32) = (3, 6);

/// Reads the version from `etcd --version` output: the line `etcd Version: X.Y.Z`.
pub fn from_version_output(output: &str) -> Option<Version> {
    output
        .lines()
        .find_map(|line| line.trim().strip_prefix("etcd Version:"))
        .and_then(Version::parse)
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
            "etcd {version} records a learner's promotion only in its v2 store (etcd #19557): a zone that grew by join may fail a later upgrade to 3.6 (\"too many learner member\"); upgrade every member to etcd 3.5.20 or later (scripts/fetch-etcd.sh bundles 3.5.30) before the next join or any upgrade to 3.6"
        ));
    }
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
/// version: the lowest minor series of its members), if it must not, with the fix. etcd
/// would stop such a member with a fatal error of its own; this says what to do instead.
pub fn upgrade_refusal(binary: Version, cluster: Version) -> Option<(String, String)> {
    let (have, want) = (binary.series(), cluster.series());
    if !cluster_version_decided(cluster) {
        return None;
    }
    if have < want {
        return Some((
            format!(
                "this node's etcd is {binary}, older than the cluster's version {}.{} (etcd never downgrades a running cluster)",
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
    None
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
                .any(|w| w.contains("#19557") && w.contains("3.5.20"))
        };
        for affected in ["3.5.1", "3.5.16", "3.5.19"] {
            assert!(warned(affected), "{affected}");
        }
        for fine in ["3.4.23", "3.4.25", "3.5.0", "3.5.20", "3.5.30", "3.6.4"] {
            assert!(!warned(fine), "{fine}");
            assert!(table(fine).unwrap().warnings.is_empty(), "{fine}");
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
        // A later 3.x runs with the newest known flags, and says so.
        let later = table("3.7.1").unwrap();
        assert_eq!(later.tls, TlsFloor::Tls13Only);
        assert!(later.warnings[0].contains("newer"), "{:?}", later.warnings);
    }

    #[test]
    fn upgrades_go_one_minor_version_at_a_time_and_never_back() {
        let v = |s: &str| Version::parse(s).unwrap();
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
