//! The test addresses' registry (issue 49) is code: `zone_testkit::addresses`
//! (testkit/src/addresses.rs), one constant per loopback block (127.0.X.0/24) or
//! network-namespace block (198.18.X.0/24, 198.19.X.0/24) that a test, the recorder or the
//! benchmark program uses, with its owner. Tests that run at once (test.sh runs chains
//! beside the main run) never meet on an address when:
//!
//! - no Rust source under tests/, recorder/src or bench/src writes a block as a literal
//!   (127.0.0.x, this machine's localhost, may stay literal; so may the switch's whole
//!   network, 198.18.0.0/15 or /16): it takes its addresses from its constant;
//! - a file that is not Rust (the bad-input corpus, tests/data: addresses written into
//!   files, never dialled) names only blocks registered to its owner;
//! - a constant (`addresses::PITR`) is named only by its owner, by its path: a glob import
//!   or a renamed module would hide a use from this check, so both are refused;
//! - no block is registered twice, and no block has several owners, unless the registry
//!   says why (`shared`);
//! - every registered block is used.
//!
//! The owner is a test module (`tests/zone/pitr` for tests/zone/pitr.rs and tests/zone/pitr/),
//! the shared harness (`tests/zone/common`), a directory of data files (`tests/corpus`,
//! `tests/data`), or a tool's sources (`recorder`, `bench`). zone-testkit itself is not
//! scanned: its fixtures listen only where their user tells them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use zone_testkit::addresses::{Block, Registered, REGISTRY};

/// What `addresses::` may name besides the registered constants.
const ITEMS: &[&str] = &["Block", "Net", "Registered", "REGISTRY"];

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

/// The blocks `text` names as literals (`127.0.X`, `198.18.X`, `198.19.X`), each with the
/// line it is first named on; the switch's whole network (`198.18.0.0/15`, `/16`) is no
/// block.
fn blocks_in(text: &str) -> BTreeMap<String, usize> {
    let mut found = BTreeMap::new();
    for prefix in ["127.0.", "198.18.", "198.19."] {
        for (at, _) in text.match_indices(prefix) {
            let before = text[..at].chars().next_back();
            if before.is_some_and(|c| c.is_ascii_digit() || c == '.') {
                continue;
            }
            let rest = &text[at + prefix.len()..];
            if prefix == "198.18." && (rest.starts_with("0.0/15") || rest.starts_with("0.0/16")) {
                continue;
            }
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if !digits.is_empty() && rest[digits.len()..].starts_with('.') {
                let line = text[..at].matches('\n').count() + 1;
                found.entry(format!("{prefix}{digits}")).or_insert(line);
            }
        }
    }
    found
}

/// What a file names through `addresses::`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Use {
    /// A constant or an item, by its path (`addresses::PITR`, `addresses::{self, Block}`).
    Name(String),
    /// A family of constants in prose (`addresses::BACKUP_*`).
    Family(String),
    /// `addresses::*` or `addresses as x`: uses this check cannot see.
    Hidden(String),
}

/// The uses of `addresses::` in `text`, each with the line it is first on.
fn uses_in(text: &str) -> BTreeMap<Use, usize> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut found = BTreeMap::new();
    for (at, _) in text.match_indices("addresses") {
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &text[at + "addresses".len()..];
        let line = text[..at].matches('\n').count() + 1;
        let mut add = |u: Use| {
            found.entry(u).or_insert(line);
        };
        if rest.starts_with(" as ") && text[..at].ends_with("::") {
            add(Use::Hidden("addresses as".into()));
            continue;
        }
        let Some(rest) = rest.strip_prefix("::") else {
            continue;
        };
        if rest.starts_with('*') {
            add(Use::Hidden("addresses::*".into()));
        } else if let Some(list) = rest.strip_prefix('{') {
            let list = &list[..list.find('}').unwrap_or(list.len())];
            for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                match ident(item).as_str() {
                    "self" if item.contains(" as ") => add(Use::Hidden(item.into())),
                    "self" => {}
                    "" => add(Use::Hidden(format!("addresses::{{{item}}}"))),
                    name => add(Use::Name(name.into())),
                }
            }
        } else {
            let name = ident(rest);
            if name.is_empty() {
                continue;
            }
            if rest[name.len()..].starts_with('*') {
                add(Use::Family(name));
            } else {
                add(Use::Name(name));
            }
        }
    }
    found
}

/// One scanned file.
struct Scanned {
    path: String,
    owner: String,
    rust: bool,
    blocks: BTreeMap<String, usize>,
    uses: BTreeMap<Use, usize>,
}

/// Every file under the scanned directories.
fn scan() -> Vec<Scanned> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    let mut stack: Vec<_> = ["tests", "recorder/src", "bench/src"]
        .iter()
        .map(|d| root.join(d))
        .collect();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read a test directory") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                // This check and its own examples name every block.
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
            let rust = path.extension().is_some_and(|e| e == "rs");
            files.push(Scanned {
                path: relative.display().to_string(),
                owner: owner(relative),
                rust,
                blocks: blocks_in(&text),
                uses: if rust {
                    uses_in(&text)
                } else {
                    BTreeMap::new()
                },
            });
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    files
}

/// What breaks the registry: one line each.
fn breaches(registry: &[Registered], files: &[Scanned]) -> Vec<String> {
    let mut lines = Vec::new();
    let by_name: BTreeMap<&str, &Registered> = registry.iter().map(|r| (r.name, r)).collect();
    let mut by_block: BTreeMap<String, Vec<&Registered>> = BTreeMap::new();
    for r in registry {
        by_block.entry(r.block.prefix()).or_default().push(r);
        if r.owners.len() > 1 && r.shared.is_none() {
            lines.push(format!(
                "testkit/src/addresses.rs: {} has several owners ({}) but no `shared` reason",
                r.name,
                r.owners.join(", ")
            ));
        }
    }
    for (block, entries) in &by_block {
        if entries.len() > 1 && entries.iter().any(|r| r.shared.is_none()) {
            let names: Vec<&str> = entries.iter().map(|r| r.name).collect();
            lines.push(format!(
                "testkit/src/addresses.rs: {block}.0/24 is registered twice ({}) with no \
                 `shared` reason: take a free block",
                names.join(", ")
            ));
        }
    }
    let mut used: BTreeSet<&str> = BTreeSet::new();
    for file in files {
        let at = |line: &usize| format!("{}:{line}", file.path);
        for (block, line) in &file.blocks {
            if block == "127.0.0" {
                continue;
            }
            let entries = by_block.get(block).map(Vec::as_slice).unwrap_or_default();
            if file.rust {
                let constant = entries
                    .iter()
                    .find(|r| r.owners.contains(&file.owner.as_str()))
                    .map(|r| format!("addresses::{}", r.name))
                    .unwrap_or_else(|| "a constant of its own in testkit/src/addresses.rs".into());
                lines.push(format!(
                    "{} writes {block}.x as a literal: take it from {constant}",
                    at(line)
                ));
                continue;
            }
            match entries.iter().find(|r| r.owners.contains(&file.owner.as_str())) {
                Some(r) => {
                    used.insert(r.name);
                }
                None if entries.is_empty() => lines.push(format!(
                    "{} names {block}.0/24, registered to nobody: add it to testkit/src/addresses.rs",
                    at(line)
                )),
                None => lines.push(format!(
                    "{} names {block}.0/24, which belongs to {}: not to {}",
                    at(line),
                    entries
                        .iter()
                        .flat_map(|r| r.owners.iter().copied())
                        .collect::<Vec<_>>()
                        .join(", "),
                    file.owner
                )),
            }
        }
        for (u, line) in &file.uses {
            match u {
                Use::Hidden(what) => lines.push(format!(
                    "{} imports `{what}`: name each block by its path (`addresses::NAME`)",
                    at(line)
                )),
                Use::Name(name) if ITEMS.contains(&name.as_str()) => {}
                Use::Name(name) => match by_name.get(name.as_str()) {
                    None => lines.push(format!(
                        "{} names addresses::{name}, which is not registered",
                        at(line)
                    )),
                    Some(r) if !r.owners.contains(&file.owner.as_str()) => lines.push(format!(
                        "{} uses addresses::{name}, which belongs to {}: take a block of {}'s own",
                        at(line),
                        r.owners.join(", "),
                        file.owner
                    )),
                    Some(r) => {
                        used.insert(r.name);
                    }
                },
                Use::Family(prefix) => {
                    let family: Vec<&Registered> = registry
                        .iter()
                        .filter(|r| r.name.starts_with(prefix.as_str()))
                        .collect();
                    if family.is_empty()
                        || family
                            .iter()
                            .any(|r| !r.owners.contains(&file.owner.as_str()))
                    {
                        lines.push(format!(
                            "{} names addresses::{prefix}*, not all of which are {}'s",
                            at(line),
                            file.owner
                        ));
                    }
                }
            }
        }
    }
    for r in registry {
        if !used.contains(r.name) {
            lines.push(format!(
                "testkit/src/addresses.rs: {} ({}) is registered but used nowhere: remove it",
                r.name, r.block
            ));
        }
    }
    lines
}

#[test]
fn every_test_address_block_has_one_registered_owner() {
    let files = scan();
    // The scan sees what it must: pitr's blocks by their constants, the corpus's literals.
    let pitr = files
        .iter()
        .find(|f| f.path == "tests/zone/pitr.rs")
        .expect("the scan sees tests/zone/pitr.rs");
    for name in ["PITR", "SEAWEED"] {
        assert!(
            pitr.uses.contains_key(&Use::Name(name.into())),
            "the scan no longer sees tests/zone/pitr.rs use addresses::{name}"
        );
    }
    assert!(
        files
            .iter()
            .any(|f| f.owner == "tests/corpus" && f.blocks.contains_key("127.0.60")),
        "the scan no longer sees the corpus name 127.0.60.x"
    );
    let lines = breaches(REGISTRY, &files);
    assert!(lines.is_empty(), "{}", lines.join("\n"));
}

#[test]
fn a_literal_another_owners_constant_or_a_block_registered_twice_is_refused() {
    let mine = |name: &'static str, block: Block, owner: &'static str| Registered {
        name,
        block,
        owners: Vec::leak(vec![owner]),
        shared: None,
    };
    let registry = [
        mine("PITR", Block::loopback(108), "tests/zone/pitr"),
        mine("MOVES", Block::loopback(83), "tests/zone/moves"),
        mine("AGAIN", Block::loopback(83), "tests/zone/again"),
        mine("CORPUS", Block::loopback(60), "tests/corpus"),
    ];
    let rust = |path: &str, text: &str| Scanned {
        path: path.into(),
        owner: owner(Path::new(path)),
        rust: true,
        blocks: blocks_in(text),
        uses: uses_in(text),
    };
    let files = [
        rust(
            "tests/zone/pitr.rs",
            "use zone_testkit::addresses::{self, Block};\nlet a = addresses::PITR.ip(1);\n\
             let b = \"127.0.108.2\"; let c = \"127.0.0.1\";",
        ),
        rust(
            "tests/zone/moves.rs",
            "addresses::MOVES.subnet()\n// addresses::PITR.ip(3)",
        ),
        rust(
            "tests/zone/again.rs",
            "addresses::AGAIN; use zone_testkit::addresses::*;",
        ),
        Scanned {
            path: "tests/corpus/a/zone.toml".into(),
            owner: "tests/corpus".into(),
            rust: false,
            blocks: blocks_in("address = \"127.0.60.1\"\naddress = \"127.0.61.1\""),
            uses: BTreeMap::new(),
        },
    ];
    let lines = breaches(&registry, &files);
    let expected = [
        "testkit/src/addresses.rs: 127.0.83.0/24 is registered twice (MOVES, AGAIN) with no \
         `shared` reason: take a free block",
        "tests/zone/pitr.rs:3 writes 127.0.108.x as a literal: take it from addresses::PITR",
        "tests/zone/moves.rs:2 uses addresses::PITR, which belongs to tests/zone/pitr: take a \
         block of tests/zone/moves's own",
        "tests/zone/again.rs:1 imports `addresses::*`: name each block by its path \
         (`addresses::NAME`)",
        "tests/corpus/a/zone.toml:2 names 127.0.61.0/24, registered to nobody: add it to \
         testkit/src/addresses.rs",
    ];
    assert_eq!(lines, expected, "{lines:#?}");
    assert_eq!(
        blocks_in("https://127.0.5.1:2379 10.127.0.9.1 198.18.3.2 127.0.x 198.18.0.0/15"),
        [("127.0.5".to_string(), 1), ("198.18.3".to_string(), 1)].into()
    );
    assert_eq!(
        uses_in("addresses::{self, Block, PITR as P}; addresses::BACKUP_* crate::my_addresses::X"),
        [
            (Use::Name("Block".into()), 1),
            (Use::Name("PITR".into()), 1),
            (Use::Family("BACKUP_".into()), 1),
        ]
        .into()
    );
}
