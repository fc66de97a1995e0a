//! A lagging target caught up: the writer is killed while its S3 store hangs (SIGSTOP),
//! so the directory target holds links S3 never got. The next writer copies them to S3
//! from the directory target before its own links, so S3's chain has no hole. (A red clean
//! run of `pitr` found the hole: "link 24 is missing" on S3, after a writer lost its lease
//! between its two targets.) Zone on `addresses::BACKUP_LAGGING`; SeaweedFS on
//! `addresses::SEAWEED` .32.
//! Part of tests/zone/backup.rs (its tests run side by side in one binary).

use std::collections::BTreeSet;
use std::fs;
use std::time::Duration;

use zone_backup::chain::manifest_seq;
use zone_backup::destination::Target;

use crate::common::backup::BackupZone;
use crate::common::wait_for;
use zone_testkit::addresses;

const POLICY: &str = "full_every = \"1h\"\ndelta_every = \"1s\"";

/// The manifests a directory target holds.
fn dir_manifests(dir: &std::path::Path) -> BTreeSet<String> {
    fs::read_dir(dir.join("chain"))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| format!("chain/{}", e.file_name().to_string_lossy()))
                .filter(|n| manifest_seq(n).is_some())
                .collect()
        })
        .unwrap_or_default()
}

fn newest(names: &BTreeSet<String>) -> u64 {
    names
        .iter()
        .filter_map(|n| manifest_seq(n))
        .max()
        .unwrap_or(0)
}

/// S3 holds every link the directory target holds once the next writer has shipped, and
/// the owner's drill of S3 alone passes; one step beyond, the writer after that (the
/// hole filled) goes on as usual.
#[test]
fn links_a_killed_writer_shipped_to_one_target_only_reach_the_other() {
    let z = BackupZone::start(
        "lagging.zone",
        addresses::BACKUP_LAGGING.subnet(),
        &addresses::SEAWEED.ip(32),
        POLICY,
    );
    let mut runs = z.backup_runs_with_a_writer();
    z.wait_shipped(z.revision(), Duration::from_secs(60));
    let load = z
        .zone
        .failover_load(&[], "lagging", Duration::from_millis(40));
    wait_for(Duration::from_secs(60), "20 acknowledged writes", || {
        load.acknowledged() >= 20
    });
    let first = z.active().expect("an active writer");
    let s3 = z.s3_target();
    let s3_manifests = || -> BTreeSet<String> {
        s3.list("chain/")
            .unwrap()
            .into_iter()
            .map(|o| o.name)
            .filter(|n| manifest_seq(n).is_some())
            .collect()
    };
    let on_s3 = newest(&s3_manifests());

    // S3 hangs: the writer's requests to it wait; the directory target goes on.
    z.weed.pause().unwrap();
    let paused = Resumer(&z);
    wait_for(
        Duration::from_secs(60),
        "5 links on the directory target past S3's",
        || newest(&dir_manifests(&z.usb())) >= on_s3 + 5,
    );
    drop(runs[first].take()); // SIGKILL by its PID
    let hole_top = newest(&dir_manifests(&z.usb()));
    drop(paused);

    wait_for(Duration::from_secs(60), "another writer", || {
        z.active().is_some_and(|a| a != first)
    });
    let acknowledged = load.acknowledged();
    wait_for(Duration::from_secs(60), "20 writes more", || {
        load.acknowledged() >= acknowledged + 20
    });
    z.wait_shipped(z.revision(), Duration::from_secs(90));
    // The writer goes on under the load: a link it has put on the directory target and
    // not yet on S3 is in flight, not lacking (seen: link 12 of the new writer's). S3 is
    // listed after the directory, and each target takes its links in order, so every
    // directory link up to S3's newest must be on S3, and S3's newest is past the hole.
    let on_usb = dir_manifests(&z.usb());
    let on_s3_now = s3_manifests();
    let s3_top = newest(&on_s3_now);
    assert!(
        s3_top > hole_top,
        "S3's newest link {s3_top} is not past the hole's top {hole_top}"
    );
    let lacking: Vec<&String> = on_usb
        .difference(&on_s3_now)
        .filter(|n| manifest_seq(n).is_some_and(|seq| seq <= s3_top))
        .collect();
    assert!(
        lacking.is_empty(),
        "S3 lacks links the directory target holds (the killed writer's up to {hole_top}, S3's newest {s3_top}): {lacking:?}\n{}",
        z.logs()
    );
    let (ok, stdout, stderr) = z.owner_drill(&z.s3_url);
    assert!(ok, "the owner's drill of S3 failed: {stderr}\n{stdout}");
    assert!(
        z.logs().contains("copied from the other targets"),
        "no writer said it caught S3 up: {}",
        z.logs()
    );

    // One step beyond: the second writer killed with both targets up; the third goes on.
    let second = z.active().unwrap();
    drop(runs[second].take());
    wait_for(Duration::from_secs(60), "a third writer", || {
        z.active().is_some_and(|a| a != first && a != second)
    });
    let acknowledged = load.acknowledged();
    wait_for(Duration::from_secs(60), "20 writes more", || {
        load.acknowledged() >= acknowledged + 20
    });
    let result = load.stop();
    assert!(result.failures.is_empty(), "{:?}", result.failures);
    z.wait_shipped(z.revision(), Duration::from_secs(90));
    for url in [z.s3_url.clone(), z.file_url()] {
        let (ok, stdout, stderr) = z.owner_drill(&url);
        assert!(ok, "the owner's drill of {url} failed: {stderr}\n{stdout}");
    }
}

/// Lets the store go on when dropped, also when the test fails while it hangs.
struct Resumer<'a>(&'a BackupZone);

impl Drop for Resumer<'_> {
    fn drop(&mut self) {
        let _ = self.0.weed.resume();
    }
}
