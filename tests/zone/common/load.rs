//! A write load on a zone: writer threads that each put a new key per request (etcd's
//! gRPC API) and remember which writes etcd acknowledged, so a test can prove none of them
//! is lost. Each writer keeps its connection to each endpoint, as etcd's clients do, and
//! makes a new one after a request failed on it (a member stopped, a revocation's cut).
//! A put on a held connection takes a few milliseconds where one on its own connection took
//! about 20 (a TLS session, a runtime): the tests' pauses grew by 20 ms when writers began to
//! hold connections, so each load writes at the rate it always did (twice the writes, with
//! the backups and members they feed, made the suite slower, not faster).
#![allow(dead_code)]

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine as _;
use zone_etcd_kit::cluster_api;

use super::Identity;

pub fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// What a load saw: keys etcd acknowledged, and requests that failed (with why).
#[derive(Debug, Default, Clone)]
pub struct LoadResult {
    pub acknowledged: Vec<String>,
    /// When each of `acknowledged` was acknowledged (same order).
    pub acknowledged_at: Vec<std::time::Instant>,
    /// When each of `acknowledged` was sent (its first attempt; same order).
    pub sent_at: Vec<std::time::Instant>,
    /// The revision etcd's answer named for each of `acknowledged` (same order; 0 when the
    /// answer named none).
    pub revisions: Vec<i64>,
    pub failures: Vec<String>,
}

impl LoadResult {
    /// A write can find no leader for the moment a stopping leader hands over (every
    /// endpoint says so at once); none of those was acknowledged. What counts under
    /// rolling restarts: few such (one in 50 at most) and more than `at_least`
    /// acknowledged; every acknowledged write kept is checked apart
    /// ([`LoadResult::kept_on_every_member`]).
    pub fn few_failed_and_enough_acknowledged(&self, at_least: usize) {
        assert!(
            self.failures.len() * 50 <= self.acknowledged.len(),
            "too many writes no endpoint took: {:?}",
            &self.failures[..self.failures.len().min(5)]
        );
        assert!(
            self.acknowledged.len() > at_least,
            "{}",
            self.acknowledged.len()
        );
    }

    /// Every acknowledged write (keys under `prefix/`) read back through each of `zone`'s
    /// members.
    pub fn kept_on_every_member(&self, zone: &super::TestZone, prefix: &str) {
        for i in 0..zone.members.len() {
            let (ok, keys, err) = zone.etcdctl(
                i,
                &zone.client_url(i),
                &["get", &format!("{prefix}/"), "--prefix", "--keys-only"],
            );
            assert!(ok, "{err}");
            let keys: std::collections::BTreeSet<&str> =
                keys.lines().filter(|l| !l.is_empty()).collect();
            let missing: Vec<&String> = self
                .acknowledged
                .iter()
                .filter(|k| !keys.contains(k.as_str()))
                .collect();
            assert!(missing.is_empty(), "member {i} lacks {missing:?}");
        }
    }
}

pub struct WriteLoad {
    stop: Arc<AtomicBool>,
    result: Arc<Mutex<LoadResult>>,
    writers: Vec<JoinHandle<()>>,
}

impl WriteLoad {
    /// One writer per `host:port` in `addrs`, writing keys `<prefix>/<writer>/<n>` every
    /// `pause`, with the client certificate `identity` and trust anchor `ca`.
    pub fn start(
        addrs: &[String],
        ca: &Path,
        identity: &Identity,
        prefix: &str,
        pause: Duration,
    ) -> WriteLoad {
        let routes = addrs.iter().map(|a| vec![a.clone()]).collect();
        Self::start_routes(routes, ca, identity, prefix, pause)
    }

    /// One writer per `host:port` in `addrs`, each starting at its own endpoint and, when a
    /// request fails there, trying the others in turn, as a client given every endpoint
    /// does: a failure is a write no endpoint acknowledged.
    pub fn start_failover(
        addrs: &[String],
        ca: &Path,
        identity: &Identity,
        prefix: &str,
        pause: Duration,
    ) -> WriteLoad {
        let routes = (0..addrs.len())
            .map(|i| addrs[i..].iter().chain(&addrs[..i]).cloned().collect())
            .collect();
        Self::start_routes(routes, ca, identity, prefix, pause)
    }

    fn start_routes(
        routes: Vec<Vec<String>>,
        ca: &Path,
        identity: &Identity,
        prefix: &str,
        pause: Duration,
    ) -> WriteLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let result = Arc::new(Mutex::new(LoadResult::default()));
        let writers = routes
            .into_iter()
            .enumerate()
            .map(|(i, route)| {
                let (stop, result) = (stop.clone(), result.clone());
                let ca = ca.to_path_buf();
                let identity = Identity {
                    chain: identity.chain.clone(),
                    key: identity.key.clone(),
                };
                let prefix = prefix.to_string();
                std::thread::spawn(move || {
                    let mut connections = Connections::new(&ca, &identity);
                    let mut n = 0;
                    while !stop.load(Ordering::SeqCst) {
                        let key = format!("{prefix}/{i}/{n:06}");
                        let sent = std::time::Instant::now();
                        let mut outcome = Err(Failed {
                            kind: cluster_api::Kind::Unreachable,
                            line: "no endpoint".to_string(),
                        });
                        let mut errors = Vec::new();
                        for addr in &route {
                            outcome = connections.put(addr, &key, "v");
                            if outcome.as_ref().is_err_and(was_cut) {
                                // A member that cut the connection (a revocation cuts
                                // every old client connection once, by design) is
                                // reconnected to once, as every etcd client does.
                                errors.push(format!("{addr}: {}", outcome.clone().unwrap_err()));
                                outcome = connections.put(addr, &key, "v");
                            }
                            match &outcome {
                                Ok(_) => break,
                                Err(e) => errors.push(format!("{addr}: {e}")),
                            }
                        }
                        let outcome = outcome.map_err(|_| errors.join("; "));
                        let mut result = result.lock().unwrap();
                        match outcome {
                            Ok(revision) => {
                                result.acknowledged.push(key);
                                result.acknowledged_at.push(std::time::Instant::now());
                                result.sent_at.push(sent);
                                result.revisions.push(revision);
                            }
                            Err(e) => result.failures.push(format!("{key}: {e}")),
                        }
                        drop(result);
                        n += 1;
                        std::thread::sleep(pause);
                    }
                })
            })
            .collect();
        WriteLoad {
            stop,
            result,
            writers,
        }
    }

    /// How many writes were acknowledged so far.
    pub fn acknowledged(&self) -> usize {
        self.result.lock().unwrap().acknowledged.len()
    }

    /// The failures so far, oldest first.
    pub fn failures(&self) -> Vec<String> {
        self.result.lock().unwrap().failures.clone()
    }

    /// Stops every writer and returns what they saw (and says how much, in the test log).
    pub fn stop(mut self) -> LoadResult {
        self.stop.store(true, Ordering::SeqCst);
        for writer in self.writers.drain(..) {
            writer.join().unwrap();
        }
        let result = self.result.lock().unwrap().clone();
        eprintln!(
            "{} writes acknowledged, {} failed",
            result.acknowledged.len(),
            result.failures.len()
        );
        result
    }
}

impl Drop for WriteLoad {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// A writer's connections: one per endpoint, made at its first put and dropped when a put
/// on it fails, so the next put there connects afresh (and sees the certificates and
/// revocations in force then).
struct Connections {
    runtime: tokio::runtime::Runtime,
    creds: zone_etcd_kit::cluster_api::Credentials,
    open: std::collections::HashMap<String, etcd_client::Client>,
}

impl Connections {
    fn new(ca: &Path, identity: &Identity) -> Connections {
        Connections {
            runtime: cluster_api::runtime().expect("a writer's runtime"),
            creds: super::grpc_load::credentials(ca, identity),
            open: std::collections::HashMap::new(),
        }
    }

    /// One put of `value` at `key` through `addr`, sent again while it races changes of
    /// etcd's auth store (a revocation or a published policy is a burst of them), as
    /// etcd's own client does, for at most [`AUTH_CHANGES_WITHIN`].
    fn put(&mut self, addr: &str, key: &str, value: &str) -> Result<i64, Failed> {
        let first = std::time::Instant::now();
        loop {
            match self.put_on(addr, key, value) {
                Err(e)
                    if e.kind == cluster_api::Kind::AuthOldRevision
                        && first.elapsed() < AUTH_CHANGES_WITHIN =>
                {
                    std::thread::sleep(Duration::from_millis(100));
                }
                outcome => return outcome,
            }
        }
    }

    fn put_on(&mut self, addr: &str, key: &str, value: &str) -> Result<i64, Failed> {
        let Connections {
            runtime,
            creds,
            open,
        } = self;
        let outcome = runtime.block_on(async {
            let client = match open.get_mut(addr) {
                Some(client) => client,
                None => {
                    let endpoint = [format!("https://{addr}")];
                    let client =
                        cluster_api::connect_many(&endpoint, creds, cluster_api::REQUEST_TIMEOUT)
                            .await
                            .map_err(|line| Failed {
                                kind: cluster_api::Kind::Unreachable,
                                line,
                            })?;
                    open.entry(addr.to_string()).or_insert(client)
                }
            };
            put_through(client, key, value).await
        });
        if outcome.is_err() {
            open.remove(addr);
        }
        outcome
    }
}

/// One put through `client`: Ok(the revision etcd's answer names) once acknowledged.
async fn put_through(
    client: &mut etcd_client::Client,
    key: &str,
    value: &str,
) -> Result<i64, Failed> {
    let put = cluster_api::within(async {
        client
            .put(key, value, None)
            .await
            .map_err(|e| cluster_api::EtcdError::of(&e))
    })
    .await
    .map_err(|e: cluster_api::EtcdError| Failed {
        kind: e.kind(),
        line: e.to_string(),
    })?;
    Ok(put.header().map(|h| h.revision()).unwrap_or(0))
}

/// One put on a new connection ([`put_revision`]); Ok only when etcd acknowledged it.
pub fn put(addr: &str, ca: &Path, identity: &Identity, key: &str) -> Result<(), String> {
    put_revision(addr, ca, identity, key).map(|_| ())
}

/// True for a write the member's connection failed under (a revocation's cut, `ss -K`,
/// a member stopping): sent again once on a new connection, as every etcd client does.
fn was_cut(error: &Failed) -> bool {
    error.kind == cluster_api::Kind::Unreachable
}

/// A put etcd did not acknowledge: what kind of failure, and its line.
#[derive(Debug, Clone)]
pub struct Failed {
    pub kind: cluster_api::Kind,
    pub line: String,
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.line)
    }
}

/// One put through etcd's gRPC API on a new TCP connection and TLS session, as `identity`
/// (so each write sees the certificates and revocations in force when it is sent); Ok(the
/// revision etcd's answer names) once etcd acknowledged it. gRPC as a user with an identity
/// speaks it: etcd's JSON gateway ignores a client certificate's name once a zone enforces
/// least privilege (400), its clients authenticate by password (`env --gateway`).
pub fn put_revision(addr: &str, ca: &Path, identity: &Identity, key: &str) -> Result<i64, String> {
    put_value(addr, ca, identity, key, "v")
}

/// [`put_revision`] of `value`.
pub fn put_value(
    addr: &str,
    ca: &Path,
    identity: &Identity,
    key: &str,
    value: &str,
) -> Result<i64, String> {
    Connections::new(ca, identity)
        .put(addr, key, value)
        .map_err(|e| e.line)
}

/// How long a put is sent again that raced a change of etcd's auth store ("revision of
/// auth store is old"), as etcd's own client does: a revocation or a published policy is
/// a burst of such changes.
const AUTH_CHANGES_WITHIN: Duration = Duration::from_secs(10);
