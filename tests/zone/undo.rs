//! `zone-etcd undo` on a real 3-member zone (`addresses::UNDO`, .1-3): a bad delete of a prefix and
//! a bad overwrite of some of its keys, while a writer keeps writing elsewhere and, after the
//! bad write, into the prefix; `--dry-run` changes nothing; undo takes back every key the
//! bad write changed, lists the writer's keys and leaves them alone, touches nothing
//! outside the prefix, and no request of the writer fails; `--force` then takes the
//! writer's keys back too. Refusals (`addresses::UNDO_REFUSALS`, .1-3): a revision in the future or
//! below 1, an empty prefix, a point etcd compacted with no backup chain, a zone that does not
//! answer: one line, non-zero, nothing changed.

use crate::common;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine as _;
use common::{run, Identity, TestZone};
use zone_testkit::addresses;

/// A key's value and mod revision.
type Dump = BTreeMap<String, (String, i64)>;

fn unb64(text: &serde_json::Value) -> String {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.as_str().unwrap_or_default())
        .expect("base64 from etcdctl");
    String::from_utf8(bytes).expect("UTF-8 keys and values")
}

/// Every key under `prefix` ("" for all) with its value and mod revision, and the
/// revision read at.
fn dump(zone: &TestZone, prefix: &str) -> (i64, Dump) {
    let (ok, out, err) = zone.etcdctl(
        0,
        &zone.endpoints(),
        &["get", prefix, "--prefix", "-w", "json"],
    );
    assert!(ok, "etcdctl get: {err}");
    let json: serde_json::Value = serde_json::from_str(&out).expect("etcdctl's JSON");
    let revision = json["header"]["revision"].as_i64().expect("a revision");
    let kvs = json["kvs"].as_array().cloned().unwrap_or_default();
    let keys = kvs
        .iter()
        .map(|kv| {
            (
                unb64(&kv["key"]),
                (unb64(&kv["value"]), kv["mod_revision"].as_i64().unwrap()),
            )
        })
        .collect();
    (revision, keys)
}

/// Runs `etcdctl txn -w json` with `ops` and no compares; the revision it made.
fn txn(zone: &TestZone, ops: &str) -> i64 {
    use std::io::Write;
    let mut child = zone
        .etcdctl_command(0, &zone.endpoints())
        .args(["txn", "-w", "json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("etcdctl runs");
    let mut stdin = child.stdin.take().expect("stdin");
    write!(stdin, "\n{ops}\n\n").expect("write the transaction");
    drop(stdin);
    let out = child.wait_with_output().expect("etcdctl ends");
    assert!(
        out.status.success(),
        "txn: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("txn JSON");
    json["header"]["revision"].as_i64().expect("a revision")
}

/// One put through etcd's gateway, trying every endpoint in turn.
fn put(
    addrs: &[String],
    ca: &std::path::Path,
    id: &Identity,
    key: &str,
    value: &str,
) -> Result<(), String> {
    let mut last = String::new();
    for addr in addrs {
        match common::put_value(addr, ca, id, key, value) {
            Ok(_) => return Ok(()),
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Err(last)
}

/// The writer's app/ keys: one the bad write deleted, one it overwrote, one it left.
const WRITER_APP_KEYS: [&str; 3] = ["app/a/03", "app/b/01", "app/b/08"];

/// What the writer saw: acknowledged other/ keys, the app/ keys' last acknowledged values,
/// failed requests.
#[derive(Default, Clone)]
struct Seen {
    other: Vec<String>,
    app: BTreeMap<String, String>,
    failures: Vec<String>,
}

/// A key under app/ the writer keeps rewriting, also while undo runs.
const LIVE_KEY: &str = "app/live";

/// A writer that keeps putting `other/w/<n>`, and rewrites the keys in `app_keys` every
/// round too. `pause` parks it between requests.
struct Writer {
    stop: Arc<AtomicBool>,
    app_keys: Arc<Mutex<Vec<&'static str>>>,
    pause: Arc<AtomicBool>,
    parked: Arc<AtomicBool>,
    app_rounds: Arc<AtomicUsize>,
    seen: Arc<Mutex<Seen>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    fn start(zone: &TestZone) -> Writer {
        let addrs: Vec<String> = (0..3).map(|i| zone.client_addr(i)).collect();
        let ca = zone.tls(0, "ca.crt");
        let id = Identity {
            chain: zone.tls(0, "client.crt"),
            key: zone.tls(0, "client.key"),
        };
        let mut writer = Writer {
            stop: Arc::default(),
            app_keys: Arc::default(),
            pause: Arc::default(),
            parked: Arc::default(),
            app_rounds: Arc::default(),
            seen: Arc::default(),
            thread: None,
        };
        let (stop, app_keys, pause, parked, rounds, seen) = (
            writer.stop.clone(),
            writer.app_keys.clone(),
            writer.pause.clone(),
            writer.parked.clone(),
            writer.app_rounds.clone(),
            writer.seen.clone(),
        );
        let thread = std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                if pause.load(Ordering::SeqCst) {
                    parked.store(true, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
                parked.store(false, Ordering::SeqCst);
                let key = format!("other/w/{n:05}");
                let outcome = put(&addrs, &ca, &id, &key, &format!("w{n}"));
                let mut s = seen.lock().unwrap();
                match outcome {
                    Ok(()) => s.other.push(key),
                    Err(e) => s.failures.push(format!("{key}: {e}")),
                }
                drop(s);
                let keys = app_keys.lock().unwrap().clone();
                if !keys.is_empty() {
                    for key in keys {
                        let value = format!("writer-{n}");
                        let outcome = put(&addrs, &ca, &id, key, &value);
                        let mut s = seen.lock().unwrap();
                        match outcome {
                            Ok(()) => {
                                s.app.insert(key.to_string(), value);
                            }
                            Err(e) => s.failures.push(format!("{key}: {e}")),
                        }
                    }
                    rounds.fetch_add(1, Ordering::SeqCst);
                }
                n += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        writer.thread = Some(thread);
        writer
    }

    fn park(&self) {
        self.pause.store(true, Ordering::SeqCst);
        common::wait_for(Duration::from_secs(20), "the writer to park", || {
            self.parked.load(Ordering::SeqCst)
        });
    }

    fn resume(&self) {
        self.pause.store(false, Ordering::SeqCst);
    }

    fn stop(mut self) -> Seen {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the writer thread");
        }
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn undo(zone: &TestZone, args: &[&str]) -> (bool, String, String) {
    let config = zone.config(0);
    let mut all = vec!["undo", "--config", config.to_str().unwrap()];
    all.extend_from_slice(args);
    run(&all)
}

/// The seeded keys: app/a/00..19, app/b/00..09, app/keep, other/s/00..09.
fn seed(zone: &TestZone) -> BTreeMap<String, String> {
    let mut keys = BTreeMap::new();
    for i in 0..20 {
        keys.insert(format!("app/a/{i:02}"), format!("seed-a-{i}"));
    }
    for i in 0..10 {
        keys.insert(format!("app/b/{i:02}"), format!("seed-b-{i}"));
        keys.insert(format!("other/s/{i:02}"), format!("seed-o-{i}"));
    }
    keys.insert("app/keep".into(), "kept".into());
    let ops: String = keys.iter().map(|(k, v)| format!("put {k} {v}\n")).collect();
    txn(zone, &ops);
    keys
}

fn only(dump: &Dump, prefix: &str) -> Dump {
    dump.iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[test]
fn undo_takes_a_prefix_back_leaves_later_writes_alone_and_never_touches_other_keys() {
    let zone = TestZone::bootstrap("undo.zone", addresses::UNDO.subnet(), 3);
    let mut running = zone.launch_all();
    zone.wait_healthy(&mut running);
    let seeded = seed(&zone);
    let writer = Writer::start(&zone);
    common::wait_for(Duration::from_secs(20), "the writer's first writes", || {
        writer.seen.lock().unwrap().other.len() >= 5
    });

    // The point, then the bad write: app/a/ deleted, five app/b/ keys overwritten and
    // three keys created, in two transactions.
    let (point, before) = dump(&zone, "app/");
    let (ok, out, err) = zone.etcdctl(
        0,
        &zone.endpoints(),
        &["del", "app/a/", "--prefix", "-w", "json"],
    );
    assert!(ok, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let deleted_at = json["header"]["revision"].as_i64().unwrap();
    let mut ops = String::new();
    for i in 0..5 {
        ops += &format!("put app/b/{i:02} bad\n");
    }
    for i in 0..3 {
        ops += &format!("put app/c/new{i} bad\n");
    }
    let overwritten_at = txn(&zone, &ops);
    // The writer rewrites three app/ keys a few times (one the bad write deleted, one it
    // overwrote, one it left), then goes on rewriting only app/live, through the undo.
    let mut keys = WRITER_APP_KEYS.to_vec();
    keys.push(LIVE_KEY);
    *writer.app_keys.lock().unwrap() = keys;
    common::wait_for(Duration::from_secs(30), "the writer into app/", || {
        writer.app_rounds.load(Ordering::SeqCst) >= 3
    });
    *writer.app_keys.lock().unwrap() = vec![LIVE_KEY];
    let rounds = writer.app_rounds.load(Ordering::SeqCst);
    common::wait_for(Duration::from_secs(30), "the writer's rounds", || {
        writer.app_rounds.load(Ordering::SeqCst) >= rounds + 2
    });

    // --dry-run (also with --force) changes nothing: the whole key space, its mod
    // revisions and the zone's revision are the same after.
    writer.park();
    let (rev_before, all_before) = dump(&zone, "");
    for args in [&["--dry-run"][..], &["--dry-run", "--force"][..]] {
        let mut a = vec!["--prefix", "app/", "--revision"];
        let r = point.to_string();
        a.push(&r);
        a.extend_from_slice(args);
        let (ok, out, err) = undo(&zone, &a);
        assert!(ok, "undo {a:?}: {err}\n{out}");
        assert!(out.contains("--dry-run: nothing changed"), "{out}");
        assert!(
            out.contains(&format!(
                "re-create app/a/00 (deleted at revision {deleted_at})"
            )),
            "{out}"
        );
        assert!(
            out.contains(&format!(
                "set back app/b/00 (changed at revision {overwritten_at})"
            )),
            "{out}"
        );
        assert!(
            out.contains(&format!(
                "delete app/c/new0 (created at revision {overwritten_at})"
            )),
            "{out}"
        );
        assert!(
            !out.contains("bad") && !out.contains("seed-"),
            "values printed: {out}"
        );
    }
    let (rev_after, all_after) = dump(&zone, "");
    assert_eq!(rev_before, rev_after, "--dry-run wrote");
    assert_eq!(all_before, all_after, "--dry-run changed keys");
    writer.resume();

    // The undo, while the writer keeps writing into other/ and app/.
    let (ok, out, err) = undo(
        &zone,
        &["--prefix", "app/", "--revision", &point.to_string()],
    );
    assert!(ok, "undo: {err}\n{out}");
    eprintln!("undo:\n{out}");
    std::thread::sleep(Duration::from_millis(300));
    let Seen {
        other: other_writes,
        app: writer_app,
        failures,
    } = writer.stop();
    assert!(failures.is_empty(), "writer requests failed: {failures:?}");
    // The keys the writer rewrote after the bad write are in the plan as left alone;
    // app/live, which it rewrites while undo runs, is left alone too (by the plan, or by
    // the compare of its transaction).
    let listed = |key: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("left alone {key}: ")))
            .unwrap_or_default()
            .to_string()
    };
    for key in WRITER_APP_KEYS {
        assert!(
            listed(key).contains(&format!(" times since revision {point}, last at ")),
            "{key} not listed as left alone:\n{out}"
        );
    }
    assert!(!listed(LIVE_KEY).is_empty(), "{out}");
    let (_, after) = dump(&zone, "");
    assert_eq!(
        after.get(LIVE_KEY).map(|(v, _)| v),
        writer_app.get(LIVE_KEY),
        "the writer's {LIVE_KEY} was not kept"
    );
    for (key, value) in &seeded {
        let now = after.get(key).map(|(v, _)| v.as_str());
        if let Some(latest) = writer_app.get(key) {
            assert_eq!(
                now,
                Some(latest.as_str()),
                "the writer's {key} was not kept"
            );
        } else {
            assert_eq!(now, Some(value.as_str()), "{key} not back\n{out}");
        }
    }
    // Keys the bad write never touched were not written at all.
    for key in ["app/keep", "app/b/05", "app/b/09"] {
        assert_eq!(after.get(key), before.get(key), "{key} was written");
    }
    assert!(
        only(&after, "app/c/").is_empty(),
        "the bad write's new keys are still there: {:?}",
        only(&after, "app/c/")
    );
    // other/: the seeded keys as they were, and every write of the writer.
    assert_eq!(
        only(&after, "other/s/"),
        only(&all_before, "other/s/"),
        "other/ changed"
    );
    for key in &other_writes {
        assert!(after.contains_key(key), "the writer's {key} is missing");
    }
    // zone-etcd's own keys (each member's release record) as they were.
    assert_eq!(
        only(&after, "zone-etcd/"),
        only(&all_before, "zone-etcd/"),
        "zone-etcd's own keys changed"
    );
    assert_eq!(
        after.len(),
        only(&after, "app/").len()
            + only(&after, "other/").len()
            + only(&after, "zone-etcd/").len(),
        "keys outside app/, other/ and zone-etcd/"
    );

    // --force takes the writer's keys back too, and nothing else changes.
    let (ok, out, err) = undo(
        &zone,
        &[
            "--prefix",
            "app/",
            "--revision",
            &point.to_string(),
            "--force",
        ],
    );
    assert!(ok, "undo --force: {err}\n{out}");
    eprintln!("undo --force:\n{out}");
    for key in WRITER_APP_KEYS {
        assert!(
            out.contains(&format!("set back {key} (changed ")),
            "{key}: {out}"
        );
    }
    assert!(
        out.contains(&format!("delete {LIVE_KEY} (changed ")),
        "{out}"
    );
    let (_, forced) = dump(&zone, "");
    let app: BTreeMap<String, String> = only(&forced, "app/")
        .into_iter()
        .map(|(k, (v, _))| (k, v))
        .collect();
    let seeded_app: BTreeMap<String, String> = seeded
        .iter()
        .filter(|(k, _)| k.starts_with("app/"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(app, seeded_app, "--force did not take app/ back");
    assert_eq!(
        only(&forced, "other/"),
        only(&after, "other/"),
        "--force touched other/"
    );

    // Once back, there is nothing to undo.
    let (ok, out, err) = undo(
        &zone,
        &["--prefix", "app/", "--revision", &point.to_string()],
    );
    assert!(ok, "{err}");
    assert!(out.contains("nothing to undo"), "{out}");
    a_key_changed_while_undo_runs_is_left_alone(&zone);
    drop(running);
}

/// The transactions themselves, with a key changed after the plan saw it: 70 keys to
/// re-create (two transactions), one of which someone else created meanwhile. The batch
/// that holds it fails its compares and is retried one key per transaction: every other
/// key is written, that one keeps the other writer's value and is reported.
fn a_key_changed_while_undo_runs_is_left_alone(zone: &TestZone) {
    use zone_etcd::commands::undo::{apply, plan};
    let config = zone.config(0);
    let node = zone_node::node::Node::load(&config).expect("the node file");
    let creds = zone_node::reach::client_credentials(&node).expect("credentials");
    let endpoints = zone_model::cluster::client_endpoints(&node.members);
    let actions: Vec<plan::Action> = (0..70)
        .map(|i| plan::Action {
            key: format!("app/batch/{i:03}").into_bytes(),
            kind: plan::Kind::Recreate,
            value: format!("back-{i}").into_bytes(),
            seen: 0,
            changes: 1,
            last: 1,
        })
        .collect();
    txn(zone, "put app/batch/007 someone-else\n");
    let runtime = zone_etcd_kit::cluster_api::runtime().expect("a runtime");
    let applied = runtime.block_on(async {
        let client = zone_etcd_kit::cluster_api::connect_many(
            &endpoints,
            &creds,
            zone_etcd_kit::cluster_api::CALL_DEADLINE,
        )
        .await
        .expect("a client");
        apply::apply(&client, &actions)
            .await
            .map_err(|(_, reason)| reason)
            .expect("applied")
    });
    let meanwhile: Vec<&[u8]> = applied
        .changed_meanwhile
        .iter()
        .map(|a| a.key.as_slice())
        .collect();
    assert_eq!(meanwhile, vec![&b"app/batch/007"[..]]);
    assert_eq!(applied.written.len(), 69);
    // The first batch of 64 failed, then 63 single-key transactions; the last 6 in one.
    assert_eq!(applied.transactions, 63 + 1);
    let (_, batch) = dump(zone, "app/batch/");
    assert_eq!(batch.len(), 70);
    for (i, (key, (value, _))) in batch.iter().enumerate() {
        let expected = if i == 7 {
            "someone-else".to_string()
        } else {
            format!("back-{i}")
        };
        assert_eq!(value, &expected, "{key}");
    }
}

fn assert_refused(zone: &TestZone, args: &[&str], says: &str) {
    let (_, keys_before) = dump(zone, "");
    let (ok, out, err) = undo(zone, args);
    assert!(!ok, "undo {args:?} succeeded: {out}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "undo {args:?}: {err}");
    assert!(lines[0].contains(says), "undo {args:?}: {err}");
    eprintln!("undo {args:?}: {err}");
    let (_, keys_after) = dump(zone, "");
    assert_eq!(keys_before, keys_after, "undo {args:?} changed keys");
}

#[test]
fn undo_refuses_in_one_line_and_changes_nothing() {
    let zone = TestZone::bootstrap("undone.zone", addresses::UNDO_REFUSALS.subnet(), 3);
    let mut running = zone.launch_all();
    zone.wait_healthy(&mut running);
    txn(&zone, "put app/x 1\nput app/y 2\nput other/z 3\n");
    let (now, _) = dump(&zone, "");
    txn(&zone, "put app/x changed\n");

    let future = (now + 1000).to_string();
    assert_refused(
        &zone,
        &["--prefix", "app/", "--revision", &future],
        "in the future",
    );
    assert_refused(&zone, &["--prefix", "", "--revision", "1"], "empty prefix");
    assert_refused(
        &zone,
        &["--prefix", "app/", "--revision", "0"],
        "start at 1",
    );
    assert_refused(
        &zone,
        &["--prefix", "app/", "--at", "yesterday"],
        "RFC 3339",
    );

    // A point etcd has compacted, on a node with no backup chain: no history to plan from.
    let (head, _) = dump(&zone, "");
    let (ok, _, err) = zone.etcdctl(0, &zone.endpoints(), &["compact", &head.to_string()]);
    assert!(ok, "{err}");
    assert_refused(
        &zone,
        &["--prefix", "app/", "--revision", &now.to_string()],
        "compacted",
    );

    // A zone that does not answer.
    for member in running.drain(..) {
        member.stop();
    }
    let (ok, out, err) = undo(&zone, &["--prefix", "app/", "--revision", &now.to_string()]);
    assert!(!ok, "{out}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].contains("no member of the zone's cluster answered"),
        "{err}"
    );
}
