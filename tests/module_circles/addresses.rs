//! The test addresses' registry (issue 49): every loopback block (127.0.X.0/24) and
//! network-namespace block (198.18.X.0/24, 198.19.X.0/24) that a test, the recorder or
//! the benchmark program names, with its one owner. A new test takes a free block here;
//! the check refuses a block named outside its owner, or by nobody registered, so tests
//! that run at once (test.sh runs chains beside the main run) never meet on an address.
//!
//! The owner is a test module (`tests/zone/pitr` for tests/zone/pitr.rs and tests/zone/pitr/),
//! the shared harness (`tests/zone/common`), the bad-input corpus and golden files
//! (`tests/corpus`, `tests/data`: addresses written into files, never dialled), or a
//! tool's sources (`recorder`, `bench`). zone-testkit's fixtures are not scanned: they
//! listen only where their user tells them (its SeaweedFS on the caller's address).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The blocks one owner names.
const BLOCKS: &[(&str, &str)] = &[
    ("127.0.10", "tests/zone/zone_cluster"),
    ("127.0.11", "tests/zone/zone_cluster"),
    ("127.0.13", "tests/zone/zone_cluster"),
    ("127.0.14", "tests/zone/zone_cluster"),
    ("127.0.24", "tests/zone/bad_input"),
    ("127.0.40", "tests/zone/nameservice"),
    ("127.0.41", "tests/zone/nameservice"),
    ("127.0.42", "tests/zone/rotation"),
    ("127.0.43", "tests/zone/revocation"),
    ("127.0.44", "tests/zone/rotation"),
    ("127.0.45", "tests/zone/check"),
    ("127.0.47", "tests/zone/ca_rotation"),
    ("127.0.48", "tests/zone/external"),
    ("127.0.50", "tests/zone/releases"),
    ("127.0.51", "tests/zone/membership"),
    ("127.0.53", "tests/zone/membership"),
    ("127.0.68", "bench"),
    ("127.0.69", "bench"),
    ("127.0.70", "tests/zone/faults"),
    ("127.0.71", "tests/zone/faults"),
    ("127.0.72", "tests/zone/faults"),
    ("127.0.73", "bench"),
    ("127.0.74", "bench"),
    ("127.0.76", "tests/zone/nospace"),
    ("127.0.77", "bench"),
    ("127.0.78", "tests/zone/nospace"),
    ("127.0.79", "tests/zone/nospace"),
    ("127.0.80", "bench"),
    ("127.0.81", "bench"),
    ("127.0.82", "bench"),
    ("127.0.83", "tests/zone/moves"),
    ("127.0.85", "tests/zone/recovery"),
    ("127.0.86", "tests/zone/snapshot"),
    ("127.0.87", "tests/zone/compaction"),
    ("127.0.88", "tests/zone/maintain"),
    ("127.0.89", "tests/zone/settings"),
    ("127.0.91", "tests/zone/versions"),
    ("127.0.92", "tests/zone/versions"),
    ("127.0.93", "tests/zone/versions"),
    ("127.0.94", "tests/zone/bootstrap_once"),
    ("127.0.95", "tests/zone/bootstrap_once"),
    ("127.0.101", "tests/zone/backup"),
    ("127.0.106", "tests/zone/backup"),
    ("127.0.108", "tests/zone/pitr"),
    ("127.0.109", "tests/zone/pitr"),
    ("127.0.110", "tests/zone/undo"),
    ("127.0.111", "tests/zone/undo"),
    ("127.0.112", "tests/zone/backup"),
    ("127.0.113", "tests/zone/backup"),
    ("127.0.114", "tests/zone/undo_chain"),
    ("127.0.115", "tests/zone/activate_request"),
    ("127.0.116", "tests/zone/activate_request"),
    ("127.0.126", "tests/zone/revocation"),
    ("127.0.130", "tests/zone/zone_cluster"),
    ("127.0.131", "tests/zone/zone_cluster"),
    ("127.0.132", "tests/zone/zone_cluster"),
    ("127.0.133", "tests/zone/zone_cluster"),
    ("127.0.145", "tests/zone/check_metrics"),
    ("127.0.160", "tests/zone/relaunch"),
    ("127.0.161", "tests/zone/relaunch"),
    ("127.0.170", "tests/zone/least_privilege"),
    ("127.0.171", "tests/zone/least_privilege"),
    ("127.0.172", "tests/zone/consistency_scenarios"),
    ("127.0.173", "tests/zone/least_privilege"),
    ("127.0.176", "tests/zone/gateway"),
    ("127.0.177", "tests/zone/patroni"),
    ("127.0.178", "tests/zone/ca_rotation"),
    ("127.0.181", "bench"),
    ("127.0.182", "bench"),
    ("127.0.201", "tests/zone/versions"),
    ("127.0.202", "tests/zone/versions"),
    ("127.0.203", "tests/zone/consistency_scenarios"),
    ("127.0.204", "tests/zone/upgrade_etcd"),
    ("127.0.205", "tests/zone/access"),
    ("127.0.210", "tests/zone/alerts"),
    ("127.0.212", "tests/zone/alerts"),
    ("127.0.221", "tests/zone/identity_endpoint"),
    ("127.0.230", "tests/zone/guide"),
    ("127.0.232", "tests/zone/guide"),
    ("127.0.240", "bench"),
    ("127.0.241", "bench"),
    ("127.0.242", "bench"),
    ("127.0.243", "bench"),
    ("198.18.7", "tests/zone/machines"),
    ("198.18.9", "tests/zone/machines"),
    ("198.18.11", "tests/zone/cyfs"),
    ("198.18.64", "tests/zone/arm64"),
    ("198.19.9", "tests/zone/machines"),
    ("198.19.115", "tests/zone/consistency_scenarios"),
    ("198.19.116", "tests/zone/consistency_scenarios"),
];

/// The blocks several owners name by design, with what keeps them apart.
const SHARED: &[(&str, &[&str], &str)] = &[
    (
        "127.0.0",
        &[
            "bench",
            "tests/zone/alerts",
            "tests/zone/bad_input",
            "tests/zone/common",
            "tests/corpus",
            "tests/zone/cyfs",
            "tests/data",
            "tests/zone/demo",
            "tests/zone/external",
            "tests/zone/machines",
            "tests/zone/membership",
            "tests/zone/systemd",
        ],
        "localhost: each user names its own ports (the demo owns 2379/2380)",
    ),
    (
        "127.0.60",
        &["tests/corpus", "tests/zone/corpus", "tests/zone/security"],
        "the corpus only names addresses there; only tests/zone/security listens",
    ),
    (
        "127.0.96",
        &["tests/zone/common", "tests/zone/backup_targets"],
        "SeaweedFS fixtures (tests/zone/common/seaweed.rs): one address per test",
    ),
    (
        "127.0.97",
        &[
            "tests/zone/alerts",
            "tests/zone/backup",
            "tests/zone/common",
            "tests/zone/pitr",
            "tests/zone/undo_chain",
        ],
        "SeaweedFS fixtures (tests/zone/common/seaweed.rs): one address per test",
    ),
    (
        "198.18.0",
        &[
            "tests/zone/common",
            "tests/zone/guide",
            "tests/zone/quickstart",
        ],
        "inside each test's own network namespaces; the guide only writes them into files",
    ),
];

/// Who names a path's addresses: its test binary, the harness, a fixture or a tool.
fn owner(path: &Path) -> String {
    let parts: Vec<&str> = path.iter().filter_map(|p| p.to_str()).collect();
    match parts.as_slice() {
        ["tests", "zone", file] => format!("tests/zone/{}", file.trim_end_matches(".rs")),
        ["tests", "zone", dir, ..] => format!("tests/zone/{dir}"),
        ["tests", dir, ..] => format!("tests/{dir}"),
        [tool, ..] => tool.to_string(),
        [] => String::new(),
    }
}

/// The blocks `text` names: `127.0.X` and `198.18.X`/`198.19.X`.
fn blocks_in(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for prefix in ["127.0.", "198.18.", "198.19."] {
        for (at, _) in text.match_indices(prefix) {
            let before = text[..at].chars().next_back();
            if before.is_some_and(|c| c.is_ascii_digit() || c == '.') {
                continue;
            }
            let rest = &text[at + prefix.len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if !digits.is_empty() && rest[digits.len()..].starts_with('.') {
                found.insert(format!("{prefix}{digits}"));
            }
        }
    }
    found
}

/// Every block named under the scanned directories, with who names it.
fn named() -> BTreeMap<String, BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack: Vec<_> = ["tests", "recorder/src", "bench/src"]
        .iter()
        .map(|d| root.join(d))
        .collect();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read a test directory") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                // The registry and its own examples name every block.
                if !path.ends_with("tests/module_circles") {
                    stack.push(path);
                }
                continue;
            }
            // Binary fixtures (snapshots, archives) name no address a test dials.
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let relative = path.strip_prefix(root).expect("under the workspace");
            for block in blocks_in(&text) {
                found.entry(block).or_default().insert(owner(relative));
            }
        }
    }
    found
}

/// What breaks the registry: one line each.
fn breaches(named: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut owners: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut lines = Vec::new();
    let registered = BLOCKS
        .iter()
        .map(|(b, o)| (*b, vec![*o]))
        .chain(SHARED.iter().map(|(b, o, _)| (*b, o.to_vec())));
    for (block, by) in registered {
        if owners.insert(block, by.into_iter().collect()).is_some() {
            lines.push(format!("{block} is registered twice"));
        }
    }
    for (block, users) in named {
        let Some(allowed) = owners.get(block.as_str()) else {
            lines.push(format!(
                "{block}.0/24 is named by {} but registered to nobody: add it to BLOCKS in \
                 tests/module_circles/addresses.rs (a free block)",
                users.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
            continue;
        };
        for user in users {
            if !allowed.contains(user.as_str()) {
                lines.push(format!(
                    "{block}.0/24 belongs to {}, but {user} names it too: take a free block",
                    allowed.iter().copied().collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }
    for block in owners.keys() {
        if !named.contains_key(*block) {
            lines.push(format!(
                "{block} is registered but named nowhere: remove it from the registry"
            ));
        }
    }
    lines
}

#[test]
fn every_test_address_block_has_one_registered_owner() {
    let named = named();
    // The scan sees what it must: pitr's SeaweedFS address and zone_cluster's blocks.
    assert!(
        named
            .get("127.0.97")
            .is_some_and(|o| o.contains("tests/zone/pitr")),
        "the scan no longer sees tests/zone/pitr.rs name 127.0.97.x"
    );
    let lines = breaches(&named);
    assert!(lines.is_empty(), "{}", lines.join("\n"));
}

#[test]
fn a_block_named_outside_its_owner_or_unregistered_is_refused() {
    let mut named = named();
    named
        .entry("127.0.10".into())
        .or_default()
        .insert("tests/zone/pitr".into());
    named
        .entry("127.0.254".into())
        .or_default()
        .insert("tests/new".into());
    let lines = breaches(&named);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].contains("127.0.10.0/24 belongs to tests/zone/zone_cluster, but tests/zone/pitr")
    );
    assert!(lines[1].contains("127.0.254.0/24 is named by tests/new but registered to nobody"));
    assert_eq!(
        blocks_in("https://127.0.5.1:2379 10.127.0.9.1 198.18.3.2 127.0.x"),
        ["127.0.5", "198.18.3"].map(String::from).into()
    );
}
