//! One recording watcher: watches the history's key prefix with previous key-values from
//! an explicit start revision and records every response as received.
//!
//! Invariants:
//! - Each watch stream is one watcher id; its lines repeat its key, prefix and start
//!   revision, in the order received (one task records them).
//! - A stream that breaks (member killed, connection lost) is followed by a new watcher
//!   id from the history's start revision again, so that some watcher can still cover
//!   every key from the start (the checker then rules out unknown writes nobody saw); a
//!   stream that ended `compacted` is followed by one from the compaction revision.
//! - The watcher stops only once it received a progress notification at or past the
//!   fence revision (every write of the history's keys is then delivered), or at the
//!   deadline; either way after every operation ended.

use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::{EventType, WatchOptions};
use tokio::sync::watch;
use zone_consistency::{Event, EventKind, Watch};

use crate::connect::connect_now;
use crate::shared::Shared;

/// How long a watcher may take to reach the fence once it is written.
pub const CATCH_UP: Duration = Duration::from_secs(60);

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs one watcher route until it reached the fence revision sent on `fence`.
/// Returns whether it did.
pub async fn run(
    shared: Arc<Shared>,
    endpoints: Vec<String>,
    start_revision: i64,
    mut fence: watch::Receiver<Option<i64>>,
) -> bool {
    let mut from = start_revision;
    let mut deadline: Option<Instant> = None;
    loop {
        if let Some(f) = *fence.borrow() {
            let _ = f;
            let d = *deadline.get_or_insert_with(|| Instant::now() + CATCH_UP);
            if Instant::now() > d {
                shared.note_error("a watcher did not reach the fence in time");
                return false;
            }
        }
        let id = shared.new_watcher_id();
        match one_stream(&shared, &endpoints, id, from, &mut fence).await {
            StreamEnd::Reached => return true,
            StreamEnd::Compacted(rev) => from = rev.max(from),
            StreamEnd::Broken => {
                from = start_revision.max(from);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

enum StreamEnd {
    Reached,
    Compacted(i64),
    Broken,
}

async fn one_stream(
    shared: &Shared,
    endpoints: &[String],
    id: u64,
    from: i64,
    fence: &mut watch::Receiver<Option<i64>>,
) -> StreamEnd {
    let Ok(mut client) = connect_now(endpoints, &shared.creds, Duration::from_secs(5)).await else {
        return StreamEnd::Broken;
    };
    let options = WatchOptions::new()
        .with_prefix()
        .with_prev_key()
        .with_start_revision(from);
    let opened = tokio::time::timeout(
        Duration::from_secs(5),
        client.watch(shared.watch_prefix.as_str(), Some(options)),
    )
    .await;
    let Ok(Ok(stream)) = opened else {
        return StreamEnd::Broken;
    };
    let (mut sender, mut responses) = stream.split();
    let mut tick = tokio::time::interval(Duration::from_millis(300));
    loop {
        tokio::select! {
            message = responses.message() => {
                let Ok(Some(resp)) = message else { return StreamEnd::Broken };
                let time_ns = shared.sink.now_ns();
                let revision = resp.header().map_or(0, |h| h.revision());
                let events: Vec<Event> = resp.events().iter().filter_map(|e| {
                    let kv = e.kv()?;
                    let kind = match e.event_type() {
                        EventType::Put => EventKind::Put,
                        EventType::Delete => EventKind::Delete,
                    };
                    Some(Event {
                        kind,
                        key: text(kv.key()),
                        value: (kind == EventKind::Put).then(|| text(kv.value())),
                        mod_revision: kv.mod_revision(),
                        create_revision: (kind == EventKind::Put).then_some(kv.create_revision()),
                        version: (kind == EventKind::Put).then_some(kv.version()),
                        prev_value: e.prev_kv().map(|p| text(p.value())),
                    })
                }).collect();
                let progress = !resp.created() && events.is_empty();
                let compacted = resp.compact_revision() > 0;
                let canceled = resp.canceled();
                shared.sink.watch(Watch {
                    line: 0,
                    watcher: id,
                    key: shared.watch_prefix.clone(),
                    prefix: true,
                    start_revision: from,
                    time_ns,
                    revision,
                    compacted,
                    canceled: canceled && !compacted,
                    events,
                });
                if compacted {
                    shared.note_watch_end(format!("watcher {id} compacted at {}", resp.compact_revision()));
                    return StreamEnd::Compacted(resp.compact_revision());
                }
                if canceled {
                    shared.note_watch_end(format!("watcher {id} canceled: {}", resp.cancel_reason()));
                    return StreamEnd::Broken;
                }
                let fence_rev = *fence.borrow();
                if let Some(f) = fence_rev {
                    if progress && revision >= f {
                        return StreamEnd::Reached;
                    }
                }
            }
            _ = tick.tick() => {
                if fence.borrow().is_some() && sender.request_progress().await.is_err() {
                    return StreamEnd::Broken;
                }
            }
        }
    }
}
