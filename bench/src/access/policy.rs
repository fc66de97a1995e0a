//! The policy-change timing, in the auth-on zone: `PUBLISHES` signed policy changes (the
//! service `bench` gains the prefix `bench2/`, then loses it, alternately) and
//! `UNCHANGED` publishes of the file in force again, interleaved, each by `zone-etcd zone
//! publish` ([`policy_changes`]); a watch as the owner's identity ([`watch_thread`]) on
//! the published document and the three members' records timestamps the command's put
//! and each member's new record.
//!
//! Invariants: no publish starts before the watch has created all its watchers; events
//! left over from a publish are dropped before the next starts; a member counts as
//! applied only when its record names a policy other than the one it named before (the
//! first such record after the command's start); the watch is stopped and joined before
//! the result is returned, also on error.

use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use zone_etcd_kit::cluster_api;

use super::zones::{access_toml, Identity, Live};
use crate::support::*;

/// Policy changes per run, and publishes of an unchanged file between them.
const PUBLISHES: usize = 10;
const UNCHANGED: usize = 3;
const POLICY_KEY: &str = "zone-etcd/access/policy";
const APPLIED_PREFIX: &str = "zone-etcd/access/applied/";

/// One publish: its wall time, and from the watch the command's put and the members'
/// records (ms from the command's start).
pub(super) struct Published {
    pub(super) changed: bool,
    pub(super) wall_ms: f64,
    pub(super) put_ms: Option<f64>,
    pub(super) applied_ms: Vec<Option<f64>>,
}

/// Watches the published document and each member's record from `endpoint` as `who`;
/// sends (arrival, key, value) of every put, after one ("", "") once all are created.
fn watch_thread(
    endpoint: String,
    who: Identity,
    members: Vec<String>,
    events: mpsc::Sender<(Instant, String, String)>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Result<()>> {
    std::thread::spawn(move || {
        let creds = who.credentials()?;
        let runtime = cluster_api::runtime().map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let mut client =
                cluster_api::connect_for(&endpoint, &creds, Duration::from_secs(24 * 3600)).await?;
            let mut stream = client
                .watch(POLICY_KEY, None)
                .await
                .map_err(|e| cluster_api::describe(&e))?;
            for member in &members {
                stream
                    .watch(format!("{APPLIED_PREFIX}{member}"), None)
                    .await
                    .map_err(|e| cluster_api::describe(&e))?;
            }
            let mut created = 0;
            while !stop.load(Ordering::SeqCst) {
                let message = cluster_api::within_for(Duration::from_millis(300), async {
                    stream
                        .message()
                        .await
                        .map_err(|e| cluster_api::describe(&e))
                })
                .await;
                let response = match message {
                    Ok(Some(response)) => response,
                    Ok(None) => return Err("the watch ended".to_string()),
                    Err(e) if e.starts_with("no answer within") => continue,
                    Err(e) => return Err(format!("the watch: {e}")),
                };
                let now = Instant::now();
                if response.created() {
                    created += 1;
                    if created == members.len() + 1 {
                        let _ = events.send((now, String::new(), String::new()));
                    }
                }
                for event in response.events() {
                    if let Some(kv) = event.kv().filter(|kv| !kv.value().is_empty()) {
                        let _ = events.send((
                            now,
                            String::from_utf8_lossy(kv.key()).into_owned(),
                            String::from_utf8_lossy(kv.value()).into_owned(),
                        ));
                    }
                }
            }
            Ok(())
        })
    })
}

/// The `policy` a member's record names.
fn record_policy(value: &str) -> String {
    serde_json::from_str::<Value>(value)
        .ok()
        .and_then(|v| v["policy"].as_str().map(str::to_string))
        .unwrap_or_default()
}

/// `PUBLISHES` changes and `UNCHANGED` publishes of the same file in the auth-on zone.
pub(super) fn policy_changes(live: &Live) -> Result<Vec<Published>> {
    let admin = live.admin()?;
    let names: Vec<String> = live.zone.members.iter().map(|m| m.0.clone()).collect();
    // The records as they are: what a member's new record must differ from.
    let mut policies: Vec<String> = {
        let runtime = cluster_api::runtime().map_err(|e| e.to_string())?;
        let creds = admin.credentials()?;
        runtime.block_on(async {
            let mut client = cluster_api::connect(&live.zone.client_url(0), &creds).await?;
            let mut out = Vec::new();
            for name in &names {
                let got = client
                    .get(format!("{APPLIED_PREFIX}{name}"), None)
                    .await
                    .map_err(|e| cluster_api::describe(&e))?;
                out.push(
                    got.kvs()
                        .first()
                        .map(|kv| record_policy(&String::from_utf8_lossy(kv.value())))
                        .unwrap_or_default(),
                );
            }
            Ok::<_, String>(out)
        })?
    };
    let (tx, rx) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_thread(
        live.zone.client_url(0),
        admin,
        names.clone(),
        tx,
        stop.clone(),
    );
    let result = (|| -> Result<Vec<Published>> {
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok((_, key, _)) if key.is_empty() => {}
            _ => return Err("the watch of the policy did not start".into()),
        }
        let files = [false, true].map(|more| {
            let path = live.zone.root.join(format!("zone-more-{more}.toml"));
            let base = fs::read_to_string(live.zone.root.join("zone.toml")).unwrap_or_default();
            let head = base
                .split("\n[access]")
                .next()
                .unwrap_or_default()
                .to_string();
            (path, head + &access_toml(more))
        });
        for (path, text) in &files {
            write(path, text)?;
        }
        let mut out = Vec::new();
        let mut more = false;
        // A xorshift over the clock: pauses of 1-2 s between publishes, so they fall at
        // every phase of the keepers' 1 s ticks.
        let mut seed = (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(1) as u64)
            | 1;
        for k in 0..PUBLISHES + UNCHANGED {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            std::thread::sleep(Duration::from_millis(1000 + seed % 1000));
            // Every fourth publishes the file in force again; the others change it.
            let changed = k % 4 != 3;
            if changed {
                more = !more;
            }
            let file = &files[usize::from(more)].0;
            while rx.try_recv().is_ok() {}
            let started = Instant::now();
            live.publish(file)?;
            let wall = started.elapsed();
            let mut put = None;
            let mut applied: Vec<Option<f64>> = vec![None; names.len()];
            let deadline = Instant::now() + Duration::from_secs(3);
            while applied.iter().any(Option::is_none) {
                let left = deadline.saturating_duration_since(Instant::now());
                let Ok((at, key, value)) = rx.recv_timeout(left) else {
                    break;
                };
                let since = ms(at.saturating_duration_since(started));
                if key == POLICY_KEY {
                    put.get_or_insert(since);
                } else if let Some(i) = names
                    .iter()
                    .position(|n| key == format!("{APPLIED_PREFIX}{n}"))
                {
                    let policy = record_policy(&value);
                    if applied[i].is_none() && policy != policies[i] {
                        applied[i] = Some(since);
                        policies[i] = policy;
                    }
                }
            }
            out.push(Published {
                changed,
                wall_ms: ms(wall),
                put_ms: put,
                applied_ms: applied,
            });
        }
        Ok(out)
    })();
    stop.store(true, Ordering::SeqCst);
    let watched = watcher.join().map_err(|_| "the watch panicked")?;
    let out = result?;
    watched?;
    Ok(out)
}
