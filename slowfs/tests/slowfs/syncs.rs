//! The slowness: syncs wait the delay (a lower bound only: upper timing bounds are flaky
//! on a loaded machine), reach the backing directory, are counted, and hold up nothing
//! but themselves.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::mounted::{mount_type, Mounted};

/// Ten records, each written then fdatasync'ed; the time each took.
fn ten_synced_records(m: &Mounted) -> Vec<Duration> {
    let mut wal = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(m.mnt.join("wal"))
        .unwrap();
    (0..10)
        .map(|i| {
            let started = Instant::now();
            wal.write_all(format!("record {i}\n").as_bytes()).unwrap();
            wal.sync_data().unwrap();
            started.elapsed()
        })
        .collect()
}

fn records() -> String {
    (0..10).map(|i| format!("record {i}\n")).collect()
}

#[test]
fn each_fdatasync_waits_the_delay_and_the_data_is_in_the_backing_dir() {
    let mut m = Mounted::new(40);
    assert_eq!(mount_type(&m.mnt).as_deref(), Some("fuse.zone-slowfs"));
    let took = ten_synced_records(&m);
    for (i, t) in took.iter().enumerate() {
        assert!(
            *t >= Duration::from_millis(40),
            "write and fdatasync {i} took {t:?}, under the 40 ms delay: {took:?}"
        );
    }
    assert_eq!(
        fs::read_to_string(m.backing.join("wal")).unwrap(),
        records()
    );
    let log = m.log();
    assert!(
        log.lines()
            .any(|l| l.starts_with("mounted /") && l.ends_with("/mnt")),
        "{log}"
    );
    // fsync (not only fdatasync) and a directory's sync wait too.
    let started = Instant::now();
    File::open(&m.mnt).unwrap().sync_all().unwrap();
    File::open(m.mnt.join("wal")).unwrap().sync_all().unwrap();
    assert!(started.elapsed() >= Duration::from_millis(80));
    assert_eq!(m.delayed(), 12);
}

#[test]
fn without_a_delay_syncs_still_sync_and_are_counted() {
    let mut m = Mounted::new(0);
    let took = ten_synced_records(&m);
    eprintln!("10 writes and fdatasyncs without a delay took {took:?}");
    assert_eq!(
        fs::read_to_string(m.backing.join("wal")).unwrap(),
        records()
    );
    assert_eq!(m.delayed(), 10);
}

#[test]
fn a_sleeping_fsync_holds_up_no_read_of_another_file() {
    // More fsyncs at once than the session has threads: were a sync to sleep on a
    // session thread, every thread would sleep and the read would wait for them.
    const SYNCS: usize = 8;
    let m = Mounted::new(500);
    fs::write(m.mnt.join("other"), "read me").unwrap();
    let (tx, rx) = mpsc::channel();
    let mut syncing = Vec::new();
    for i in 0..SYNCS {
        let path = m.mnt.join(format!("slow-{i}"));
        fs::write(&path, "sync me").unwrap();
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        let tx = tx.clone();
        syncing.push(std::thread::spawn(move || {
            tx.send(format!("started {i}")).unwrap();
            file.sync_all().unwrap();
            tx.send(format!("synced {i}")).unwrap();
        }));
    }
    for _ in 0..SYNCS {
        assert!(rx.recv().unwrap().starts_with("started"));
    }
    // A head start for the syncs to reach zone-slowfs (not a bound on anything).
    std::thread::sleep(Duration::from_millis(100));
    let mut read = String::new();
    File::open(m.mnt.join("other"))
        .unwrap()
        .read_to_string(&mut read)
        .unwrap();
    assert_eq!(read, "read me");
    tx.send("read".to_string()).unwrap();
    let order: Vec<String> = (0..=SYNCS).map(|_| rx.recv().unwrap()).collect();
    assert_eq!(order[0], "read", "the read waited for the syncs: {order:?}");
    for t in syncing {
        t.join().unwrap();
    }
}

#[test]
fn a_bad_argument_is_named_on_one_line_with_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    for (args, named) in [
        (vec![d, d, "--fsync-delay-ms", "soon"], "soon"),
        (vec![d, d, "--fsync-delay-ms"], "--fsync-delay-ms"),
        (vec![d, d, "--fast", "--fsync-delay-ms", "1"], "--fast"),
        (vec![d, "--fsync-delay-ms", "1"], "MOUNTPOINT"),
        (
            vec![d, "/nonexistent-slowfs", "--fsync-delay-ms", "1"],
            "/nonexistent-slowfs",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_zone-slowfs"))
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(named), "{args:?}: {stderr}");
    }
}
