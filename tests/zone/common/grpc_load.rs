//! A writer that speaks etcd's gRPC (the HTTP gateway ignores a client certificate's name
//! in a zone that enforces least privilege): puts `<prefix><n>` through every endpoint it
//! is given, as one client of etcd, until stopped.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use zone_etcd_kit::cluster_api::{self, Credentials};

use super::{Identity, TestZone};

/// How long a writer sends a request again that raced changes of etcd's auth store, or
/// reached no member that serves.
pub const AUTH_CHANGES_WITHIN: Duration = Duration::from_secs(10);

/// Credentials of `who`, verifying the servers with `ca`.
pub fn credentials(ca: &std::path::Path, who: &Identity) -> Credentials {
    Credentials::from_pem(
        &std::fs::read_to_string(ca).unwrap(),
        &std::fs::read_to_string(&who.chain).unwrap(),
        &std::fs::read_to_string(&who.key).unwrap(),
    )
}

pub struct GrpcWriter {
    stop: Arc<AtomicBool>,
    acknowledged: Arc<AtomicUsize>,
    keys: Arc<Mutex<Vec<String>>>,
    thread: JoinHandle<Vec<String>>,
}

impl GrpcWriter {
    /// A writer as member 0's client identity (etcd's root in an enforced zone) through
    /// every member of `zone`.
    pub fn as_member0(zone: &TestZone, prefix: &str, pause: Duration) -> GrpcWriter {
        let member0 = Identity {
            chain: zone.tls(0, "client.crt"),
            key: zone.tls(0, "client.key"),
        };
        let creds = credentials(&zone.tls(0, "ca.crt"), &member0);
        GrpcWriter::start(zone.client_urls(), creds, prefix, pause)
    }

    /// Starts writing through `endpoints` (`https://host:port`) as `creds`, a pause of
    /// `pause` between two puts.
    pub fn start(
        endpoints: Vec<String>,
        creds: Credentials,
        prefix: &str,
        pause: Duration,
    ) -> GrpcWriter {
        let stop = Arc::new(AtomicBool::new(false));
        let acknowledged = Arc::new(AtomicUsize::new(0));
        let keys = Arc::new(Mutex::new(Vec::new()));
        let (stopped, count, kept) = (stop.clone(), acknowledged.clone(), keys.clone());
        let prefix = prefix.to_string();
        let thread = std::thread::spawn(move || {
            let runtime = cluster_api::runtime().unwrap();
            runtime.block_on(async {
                let mut client =
                    cluster_api::connect_many(&endpoints, &creds, cluster_api::REQUEST_TIMEOUT)
                        .await
                        .expect("the writer connects");
                let mut failures = Vec::new();
                let mut n = 0;
                while !stopped.load(Ordering::SeqCst) {
                    // As a client of etcd does (access.md): a request that raced a change
                    // of the auth store ("revision of auth store is old") is sent again.
                    // A published policy is a burst of such changes (one raft write each,
                    // every member's keeper applying): a request sent again at once can
                    // race the next one of the burst, so it waits a little between tries,
                    // for as long as a burst takes on a loaded machine. (Three tries at
                    // once all raced the same burst in a clean run.)
                    let first = Instant::now();
                    let key = format!("{prefix}{n:06}");
                    loop {
                        match client.put(key.as_str(), "x", None).await {
                            Ok(_) => {
                                kept.lock().unwrap().push(key.clone());
                                count.fetch_add(1, Ordering::SeqCst);
                            }
                            // So is one that reached no member that serves (a member
                            // restarting: the client's balancer still picks it a while).
                            Err(e)
                                if matches!(
                                    cluster_api::EtcdError::of(&e).kind(),
                                    cluster_api::Kind::AuthOldRevision
                                        | cluster_api::Kind::Unreachable
                                        | cluster_api::Kind::NoLeader
                                ) && first.elapsed() < AUTH_CHANGES_WITHIN =>
                            {
                                tokio::time::sleep(Duration::from_millis(100)).await;
                                continue;
                            }
                            Err(e) => failures.push(format!("{key}: {e}")),
                        }
                        break;
                    }
                    n += 1;
                    tokio::time::sleep(pause).await;
                }
                failures
            })
        });
        GrpcWriter {
            stop,
            acknowledged,
            keys,
            thread,
        }
    }

    /// How many puts were acknowledged so far.
    pub fn acknowledged(&self) -> usize {
        self.acknowledged.load(Ordering::SeqCst)
    }

    /// Stops it: the keys acknowledged, and the failures (key: error).
    pub fn stop(self) -> (Vec<String>, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        let failures = self.thread.join().unwrap();
        let keys = std::mem::take(&mut *self.keys.lock().unwrap());
        (keys, failures)
    }
}
