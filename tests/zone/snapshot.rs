//! `zone-etcd snapshot save | list | prune` on a real 3-member zone (`addresses::SNAPSHOT` .1-3):
//! snapshots checked against etcd's integrity hash, private, with a manifest; taken from
//! another member when the local one is down; refused in one line when no member
//! answers; pruned to the newest K; and SIGKILL at many instants of a save never leaves a
//! partial snapshot under its final name.

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{mode, run, TestZone};
use zone_testkit::addresses;

fn snapshots(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "db"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn manifest(file: &Path) -> serde_json::Value {
    let text = fs::read_to_string(format!("{}.json", file.display())).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// `etcdutl snapshot status`: the revision and key count of a snapshot file, as etcd reads it.
fn etcdutl_status(file: &Path) -> serde_json::Value {
    let out = std::process::Command::new(common::bundled("etcdutl"))
        .args(["snapshot", "status", "-w", "json"])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn snapshots_are_saved_whole_listed_and_pruned() {
    let zone = TestZone::bootstrap("backup.zone", addresses::SNAPSHOT.subnet(), 3);
    let mut running = zone.launch_all();
    zone.wait_healthy(&mut running);
    let start = zone.revision();
    for i in 0..50 {
        let (ok, _, err) = zone.etcdctl(
            0,
            &zone.endpoints(),
            &["put", &format!("key/{i:02}"), "value"],
        );
        assert!(ok, "{err}");
    }
    let config = zone.config(0);
    let config = config.to_str().unwrap();
    let dir = zone.node_dir(0).join("state/snapshots");

    let (ok, out, err) = run(&["snapshot", "save", "--config", config]);
    assert!(ok, "{err}");
    let files = snapshots(&dir);
    assert_eq!(files.len(), 1, "{out}");
    let file = &files[0];
    assert!(out.contains(&file.display().to_string()), "{out}");
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(file), 0o600);
    let m = manifest(file);
    assert_eq!(m["zone"], "backup.zone");
    assert_eq!(m["member"], "node1.backup.zone");
    assert_eq!(
        m["size"].as_u64().unwrap(),
        fs::metadata(file).unwrap().len()
    );
    assert_eq!(m["etcd_version"], common::bundled_version());
    // etcd reads the same revision and every key (50 puts after the zone's start, and
    // whatever the keepers recorded meanwhile).
    let status = etcdutl_status(file);
    assert_eq!(status["revision"], m["revision"], "{status} {m}");
    assert!(m["revision"].as_i64().unwrap() >= start + 50, "{m}");
    let sha = {
        let bytes = fs::read(file).unwrap();
        ring::digest::digest(&ring::digest::SHA256, &bytes)
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert_eq!(m["sha256"], sha);

    // The local member down: the snapshot comes from another member.
    running.remove(0).stop();
    let (ok, _, err) = zone.etcdctl(1, &zone.client_url(1), &["put", "later", "x"]);
    assert!(ok, "{err}");
    std::thread::sleep(Duration::from_millis(1100)); // a new name (second resolution)
    let (ok, out, err) = run(&["snapshot", "save", "--config", config, "--keep", "2"]);
    assert!(ok, "{err}");
    let files = snapshots(&dir);
    assert_eq!(files.len(), 2, "{out}");
    let second = manifest(&files[1]);
    assert_ne!(second["member"], "node1.backup.zone", "{second}");
    let (first_revision, second_revision) = (
        m["revision"].as_i64().unwrap(),
        second["revision"].as_i64().unwrap(),
    );
    assert!(second_revision > first_revision, "{second} {m}");

    // list, table and JSON.
    let (ok, out, err) = run(&["snapshot", "list", "--config", config]);
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("revision {first_revision}"))
            && out.contains(&format!("revision {second_revision}")),
        "{out}"
    );
    let (ok, out, _) = run(&["snapshot", "list", "--config", config, "--json"]);
    assert!(ok);
    let listed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed["snapshots"].as_array().unwrap().len(), 2, "{listed}");

    // A third save, then prune --keep 2 and --keep 1: the newest stay.
    std::thread::sleep(Duration::from_millis(1100));
    let (ok, _, err) = run(&["snapshot", "save", "--config", config]);
    assert!(ok, "{err}");
    assert_eq!(snapshots(&dir).len(), 3);
    let (ok, out, err) = run(&["snapshot", "prune", "--config", config, "--keep", "2"]);
    assert!(ok, "{err}");
    let kept = snapshots(&dir);
    assert_eq!(kept.len(), 2, "{out}");
    assert!(!kept.contains(file), "the oldest must go: {kept:?}");
    let (ok, _, err) = run(&["snapshot", "prune", "--config", config, "--keep", "1"]);
    assert!(ok, "{err}");
    let last = snapshots(&dir);
    assert_eq!(last, vec![kept[1].clone()]);
    assert!(!Path::new(&format!("{}.json", kept[0].display())).exists());
    let (ok, _, err) = run(&["snapshot", "prune", "--config", config, "--keep", "0"]);
    assert!(
        !ok && err.contains("--keep: 0 would remove every snapshot"),
        "{err}"
    );

    // --out: an existing file is never replaced, nor a manifest alone under the name
    // (`mine2.db.json` without `mine2.db`).
    let save_to = |out: &Path| {
        let (ok, _, err) = run(&[
            "snapshot",
            "save",
            "--config",
            config,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(!ok, "a save over {} succeeded", out.display());
        err
    };
    let out_file = zone.path("mine.db");
    fs::write(&out_file, "precious").unwrap();
    let err = save_to(&out_file);
    assert!(err.contains("exists already"), "{err}");
    assert_eq!(fs::read_to_string(&out_file).unwrap(), "precious");
    let lone = zone.path("mine2.db");
    let lone_manifest = PathBuf::from(format!("{}.json", lone.display()));
    fs::write(&lone_manifest, "precious").unwrap();
    let err = save_to(&lone);
    assert!(err.contains("mine2.db.json: exists already"), "{err}");
    assert_eq!(fs::read_to_string(&lone_manifest).unwrap(), "precious");
    assert!(!lone.exists(), "a snapshot saved without its manifest");

    // No member answers: one line, nothing written.
    for member in running.drain(..) {
        member.stop();
    }
    let before = common::snapshot(&dir);
    let (ok, out, err) = run(&["snapshot", "save", "--config", config]);
    assert!(!ok, "{out}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].contains("no member of the zone's cluster answered"),
        "{err}"
    );
    assert_eq!(common::snapshot(&dir), before);
}

#[test]
fn a_save_killed_at_any_instant_never_leaves_a_partial_snapshot() {
    // One member on .10 (the other test uses .1-.3).
    let members = vec![(
        "node1.killsave.zone".to_string(),
        addresses::SNAPSHOT.ip(10),
    )];
    let text = common::zone_toml(
        "killsave.zone",
        &[("node1.killsave.zone", &addresses::SNAPSHOT.ip(10))],
    );
    let zone = TestZone::from_zone_file("killsave.zone", &text, members, 2380, 2379);
    let mut running = zone.launch_all();
    zone.wait_healthy(&mut running);
    // About 8 MiB of data, so a save takes a while.
    let value = "v".repeat(64 * 1024);
    for i in 0..128 {
        let (ok, _, err) = zone.etcdctl(
            0,
            &zone.client_url(0),
            &["put", &format!("big/{i:03}"), &value],
        );
        assert!(ok, "{err}");
    }
    let config = zone.config(0);
    let dir = zone.node_dir(0).join("state/snapshots");
    for delay_ms in (0..400).step_by(20) {
        let mut save = common::zone_etcd();
        save.args(["snapshot", "save", "--config", config.to_str().unwrap()]);
        let mut child = save
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = child.wait();
        // Whatever is under a final name is whole: etcd reads it, and its manifest (when
        // the kill came after the snapshot's rename but before the manifest's) matches.
        for file in snapshots(&dir) {
            etcdutl_status(&file);
            let manifest_file = PathBuf::from(format!("{}.json", file.display()));
            if manifest_file.exists() {
                let m = manifest(&file);
                assert_eq!(
                    m["size"].as_u64().unwrap(),
                    fs::metadata(&file).unwrap().len()
                );
            }
        }
    }
    // The re-run succeeds.
    let before = snapshots(&dir).len();
    std::thread::sleep(Duration::from_millis(1100));
    let (ok, _, err) = run(&["snapshot", "save", "--config", config.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert_eq!(snapshots(&dir).len(), before + 1);
    for member in running {
        member.stop();
    }
}

/// SIGCONTs a stopped member when dropped, also when the test fails.
struct Stopped(nix::unistd::Pid);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(self.0, nix::sys::signal::Signal::SIGCONT);
    }
}

/// A member that stops sending in the middle of a snapshot (its etcd SIGSTOPped at the
/// first chunk) fails the snapshot once it has sent nothing for the stall limit, instead
/// of holding the caller for ever (a backup writer's term, a `snapshot save`): a channel's
/// timeout ends at the response's headers, not at the end of a stream. Once the member
/// goes on, a snapshot is whole again.
#[test]
fn a_member_that_stalls_mid_snapshot_is_given_up_on() {
    use zone_etcd_kit::cluster_api::{self, Integrity};
    let zone = TestZone::bootstrap("stall.zone", addresses::SNAPSHOT_STALL.subnet(), 1);
    let mut running = zone.launch_all();
    zone.wait_healthy(&mut running);
    let member = common::Identity {
        chain: zone.tls(0, "client.crt"),
        key: zone.tls(0, "client.key"),
    };
    let creds = common::grpc_load::credentials(&zone.tls(0, "ca.crt"), &member);
    let endpoint = zone.client_urls()[0].clone();
    let runtime = cluster_api::runtime().unwrap();
    // 24 MiB: far more than HTTP/2's windows and the sockets' buffers hold, so the
    // stream stalls with the member.
    runtime.block_on(async {
        let mut client = cluster_api::connect(&endpoint, &creds).await.unwrap();
        for i in 0..24u8 {
            let value = vec![b'a' + i % 26; 1 << 20];
            client
                .put(format!("big/{i:02}"), value, None)
                .await
                .unwrap();
        }
    });
    let pid = nix::unistd::Pid::from_raw(running[0].pid() as i32);
    let stall = Duration::from_secs(3);
    let mut stopped = None;
    let limit = stall * 5;
    let result = runtime.block_on(async {
        tokio::time::timeout(
            limit,
            cluster_api::snapshot_stalled_after(
                &endpoint,
                &creds,
                &mut std::io::sink(),
                |_| {
                    if stopped.is_none() {
                        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
                        stopped = Some(Stopped(pid));
                    }
                },
                stall,
            ),
        )
        .await
    });
    assert!(stopped.is_some(), "the member sent no chunk");
    let problem = result
        .unwrap_or_else(|_| panic!("still streaming from a stopped member after {limit:?}"))
        .expect_err("a snapshot from a stopped member succeeded");
    assert!(problem.contains("stalled"), "{problem}");
    drop(stopped);
    let mut check = Integrity::default();
    runtime
        .block_on(cluster_api::snapshot(
            &endpoint,
            &creds,
            &mut std::io::sink(),
            |chunk| check.update(chunk),
        ))
        .unwrap();
    let (size, _) = check.finish().unwrap();
    assert!(size > 24 << 20, "a snapshot of {size} bytes");
}
