//! The known vulnerabilities of etcd releases: which release has which, and the release
//! that fixes it, for `launch`, `status` and `check` to name.
//!
//! Pure: the table is data, unit-tested version by version. Invariants: every advisory
//! lists the first fixed patch of each series that got the fix, oldest series first; a
//! series older than every listed one (3.4, end-of-life) has every advisory, one newer
//! has none; a line names the advisory, what it does, and the release to move to.

use super::release::Version;

/// The last release of etcd 3.4, which reached its end of life with it: no fix reaches 3.4
/// after it.
pub const LAST_3_4: Version = Version::new(3, 4, 45);

/// A known vulnerability of etcd releases, and the first patch of each minor series that
/// fixes it (a series not listed never got the fix: 3.4 is end-of-life).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advisory {
    /// The advisory's name (GitHub's GHSA, or etcd's pull request when there is none).
    pub id: &'static str,
    pub what: &'static str,
    pub fixed_in: &'static [Version],
}

const JULY_2026_FIXES: &[Version] = &[
    Version::new(3, 5, 33),
    Version::new(3, 6, 14),
    Version::new(3, 7, 1),
];

/// The vulnerabilities the table knows of, in the order `status` lists them.
pub const ADVISORIES: &[Advisory] = &[
    Advisory {
        id: "GHSA-6vch-q96h-7gc3",
        what: "TLS handshakes without a deadline exhaust goroutines and memory on both ports",
        fixed_in: JULY_2026_FIXES,
    },
    Advisory {
        id: "GHSA-xg4h-6gfc-h4m8",
        what: "a watch leaks keys past a read grant once auth is on",
        fixed_in: JULY_2026_FIXES,
    },
    Advisory {
        id: "etcd-io/etcd#22132",
        what: "an unbounded read of the peer lease handler's request body",
        fixed_in: JULY_2026_FIXES,
    },
    Advisory {
        id: "GHSA-hrxh-6v49-42gf",
        what: "gRPC-Go's HTTP/2 flaws, in etcd's gRPC server",
        fixed_in: JULY_2026_FIXES,
    },
    Advisory {
        id: "GHSA-q8m4-xhhv-38mg",
        what: "an authorization bypass once auth is on",
        fixed_in: &[
            Version::new(3, 5, 28),
            Version::new(3, 6, 9),
            Version::new(3, 7, 0),
        ],
    },
    Advisory {
        id: "GHSA-rfx7-8w68-q57q",
        what: "an authorization bypass once auth is on",
        fixed_in: &[
            Version::new(3, 5, 28),
            Version::new(3, 6, 9),
            Version::new(3, 7, 0),
        ],
    },
    // Open for 3.5 (the pull request is not merged): its alarm handler builds the
    // appliers without the auth applier.
    Advisory {
        id: "etcd-io/etcd#22386",
        what: "while the NOSPACE alarm is raised, a client with any write grant can turn auth off and delete outside its grant",
        fixed_in: &[Version::new(3, 6, 0), Version::new(3, 7, 0)],
    },
];

impl Advisory {
    /// The release of `version`'s series that fixes this, or `None` when that series never
    /// got a fix (then the fix is the next series that has one).
    pub fn fix_for(&self, version: Version) -> Option<Version> {
        self.fixed_in
            .iter()
            .copied()
            .find(|fixed| fixed.series() == version.series())
    }

    /// Whether `version` has this vulnerability: older than its series' fix, or of an older
    /// series than any fix (3.4). A series newer than every listed one has it fixed.
    pub fn affects(&self, version: Version) -> bool {
        match self.fix_for(version) {
            Some(fixed) => version < fixed,
            None => self
                .fixed_in
                .iter()
                .all(|fixed| version.series() < fixed.series()),
        }
    }
}

/// What `status`, `check` and `launch` say of a release's known vulnerabilities: one line
/// for an end-of-life 3.4, one per advisory it has, each naming the release that fixes it.
pub fn security_warnings(version: Version) -> Vec<String> {
    let mut lines = Vec::new();
    if version.series() == (3, 4) {
        lines.push(format!(
            "etcd {version} is end-of-life: etcd 3.4 gets no more fixes ({LAST_3_4} was its last release); move the zone to etcd 3.5.34 or later, one minor version at a time"
        ));
    }
    for advisory in ADVISORIES.iter().filter(|a| a.affects(version)) {
        let fix = match advisory.fix_for(version) {
            Some(fixed) => format!("fixed in etcd {fixed}"),
            None => format!(
                "fixed in etcd {} and later (none for {}.{})",
                advisory.fixed_in[0], version.major, version.minor
            ),
        };
        lines.push(format!(
            "etcd {version} has {} ({}): {fix}",
            advisory.id, advisory.what
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vulnerabilities_name_the_release_that_fixes_them() {
        let lines = |v: &str| security_warnings(Version::parse(v).unwrap());
        // The bundle before 3.6: four advisories fixed in 3.5.33, and NOSPACE's auth gap,
        // which no 3.5 fixes.
        let old = lines("3.5.30");
        assert_eq!(old.len(), 5, "{old:?}");
        assert!(
            old[..4].iter().all(|l| l.contains("fixed in etcd 3.5.33")),
            "{old:?}"
        );
        assert!(old[0].contains("GHSA-6vch-q96h-7gc3"), "{old:?}");
        assert_eq!(old[4], "etcd 3.5.30 has etcd-io/etcd#22386 (while the NOSPACE alarm is raised, a client with any write grant can turn auth off and delete outside its grant): fixed in etcd 3.6.0 and later (none for 3.5)");
        // Older: the auth bypasses too, fixed in 3.5.28.
        let older = lines("3.5.27");
        assert_eq!(older.len(), 7, "{older:?}");
        assert!(older[4].contains("GHSA-q8m4-xhhv-38mg") && older[4].contains("3.5.28"));
        // The last 3.5 (the step of every 3.5 zone to 3.6) has the NOSPACE gap alone.
        for latest in ["3.5.33", "3.5.34"] {
            assert_eq!(lines(latest).len(), 1, "{latest}: {:?}", lines(latest));
            assert!(lines(latest)[0].contains("etcd-io/etcd#22386"));
        }
        assert_eq!(lines("3.6.13").len(), 4);
        assert!(lines("3.6.13")[0].contains("fixed in etcd 3.6.14"));
        assert_eq!(lines("3.6.8").len(), 6);
        assert!(lines("3.7.0")[0].contains("fixed in etcd 3.7.1"));
        for clean in ["3.6.14", "3.6.15", "3.7.1", "3.7.2", "3.8.0"] {
            assert!(lines(clean).is_empty(), "{clean}: {:?}", lines(clean));
        }
        // 3.4 is end-of-life: said first, and every advisory points past 3.4.
        let eol = lines("3.4.45");
        assert!(
            eol[0].contains("end-of-life") && eol[0].contains("3.4.45"),
            "{eol:?}"
        );
        assert_eq!(eol.len(), 1 + ADVISORIES.len(), "{eol:?}");
        assert!(
            eol[1].contains("fixed in etcd 3.5.33 and later (none for 3.4)"),
            "{eol:?}"
        );
    }
}
