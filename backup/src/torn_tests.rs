use std::sync::Arc;

use super::*;
use crate::local::BOOT_FILE;
use crate::test_zone::{fixture, put_revision, Fixture, ZONE};

/// A local chain of `n` delta links written as `backup run` writes them (a put a link),
/// in `state`: the files on disk, the manifest names.
fn written(fx: &Fixture, state: &std::path::Path, n: i64) -> (Arc<LocalChain>, Vec<String>) {
    let local = Arc::new(LocalChain::open(state).unwrap());
    let mut writer = crate::runner::writer::ChainWriter::for_tests(fx, local.clone());
    for revision in 2..2 + n {
        let r = put_revision(revision);
        writer
            .append_delta(&[r], 1_700_000_000_000 + revision)
            .unwrap();
    }
    let names = local.manifests().unwrap();
    (local, names)
}

/// What the chain's reboot record says after the machine restarted.
fn restarted(local: &LocalChain) {
    std::fs::write(local.root().join(BOOT_FILE), "an-earlier-boot\n").unwrap();
}

fn object_of(local: &LocalChain, name: &str) -> String {
    let stored = local.read_manifest(name).unwrap();
    crate::manifest::body_unverified(&stored.bytes)
        .unwrap()
        .object
        .unwrap()
}

#[test]
fn a_whole_chain_after_a_restart_is_kept_and_the_record_removed() {
    let fx = fixture();
    let state = tempfile::tempdir().unwrap();
    let (local, names) = written(&fx, state.path(), 4);
    assert_eq!(names.len(), 4);
    // Written this boot: recorded, nothing to check.
    assert_eq!(local.earlier_boot(), None);
    assert!(local.root().join(BOOT_FILE).exists());
    restarted(&local);
    assert_eq!(first_torn(&local, ZONE, &fx.roots()).unwrap(), None);
    readable(&local, ZONE, &fx.roots()).unwrap();
    assert_eq!(settle(&local, ZONE, &fx.roots()).unwrap(), None);
    assert!(!local.root().join(BOOT_FILE).exists());
    assert_eq!(local.manifests().unwrap(), names);
}

#[test]
fn a_torn_file_after_a_restart_is_named_and_the_chain_moved_aside() {
    let fx = fixture();
    type Tear = fn(&LocalChain, &[String]) -> std::path::PathBuf;
    let tears: [(&str, Tear); 6] = [
        ("plain copy emptied", |l, n| {
            let p = l.plain_path(&object_of(l, &n[2]));
            std::fs::write(&p, b"").unwrap();
            p
        }),
        ("plain copy cut short", |l, n| {
            let p = l.plain_path(&object_of(l, &n[3]));
            let bytes = std::fs::read(&p).unwrap();
            std::fs::write(&p, &bytes[..bytes.len() - 9]).unwrap();
            p
        }),
        ("encrypted object zeroed", |l, n| {
            let p = l.object_path(&object_of(l, &n[1]));
            let len = std::fs::metadata(&p).unwrap().len() as usize;
            std::fs::write(&p, vec![0u8; len]).unwrap();
            p
        }),
        ("objects of a later link missing", |l, n| {
            let object = object_of(l, &n[1]);
            std::fs::remove_file(l.object_path(&object)).unwrap();
            std::fs::remove_file(l.plain_path(&object)).unwrap();
            l.object_path(&object)
        }),
        ("a manifest lost between two", |l, n| {
            let p = l.object_path(&n[1]);
            std::fs::remove_file(&p).unwrap();
            l.object_path(&n[2])
        }),
        ("manifest emptied", |l, n| {
            let p = l.object_path(&n[3]);
            std::fs::write(&p, b"").unwrap();
            p
        }),
    ];
    for (what, tear) in tears {
        let state = tempfile::tempdir().unwrap();
        let (local, names) = written(&fx, state.path(), 4);
        let torn = tear(&local, &names);
        // Within the boot that wrote them, files are whole (the page cache): not checked.
        readable(&local, ZONE, &fx.roots()).unwrap();
        restarted(&local);
        // After the restart, the chain is opened anew: its names listed from the disk.
        let local = LocalChain::open(state.path()).unwrap();
        let problem = first_torn(&local, ZONE, &fx.roots()).unwrap();
        let file = torn.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            problem.as_deref().is_some_and(|p| p.contains(&file)),
            "{what}: {problem:?} does not name {file}"
        );
        let refused = readable(&local, ZONE, &fx.roots()).unwrap_err();
        assert!(
            refused.contains("torn") && refused.contains("not the targets' backup"),
            "{what}: {refused}"
        );
        let count = |dir: &std::path::Path| std::fs::read_dir(dir).unwrap().count();
        let present = count(&local.root().join("chain/chain"));
        let aside = settle(&local, ZONE, &fx.roots()).unwrap().expect(what);
        assert!(local.manifests().unwrap().is_empty(), "{what}");
        assert!(!local.root().join(BOOT_FILE).exists(), "{what}");
        // Moved aside, never deleted.
        assert_eq!(count(&aside.join("chain")), present, "{what}");
        assert!(present >= 3, "{what}");
    }
}

#[test]
fn the_first_link_may_have_no_local_copy() {
    // A link adopted from the targets starts a new local chain with its manifest only.
    let fx = fixture();
    let state = tempfile::tempdir().unwrap();
    let (local, names) = written(&fx, state.path(), 3);
    let object = object_of(&local, &names[0]);
    std::fs::remove_file(local.object_path(&object)).unwrap();
    std::fs::remove_file(local.plain_path(&object)).unwrap();
    restarted(&local);
    assert_eq!(first_torn(&local, ZONE, &fx.roots()).unwrap(), None);
    // One of the two missing is a torn write, not an adopted link.
    let object = object_of(&local, &names[0]);
    std::fs::write(local.plain_path(&object), b"").unwrap();
    assert!(first_torn(&local, ZONE, &fx.roots()).unwrap().is_some());
}

#[test]
fn a_chain_holding_an_earlier_boots_files_is_not_written_to() {
    let fx = fixture();
    let state = tempfile::tempdir().unwrap();
    let (local, _) = written(&fx, state.path(), 1);
    restarted(&local);
    // A process that did not check it first (not `backup run`, which settles it).
    let again = LocalChain::open(state.path()).unwrap();
    let refused = again
        .write_soon(&again.plain_path("delta/x"), b"x")
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("before this machine restarted"),
        "{refused}"
    );
    assert_eq!(
        std::fs::read_to_string(local.root().join(BOOT_FILE)).unwrap(),
        "an-earlier-boot\n"
    );
}
