//! `undo --at` once etcd has compacted past the bad write (issue 23): a 3-member zone
//! (`addresses::UNDO_CHAIN` .1-3) with `backup run` shipping to SeaweedFS
//! (`addresses::SEAWEED` .31); a bad delete of
//! `app/a/` and a bad overwrite of keys of `app/b/` while a writer keeps writing `other/`
//! and, after the bad write, into `app/` (again and again, as applications do); etcd compacts past it; `undo --prefix app/ --at`
//! a time before the bad write takes the old values from the writer node's backup chain:
//! the plan, with `--dry-run` (nothing changed); then `undo` on a member that never wrote
//! the chain, with the owner's identity and the file target: every damaged key is back,
//! the writer's `app/` keys are listed and keep its values, `other/` is unchanged, and no
//! request of the writer failed. Without the identity, that member refuses in one line
//! naming the writer, whose chain can (issue 37), and the owner's command.

use crate::common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use common::backup::{now_ms, BackupZone};
use zone_testkit::addresses;

fn unb64(v: &serde_json::Value) -> String {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(v.as_str().unwrap_or_default())
        .expect("base64 from etcdctl");
    String::from_utf8(bytes).expect("UTF-8")
}

/// Every key under `prefix` with its value and mod revision.
fn dump(z: &BackupZone, prefix: &str) -> BTreeMap<String, (String, i64)> {
    let (ok, out, err) = z.zone.etcdctl(
        0,
        &z.zone.endpoints(),
        &["get", prefix, "--prefix", "-w", "json"],
    );
    assert!(ok, "etcdctl get: {err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    json["kvs"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|kv| {
            (
                unb64(&kv["key"]),
                (unb64(&kv["value"]), kv["mod_revision"].as_i64().unwrap()),
            )
        })
        .collect()
}

fn etcdctl_ok(z: &BackupZone, args: &[&str]) -> String {
    let (ok, out, err) = z.zone.etcdctl(0, &z.zone.endpoints(), args);
    assert!(ok, "etcdctl {args:?}: {err}");
    out
}

fn rfc3339(ms: u128) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000).unwrap();
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn undo(z: &BackupZone, index: usize, at: &str, extra: &[&str]) -> (bool, String, String) {
    let out = z
        .command()
        .args(["undo", "--prefix", "app/", "--at", at, "--config"])
        .arg(z.zone.config(index))
        .args(extra)
        .output()
        .unwrap();
    common::outcome(out)
}

#[test]
fn undo_after_compaction_takes_old_values_from_the_chain() {
    let z = BackupZone::start(
        "undochain.zone",
        addresses::UNDO_CHAIN.subnet(),
        &addresses::SEAWEED.ip(31),
        "delta_every = \"1s\"",
    );
    let _run = z.backup_run(0);
    let keys: Vec<String> = ["a", "b"]
        .iter()
        .flat_map(|d| (0..6).map(move |i| format!("app/{d}/{i:02}")))
        .collect();
    for key in &keys {
        etcdctl_ok(&z, &["put", key, &format!("old {key}")]);
    }
    let seeded = z.revision();
    z.wait_shipped(seeded, Duration::from_secs(60));
    assert_eq!(z.active(), Some(0), "node 1 writes the chain");

    // The writer: other/ the whole time; app/ keys once `into_app` is set.
    let stop = Arc::new(AtomicBool::new(false));
    let into_app = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let written = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (stop, into_app, failures, written) = (
            stop.clone(),
            into_app.clone(),
            failures.clone(),
            written.clone(),
        );
        let cmd_for = {
            let endpoints = z.zone.endpoints();
            let base = z.zone.etcdctl_command(0, &endpoints);
            let program = base.get_program().to_owned();
            let args: Vec<_> = base.get_args().map(|a| a.to_owned()).collect();
            let envs: Vec<_> = base
                .get_envs()
                .map(|(k, v)| (k.to_owned(), v.map(|v| v.to_owned())))
                .collect();
            move || {
                let mut c = std::process::Command::new(&program);
                c.args(&args);
                for (k, v) in &envs {
                    match v {
                        Some(v) => c.env(k, v),
                        None => c.env_remove(k),
                    };
                }
                c
            }
        };
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let mut puts = vec![(format!("other/w{n:05}"), format!("w{n}"))];
                if into_app.load(Ordering::Relaxed) {
                    puts.push(("app/a/03".into(), format!("writer-{n}")));
                    puts.push(("app/b/01".into(), format!("writer-{n}")));
                }
                for (k, v) in puts {
                    let out = cmd_for()
                        .args(["--command-timeout=5s", "put", &k, &v])
                        .output()
                        .expect("etcdctl runs");
                    if out.status.success() {
                        written.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failures
                            .lock()
                            .unwrap()
                            .push(String::from_utf8_lossy(&out.stderr).into_owned());
                    }
                }
                n += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    // The point: a second after the seed was shipped, then a second of quiet for app/.
    std::thread::sleep(Duration::from_millis(1500));
    let at = rfc3339(now_ms());
    std::thread::sleep(Duration::from_millis(1500));
    let before = dump(&z, "app/");
    assert_eq!(before.len(), 12);

    // The bad write: a prefix deleted, some other keys of app/ overwritten.
    etcdctl_ok(&z, &["del", "app/a/", "--prefix"]);
    for key in ["app/b/01", "app/b/02"] {
        etcdctl_ok(&z, &["put", key, "bad"]);
    }
    // The writer goes on into app/ (app/a/03 and app/b/01, again and again), then etcd
    // compacts past it all.
    into_app.store(true, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(1500));
    let compacted = z.revision();
    etcdctl_ok(&z, &["compact", &compacted.to_string(), "--physical"]);
    let (ok, _, err) = z.zone.etcdctl(
        0,
        &z.zone.endpoints(),
        &["get", "app/", "--prefix", "--rev", &seeded.to_string()],
    );
    assert!(
        !ok && err.contains("compacted"),
        "etcd must no longer hold the point: {err}"
    );
    z.wait_shipped(compacted, Duration::from_secs(60));

    // A member that never wrote the chain cannot give the point from its own: one line
    // names the writer, whose chain can, and the owner's command from a target.
    let (ok, stdout, stderr) = undo(&z, 1, &at, &[]);
    assert!(!ok, "node 2 keeps no chain: {stdout}");
    let writer_node = &z.zone.members[0].0;
    assert!(
        stderr.trim().lines().count() == 1
            && stderr.contains("own backup chain cannot tell which revision")
            && stderr.contains(&format!(
                "run this on {writer_node}, the active backup writer"
            ))
            && stderr.contains(&format!("--from {} --endpoint", z.s3_url)),
        "{stderr}"
    );

    // --dry-run: the plan, and nothing written.
    let other_before = dump(&z, "other/");
    let app_now = dump(&z, "app/");
    let (ok, stdout, stderr) = undo(&z, 0, &at, &["--dry-run"]);
    assert!(ok, "undo --dry-run: {stderr}\n{stdout}");
    assert!(
        stdout.contains("backup chain"),
        "history from the chain: {stdout}"
    );
    assert!(stdout.contains("--dry-run: nothing changed"), "{stdout}");
    let app_after = dump(&z, "app/");
    for key in ["app/a/00", "app/b/02", "app/b/03"] {
        assert_eq!(
            app_now.get(key),
            app_after.get(key),
            "--dry-run wrote {key}"
        );
    }
    for key in ["app/a/00", "app/a/01", "app/a/02", "app/a/04", "app/a/05"] {
        assert!(
            stdout.contains(&format!("re-create {key}")),
            "{key} to re-create: {stdout}"
        );
    }
    assert!(stdout.contains("set back app/b/02"), "{stdout}");

    // backup export --from local on that member: the same, naming the writer.
    let out = z
        .command()
        .args(["backup", "export", "--from", "local", "--at", &at, "--out"])
        .arg(z.zone.path("export-from-node2.db"))
        .arg("--config")
        .arg(z.zone.config(1))
        .output()
        .unwrap();
    let (ok, stdout, stderr) = common::outcome(out);
    assert!(!ok, "node 2 keeps no chain: {stdout}");
    assert!(
        stderr.trim().lines().count() == 1
            && stderr.contains("own backup chain cannot give")
            && stderr.contains(&format!(
                "run this on {writer_node}, the active backup writer"
            ))
            && stderr.contains("zone-etcd backup export --from s3://"),
        "{stderr}"
    );
    assert!(
        !z.zone.path("export-from-node2.db").exists(),
        "nothing written"
    );

    // The same for a revision etcd compacted away.
    let out = z
        .command()
        .args([
            "undo",
            "--prefix",
            "app/",
            "--revision",
            &seeded.to_string(),
            "--config",
        ])
        .arg(z.zone.config(1))
        .output()
        .unwrap();
    let (ok, stdout, stderr) = common::outcome(out);
    assert!(!ok, "node 2 keeps no chain: {stdout}");
    assert!(
        stderr.trim().lines().count() == 1
            && stderr.contains(&format!(
                "etcd no longer holds revision {seeded} (compacted), and"
            ))
            && stderr.contains(&format!(
                "run this on {writer_node}, the active backup writer"
            )),
        "{stderr}"
    );

    // undo on node 2, which never wrote the chain, with the owner's identity: the old
    // values from a target; the damage taken back, the writer's keys listed and left alone.
    let ca = z.zone.path("ca");
    let owner = z.owner_key();
    let from_target = [
        "--from",
        &z.file_url(),
        "--ca",
        ca.to_str().unwrap(),
        "--identity",
        owner.to_str().unwrap(),
    ];
    let (ok, stdout, stderr) = undo(&z, 1, &at, &from_target);
    assert!(ok, "undo: {stderr}\n{stdout}");
    assert!(
        stdout.contains(&format!("come from the backup target {}", z.file_url())),
        "history from the target: {stdout}"
    );
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert!(stdout.contains("applied"), "{stdout}");
    let after = dump(&z, "app/");
    for key in &keys {
        let (value, revision) = after.get(key).cloned().unwrap_or_default();
        if key == "app/a/03" || key == "app/b/01" {
            assert!(
                value.starts_with("writer-"),
                "{key} keeps the writer's value: {value:?}"
            );
            assert!(
                stdout.contains(&format!("left alone {key}")),
                "{key} listed: {stdout}"
            );
        } else {
            assert_eq!(value, format!("old {key}"), "{key} is back");
        }
        if ["app/b/00", "app/b/03", "app/b/04", "app/b/05"].contains(&key.as_str()) {
            assert_eq!(
                Some(revision),
                before.get(key).map(|(_, r)| *r),
                "{key} was never damaged: undo must not write it"
            );
        }
    }
    assert_eq!(after.len(), 12, "no other key under app/: {after:?}");
    // other/: the writer's keys only, none changed by undo.
    let other_after = dump(&z, "other/");
    for (k, (v, rev)) in &other_before {
        assert_eq!(
            other_after.get(k),
            Some(&(v.clone(), *rev)),
            "{k} outside the prefix changed"
        );
    }
    assert!(written.load(Ordering::Relaxed) > 20, "the writer wrote");
    let failed = failures.lock().unwrap();
    assert!(failed.is_empty(), "writer requests failed: {failed:?}");
}
