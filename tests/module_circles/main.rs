//! No import circle between files, in any crate of the workspace (issue 33): a file
//! that names an item of another file (through `use crate::…`, `super::…`, `self::…`,
//! or a path in code) while that file, directly or through others, names an item of the
//! first.
//!
//! The reading is the compiler's, approximately: the module tree from each crate root
//! (`mod x;`, `#[path]`, inline `mod x { … }`), each module's items and imports, and
//! re-exports followed to the file that defines the item. `mod x;` itself is no use of
//! `x`, and neither is naming a module (only its items count). Method calls are not
//! paths, so an `impl` of one file's type in another is not seen. Nothing is compiled;
//! the test reads the sources only. The crates' layers and the circles of top-level
//! modules are [`layers`]'.

mod addresses;
mod commands;
mod layers;
mod layout;
mod tokens;
mod tree;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use tokens::{tokenize, Tok};
use tree::{use_tree, Tree};

/// Each crate's roots, relative to the workspace.
const CRATES: &[(&str, &[&str])] = &[
    ("io", &["io/src/lib.rs"]),
    ("pki", &["pki/src/lib.rs"]),
    ("model", &["model/src/lib.rs"]),
    ("etcd_kit", &["etcd-kit/src/lib.rs"]),
    ("backup", &["backup/src/lib.rs"]),
    ("node", &["node/src/lib.rs"]),
    ("agent", &["agent/src/lib.rs"]),
    ("zone_etcd", &["src/lib.rs", "src/main.rs"]),
    ("recorder", &["recorder/src/lib.rs", "recorder/src/main.rs"]),
    (
        "consistency",
        &["consistency/src/lib.rs", "consistency/src/main.rs"],
    ),
    ("bench", &["bench/src/main.rs"]),
];

/// The strongly connected components of more than one file (Tarjan).
fn circles(edges: &BTreeMap<PathBuf, BTreeMap<PathBuf, BTreeSet<String>>>) -> Vec<Vec<PathBuf>> {
    struct State<'a> {
        edges: &'a BTreeMap<PathBuf, BTreeMap<PathBuf, BTreeSet<String>>>,
        index: HashMap<&'a PathBuf, usize>,
        low: HashMap<&'a PathBuf, usize>,
        stack: Vec<&'a PathBuf>,
        on: BTreeSet<&'a PathBuf>,
        found: Vec<Vec<PathBuf>>,
    }
    fn strong<'a>(s: &mut State<'a>, v: &'a PathBuf) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on.insert(v);
        if let Some(targets) = s.edges.get(v) {
            for w in targets.keys() {
                if !s.index.contains_key(w) {
                    strong(s, w);
                    let lw = s.low[w];
                    let lv = s.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if s.on.contains(w) {
                    let iw = s.index[w];
                    let lv = s.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on.remove(w);
                component.push(w.clone());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.found.push(component);
            }
        }
    }
    let mut s = State {
        edges,
        index: HashMap::new(),
        low: HashMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v) {
            strong(&mut s, v);
        }
    }
    s.found
}

fn edges() -> BTreeMap<PathBuf, BTreeMap<PathBuf, BTreeSet<String>>> {
    let mut edges: BTreeMap<PathBuf, BTreeMap<PathBuf, BTreeSet<String>>> = BTreeMap::new();
    for (_, roots) in CRATES {
        for root in *roots {
            let mut tree = Tree {
                root: PathBuf::from(env!("CARGO_MANIFEST_DIR")),
                modules: Vec::new(),
                refs: Vec::new(),
            };
            tree.load(Path::new(root), None, None);
            for (module, path, file) in &tree.refs {
                for target in tree.resolve(*module, path, &mut BTreeSet::new()) {
                    if &target != file {
                        edges
                            .entry(file.clone())
                            .or_default()
                            .entry(target)
                            .or_default()
                            .insert(path.join("::"));
                    }
                }
            }
        }
    }
    edges
}

#[test]
fn no_file_imports_another_that_imports_it_back() {
    let edges = edges();
    // The reading finds the uses it must: a sanity check against a reader that sees none.
    let preflight = PathBuf::from("node/src/preflight/mod.rs");
    assert!(
        edges
            .get(&preflight)
            .is_some_and(|t| t.contains_key(Path::new("node/src/node.rs"))),
        "the checker no longer sees the preflight use the node: {:?}",
        edges.get(&preflight)
    );
    let found = circles(&edges);
    let mut report = String::new();
    for component in &found {
        let names: Vec<String> = component.iter().map(|p| p.display().to_string()).collect();
        report += &format!("circle: {}\n", names.join(" "));
        for a in component {
            for b in component {
                if let Some(paths) = edges.get(a).and_then(|t| t.get(b)) {
                    let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
                    report += &format!(
                        "   {} -> {}: {}\n",
                        a.display(),
                        b.display(),
                        paths.join(", ")
                    );
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "files that import each other (move the shared piece to a module both use):\n{report}"
    );
}

#[test]
fn a_circle_is_found() {
    let toks =
        tokenize("use crate::a::{self, b::C as D};\nfn f() { let _ = 'x'; let s = r#\"a\"#; }");
    assert!(toks.contains(&Tok::Id("D".into())));
    assert!(toks.contains(&Tok::Str("a".into())));
    let (tree, _) = use_tree(&toks, 1, Vec::new());
    assert_eq!(
        tree,
        [
            (vec!["crate".to_string(), "a".into()], "a".to_string()),
            (
                vec!["crate".to_string(), "a".into(), "b".into(), "C".into()],
                "D".to_string()
            ),
        ]
    );
    let path = |s: &str| PathBuf::from(s);
    let mut edges: BTreeMap<PathBuf, BTreeMap<PathBuf, BTreeSet<String>>> = BTreeMap::new();
    for (a, b) in [
        ("a.rs", "b.rs"),
        ("b.rs", "c.rs"),
        ("c.rs", "a.rs"),
        ("c.rs", "d.rs"),
    ] {
        edges
            .entry(path(a))
            .or_default()
            .entry(path(b))
            .or_default();
    }
    assert_eq!(
        circles(&edges),
        [vec![path("a.rs"), path("b.rs"), path("c.rs")]]
    );
}
