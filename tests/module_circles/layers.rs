//! The floor plan cargo enforces (issue 49): each crate of the workspace depends only on
//! what its layer allows, read from `cargo metadata`; and inside each crate, the top-level
//! modules fold into no circle of more than three (cargo forbids circles between crates,
//! not between modules of one crate).
//!
//! The layers, bottom up (each may use those below it, never one above):
//! `zone-io` → `zone-pki` → `zone-model` → `zone-etcd-kit` → `zone-backup` → `zone-node`
//! → `zone-agent` → `zone-etcd` (the app) → the tools (`zone-etcd-bench`; `zone-recorder`
//! and `zone-consistency` stand apart).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Each workspace crate: the crates it may depend on (normal and build dependencies), and
/// what it is, for the line that refuses a new dependency.
const LAYERS: &[(&str, &[&str], &str)] = &[
    (
        "zone-io",
        &["ring", "tempfile", "nix"],
        "the house error and generic file I/O: no zone-etcd crate, no network",
    ),
    (
        "zone-pki",
        &[
            "zone-io",
            "rcgen",
            "rustls-pki-types",
            "x509-parser",
            "time",
            "ring",
            "pem",
        ],
        "certificates and keys: no network, no etcd, no zone files",
    ),
    (
        "zone-model",
        &[
            "zone-io",
            "zone-pki",
            "ring",
            "time",
            "serde",
            "serde_json",
            "toml",
            // Names the keys a file holds that this release does not know (a serde
            // wrapper: no I/O, nothing else).
            "serde_ignored",
            "base64",
        ],
        "what a zone is, pure: never the network or etcd (tokio, etcd-client, tonic, \
         ureq, rustls), never the backup storage (age, rusty-s3), never zone-etcd-kit, \
         zone-backup or the app",
    ),
    (
        "zone-etcd-kit",
        &[
            "zone-io",
            "zone-pki",
            "zone-model",
            // SHA-256 of a snapshot as it streams (etcd's integrity hash).
            "ring",
            "serde",
            "serde_json",
            "which",
            "rustls",
            "etcd-client",
            "tokio",
            "tonic",
            "prost",
            "tracing",
        ],
        "what zone-etcd knows of etcd: never the app, the keepers or the backup family \
         (zone-backup, age, rusty-s3, ureq), never the command line (clap)",
    ),
    (
        "zone-backup",
        &[
            "zone-io",
            "zone-pki",
            "zone-model",
            "zone-etcd-kit",
            "ring",
            "time",
            "tempfile",
            "nix",
            "serde",
            "serde_json",
            "base64",
            "tracing",
            // The writer's watch and election, the scratch etcd.
            "etcd-client",
            "tokio",
            // The storage: age to the owner's recipients, S3 requests signed by rusty-s3
            // and sent by ureq over rustls, their Content-MD5, gzip'd delta segments.
            "age",
            "rusty-s3",
            "ureq",
            "rustls",
            "md-5",
            "flate2",
        ],
        "the backup family: never the app (what it needs of a node comes as plain \
         inputs), never the command line (clap)",
    ),
    (
        "zone-node",
        &[
            "zone-io",
            "zone-pki",
            "zone-model",
            "zone-etcd-kit",
            "zone-backup",
            "ring",
            "time",
            "tempfile",
            "nix",
            "serde",
            "serde_json",
            "toml",
            "base64",
            "tracing",
            // The identity endpoint's clients, the nameservice and the first start's
            // beacon: HTTPS and TLS with a zone's own CA.
            "ureq",
            "rustls",
            // The cluster API, async where it talks to etcd.
            "etcd-client",
            "tokio",
        ],
        "the pieces of a node the commands and the keepers share: never the keepers \
         (zone-agent) or the app, never the command line (clap)",
    ),
    (
        "zone-agent",
        &[
            "zone-io",
            "zone-pki",
            "zone-model",
            "zone-etcd-kit",
            "zone-backup",
            "zone-node",
            "time",
            "nix",
            "serde_json",
            "tracing",
            // Its own etcd's metrics (loopback HTTP).
            "ureq",
            // The duties' loop and their one connection to their member.
            "etcd-client",
            "tokio",
        ],
        "the keepers beside etcd: never the app (its commands start them and parse \
         their flags), never the command line (clap)",
    ),
    ("zone-etcd", ANY_BUT_TOOLS, "the app: never a tool crate"),
    ("zone-etcd-bench", ANY, "the benchmark program"),
    ("zone-recorder", ANY, "the history recorder"),
    (
        "zone-testkit",
        ANY,
        "the harness the tests, the recorder and the bench share",
    ),
    ("zone-consistency", ANY, "the history checker"),
    (
        "zone-slowfs",
        &["fuser", "libc", "nix"],
        "the tests' slow disk (a FUSE passthrough): no zone-etcd crate",
    ),
];

/// The app may use any crate but the workspace's tools.
const ANY_BUT_TOOLS: &[&str] = &[
    "*",
    "!zone-etcd-bench",
    "!zone-recorder",
    "!zone-consistency",
    "!zone-testkit",
    "!zone-slowfs",
];
const ANY: &[&str] = &["*"];

fn allowed(rule: &[&str], dependency: &str) -> bool {
    if rule.contains(&format!("!{dependency}").as_str()) {
        return false;
    }
    rule.contains(&"*") || rule.contains(&dependency)
}

/// Each workspace package's normal and build dependencies, from `cargo metadata`.
fn dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let mut found = BTreeMap::new();
    for package in metadata["packages"].as_array().expect("packages") {
        let name = package["name"].as_str().expect("name").to_string();
        let deps = package["dependencies"]
            .as_array()
            .expect("dependencies")
            .iter()
            .filter(|d| d["kind"].as_str() != Some("dev"))
            .map(|d| d["name"].as_str().expect("dependency name").to_string())
            .collect();
        found.insert(name, deps);
    }
    found
}

/// The crates that break their layer: one line each, naming the dependency and the rule.
fn layer_breaches(found: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let rules: HashMap<&str, (&[&str], &str)> = LAYERS
        .iter()
        .map(|(n, r, what)| (*n, (*r, *what)))
        .collect();
    let mut breaches = Vec::new();
    for (package, deps) in found {
        let Some((rule, what)) = rules.get(package.as_str()) else {
            breaches.push(format!(
                "{package} is in no layer: add it to LAYERS in tests/module_circles/layers.rs \
                 with the crates it may use"
            ));
            continue;
        };
        for dep in deps {
            if !allowed(rule, dep) {
                breaches.push(format!(
                    "{package} depends on {dep}, outside its layer ({what}); move the code \
                     that needs it to a crate above"
                ));
            }
        }
    }
    breaches
}

#[test]
fn each_crate_depends_only_on_its_layer() {
    let found = dependencies();
    // The reading sees what it must: the app's dependency on the model.
    assert!(
        found
            .get("zone-etcd")
            .is_some_and(|d| d.contains("zone-model")),
        "cargo metadata no longer shows zone-etcd on zone-model: {found:?}"
    );
    let breaches = layer_breaches(&found);
    assert!(breaches.is_empty(), "{}", breaches.join("\n"));
}

#[test]
fn a_forbidden_dependency_is_refused() {
    let mut found = dependencies();
    found
        .get_mut("zone-model")
        .expect("zone-model")
        .insert("tokio".into());
    found
        .get_mut("zone-etcd-kit")
        .expect("zone-etcd-kit")
        .insert("zone-etcd".into());
    found
        .get_mut("zone-backup")
        .expect("zone-backup")
        .insert("zone-etcd".into());
    found
        .get_mut("zone-node")
        .expect("zone-node")
        .insert("zone-agent".into());
    found
        .get_mut("zone-agent")
        .expect("zone-agent")
        .insert("clap".into());
    found.insert("zone-new".into(), BTreeSet::new());
    let breaches = layer_breaches(&found);
    assert_eq!(breaches.len(), 6, "{breaches:?}");
    assert!(breaches[0].contains("zone-agent depends on clap"));
    assert!(breaches[1].contains("zone-backup depends on zone-etcd"));
    assert!(breaches[2].contains("zone-etcd-kit depends on zone-etcd"));
    assert!(breaches[3].contains("zone-model depends on tokio"));
    assert!(breaches[4].contains("zone-new is in no layer"));
    assert!(breaches[5].contains("zone-node depends on zone-agent"));
}

/// The most top-level modules of one crate that may fold into one circle.
const MOST_IN_A_CIRCLE: usize = 3;

/// A file's crate directory and top-level module (`src/commands/launch/mod.rs` is
/// `commands` of the app, `model/src/config/zone.rs` is `config` of zone-model,
/// `backup/src/runner/ship.rs` is `runner` of zone-backup); `None` for a crate root.
pub fn top_module(file: &Path) -> Option<(PathBuf, String)> {
    let parts: Vec<&str> = file.iter().filter_map(|p| p.to_str()).collect();
    let src = parts.iter().position(|p| *p == "src")?;
    let first = parts.get(src + 1)?;
    if matches!(*first, "lib.rs" | "main.rs") {
        return None;
    }
    let krate: PathBuf = parts[..src].iter().collect();
    Some((krate, first.trim_end_matches(".rs").to_string()))
}

/// The circles of more than [`MOST_IN_A_CIRCLE`] top-level modules, from file edges.
pub fn module_circles(
    edges: &BTreeMap<PathBuf, BTreeMap<PathBuf, BTreeSet<String>>>,
) -> Vec<Vec<PathBuf>> {
    let mut modules: BTreeMap<PathBuf, BTreeMap<PathBuf, BTreeSet<String>>> = BTreeMap::new();
    for (from, targets) in edges {
        let Some((krate, a)) = top_module(from) else {
            continue;
        };
        for (to, paths) in targets {
            let Some((krate_b, b)) = top_module(to) else {
                continue;
            };
            if krate == krate_b && a != b {
                modules
                    .entry(krate.join(&a))
                    .or_default()
                    .entry(krate.join(&b))
                    .or_default()
                    .extend(paths.iter().cloned());
            }
        }
    }
    super::circles(&modules)
        .into_iter()
        .filter(|c| c.len() > MOST_IN_A_CIRCLE)
        .collect()
}

#[test]
fn no_crate_folds_more_than_three_top_level_modules_into_a_circle() {
    let edges = super::edges();
    let found = module_circles(&edges);
    let report: Vec<String> = found
        .iter()
        .map(|c| {
            let names: Vec<String> = c.iter().map(|p| p.display().to_string()).collect();
            format!("circle of {}: {}", c.len(), names.join(" "))
        })
        .collect();
    assert!(
        found.is_empty(),
        "top-level modules that import each other round (cut the circle: move the shared \
         piece to a module or crate below all of them):\n{}",
        report.join("\n")
    );
}

#[test]
fn a_circle_of_four_modules_is_found() {
    let edge = |a: &str, b: &str| (PathBuf::from(a), PathBuf::from(b));
    let mut edges: BTreeMap<PathBuf, BTreeMap<PathBuf, BTreeSet<String>>> = BTreeMap::new();
    for (a, b) in [
        edge("src/a.rs", "src/b/x.rs"),
        edge("src/b/y.rs", "src/c.rs"),
        edge("src/c.rs", "src/d/mod.rs"),
        edge("src/d/mod.rs", "src/a.rs"),
        // Another crate's module of the same name is another module.
        edge("model/src/a.rs", "model/src/b.rs"),
    ] {
        edges.entry(a).or_default().insert(b, BTreeSet::new());
    }
    let found = module_circles(&edges);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].len(), 4);
    edges.remove(Path::new("src/d/mod.rs"));
    assert!(module_circles(&edges).is_empty());
}
