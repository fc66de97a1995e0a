//! The recorder: clients and watchers on a fresh set of keys, then the fence and the final
//! reads, all into one [`Sink`].
//!
//! Invariants:
//! - Keys are `<prefix>k<i>`, watched as the prefix `<prefix>k`; the fence key
//!   `<prefix>fence` is outside it and no history line names it.
//! - Watchers start at the revision after the one read before any operation, so their
//!   stream holds every write of the keys.
//! - Clients run until `ops` operations ended and the fault says it is done
//!   ([`Control`]), then stop after their operation in flight; only then is the fence
//!   written, the watchers waited for (each until a progress notification at or past the
//!   fence), and every key read once more, linearizably (`final` lines; these reads, not
//!   operations of the history, are retried until they answer).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use zone_consistency::Final;

use crate::connect::{connect_now, CredFiles};
use crate::shared::{Control, Shared};
use crate::sink::Sink;

/// What to record.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Every member's client URL.
    pub endpoints: Vec<String>,
    pub creds: CredFiles,
    /// A prefix no other history uses, e.g. `/cz/<run>/<history>/`.
    pub prefix: String,
    pub keys: usize,
    /// Operations to record (at least; more while a fault is not done).
    pub ops: u64,
    /// Clients given every endpoint, beside one pinned to each endpoint.
    pub clients_all: usize,
    pub op_timeout: Duration,
    pub seed: u64,
}

/// What one recording did.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub ops: usize,
    pub unknown: usize,
    pub failed: usize,
    pub watch_responses: usize,
    pub watchers_reached_fence: usize,
    pub watchers: usize,
    pub notes: Vec<String>,
}

/// Retries `f` every 200 ms until it answers or `limit` passed.
async fn retry<T, F, Fut>(limit: Duration, what: &str, mut f: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + limit;
    loop {
        match tokio::time::timeout(Duration::from_secs(5), f()).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) if Instant::now() > deadline => return Err(format!("{what}: {e}")),
            Err(_) if Instant::now() > deadline => return Err(format!("{what}: no answer")),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Records one history into `sink` while `control` tells how far the fault is.
pub async fn record(
    plan: &Plan,
    control: Arc<Control>,
    sink: Arc<Sink>,
) -> Result<Summary, String> {
    control.target.store(plan.ops, Ordering::SeqCst);
    let keys: Vec<String> = (0..plan.keys)
        .map(|i| format!("{}k{i}", plan.prefix))
        .collect();
    let shared = Arc::new(Shared {
        sink: sink.clone(),
        control: control.clone(),
        creds: plan.creds.clone(),
        keys: keys.clone(),
        watch_prefix: format!("{}k", plan.prefix),
        op_timeout: plan.op_timeout,
        next_client: AtomicU64::new(1),
        next_watcher: AtomicU64::new(1),
        notes: Mutex::new(Vec::new()),
    });
    let all = plan.endpoints.clone();
    let start = retry(Duration::from_secs(60), "the start revision", || {
        let (all, creds, key) = (all.clone(), plan.creds.clone(), keys[0].clone());
        async move {
            let mut c = connect_now(&all, &creds, Duration::from_secs(5)).await?;
            let r = c.get(key, None).await.map_err(|e| e.to_string())?;
            Ok(r.header().map_or(0, |h| h.revision()))
        }
    })
    .await?;
    let (fence_tx, fence_rx) = watch::channel(None);
    let mut watcher_routes: Vec<Vec<String>> = plan
        .endpoints
        .iter()
        .take(2)
        .map(|e| vec![e.clone()])
        .collect();
    watcher_routes.push(all.clone());
    let watchers: Vec<_> = watcher_routes
        .into_iter()
        .map(|route| {
            tokio::spawn(crate::watcher::run(
                shared.clone(),
                route,
                start + 1,
                fence_rx.clone(),
            ))
        })
        .collect();
    let mut routes: Vec<Vec<String>> = plan.endpoints.iter().map(|e| vec![e.clone()]).collect();
    routes.extend((0..plan.clients_all).map(|_| all.clone()));
    let clients: Vec<_> = routes
        .into_iter()
        .enumerate()
        .map(|(i, route)| {
            let seed = plan.seed.wrapping_add(i as u64 * 0x9E37_79B9);
            tokio::spawn(crate::client::run(shared.clone(), route, seed))
        })
        .collect();
    for c in clients {
        let _ = c.await;
    }
    if control.abort.load(Ordering::SeqCst) {
        return Err("aborted".into());
    }
    let fence_key = format!("{}fence", plan.prefix);
    let fence = retry(Duration::from_secs(60), "the fence write", || {
        let (all, creds, key) = (all.clone(), plan.creds.clone(), fence_key.clone());
        async move {
            let mut c = connect_now(&all, &creds, Duration::from_secs(5)).await?;
            let r = c.put(key, "fence", None).await.map_err(|e| e.to_string())?;
            Ok(r.header().map_or(0, |h| h.revision()))
        }
    })
    .await?;
    let _ = fence_tx.send(Some(fence));
    let mut summary = Summary::default();
    for w in watchers {
        summary.watchers += 1;
        if matches!(w.await, Ok(true)) {
            summary.watchers_reached_fence += 1;
        }
    }
    for key in &keys {
        let f = retry(Duration::from_secs(60), "a final read", || {
            let (all, creds, key) = (all.clone(), plan.creds.clone(), key.clone());
            async move {
                let mut c = connect_now(&all, &creds, Duration::from_secs(5)).await?;
                let r = c.get(key.as_str(), None).await.map_err(|e| e.to_string())?;
                let kv = r.kvs().first();
                Ok(Final {
                    line: 0,
                    revision: r.header().map_or(0, |h| h.revision()),
                    key,
                    value: kv.map(|kv| String::from_utf8_lossy(kv.value()).into_owned()),
                    mod_revision: kv.map_or(0, |kv| kv.mod_revision()),
                })
            }
        })
        .await?;
        sink.final_read(f);
    }
    let h = sink.history();
    use zone_consistency::Outcome;
    summary.ops = h.ops.len();
    summary.unknown = h
        .ops
        .iter()
        .filter(|o| o.outcome == Outcome::Unknown)
        .count();
    summary.failed = h
        .ops
        .iter()
        .filter(|o| o.outcome == Outcome::Failed)
        .count();
    summary.watch_responses = h.watches.len();
    summary.notes = shared
        .notes
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    Ok(summary)
}

/// The runtime a recording runs on: two workers, as many as the machine's cores, so the
/// clients' and watchers' tasks never wait on one another for long.
pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the recorder's runtime: {e}"))
}
