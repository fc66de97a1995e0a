//! Commands do not import commands (issue 71, item 4): a file of one command
//! (`src/commands/<a>.rs` or anything under `src/commands/<a>/`) names no item of another
//! command's files, whether through `crate::commands::<b>::…`, `super::super::…` or an
//! alias; and none names an item of `src/commands/mod.rs`, which holds only the list of
//! commands. What two commands share lives below them, in a module named for what it is.
//!
//! One exception, narrow: `demo` is a script of the owner's commands (`ca init`,
//! `bootstrap`, `ca admin`, `activate`), so it may call another command's entry point,
//! its `run`, and nothing else of it.
//!
//! The reading is the circle test's ([`super::edges`]): paths resolved to the file that
//! defines the item, re-exports followed.

use std::path::{Component, Path};

/// The command that runs other commands' entry points (see the module's doc).
const SCRIPT: &str = "demo";

/// The command a file of `src/commands/` belongs to: `Some("leave")` for
/// `src/commands/leave.rs`, `Some("check")` for `src/commands/check/output.rs`,
/// `Some("")` for `src/commands/mod.rs` itself, `None` outside `src/commands/`.
fn command_of(file: &Path) -> Option<String> {
    let rest = file.strip_prefix("src/commands").ok()?;
    let first = rest.components().next()?;
    let Component::Normal(first) = first else {
        return None;
    };
    let first = first.to_string_lossy();
    if rest.components().count() > 1 {
        return Some(first.into_owned());
    }
    match first.strip_suffix(".rs") {
        Some("mod") => Some(String::new()),
        Some(name) => Some(name.to_string()),
        None => None,
    }
}

#[test]
fn no_command_imports_another_command() {
    let edges = super::edges();
    let mut wrong = Vec::new();
    let mut seen_within = false;
    for (file, targets) in &edges {
        let Some(a) = command_of(file) else { continue };
        for (target, paths) in targets {
            let Some(b) = command_of(target) else {
                continue;
            };
            if a == b && !a.is_empty() {
                seen_within = true;
                continue;
            }
            if a == SCRIPT && !b.is_empty() && paths.iter().all(|p| p.ends_with("::run")) {
                continue;
            }
            let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
            wrong.push(format!(
                "{} -> {}: {}",
                file.display(),
                target.display(),
                paths.join(", ")
            ));
        }
    }
    // The reading sees a command's own files use each other (a sanity check against a
    // reader that sees nothing).
    assert!(
        seen_within,
        "the checker sees no file of a command use another of it"
    );
    assert!(
        wrong.is_empty(),
        "a command imports another command (move what they share below src/commands/, \
         into a module named for what it is):\n{}",
        wrong.join("\n")
    );
}

#[test]
fn a_file_belongs_to_its_command() {
    let of = |s: &str| command_of(Path::new(s));
    assert_eq!(of("src/commands/leave.rs").as_deref(), Some("leave"));
    assert_eq!(of("src/commands/check/output.rs").as_deref(), Some("check"));
    assert_eq!(of("src/commands/check/mod.rs").as_deref(), Some("check"));
    assert_eq!(of("src/commands/mod.rs").as_deref(), Some(""));
    assert_eq!(of("node/src/membership.rs"), None);
}
