//! The decider's count and watch: each tenant's live keys counted at one revision, then
//! every event of the key space from the next one, each acted on at once
//! ([`super::act`]). The module's invariants are its parent's.

use std::collections::BTreeMap;
use std::time::Instant;

use etcd_client::{Client, EventType, WatchOptions};

use super::act;
use super::state::{stopped, Held, Period, Tenants, TICK};
use crate::link::leads;
use zone_etcd_kit::cluster_api::{self, range::scan_prefix};
use zone_model::quota::{display, tally::Tally};

/// The decider counts the zone's leases once in this many ticks.
const LEASES_EVERY: u32 = 5;

/// The largest watch answer taken (etcd batches events; one put is at most 1.5 MiB).
const MAX_WATCH_MESSAGE: usize = 64 << 20;

/// Counts, then follows the zone's writes until the leadership, the policy or the period
/// changes (`Ok`, the next round counts again) or a call fails.
pub(super) async fn follow(
    held: &mut Held,
    client: &mut Client,
    tenants: Tenants,
) -> Result<(), String> {
    let began = match held.written.began {
        Some(b) if b.elapsed() < held.period => b,
        _ => {
            held.written = Period {
                began: Some(Instant::now()),
                written: BTreeMap::new(),
            };
            Instant::now()
        }
    };
    let counted = Instant::now();
    let mut tally = Tally::new(tenants.clone());
    let mut at = 0;
    for (tenant, prefixes, _) in &tenants {
        let mut sizes = Vec::new();
        for prefix in prefixes {
            at = scan_prefix(client, prefix.as_bytes(), at, |kv| {
                sizes.push((kv.key().len(), kv.value().len()));
            })
            .await
            .map_err(|e| format!("counting {}: {e}", display(&tenant.name)))?;
        }
        tally.count(&tenant.name, sizes);
        if let Some(&written) = held.written.written.get(&tenant.name) {
            tally.carry(&tenant.name, written);
        }
    }
    tracing::info!(
        "quotas: {} tenant(s) counted at revision {at} in {:?}; following the zone's writes",
        tenants.len(),
        counted.elapsed()
    );
    let mut stopped = stopped(client).await?;
    act::decide(held, client, &tenants, &tally, &mut stopped).await?;

    let mut watch = client
        .watch_client()
        .max_decoding_message_size(MAX_WATCH_MESSAGE);
    let options = WatchOptions::new()
        .with_all_keys()
        .with_prev_key()
        .with_start_revision(at + 1);
    let mut stream = watch
        .watch("", Some(options))
        .await
        .map_err(|e| cluster_api::describe(&e))?;
    let mut tick = tokio::time::interval(TICK);
    let mut recorded = None;
    // Leases are counted every LEASES_EVERY ticks (one answer holds every lease's ID).
    let (mut ticks, mut leases) = (0u32, None);
    loop {
        tokio::select! {
            message = stream.message() => {
                let Some(response) = message.map_err(|e| cluster_api::describe(&e))? else {
                    return Err("the watch ended".into());
                };
                if response.canceled() || response.compact_revision() > 0 {
                    return Err(format!("the watch was canceled ({})", response.cancel_reason()));
                }
                for event in response.events() {
                    let Some(kv) = event.kv() else { continue };
                    let previous = event.prev_kv().map(|p| p.value().len());
                    match event.event_type() {
                        EventType::Put => tally.put(kv.key(), kv.value().len(), previous),
                        EventType::Delete => {
                            if let Some(previous) = previous {
                                tally.delete(kv.key(), previous);
                            }
                        }
                    }
                }
                act::decide(held, client, &tenants, &tally, &mut stopped).await?;
            }
            _ = tick.tick() => {
                let rows = tally.records(&stopped);
                held.written.written = rows
                    .iter()
                    .map(|t| (t.name.clone(), t.written_bytes))
                    .collect();
                if ticks % LEASES_EVERY == 0 {
                    leases = act::count_leases(client).await.or(leases);
                }
                ticks = ticks.wrapping_add(1);
                act::record_uses(held, client, rows, leases, &mut recorded).await?;
                let policy_changed = held.slot.get().as_ref() != Some(&tenants);
                if policy_changed || began.elapsed() >= held.period || !leads(client).await?.0 {
                    return Ok(());
                }
            }
        }
    }
}
