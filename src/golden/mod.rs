//! Golden files (issue 50, item 5): every persistent format zone-etcd writes, as each
//! release wrote it, in `tests/golden/v<release>/` (and, once the work towards a release
//! writes anything otherwise, `v<release>-dev/`), read back by this release's own
//! parsers; the newest directory's also rendered again to the same bytes, the older ones
//! only read (tests/golden/README.md says what each file is, and the rules).
//!
//! [`fixture`] is the zone they describe, [`generate`] writes a directory (on purpose
//! only), [`check`] reads one, [`added`] reads its JSON machine formats again with a field
//! a later release might add, [`files`] finds and copies them.

mod added;
mod check;
mod files;
mod fixture;
mod generate;

/// Every release's golden files read back by this release, each file by the checks of
/// its format (a file no check reads fails: a new file comes with its check), and with a
/// field added to each JSON machine format; the newest directory's rendered again to the
/// same bytes.
#[test]
fn every_releases_golden_files_read_back() {
    let releases = files::releases();
    let this = fixture::RELEASE;
    assert!(
        releases
            .iter()
            .any(|(_, dir)| dir.ends_with(format!("v{this}"))),
        "tests/golden/ has no directory of this release ({this}): write it with \
         ZONE_ETCD_WRITE_GOLDEN=1 cargo test -p zone-etcd --lib golden::generate -- --ignored \
         (tests/golden/README.md)"
    );
    for (i, (release, dir)) in releases.iter().enumerate() {
        let newest = i + 1 == releases.len();
        let name = release.to_string();
        let copy = files::private_copy(dir);
        added::all(copy.path());
        let seen = check::all(copy.path(), &name, newest);
        let unread: Vec<String> = files::files_under(dir).difference(&seen).cloned().collect();
        assert!(
            unread.is_empty(),
            "{}: files no check reads (add the check of their format): {unread:?}",
            dir.display()
        );
    }
}

#[test]
fn only_release_directories_are_releases() {
    let release = |name: &str| files::release_of(name).map(|r| r.to_string());
    assert_eq!(release("v0.1.0").as_deref(), Some("0.1.0"));
    assert_eq!(release("v10.2.33").as_deref(), Some("10.2.33"));
    assert_eq!(release("v0.2.0-dev").as_deref(), Some("0.2.0-dev"));
    for other in [
        "README.md",
        "0.1.0",
        "v0.1",
        "v0.1.0.1",
        "v0.1.x",
        "v0.1.+1",
        "v0.2.0-",
        "v0.2.0-Dev",
        "v0.2.0-dev/x",
        ".building-v0.1.0",
    ] {
        assert_eq!(files::release_of(other), None, "{other}");
    }
    // The work towards a release sorts after the release before and before its own.
    let mut names =
        ["v0.2.0", "v0.2.0-dev", "v0.10.0", "v0.1.0"].map(|n| files::release_of(n).unwrap());
    names.sort();
    let sorted: Vec<String> = names.iter().map(ToString::to_string).collect();
    assert_eq!(sorted, ["0.1.0", "0.2.0-dev", "0.2.0", "0.10.0"]);
}
