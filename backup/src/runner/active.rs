//! One term as the active writer: win the election, go on from where the chain ends, then
//! follow every change with a watch of the whole key space, cutting delta segments and
//! taking full snapshots, until the lease is lost.
//!
//! Invariants:
//! - the watch starts at the head's next delta revision, so every revision after the last
//!   link is seen once; a revision already compacted is recorded as a gap link, never
//!   skipped, and a full snapshot follows at once;
//! - a full snapshot is taken when a term starts and every `full_every`, beside the
//!   watch; a new chain starts with one, so its deltas start right after it;
//! - retention prunes the local chain every few minutes and after each full snapshot, on
//!   a blocking thread, and orders the shippers to prune their targets (see `retain`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::{Client, EventType, WatchOptions};
use tokio::sync::watch;
use zone_io::Error;

use super::batch::Batch;
use super::context::Context;
use super::full::{self, FullSource};
use super::retain::Pruner;
use super::span::SpanRecorder;
use super::writer::{now_ms, ChainWriter, FullReady, Head, LeaseGuard};
use crate::retention::Policy;
use crate::segment::{Event, EventKind, Revision};
use zone_etcd_kit::cluster_api::{describe, within, EtcdError, Kind};

/// The election every member's `backup run` campaigns in; its leader's value is
/// `<node> <session>`.
pub const ELECTION: &str = "zone-etcd/backup/active";
/// The election lease: a dead writer's term ends this long after its last renewal.
pub const LEASE_TTL: Duration = Duration::from_secs(8);
/// A writer stops writing this long before its lease could have expired.
const LEASE_MARGIN: Duration = Duration::from_secs(2);
/// Watch responses may carry many events; etcd's own limit on a request is 1.5 MiB, a
/// response batches several.
const MAX_WATCH_MESSAGE: usize = 64 << 20;

/// The active writer as the election's leader names it: `(node, session)`, `None` when
/// no one writes; `Err` when the cluster does not answer.
pub async fn active_writer(client: &Client) -> Result<Option<(String, String)>, String> {
    let mut election = client.election_client();
    let asked = within(async { election.leader(ELECTION).await.map_err(EtcdError::from) });
    let leader = match asked.await {
        Ok(leader) => leader,
        // Nobody campaigns.
        Err(e) if e.kind() == Kind::ElectionNoLeader => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    Ok(leader
        .kv()
        .map(|kv| String::from_utf8_lossy(kv.value()).to_string())
        .and_then(|v| {
            v.split_once(' ')
                .map(|(n, s)| (n.to_string(), s.to_string()))
        }))
}

/// Campaigns, then writes until the term ends; `Ok` when the lease was lost (campaign
/// again), `Err` for what the operator must fix.
pub async fn term(ctx: &Context, client: &mut Client) -> Result<(), Error> {
    let guard = ctx.guard.clone();
    let lease = within(async {
        client
            .lease_grant(LEASE_TTL.as_secs() as i64, None)
            .await
            .map_err(|e| describe(&e))
    })
    .await
    .map_err(|p| Error::new(format!("cannot take an election lease: {p}")))?;
    let lease_id = lease.id();
    let (lost_tx, mut lost) = watch::channel(false);
    let keeper = tokio::spawn(keep_alive(client.clone(), lease_id, guard.clone(), lost_tx));
    let value = format!("{} {}", ctx.node_name, ctx.session);
    let mut election = client.election_client();
    let campaign = election.campaign(ELECTION, value, lease_id);
    tokio::select! {
        won = campaign => { won.map_err(|e| Error::new(format!("the election failed: {}", describe(&e))))?; }
        _ = lost.changed() => { keeper.abort(); return Ok(()); }
    }
    tracing::info!(
        "{} is the active backup writer (session {})",
        ctx.node_name,
        ctx.session
    );
    let result = write(ctx, client, &mut lost).await;
    guard.revoke();
    keeper.abort();
    let _ = client.lease_revoke(lease_id).await;
    result
}

async fn keep_alive(
    mut client: Client,
    id: i64,
    guard: Arc<LeaseGuard>,
    lost: watch::Sender<bool>,
) {
    let every = LEASE_TTL / 4;
    let mut last_ok = Instant::now();
    let Ok((mut keeper, mut stream)) = client.lease_keep_alive(id).await else {
        let _ = lost.send(true);
        return;
    };
    loop {
        let sent = Instant::now();
        let answer = tokio::time::timeout(every, async {
            keeper.keep_alive().await?;
            stream.message().await
        })
        .await;
        match answer {
            Ok(Ok(Some(resp))) if resp.ttl() > 0 => {
                guard.renewed(sent, Duration::from_secs(resp.ttl() as u64), LEASE_MARGIN);
                last_ok = sent;
            }
            Ok(Ok(Some(_))) => {
                guard.revoke();
                let _ = lost.send(true);
                return;
            }
            _ if last_ok.elapsed() > LEASE_TTL => {
                guard.revoke();
                let _ = lost.send(true);
                return;
            }
            _ => {}
        }
        tokio::time::sleep_until((sent + every).into()).await;
    }
}

async fn write(
    ctx: &Context,
    client: &mut Client,
    lost: &mut watch::Receiver<bool>,
) -> Result<(), Error> {
    let status = within(async { client.status().await.map_err(|e| describe(&e)) })
        .await
        .map_err(|p| Error::new(format!("cannot ask the cluster's status: {p}")))?;
    let cluster_id = status
        .header()
        .map(|h| zone_etcd_kit::cluster_api::hex_id(h.cluster_id()))
        .unwrap_or_default();
    let (targets, local, zone, roots) = (
        ctx.targets.clone(),
        ctx.local.clone(),
        ctx.zone.clone(),
        ctx.roots.clone(),
    );
    let resumed =
        tokio::task::spawn_blocking(move || super::resume::resume(&targets, &local, &zone, &roots))
            .await
            .map_err(|e| Error::new(format!("the resume task failed: {e}")))??;
    let mut writer = ChainWriter {
        local: ctx.local.clone(),
        zone: ctx.zone.clone(),
        cluster_id: cluster_id.clone(),
        session: ctx.session.clone(),
        node: ctx.node_name.clone(),
        recipients: ctx.recipients.clone(),
        signer: ctx.signer()?,
        guard: ctx.guard.clone(),
        head: Head {
            seq: 0,
            sha256: None,
            next_delta: 0,
        },
    };
    let source = FullSource {
        endpoints: ctx.endpoints.clone(),
        creds: ctx.creds.clone(),
        etcdutl: ctx.etcdutl.clone(),
        local: ctx.local.clone(),
        recipients: ctx.recipients.clone(),
    };
    let mut span = SpanRecorder::new(&ctx.node_name);
    let continues = match &resumed {
        Some(r) => {
            writer.adopt(&r.stored, &r.link.link)?;
            span.appended(&r.link.link);
            r.link.link.cluster_id == cluster_id
        }
        None => false,
    };
    if !continues {
        // A new chain (or a restored zone's new cluster): a full snapshot first, and the
        // deltas right after it; a term lost meanwhile ends here.
        let full = tokio::select! {
            full = full::take(&source) => full?,
            _ = lost.changed() => return Ok(()),
        };
        writer.head.next_delta = full.revision + 1;
        span.appended(&writer.append_full(full)?);
        ctx.bell.ring();
    }
    let mut pruner = Pruner::default();
    let result = follow(
        ctx,
        client,
        &mut writer,
        &source,
        lost,
        continues,
        (&mut pruner, &mut span),
    )
    .await;
    pruner.finish().await;
    span.finish().await;
    result
}

async fn follow(
    ctx: &Context,
    client: &mut Client,
    writer: &mut ChainWriter,
    source: &FullSource,
    lost: &mut watch::Receiver<bool>,
    full_now: bool,
    (pruner, span): (&mut Pruner, &mut SpanRecorder),
) -> Result<(), Error> {
    let mut batch = Batch::new(ctx.settings.delta_every(), Instant::now());
    let mut next_full = if full_now {
        Instant::now()
    } else {
        Instant::now() + ctx.settings.full_every()
    };
    let mut full_task: Option<tokio::task::JoinHandle<Result<FullReady, Error>>> = None;
    let mut watch_from = writer.head.next_delta;
    let mut watch_client = client
        .watch_client()
        .max_decoding_message_size(MAX_WATCH_MESSAGE);
    let options = |from: i64| {
        WatchOptions::new()
            .with_all_keys()
            .with_start_revision(from)
    };
    let mut stream = watch_client
        .watch("", Some(options(watch_from)))
        .await
        .map_err(|e| Error::new(format!("cannot watch the key space: {}", describe(&e))))?;
    let policy = Policy::of(&ctx.settings);
    loop {
        pruner.step(&ctx.local, policy, &ctx.orders).await;
        span.step(client, &ctx.local);
        if full_task.is_none() && Instant::now() >= next_full {
            let src = FullSource {
                endpoints: source.endpoints.clone(),
                creds: source.creds.clone(),
                etcdutl: source.etcdutl.clone(),
                local: source.local.clone(),
                recipients: source.recipients.clone(),
            };
            full_task = Some(tokio::spawn(async move { full::take(&src).await }));
        }
        let full_done = async {
            match full_task.as_mut() {
                Some(t) => t.await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = lost.changed() => return Ok(()),
            message = stream.message() => match message {
                Ok(Some(resp)) if resp.canceled() && resp.compact_revision() > 0 => {
                    // The watch fell behind etcd's compaction: record the gap, go on from
                    // the oldest revision kept, and take a full snapshot at once.
                    if !batch.is_empty() {
                        cut(writer, &mut batch, ctx, span).await?;
                    }
                    let kept = resp.compact_revision();
                    tracing::warn!("backup: revisions {}..{} were compacted before the watch saw them: recorded as a gap", writer.head.next_delta, kept - 1);
                    span.appended(&writer.append_gap(kept - 1, now_ms())?);
                    ctx.bell.ring();
                    watch_from = kept;
                    next_full = Instant::now();
                    stream = rewatch(&mut watch_client, options(watch_from)).await?;
                }
                Ok(Some(resp)) => {
                    let received = now_ms();
                    for event in resp.events() {
                        let Some(kv) = event.kv() else { continue };
                        let e = Event {
                            kind: match event.event_type() {
                                EventType::Put => EventKind::Put,
                                EventType::Delete => EventKind::Delete,
                            },
                            key: kv.key().to_vec(),
                            value: kv.value().to_vec(),
                            create_revision: kv.create_revision(),
                            mod_revision: kv.mod_revision(),
                            version: kv.version(),
                            lease: kv.lease(),
                        };
                        watch_from = watch_from.max(kv.mod_revision() + 1);
                        batch.push_event(e, received);
                    }
                }
                Ok(None) | Err(_) => {
                    // The member went away: watch again from the next revision not seen.
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    stream = rewatch(&mut watch_client, options(watch_from)).await?;
                }
            },
            _ = tokio::time::sleep_until(batch.next_due().into()) => {
                cut(writer, &mut batch, ctx, span).await?;
            }
            done = full_done => {
                full_task = None;
                next_full = Instant::now() + ctx.settings.full_every();
                match done {
                    Ok(Ok(full)) => {
                        span.appended(&writer.append_full(full)?);
                        ctx.bell.ring();
                        pruner.soon();
                    }
                    Ok(Err(e)) => tracing::warn!("backup: full snapshot failed: {e}; retrying at the next"),
                    Err(e) => tracing::warn!("backup: full snapshot task failed: {e}"),
                }
            }
        }
        if batch.due(Instant::now()) {
            cut(writer, &mut batch, ctx, span).await?;
        }
    }
}

/// Cuts the batch into a delta: sealed on the background thread ([`super::background`]), at a
/// priority below etcd's, so the burst of compressing it waits for etcd.
async fn cut(
    writer: &mut ChainWriter,
    batch: &mut Batch,
    ctx: &Context,
    span: &mut SpanRecorder,
) -> Result<(), Error> {
    let revisions: Vec<Revision> = batch.cut(Instant::now());
    let cut_ms = now_ms();
    let sealer = writer.sealer();
    let sealed = super::background::run(move || sealer.seal(&revisions, cut_ms)).await??;
    span.appended(&writer.append_sealed(sealed, cut_ms)?);
    ctx.bell.ring();
    Ok(())
}

async fn rewatch(
    client: &mut etcd_client::WatchClient,
    options: WatchOptions,
) -> Result<etcd_client::WatchStream, Error> {
    let mut wait = Duration::from_millis(500);
    loop {
        match client.watch("", Some(options.clone())).await {
            Ok(stream) => return Ok(stream),
            Err(e) => {
                tracing::warn!("backup: cannot watch again: {}; retrying", describe(&e));
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
}
