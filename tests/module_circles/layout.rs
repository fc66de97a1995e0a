//! `docs/src/reference/layout.md`, the page a newcomer reads first, holds to the tree
//! (issue 71, item 5): in each crate's section (`## … (`dir/`)`), every top-level entry of
//! the crate's `src/` (a module file, a folder) is named, in backticks, as `name.rs` or
//! `name/`; and every `name.rs` or `name/` the section names exists somewhere under that
//! `src/`. A module added, moved or removed without the page fails here.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

const PAGE: &str = "docs/src/reference/layout.md";

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Each crate section of the page: its folder (`io`, `src` for the app's `src/`) and text.
fn sections(page: &str) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = Vec::new();
    for line in page.lines() {
        if let Some(title) = line.strip_prefix("## ") {
            let dir = title
                .rsplit_once("(`")
                .and_then(|(_, rest)| rest.split_once("/`)"))
                .map(|(dir, _)| dir.to_string());
            found.push((dir.unwrap_or_default(), String::new()));
        } else if let Some((_, text)) = found.last_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    found.retain(|(dir, _)| !dir.is_empty());
    found
}

/// The backticked words of `text` that name a module file or a folder.
fn named(text: &str) -> BTreeSet<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|w| (w.ends_with(".rs") || w.ends_with('/')) && !w.contains(' '))
        .map(|w| {
            w.rsplit_once('/')
                .map_or(w, |(_, last)| if last.is_empty() { w } else { last })
                .to_string()
        })
        .map(|w| w.trim_start_matches("src/").to_string())
        .collect()
}

/// The crate's `src/`: its top-level entries (folders as `name/`; test files, `lib.rs` and
/// `main.rs` left out) and every entry at any depth.
fn tree(src: &Path) -> (BTreeSet<String>, BTreeSet<String>) {
    let entry = |p: &Path| {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if p.is_dir() {
            Some(format!("{name}/"))
        } else if name.ends_with(".rs") {
            Some(name)
        } else {
            None
        }
    };
    let top: BTreeSet<String> = fs::read_dir(src)
        .unwrap()
        .flatten()
        .filter_map(|e| entry(&e.path()))
        .filter(|n| !matches!(n.as_str(), "lib.rs" | "main.rs") && !n.ends_with("_tests.rs"))
        .collect();
    let mut all = BTreeSet::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for e in fs::read_dir(&dir).unwrap().flatten() {
            let path = e.path();
            if path.is_dir() {
                dirs.push(path.clone());
            }
            all.extend(entry(&path));
        }
    }
    (top, all)
}

#[test]
fn the_layout_page_names_every_module_of_each_crate_and_nothing_that_is_gone() {
    let root = workspace();
    let page = fs::read_to_string(root.join(PAGE)).unwrap();
    let sections = sections(&page);
    assert!(
        sections.len() >= 5,
        "{PAGE}: only {} crate sections",
        sections.len()
    );
    let mut wrong = Vec::new();
    for (dir, text) in &sections {
        let src = if dir == "src" {
            root.join("src")
        } else {
            root.join(dir).join("src")
        };
        assert!(
            src.is_dir(),
            "{PAGE}: the section of `{dir}/` names no crate"
        );
        let (top, all) = tree(&src);
        let said = named(text);
        for missing in top.difference(&said) {
            wrong.push(format!("{dir}: `{missing}` is not on the page"));
        }
        for gone in said.difference(&all) {
            wrong.push(format!(
                "{dir}: the page names `{gone}`, which is not under {}",
                src.display()
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{PAGE} does not match the tree:\n{}",
        wrong.join("\n")
    );
}
