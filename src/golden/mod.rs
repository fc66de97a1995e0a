//! Golden files (issue 50, item 5): every persistent format zone-etcd writes, as each
//! release wrote it, in `tests/golden/v<release>/`, read back by this release's own
//! parsers; the newest release's also rendered again to the same bytes
//! (tests/golden/README.md says what each file is, and the rules).
//!
//! [`fixture`] is the zone they describe, [`generate`] writes a release's directory (on
//! purpose only), [`check`] reads one, [`files`] finds and copies them.

mod check;
mod files;
mod fixture;
mod generate;

/// Every release's golden files read back by this release, each file by the checks of
/// its format (a file no check reads fails: a new file comes with its check); the
/// newest release's rendered again to the same bytes.
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
        let name = format!("{}.{}.{}", release.0, release.1, release.2);
        let copy = files::private_copy(dir);
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
    assert_eq!(files::release_of("v0.1.0"), Some((0, 1, 0)));
    assert_eq!(files::release_of("v10.2.33"), Some((10, 2, 33)));
    for other in [
        "README.md",
        "0.1.0",
        "v0.1",
        "v0.1.0.1",
        "v0.1.x",
        ".building-v0.1.0",
    ] {
        assert_eq!(files::release_of(other), None, "{other}");
    }
}
