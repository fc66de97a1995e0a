//! The way back from a lost quorum, on real etcd processes (`addresses::RECOVERY`), following the
//! README's disaster-recovery procedure: a snapshot, more writes, two of three members
//! killed with their data directories deleted; `restore` + `launch` on each member bring
//! back a healthy 3-member zone holding exactly the snapshot's keys. The third member's
//! old data is refused, naming both clusters; a watch at an old revision gets
//! "compacted". And the refusals: a live quorum, a truncated or changed snapshot, another
//! zone's snapshot, each in one line with nothing changed.

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{one_error_line, run, snapshot, TestZone};
use zone_testkit::addresses;

/// `snapshot save` from member `index`, copied to `<zone dir>/backup/` as an owner would
/// copy it off the machine; returns the copy.
fn save_and_copy(zone: &TestZone, index: usize) -> PathBuf {
    let config = zone.config(index);
    let (ok, out, err) = run(&["snapshot", "save", "--config", config.to_str().unwrap()]);
    assert!(ok, "{err}");
    let saved = PathBuf::from(
        out.split(": ")
            .nth(1)
            .and_then(|rest| rest.split(" (").next())
            .unwrap_or_else(|| panic!("no path in {out}")),
    );
    let backup = zone.path("backup");
    fs::create_dir_all(&backup).unwrap();
    let copy = backup.join(saved.file_name().unwrap());
    fs::copy(&saved, &copy).unwrap();
    fs::copy(
        format!("{}.json", saved.display()),
        format!("{}.json", copy.display()),
    )
    .unwrap();
    copy
}

/// Member `index`'s keys, but zone-etcd's own (each member's keeper records its release
/// under `zone-etcd/releases/`).
fn keys(zone: &TestZone, index: usize) -> Vec<String> {
    let (ok, out, err) = zone.etcdctl(
        index,
        &zone.client_url(index),
        &["get", "", "--prefix", "--keys-only"],
    );
    assert!(ok, "{err}");
    out.lines()
        .filter(|l| !l.is_empty() && !l.starts_with("zone-etcd/"))
        .map(str::to_string)
        .collect()
}

fn restore(zone: &TestZone, index: usize, from: &Path) -> (bool, String, String) {
    run(&[
        "restore",
        "--config",
        zone.config(index).to_str().unwrap(),
        "--from",
        from.to_str().unwrap(),
    ])
}

#[test]
fn a_zone_that_lost_two_of_three_members_comes_back_from_a_snapshot() {
    let zone = TestZone::bootstrap("lost.zone", addresses::RECOVERY.subnet(), 3);
    let mut running = zone.launch_all();
    zone.wait_healthy(&mut running);
    for i in 0..20 {
        let (ok, _, err) =
            zone.etcdctl(0, &zone.endpoints(), &["put", &format!("a/{i:02}"), "kept"]);
        assert!(ok, "{err}");
    }
    let backup = save_and_copy(&zone, 0);
    for i in 0..10 {
        let (ok, _, err) =
            zone.etcdctl(0, &zone.endpoints(), &["put", &format!("b/{i:02}"), "lost"]);
        assert!(ok, "{err}");
    }
    let (_, status, _) = zone.status(0);
    let old_cluster = status["cluster_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    // Disaster: node1 and node2 die with their disks; node3 runs on alone, no quorum.
    let node3 = running.pop().unwrap();
    for member in running.drain(..) {
        drop(member); // SIGKILL
    }
    for i in 0..2 {
        fs::remove_dir_all(zone.node_dir(i).join("state/data")).unwrap();
    }

    // The procedure: restore + launch on node1, then node2.
    let mut restored = Vec::new();
    for i in 0..2 {
        let (ok, out, err) = restore(&zone, i, &backup);
        assert!(ok, "restore on node{}: {err}\n{out}", i + 1);
        assert!(out.contains("next: zone-etcd launch"), "{out}");
        restored.push(zone.launch(i));
    }
    let (ok, _, err) = zone.etcdctl(
        0,
        &format!("{},{}", zone.client_url(0), zone.client_url(1)),
        &["endpoint", "health"],
    );
    if !ok {
        common::wait_for(
            std::time::Duration::from_secs(30),
            "node1 and node2 healthy",
            || {
                zone.etcdctl(
                    0,
                    &format!("{},{}", zone.client_url(0), zone.client_url(1)),
                    &["endpoint", "health"],
                )
                .0
            },
        );
    }
    let _ = err;

    // node3 still holds the old cluster's data: stopped and launched again, it is refused.
    node3.stop();
    let data3 = zone.node_dir(2).join("state/data");
    let before = snapshot(&data3);
    let (ok, _, err) = run(&["launch", "--config", zone.config(2).to_str().unwrap()]);
    assert!(!ok, "the old data must not start");
    let line = one_error_line(&err);
    assert!(
        line.contains("restored from a snapshot")
            && line.contains("zone-etcd restore")
            && line.contains(&old_cluster),
        "{line}"
    );
    assert_eq!(snapshot(&data3), before, "the old data is left as it was");

    // The fix: restore there too; the old data is moved aside, never deleted.
    let (ok, out, err) = restore(&zone, 2, &backup);
    assert!(ok, "restore on node3: {err}\n{out}");
    let aside: Vec<PathBuf> = fs::read_dir(zone.node_dir(2).join("state"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("data.before-restore-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(snapshot(&aside[0]), before);
    restored.push(zone.launch(2));
    zone.wait_healthy(&mut restored);
    let (ok, status, err) = zone.status(0);
    assert!(ok, "{err}\n{status}");
    assert_ne!(
        status["cluster_id"].as_str().unwrap_or_default(),
        old_cluster
    );

    // Exactly the snapshot's keys, on every member.
    let expected: Vec<String> = (0..20).map(|i| format!("a/{i:02}")).collect();
    for i in 0..3 {
        assert_eq!(keys(&zone, i), expected, "member {i}");
    }
    // A watcher of the old cluster resuming at its last revision is told to re-list.
    // etcdctl watch ends when the server cancels the watch; a bound in case it would not.
    let mut watch = zone.etcdctl_command(0, &zone.endpoints());
    watch.args(["watch", "a/00", "--rev=31"]);
    let out = Command::new("timeout")
        .arg("10")
        .arg(watch.get_program())
        .args(watch.get_args())
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("compacted"), "{said}");
    // Writes go on.
    let (ok, _, err) = zone.etcdctl(0, &zone.endpoints(), &["put", "after", "restore"]);
    assert!(ok, "{err}");
    for member in restored {
        member.stop();
    }
}

#[test]
fn restore_refuses_a_live_quorum_and_bad_snapshots_changing_nothing() {
    let members = vec![
        ("node1.alive.zone".to_string(), addresses::RECOVERY.ip(11)),
        ("node2.alive.zone".to_string(), addresses::RECOVERY.ip(12)),
        ("node3.alive.zone".to_string(), addresses::RECOVERY.ip(13)),
    ];
    let pairs: Vec<(&str, &str)> = members
        .iter()
        .map(|(n, a)| (n.as_str(), a.as_str()))
        .collect();
    let text = common::zone_toml("alive.zone", &pairs);
    let zone = TestZone::from_zone_file("alive.zone", &text, members, 2380, 2379);
    let mut running = zone.launch_all();
    zone.wait_healthy(&mut running);
    let (ok, _, err) = zone.etcdctl(0, &zone.endpoints(), &["put", "k", "v"]);
    assert!(ok, "{err}");
    let backup = save_and_copy(&zone, 0);
    let state = zone.node_dir(2).join("state");

    // A live quorum: refused, even with this member stopped.
    running.pop().unwrap().stop();
    let before = snapshot(&state);
    let (ok, _, err) = restore(&zone, 2, &backup);
    assert!(!ok);
    let line = one_error_line(&err);
    assert!(
        line.contains("still has a quorum") && line.contains("--force"),
        "{line}"
    );
    assert_eq!(snapshot(&state), before);

    // A running local member: refused.
    let (ok, _, err) = restore(&zone, 0, &backup);
    assert!(!ok);
    assert!(one_error_line(&err).contains("is running"), "{err}");

    // Damaged snapshots.
    let bytes = fs::read(&backup).unwrap();
    let manifest = fs::read(format!("{}.json", backup.display())).unwrap();
    let bad = |name: &str, contents: &[u8], manifest: &[u8]| {
        let file = zone.path(name);
        fs::write(&file, contents).unwrap();
        fs::write(format!("{}.json", file.display()), manifest).unwrap();
        file
    };
    let truncated = bad("truncated.db", &bytes[..bytes.len() / 2], &manifest);
    let mut flipped_bytes = bytes.clone();
    flipped_bytes[bytes.len() / 3] ^= 0x10;
    let flipped = bad("flipped.db", &flipped_bytes, &manifest);
    let no_manifest = zone.path("alone.db");
    fs::write(&no_manifest, &bytes).unwrap();
    let other_zone = {
        let text = String::from_utf8(manifest.clone())
            .unwrap()
            .replace("\"alive.zone\"", "\"other.zone\"");
        bad("other.db", &bytes, text.as_bytes())
    };
    for (file, words) in [
        (&truncated, "integrity hash"),
        (&flipped, "integrity hash"),
        (&no_manifest, "no usable manifest"),
        (&other_zone, "a snapshot of zone \"other.zone\""),
    ] {
        let (ok, _, err) = restore(&zone, 2, file);
        assert!(!ok, "{}", file.display());
        let line = one_error_line(&err);
        assert!(
            line.contains(words) && line.contains(&file.display().to_string()),
            "{line}"
        );
        assert_eq!(snapshot(&state), before, "{}", file.display());
    }
    for member in running {
        member.stop();
    }
}

#[test]
fn a_member_that_lost_its_disk_comes_back_with_join_replace_under_writes() {
    let members = vec![
        ("node1.disk.zone".to_string(), addresses::RECOVERY.ip(21)),
        ("node2.disk.zone".to_string(), addresses::RECOVERY.ip(22)),
        ("node3.disk.zone".to_string(), addresses::RECOVERY.ip(23)),
    ];
    let pairs: Vec<(&str, &str)> = members
        .iter()
        .map(|(n, a)| (n.as_str(), a.as_str()))
        .collect();
    let text = common::zone_toml("disk.zone", &pairs);
    let zone = TestZone::from_zone_file("disk.zone", &text, members, 2380, 2379);
    let mut running = zone.launch_all();
    zone.wait_healthy(&mut running);
    for i in 0..30 {
        let (ok, _, err) = zone.etcdctl(
            0,
            &zone.endpoints(),
            &["put", &format!("before/{i:02}"), "x"],
        );
        assert!(ok, "{err}");
    }
    let (_, status, _) = zone.status(0);
    let old_id = status["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "node3.disk.zone")
        .map(|m| m["id"].clone())
        .unwrap();

    // Another copy of node3's bundle (fresh state) while node3 still runs: not lost.
    let copy = zone.path("node3-copy");
    fs::create_dir_all(&copy).unwrap();
    for item in ["node.toml", "pki"] {
        let status = Command::new("cp")
            .arg("-a")
            .arg(zone.node_dir(2).join(item))
            .arg(&copy)
            .status()
            .unwrap();
        assert!(status.success());
    }
    let copy_config = copy.join("node.toml");
    let (ok, _, err) = run(&[
        "join",
        "--replace",
        "--config",
        copy_config.to_str().unwrap(),
    ]);
    assert!(!ok);
    let line = one_error_line(&err);
    assert!(
        line.contains("still answers") && line.contains("not replaced"),
        "{line}"
    );

    // node3's disk is lost.
    drop(running.pop().unwrap()); // SIGKILL
    fs::remove_dir_all(zone.node_dir(2).join("state/data")).unwrap();
    let load = zone.failover_load(&[], "during", std::time::Duration::from_millis(40));
    std::thread::sleep(std::time::Duration::from_millis(500));
    // launch refuses, naming the fix.
    let (ok, _, err) = run(&["launch", "--config", zone.config(2).to_str().unwrap()]);
    assert!(!ok, "a blank member must not start under the old identity");
    let line = one_error_line(&err);
    assert!(
        line.contains("holds no member") && line.contains("join --replace"),
        "{line}"
    );
    // The fix.
    let mut join = common::zone_etcd();
    join.args([
        "join",
        "--replace",
        "--config",
        zone.config(2).to_str().unwrap(),
    ]);
    let mut node3 = common::Running::spawn(join, &zone.path("node3.join.log"));
    // join execs etcd: wait for node3 to be a voter with a new ID.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (_, status, _) = zone.status(0);
        let promoted = status["members"].as_array().is_some_and(|members| {
            members.iter().any(|m| {
                m["name"] == "node3.disk.zone"
                    && m["role"] == "voter"
                    && m["id"] != old_id
                    && m["healthy"] == true
            })
        });
        if promoted {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "node3 not promoted after 60 s: {status}\n{}",
            node3.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    // Writes go on with node3 a voter again: counted, not timed (a clean run on a busy
    // machine acknowledged 3 writes in all with a 3 s sleep here, the writers having
    // waited out the leader election of node3's kill and the membership changes).
    let at_promotion = load.acknowledged();
    common::wait_for(
        std::time::Duration::from_secs(60),
        "30 writes acknowledged with node3 a voter again",
        || load.acknowledged() >= at_promotion + 30,
    );
    let result = load.stop();
    assert!(result.failures.is_empty(), "{:?}", result.failures);
    assert!(
        result.acknowledged.len() > 10,
        "{}",
        result.acknowledged.len()
    );
    // node3 holds every key: the old ones and every acknowledged write.
    let stored = keys(&zone, 2);
    for i in 0..30 {
        assert!(stored.contains(&format!("before/{i:02}")), "before/{i:02}");
    }
    for key in &result.acknowledged {
        assert!(stored.contains(key), "{key} missing on node3");
    }
    let (ok, status, err) = zone.status(0);
    assert!(ok, "{err}\n{status}");
    assert!(node3.child.try_wait().unwrap().is_none(), "{}", node3.log());
    node3.stop();
    for member in running {
        member.stop();
    }
}

/// Each data directory under `state`: (path, the cluster its member belongs to).
fn data_dirs(state: &Path) -> Vec<(PathBuf, u64)> {
    let mut found: Vec<(PathBuf, u64)> = fs::read_dir(state)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name == "data" || name.starts_with("data.before-restore-")
        })
        .map(|p| {
            let member = zone_etcd_kit::wal::local_member(&p)
                .unwrap()
                .unwrap_or_else(|| {
                    panic!("{} holds no member: a partial data directory", p.display())
                });
            (p, member.cluster_id)
        })
        .collect();
    found.sort();
    found
}

/// The pid of `parent`'s child whose command is `name`, waited for up to 30 s (None if
/// the parent ended or none came).
fn wait_for_child_named(parent: u32, name: &str) -> Option<i32> {
    let children = format!("/proc/{parent}/task/{parent}/children");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        let Ok(list) = fs::read_to_string(&children) else {
            return None;
        };
        let found = list.split_whitespace().find(|pid| {
            fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim() == name)
        });
        if let Some(pid) = found {
            return pid.parse().ok();
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    None
}

#[test]
fn a_restore_killed_at_any_instant_loses_no_data_directory_and_completes_when_run_again() {
    let members = vec![("node1.crash.zone".to_string(), addresses::RECOVERY.ip(30))];
    let text = common::zone_toml(
        "crash.zone",
        &[("node1.crash.zone", &addresses::RECOVERY.ip(30))],
    );
    let zone = TestZone::from_zone_file("crash.zone", &text, members, 2380, 2379);
    let mut running = zone.launch_all();
    zone.wait_healthy(&mut running);
    for i in 0..200 {
        let (ok, _, err) = zone.etcdctl(
            0,
            &zone.client_url(0),
            &["put", &format!("k/{i:03}"), &"v".repeat(4096)],
        );
        assert!(ok, "{err}");
    }
    let backup = save_and_copy(&zone, 0);
    running.pop().unwrap().stop();
    let state = zone.node_dir(0).join("state");
    let original = data_dirs(&state);
    assert_eq!(original.len(), 1);
    let original_cluster = original[0].1;
    let config = zone.config(0);
    for delay_ms in (0..600).step_by(30) {
        let mut restore = common::zone_etcd();
        restore.args([
            "restore",
            "--config",
            config.to_str().unwrap(),
            "--from",
            backup.to_str().unwrap(),
        ]);
        let mut child = restore
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = child.wait();
        // Every data directory there is whole, and the original one is never lost.
        let dirs = data_dirs(&state);
        assert!(
            dirs.iter().any(|(_, cluster)| *cluster == original_cluster),
            "the original data is gone after a kill at {delay_ms} ms: {dirs:?}"
        );
    }
    // One step beyond: a restore killed while its etcdutl is stopped mid-write (as a busy
    // machine leaves it behind). The etcdutl dies with the restore, and the next restore
    // clears no staging directory a process still writes to.
    let mut child = common::zone_etcd()
        .args(["restore", "--config", config.to_str().unwrap()])
        .args(["--from", backup.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let etcdutl = wait_for_child_named(child.id(), "etcdutl");
    let etcdutl = etcdutl.map(|pid| {
        let pid = nix::unistd::Pid::from_raw(pid);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP);
        pid
    });
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = child.wait();
    let etcdutl = etcdutl.expect("the restore ran etcdutl within 30 s");
    let outlived = (0..50).all(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        zone_node::detached::running(etcdutl.as_raw() as u32)
    });
    if outlived {
        let _ = nix::sys::signal::kill(etcdutl, nix::sys::signal::Signal::SIGKILL);
    }
    assert!(
        !outlived,
        "etcdutl {etcdutl} outlived its killed restore by 5 s"
    );
    // Run again to the end: it completes, and the member serves the snapshot's keys.
    let (ok, out, err) = restore(&zone, 0, &backup);
    assert!(ok, "{err}\n{out}");
    let leftovers: Vec<String> = fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".restore-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let mut restored = vec![zone.launch(0)];
    zone.wait_healthy(&mut restored);
    assert_eq!(keys(&zone, 0).len(), 200);
    for member in restored {
        member.stop();
    }
}
