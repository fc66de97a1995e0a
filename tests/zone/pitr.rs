//! Back to any point (issue 23) end to end, with real processes: a 3-member zone under a
//! writer, `backup run` shipping to SeaweedFS (S3) and a directory target, then every
//! member's data destroyed and the zone rebuilt from the target alone with `backup export`
//! and `restore`; and every refusal of `backup export`, each one line with nothing written.
//! Zones on `addresses::PITR` and `addresses::PITR_OTHER`; SeaweedFS on `addresses::SEAWEED`
//! .20-29.

use crate::common;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::backup::{delta_lines, manifest_bodies, now_ms, tool, BackupZone};
use common::{wait_for, zone_etcd, Running, TestZone};
use zone_backup::pitr::format_time;
use zone_testkit::addresses;

/// Fulls often enough that a point lies after several of them, deltas every second; etcd's
/// own compaction far off, so the cluster's history at any revision of the test is whole.
const POLICY: &str = "full_every = \"6s\"\ndelta_every = \"1s\"\n\n[settings]\nauto_compaction_mode = \"periodic\"\nauto_compaction_retention = \"1h\"";

/// A write sent after T is received after T (same clock), so it cannot be in the point;
/// 1 s covers the millisecond rounding of T and of the receive times.
const SEND_SLACK: Duration = Duration::from_secs(1);

/// How many writes the test waits for on each side of T (more than the 100 it checks, so
/// those in flight at T do not decide it).
const WRITES_EACH_SIDE: usize = 130;

/// `zone-etcd backup export ARGS` with the store's credentials: (success, stdout, stderr).
fn export(z: &BackupZone, args: &[OsString]) -> (bool, String, String) {
    let out = z
        .command()
        .args(["backup", "export"])
        .args(args)
        .output()
        .expect("zone-etcd runs");
    common::outcome(out)
}

/// The owner's export: `--from URL POINT --out OUT --ca CA --identity IDENTITY` (and the
/// store's endpoint for an s3:// URL).
fn owner_export(
    z: &BackupZone,
    url: &str,
    point: &[&str],
    out: &Path,
    ca: &Path,
    identity: &Path,
) -> (bool, String, String) {
    let mut args: Vec<OsString> = vec!["--from".into(), url.into()];
    args.extend(point.iter().map(OsString::from));
    args.extend([
        "--out".into(),
        out.into(),
        "--ca".into(),
        ca.into(),
        "--identity".into(),
        identity.into(),
    ]);
    if url.starts_with("s3://") {
        args.extend(["--endpoint".into(), z.weed.endpoint().into()]);
    }
    export(z, &args)
}

/// `etcdutl snapshot status`: (revision, total keys) as etcd reads the file.
fn snapshot_status(file: &Path) -> (i64, i64) {
    let out = Command::new(common::bundled("etcdutl"))
        .args(["snapshot", "status", "-w", "json"])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "etcdutl snapshot status {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        json["revision"].as_i64().unwrap(),
        json["totalKey"].as_i64().unwrap(),
    )
}

/// The manifest `restore` reads beside a snapshot.
fn manifest(file: &Path) -> serde_json::Value {
    let path = format!("{}.json", file.display());
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// `etcdctl endpoint hashkv --rev REV -w json` output: (hash, compact revision).
fn parse_hashkv(out: &str) -> (u64, i64) {
    let json: serde_json::Value = serde_json::from_str(out)
        .unwrap_or_else(|e| panic!("endpoint hashkv printed no JSON ({e}): {out}"));
    let hashkv = &json[0]["HashKV"];
    (
        hashkv["hash"]
            .as_u64()
            .unwrap_or_else(|| panic!("no hash: {out}")),
        hashkv["compact_revision"].as_i64().unwrap_or(0),
    )
}

/// The time each revision was received, as the delta segments under `dir` (a directory
/// target) record it, read with Debian's `age` and the owner's identity.
fn receive_times(dir: &Path, identity: &Path) -> BTreeMap<i64, i64> {
    delta_lines(dir, identity)
        .iter()
        .map(|v| {
            (
                v["revision"].as_i64().unwrap(),
                v["time_ms"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// Unix ms as RFC 3339, to the millisecond, as an owner would write it.
fn rfc3339(ms: i64) -> String {
    format_time(ms)
}

fn wall_ms(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// A point as a refusal line may name it: its revision (a number of its own, not digits of
/// another), or its time (RFC 3339, UTC, to the second).
fn names_point(line: &str, revision: i64, time_ms: i64) -> bool {
    let time = rfc3339(time_ms);
    names_number(line, revision) || line.contains(&time[..19.min(time.len())])
}

/// `line` holds `n` as a whole number (not inside a longer run of digits).
fn names_number(line: &str, n: i64) -> bool {
    let digits = n.to_string();
    let bytes = line.as_bytes();
    line.match_indices(&digits).any(|(at, _)| {
        let before = at.checked_sub(1).map(|i| bytes[i]);
        let after = bytes.get(at + digits.len()).copied();
        !before.is_some_and(|b| b.is_ascii_digit()) && !after.is_some_and(|b| b.is_ascii_digit())
    })
}

/// Every key under `prefix` in the zone, as (key, mod_revision), through member `index`.
fn keys_under(zone: &TestZone, index: usize, prefix: &str) -> BTreeMap<String, i64> {
    use base64::Engine;
    let out = zone
        .etcdctl_command(index, &zone.endpoints())
        .args([
            "--command-timeout=20s",
            "get",
            prefix,
            "--prefix",
            "-w",
            "json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "etcdctl get {prefix} --prefix: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    json["kvs"]
        .as_array()
        .map(|kvs| {
            kvs.iter()
                .map(|kv| {
                    let raw = base64::engine::general_purpose::STANDARD
                        .decode(kv["key"].as_str().unwrap())
                        .unwrap();
                    (
                        String::from_utf8(raw).unwrap(),
                        kv["mod_revision"].as_i64().unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// An etcd of its own on `ip` over a data directory restored from `snapshot` with etcdutl
/// (no revision bump): the snapshot exactly as etcd reads it, read as the guide's
/// `read-restored` recipe says (etcd's root, by a certificate from `ca_dir`'s client CA:
/// the zone's auth is on in its snapshots), with the etcdctl that does.
fn throwaway_etcd(
    snapshot: &Path,
    work: &Path,
    ip: &str,
    ca_dir: &Path,
) -> (Running, impl Fn(&[&str]) -> std::process::Output) {
    let data = work.join("throwaway.etcd");
    let out = Command::new(common::bundled("etcdutl"))
        .args(["snapshot", "restore"])
        .arg(snapshot)
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "etcdutl snapshot restore {}: {}",
        snapshot.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let (mut etcd, etcdctl) = common::backup::read_restored(&data, ip, ca_dir, work);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(status)) = etcd.child.try_wait() {
            panic!("the throwaway etcd exited ({status}):\n{}", etcd.log());
        }
        if etcdctl(&["endpoint", "health"]).status.success() {
            return (etcd, etcdctl);
        }
        assert!(
            Instant::now() < deadline,
            "the throwaway etcd on {ip} not healthy after 30 s:\n{}",
            etcd.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The "Done means": a zone under a writer, every member's data destroyed, and the
/// zone rebuilt from the S3 target alone (new bundles, new data directories, the owner's CA
/// and identity) at a time in the middle of the writes holds exactly the writes up to the
/// revision received at that time, key by key against the writer's own log (the point
/// checked against the chain's receive times and the writer's clock); backups start again
/// on the restored zone; and an export at a revision has the original cluster's HashKV at
/// that revision.
#[test]
fn export_at_a_time_then_restore_holds_exactly_the_writes_up_to_it() {
    let mut z = BackupZone::start(
        "pitr.zone",
        addresses::PITR.subnet(),
        &addresses::SEAWEED.ip(20),
        POLICY,
    );
    let mut runs: Vec<_> = (0..3).map(|i| Some(z.backup_run(i))).collect();
    wait_for(Duration::from_secs(60), "an active writer", || {
        z.active().is_some()
    });
    z.wait_shipped(z.revision(), Duration::from_secs(60));

    let load = z
        .zone
        .failover_load(&[], "pitr/a", Duration::from_millis(40));
    std::thread::sleep(Duration::from_secs(3));
    // HashKV at a revision in the middle of the writes, on every member (they agree),
    // before any compaction.
    let hash_rev = z.revision();
    let mut original = None;
    for i in 0..3 {
        let (ok, out, err) = z.zone.etcdctl(
            0,
            &z.zone.client_url(i),
            &[
                "endpoint",
                "hashkv",
                "--rev",
                &hash_rev.to_string(),
                "-w",
                "json",
            ],
        );
        assert!(ok, "endpoint hashkv on member {i}: {err}");
        let h = parse_hashkv(&out);
        assert_eq!(*original.get_or_insert(h), h, "the members' HashKV differ");
    }
    let (original_hash, original_compacted) = original.unwrap();
    // T lies between two runs of writes of at least WRITES_EACH_SIDE each, counted, not
    // timed: a busy machine acknowledged 130 and 72 in the 6 s and 5 s the test once slept.
    // Between them a pause in which every target shipped the first run: so every write
    // of the first run was received before T, however late a busy machine's watch
    // received it (a red clean run once saw a write acknowledged 3.5 s before T received
    // after it), and which side of T a write falls on is the chain's to say alone.
    std::thread::sleep(Duration::from_secs(3));
    wait_for(Duration::from_secs(120), "writes before T", || {
        load.acknowledged() >= WRITES_EACH_SIDE
    });
    let before = load.stop();
    z.wait_shipped(z.revision(), Duration::from_secs(90));
    let t_wall = SystemTime::now();
    let t_instant = Instant::now();
    let t_ms = wall_ms(t_wall);
    std::thread::sleep(SEND_SLACK + Duration::from_millis(100));
    let load = z
        .zone
        .failover_load(&[], "pitr/b", Duration::from_millis(40));
    wait_for(Duration::from_secs(120), "writes after T", || {
        load.acknowledged() >= WRITES_EACH_SIDE
    });
    let after = load.stop();
    let before_t = before.acknowledged.len();
    let mut log = before;
    log.acknowledged.extend(after.acknowledged);
    log.acknowledged_at.extend(after.acknowledged_at);
    log.sent_at.extend(after.sent_at);
    log.revisions.extend(after.revisions);
    log.failures.extend(after.failures);
    assert!(
        log.failures.is_empty(),
        "a healthy zone failed writes (each would blur the log): {:?}",
        &log.failures[..log.failures.len().min(5)]
    );
    assert!(
        log.revisions.iter().all(|r| *r > 0),
        "a write was acknowledged without a revision"
    );
    let end = z.revision();
    z.wait_shipped(end, Duration::from_secs(60));
    eprintln!(
        "{} writes; HashKV at {hash_rev}; T = {} ; the zone ends at {end}",
        log.acknowledged.len(),
        rfc3339(t_ms)
    );

    // The house burns down: every process killed by its PID, every node's bundle, state,
    // data and local chain moved away.
    for run in runs.iter_mut() {
        drop(run.take());
    }
    for member in z.members.drain(..) {
        drop(member);
    }
    fs::rename(z.zone.path("nodes"), z.zone.path("nodes.burned")).unwrap();
    fs::create_dir(z.zone.path("nodes")).unwrap();
    // New machines: each member's bundle again, from the owner's CA and zone file.
    for (i, (name, _)) in z.zone.members.iter().enumerate() {
        common::run_ok(&common::activate_args(
            z.zone.path("ca").to_str().unwrap(),
            z.zone.path("zone.toml").to_str().unwrap(),
            name,
            z.zone.node_dir(i).to_str().unwrap(),
        ));
    }

    // From the target alone, on the owner's machine.
    let work = tempfile::tempdir().unwrap();
    let ca = z.zone.path("ca");
    let at_t = work.path().join("at-t.db");
    let (ok, stdout, stderr) = owner_export(
        &z,
        &z.s3_url,
        &["--at", &rfc3339(t_ms)],
        &at_t,
        &ca,
        &z.owner_key(),
    );
    assert!(
        ok,
        "backup export --at {}: {stderr}\n{stdout}",
        rfc3339(t_ms)
    );
    eprintln!("export --at: {stdout}{stderr}");
    // The zone held leased keys at T (the backup writer's election key): one line says
    // they come back without their lease.
    let said = format!("{stdout}{stderr}");
    assert_eq!(
        said.lines().filter(|l| l.contains("lease")).count(),
        1,
        "not one line about leases: {said}"
    );
    let r_export = manifest(&at_t)["revision"].as_i64().unwrap();
    assert_eq!(manifest(&at_t)["zone"], "pitr.zone");
    assert_eq!(
        snapshot_status(&at_t).0,
        r_export,
        "the manifest's revision"
    );

    // R_export is the last revision received at or before T, as the chain's own receive
    // times say (read with Debian's age)...
    let received = receive_times(&z.usb(), &z.owner_key());
    let last_at_t = received
        .iter()
        .filter(|(_, time)| **time <= t_ms)
        .map(|(rev, _)| *rev)
        .max()
        .expect("revisions received before T");
    assert_eq!(
        r_export,
        last_at_t,
        "the export at T ({}) against the chain's receive times (the next: {:?})",
        rfc3339(t_ms),
        received.range(last_at_t + 1..).next()
    );
    // ... and as the writer saw it: every write of the run before T is in it, none sent
    // after T is.
    for (i, key) in log.acknowledged.iter().enumerate() {
        if i < before_t {
            assert!(
                log.revisions[i] <= r_export,
                "{key} (revision {}) was acknowledged {:?} before T but is after the point {r_export}",
                log.revisions[i],
                t_instant - log.acknowledged_at[i]
            );
        } else {
            assert!(
                log.sent_at[i] > t_instant + SEND_SLACK,
                "{key} of the run after T was sent before T + {SEND_SLACK:?}"
            );
            assert!(
                log.revisions[i] > r_export,
                "{key} (revision {}) was sent {:?} after T but is in the point {r_export}",
                log.revisions[i],
                log.sent_at[i] - t_instant
            );
        }
    }

    // restore on every member, then launch: the zone serves the point.
    for i in 0..3 {
        let (ok, out, err) = common::run(&[
            "restore",
            "--config",
            z.zone.config(i).to_str().unwrap(),
            "--from",
            at_t.to_str().unwrap(),
        ]);
        assert!(ok, "restore on member {i}: {err}\n{out}");
    }
    let mut restored = z.zone.launch_all();
    z.zone.wait_healthy(&mut restored);
    let found = keys_under(&z.zone, 0, "pitr/");
    let expected: BTreeMap<String, i64> = log
        .acknowledged
        .iter()
        .zip(&log.revisions)
        .filter(|(_, rev)| **rev <= r_export)
        .map(|(k, rev)| (k.clone(), *rev))
        .collect();
    let after = log.revisions.iter().filter(|r| **r > r_export).count();
    assert!(
        expected.len() > 100 && after > 100,
        "T is not in the middle of the writes: {} before, {after} after",
        expected.len()
    );
    let missing: Vec<_> = expected
        .iter()
        .filter(|(k, _)| !found.contains_key(*k))
        .collect();
    let extra: Vec<_> = found
        .iter()
        .filter(|(k, _)| !expected.contains_key(*k))
        .collect();
    let moved: Vec<_> = expected
        .iter()
        .filter(|(k, rev)| found.get(*k).is_some_and(|f| f != *rev))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty() && moved.is_empty(),
        "the restored zone at {r_export} against the writer's log: {} missing {:?}, {} after the point {:?}, {} at another revision {:?}",
        missing.len(),
        &missing[..missing.len().min(5)],
        extra.len(),
        &extra[..extra.len().min(5)],
        moved.len(),
        &moved[..moved.len().min(5)]
    );
    let (ok, out, err) = common::run(&["status", "--config", z.zone.config(1).to_str().unwrap()]);
    assert!(ok, "status after the restore: {err}\n{out}");

    // Backups again (the README's last step): the restored zone is a new etcd cluster; its
    // writer starts its chain on the same targets with a full snapshot of it, and the
    // owner's drill passes on the chain that now holds both clusters.
    let old_clusters: std::collections::BTreeSet<String> = manifest_bodies(&z.usb())
        .iter()
        .filter_map(|b| b["cluster_id"].as_str().map(String::from))
        .collect();
    assert_eq!(old_clusters.len(), 1, "the chain before the restore");
    let run = z.backup_run(0);
    let started = Instant::now();
    wait_for(
        Duration::from_secs(90),
        "a full snapshot of the restored cluster on the directory target",
        || {
            manifest_bodies(&z.usb()).iter().any(|b| {
                b["kind"] == "full"
                    && b["cluster_id"]
                        .as_str()
                        .is_some_and(|c| !old_clusters.contains(c))
            })
        },
    );
    eprintln!(
        "the restored zone's first full snapshot shipped {:?} after backup run started",
        started.elapsed()
    );
    let (ok, stdout, stderr) = z.owner_drill(&z.file_url());
    assert!(
        ok,
        "the owner's drill after the restore: {stderr}\n{stdout}\n{}",
        z.logs()
    );
    drop(run);
    drop(restored);

    // At a revision: the snapshot's HashKV is the original cluster's at that revision.
    let at_rev = work.path().join("at-rev.db");
    let (ok, stdout, stderr) = owner_export(
        &z,
        &z.s3_url,
        &["--revision", &hash_rev.to_string()],
        &at_rev,
        &ca,
        &z.owner_key(),
    );
    assert!(
        ok,
        "backup export --revision {hash_rev}: {stderr}\n{stdout}"
    );
    assert_eq!(manifest(&at_rev)["revision"].as_i64(), Some(hash_rev));
    assert_eq!(snapshot_status(&at_rev).0, hash_rev);
    let scratch = addresses::PITR.ip(50);
    let (etcd, etcdctl) = throwaway_etcd(&at_rev, work.path(), &scratch, &z.zone.path("ca"));
    let out = etcdctl(&[
        "endpoint",
        "hashkv",
        "--rev",
        &hash_rev.to_string(),
        "-w",
        "json",
    ]);
    assert!(
        out.status.success(),
        "hashkv of the export: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (hash, compacted) = parse_hashkv(&String::from_utf8_lossy(&out.stdout));
    drop(etcd);
    assert_eq!(
        (hash, compacted),
        (original_hash, original_compacted),
        "HashKV at {hash_rev} (hash, compact revision): the export's against the original cluster's"
    );
}

/// A one-member zone "other.zone" on `addresses::PITR_OTHER` .10 whose `backup run` writes a chain
/// to a directory target, encrypted to `recipient`: another zone of the same owner.
struct OtherZone {
    zone: TestZone,
    _aux: tempfile::TempDir,
    usb: PathBuf,
    _member: Running,
    _run: Running,
}

impl OtherZone {
    fn start(recipient: &str) -> OtherZone {
        let aux = tempfile::tempdir().unwrap();
        let usb = aux.path().join("usb");
        fs::create_dir_all(&usb).unwrap();
        let members = vec![("node1.other.zone".to_string(), addresses::PITR_OTHER.ip(10))];
        let text = format!(
            "{}\n[backup]\nrecipients = [\"{recipient}\"]\nfull_every = \"20s\"\ndelta_every = \"1s\"\n\n[[backup.target]]\nurl = \"file://{}\"\n",
            common::zone_toml(
                "other.zone",
                &[("node1.other.zone", &addresses::PITR_OTHER.ip(10))]
            ),
            usb.display()
        );
        let zone = TestZone::from_zone_file("other.zone", &text, members, 2380, 2379);
        let mut running = zone.launch_all();
        zone.wait_healthy(&mut running);
        let mut cmd = zone_etcd();
        cmd.args(["backup", "run", "--config"]).arg(zone.config(0));
        let run = Running::spawn(cmd, &zone.path("backup-run.log"));
        let (ok, _, err) = zone.etcdctl(0, &zone.endpoints(), &["put", "other", "x"]);
        assert!(ok, "{err}");
        OtherZone {
            _member: running.remove(0),
            _run: run,
            zone,
            _aux: aux,
            usb,
        }
    }

    /// Waits until its chain holds a full snapshot and a delta.
    fn wait_chain(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let kinds: Vec<String> = manifest_bodies(&self.usb)
                .iter()
                .map(|b| b["kind"].as_str().unwrap_or("").to_string())
                .collect();
            if kinds.iter().any(|k| k == "full") && kinds.iter().any(|k| k == "delta") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "other.zone wrote no chain in 60 s: {kinds:?}\n{}",
                fs::read_to_string(self.zone.path("backup-run.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

/// Asserts a refused export: non-zero exit, one line on stderr, nothing in `out_dir` (the
/// directory of --out, empty before); returns the line.
fn refused(what: &str, out_dir: &Path, result: (bool, String, String)) -> String {
    let (ok, stdout, stderr) = result;
    assert!(!ok, "{what}: the export succeeded:\n{stdout}\n{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{what}: not one line:\n{stderr}\n{stdout}");
    let left: Vec<_> = fs::read_dir(out_dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "{what}: the export left {left:?}");
    eprintln!("{what}: {}", lines[0]);
    lines[0].to_string()
}

/// Every refusal of `backup export`, each one line, a non-zero exit and nothing written at
/// --out: a time before the oldest point and after the newest, a revision inside a gap
/// (each naming the nearest reachable points), a chain with a delta removed, a wrong
/// identity, another zone's target. And `--from local` on the writer's node gives the same
/// snapshot revision as the target for the same --revision.
#[test]
fn export_refusals_are_one_line_and_write_nothing() {
    let z = BackupZone::start(
        "refuse.zone",
        addresses::PITR_OTHER.subnet(),
        &addresses::SEAWEED.ip(21),
        POLICY,
    );
    let recipient = {
        let out = tool("age-keygen")
            .arg("-y")
            .arg(z.owner_key())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let other = OtherZone::start(&recipient);
    let run0 = z.backup_run(0);
    wait_for(Duration::from_secs(60), "an active writer", || {
        z.active() == Some(0)
    });
    z.wait_shipped(z.revision(), Duration::from_secs(60));
    let load = z
        .zone
        .failover_load(&[], "refuse", Duration::from_millis(50));
    std::thread::sleep(Duration::from_secs(4));
    let log = load.stop();
    assert!(log.failures.is_empty(), "{:?}", log.failures);
    let chain_end = z.revision();
    z.wait_shipped(chain_end, Duration::from_secs(30));
    let middle = log.revisions[log.revisions.len() / 2];

    // --from local on the writer's node and the target agree for the same --revision.
    let work = tempfile::tempdir().unwrap();
    let local = work.path().join("local.db");
    let (ok, stdout, stderr) = export(
        &z,
        &[
            "--from".into(),
            "local".into(),
            "--config".into(),
            z.zone.config(0).into(),
            "--revision".into(),
            middle.to_string().into(),
            "--out".into(),
            local.clone().into(),
        ],
    );
    assert!(ok, "export --from local: {stderr}\n{stdout}");
    let remote = work.path().join("remote.db");
    let (ok, stdout, stderr) = owner_export(
        &z,
        &z.file_url(),
        &["--revision", &middle.to_string()],
        &remote,
        &z.zone.path("ca"),
        &z.owner_key(),
    );
    assert!(ok, "export --from {}: {stderr}\n{stdout}", z.file_url());
    assert_eq!(manifest(&local)["revision"].as_i64(), Some(middle));
    assert_eq!(manifest(&remote)["revision"].as_i64(), Some(middle));
    assert_eq!(
        snapshot_status(&local),
        snapshot_status(&remote),
        "(revision, keys) of the local export and the target's"
    );

    // A gap: no writer while the zone is written and compacted, then another writer.
    drop(run0);
    let endpoints = z.zone.endpoints();
    for i in 0..20 {
        let (ok, _, err) = z
            .zone
            .etcdctl(0, &endpoints, &["put", &format!("gap/{i}"), "v"]);
        assert!(ok, "{err}");
    }
    let compacted = z.revision();
    let (ok, _, err) = z.zone.etcdctl(
        0,
        &endpoints,
        &["compact", &compacted.to_string(), "--physical"],
    );
    assert!(ok, "{err}");
    let _run1 = z.backup_run(1);
    wait_for(
        Duration::from_secs(60),
        "the gap closed by a full snapshot",
        || {
            let (ok, json, _) = z.status(0);
            ok && json["targets"].as_array().is_some_and(|t| {
                t.iter()
                    .all(|t| t["gaps"].as_array().is_some_and(|g| !g.is_empty()))
            })
        },
    );
    z.wait_shipped(z.revision(), Duration::from_secs(30));
    other.wait_chain();

    // The chain as it stands, copied: every case reads a copy of its own.
    let base = tempfile::tempdir().unwrap();
    copy_tree(&z.usb(), base.path());
    let links = manifest_bodies(base.path());
    let kind = |b: &serde_json::Value| b["kind"].as_str().unwrap_or("").to_string();
    let rev = |b: &serde_json::Value, f: &str| b[f].as_i64().unwrap();
    let oldest = links.iter().find(|b| kind(b) == "full").unwrap();
    let newest = links.last().unwrap();
    let gap_at = links
        .iter()
        .position(|b| kind(b) == "gap")
        .expect("a gap link");
    let gap = &links[gap_at];
    let after_gap = links[gap_at..]
        .iter()
        .find(|b| kind(b) == "full")
        .expect("a full after the gap");
    let (gap_first, gap_last) = (rev(gap, "first_revision"), rev(gap, "last_revision"));
    assert!(gap_first < gap_last, "a gap of one revision: {gap}");
    // A delta before the gap that the export at its last revision R needs: the export
    // starts from the newest full at or below R, so the delta is needed only when no full
    // stands anywhere from its first revision to R (a full cut later at R itself, or
    // inside the delta, makes it unneeded: where fulls fall depends on timing).
    let fulls: Vec<i64> = links
        .iter()
        .filter(|b| kind(b) == "full")
        .map(|b| rev(b, "last_revision"))
        .collect();
    let needed: Vec<serde_json::Value> = links[..gap_at]
        .iter()
        .filter(|b| kind(b) == "delta")
        .filter(|b| {
            let (first, last) = (rev(b, "first_revision"), rev(b, "last_revision"));
            first <= last && !fulls.iter().any(|f| (first..=last).contains(f))
        })
        .cloned()
        .collect();
    assert!(!needed.is_empty(), "no delta with revisions before the gap");
    let victim = needed[needed.len() / 2].clone();
    let victim_object = victim["object"].as_str().unwrap().to_string();
    let digest = tree_digest(base.path());

    let other_key = work.path().join("other.key");
    let out = tool("age-keygen")
        .arg("-o")
        .arg(&other_key)
        .output()
        .unwrap();
    assert!(out.status.success(), "age-keygen");

    let base_url = format!("file://{}", base.path().display());
    let ca = z.zone.path("ca");
    let case = |what: &str, url: &str, point: &[&str], identity: &Path| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("point.db");
        let line = refused(
            what,
            dir.path(),
            owner_export(&z, url, point, &out, &ca, identity),
        );
        (line, dir)
    };

    let (line, _d) = case(
        "a time before the oldest point",
        &base_url,
        &["--at", &rfc3339(rev(oldest, "first_time_ms") - 3_600_000)],
        &z.owner_key(),
    );
    assert!(
        names_point(
            &line,
            rev(oldest, "last_revision"),
            rev(oldest, "last_time_ms")
        ),
        "the oldest point (revision {}, {}) is not named: {line}",
        rev(oldest, "last_revision"),
        rfc3339(rev(oldest, "last_time_ms"))
    );
    let (line, _d) = case(
        "a time after the newest point",
        &base_url,
        &["--at", &rfc3339(now_ms() as i64 + 3_600_000)],
        &z.owner_key(),
    );
    assert!(
        names_point(
            &line,
            rev(newest, "last_revision"),
            rev(newest, "last_time_ms")
        ),
        "the newest point (revision {}, {}) is not named: {line}",
        rev(newest, "last_revision"),
        rfc3339(rev(newest, "last_time_ms"))
    );
    let (line, _d) = case(
        "a revision inside a gap",
        &base_url,
        &["--revision", &((gap_first + gap_last) / 2).to_string()],
        &z.owner_key(),
    );
    // The nearest point above is the lowest full snapshot past the gap, wherever it stands
    // in the chain's order (a red run named 352 where the first full after the gap link
    // was at 353).
    let above = fulls
        .iter()
        .copied()
        .filter(|f| *f > gap_last)
        .min()
        .unwrap_or_else(|| rev(after_gap, "last_revision"));
    let below = gap_first - 1;
    assert!(
        names_number(&line, below) && names_number(&line, above),
        "the gap {gap_first}..={gap_last}: the nearest points {below} and {above} are not named: {line}\nthe chain: {:?}",
        links
            .iter()
            .map(|b| format!(
                "{} {} {}..{}",
                b["seq"],
                kind(b),
                rev(b, "first_revision"),
                rev(b, "last_revision")
            ))
            .collect::<Vec<_>>()
    );
    let (line, _d) = case(
        "a wrong identity",
        &base_url,
        &["--revision", &middle.to_string()],
        &other_key,
    );
    assert!(!line.is_empty());
    let (line, _d) = case(
        "another zone's target",
        &format!("file://{}", other.usb.display()),
        &["--at", &rfc3339(now_ms() as i64)],
        &z.owner_key(),
    );
    assert!(!line.is_empty());
    assert_eq!(
        digest,
        tree_digest(base.path()),
        "an export changed the target"
    );

    // A delta segment removed from a copy: refused naming it.
    let cut = tempfile::tempdir().unwrap();
    copy_tree(base.path(), cut.path());
    fs::remove_file(cut.path().join(&victim_object)).unwrap();
    let (line, _d) = case(
        "a delta segment removed",
        &format!("file://{}", cut.path().display()),
        &["--revision", &rev(&victim, "last_revision").to_string()],
        &z.owner_key(),
    );
    assert!(
        line.contains(&victim_object),
        "the missing segment {victim_object} is not named: {line}"
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn copy_tree(from: &Path, to: &Path) {
    for path in walk(from) {
        let rel = path.strip_prefix(from).unwrap();
        fs::create_dir_all(to.join(rel).parent().unwrap()).unwrap();
        fs::copy(&path, to.join(rel)).unwrap();
    }
}

fn tree_digest(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    walk(dir)
        .into_iter()
        .map(|p| {
            (
                p.strip_prefix(dir).unwrap().to_path_buf(),
                fs::read(&p).unwrap(),
            )
        })
        .collect()
}
