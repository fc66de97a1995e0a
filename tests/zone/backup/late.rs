//! A late link (issue 37): a manifest of a writer that is out reaches the targets after
//! the next writer took over, as a PUT an S3 store held and applied later (seen in the
//! issue's benchmark). Made as the store would leave it: the writer killed, its newest link
//! taken off both targets and their heads put back one link, and, once the next writer has
//! linked its own, the old link put back. Zone on `addresses::BACKUP_LATE`; SeaweedFS on
//! `addresses::SEAWEED` .22.
//! Part of tests/zone/backup.rs (its tests run side by side in one binary).

use std::fs;
use std::time::Duration;

use zone_backup::chain::manifest_seq;
use zone_backup::destination::Target;

use crate::common::backup::BackupZone;
use crate::common::wait_for;
use zone_testkit::addresses;

const POLICY: &str = "full_every = \"1h\"\ndelta_every = \"1s\"";

/// Both targets' chains fork at the takeover; the owner's drill passes on each, naming
/// the late link it left out; a second takeover goes on from the chain, not from the late
/// link, and the drills pass again.
#[test]
fn a_late_link_of_a_writer_that_is_out_is_left_out_of_the_chain() {
    let z = BackupZone::start(
        "late.zone",
        addresses::BACKUP_LATE.subnet(),
        &addresses::SEAWEED.ip(22),
        POLICY,
    );
    let mut runs = z.backup_runs_with_a_writer();
    z.wait_shipped(z.revision(), Duration::from_secs(60));
    let load = z.zone.failover_load(&[], "late", Duration::from_millis(40));
    wait_for(Duration::from_secs(60), "50 acknowledged writes", || {
        load.acknowledged() >= 50
    });
    z.wait_shipped(z.revision(), Duration::from_secs(60));
    let first = z.active().unwrap();
    drop(runs[first].take()); // SIGKILL by its PID
    let killed_at = std::time::Instant::now();

    // Its newest link both targets hold: taken off them, with every link after it, and
    // each head put back to the link before it, as if the store had held the request.
    let s3 = z.s3_target();
    let s3_names = || -> Vec<String> {
        let mut names: Vec<String> = s3
            .list("chain/")
            .unwrap()
            .into_iter()
            .map(|o| o.name)
            .filter(|n| manifest_seq(n).is_some())
            .collect();
        names.sort_by_key(|n| manifest_seq(n));
        names
    };
    let usb_names = || -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(z.usb().join("chain"))
            .unwrap()
            .flatten()
            .map(|e| format!("chain/{}", e.file_name().to_string_lossy()))
            .filter(|n| manifest_seq(n).is_some())
            .collect();
        names.sort_by_key(|n| manifest_seq(n));
        names
    };
    let (on_s3, on_usb) = (s3_names(), usb_names());
    let newest = |names: &[String]| names.last().and_then(|n| manifest_seq(n)).unwrap();
    let late_seq = newest(&on_s3).min(newest(&on_usb));
    let late_name = on_usb
        .iter()
        .find(|n| manifest_seq(n) == Some(late_seq))
        .unwrap()
        .clone();
    let late_bytes = fs::read(z.usb().join(&late_name)).unwrap();
    let before = on_usb
        .iter()
        .find(|n| manifest_seq(n) == Some(late_seq - 1))
        .unwrap();
    let before_bytes = fs::read(z.usb().join(before)).unwrap();
    let session = zone_backup::manifest::body_unverified(&before_bytes)
        .unwrap()
        .session;
    let head = zone_backup::head::record(Some(&before_bytes), &session);
    for name in on_s3.iter().filter(|n| manifest_seq(n) >= Some(late_seq)) {
        s3.delete(name).unwrap();
    }
    s3.put("head", &head).unwrap();
    for name in on_usb.iter().filter(|n| manifest_seq(n) >= Some(late_seq)) {
        fs::remove_file(z.usb().join(name)).unwrap();
    }
    fs::write(z.usb().join("head"), &head).unwrap();
    // The next writer waits for the killed one's election lease (8 s, renewed every 2 s).
    assert!(
        killed_at.elapsed() < Duration::from_secs(5) && z.active() == Some(first),
        "the targets were not set up before the next writer could take over ({:?} after the kill)",
        killed_at.elapsed()
    );

    // The next writer links its own number `late_seq` (its term's full snapshot) and two
    // more; then the old link lands on both targets.
    wait_for(Duration::from_secs(30), "another writer", || {
        z.active().is_some_and(|a| a != first)
    });
    wait_for(Duration::from_secs(60), "the next writer's links", || {
        newest(&s3_names()) >= late_seq + 2 && newest(&usb_names()) >= late_seq + 2
    });
    let theirs = usb_names()
        .into_iter()
        .find(|n| manifest_seq(n) == Some(late_seq))
        .unwrap();
    assert_ne!(
        theirs, late_name,
        "the next writer reused the late link's name"
    );
    s3.put(&late_name, &late_bytes).unwrap();
    fs::write(z.usb().join(&late_name), &late_bytes).unwrap();

    let drills_pass = |when: &str| {
        for url in [z.file_url(), z.s3_url.clone()] {
            let (ok, stdout, stderr) = z.owner_drill(&url);
            assert!(ok, "{when}: the owner's drill of {url} failed: {stderr}");
            assert!(stdout.contains("backup drill passed"), "{stdout}");
            assert!(
                stderr.contains(&format!("{late_name} is a late link of writer")),
                "{when}: the drill of {url} does not name the late link {late_name}: {stderr}"
            );
        }
    };
    z.wait_shipped(z.revision(), Duration::from_secs(60));
    drills_pass("after the late link");

    // One step beyond: the second writer killed too; the third goes on from the chain.
    let second = z.active().unwrap();
    drop(runs[second].take());
    wait_for(Duration::from_secs(30), "a third writer", || {
        z.active().is_some_and(|a| a != first && a != second)
    });
    wait_for(Duration::from_secs(60), "100 acknowledged writes", || {
        load.acknowledged() >= 100
    });
    let result = load.stop();
    assert!(result.failures.is_empty(), "{:?}", result.failures);
    z.wait_shipped(z.revision(), Duration::from_secs(60));
    drills_pass("after a second takeover");
    let logs = z.logs();
    assert!(
        !logs.contains(&format!("the chain ends at {late_name}")),
        "a writer went on from the late link: {logs}"
    );
}
