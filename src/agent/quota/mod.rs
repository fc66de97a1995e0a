//! The quota decider (issue 69, docs/design/quotas.md): a duty of every member's keeper
//! that acts only on the leader's. It counts each tenant's live keys once, then follows
//! every put and delete of the key space with the previous value (one watch with
//! `prev_kv`), and the moment a tenant crosses a budget it stops it: the tenant's role gets
//! read access on its ranges in place of write (its puts and deletes refused by etcd from
//! the next one applied, its reads still served), and a record at
//! `zone-etcd/quota/stopped/<role>` tells every member's access keeper to keep it so. A stopped
//! tenant back under nine tenths of every budget is resumed (record deleted, write given
//! back). Every tenant's figures go to `zone-etcd/quota/use` for `status` and `check`.
//!
//! Invariants: only the keeper of the member etcd reports as leader decides, and it gives up
//! within a second of losing the leadership (two deciders at a change write the same keys
//! with the same verdicts); the tenants are those of the policy the member's access keeper
//! applies ([`Slot`], set at each of its looks), and a changed policy is counted again;
//! the count is taken at one revision and the watch starts right after it, so no write is
//! missed or counted twice; the figures are counted again every compaction period (when the
//! write budgets start again), so a drift (an event whose previous value was compacted)
//! lasts one period at most; the decider never writes a tenant's keys, only roles' grants
//! and its own records.

mod act;
mod follow;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::duty::{Duty, Round};
use super::link::Link;
use crate::node::Node;
use zone_etcd_kit::cluster_api;
use zone_model::quota::record::STOPPED_PREFIX;
use zone_model::quota::Tenant;

/// How often the decider looks at its leadership, the policy and the figures to record.
const TICK: Duration = Duration::from_secs(1);

/// Each tenant, its prefixes and its `max_keys` ([`zone_model::quota::tenants`]).
pub type Tenants = Vec<(Tenant, Vec<String>, Option<u64>)>;

/// The tenants of the policy this member's access keeper applies, set at each of its looks;
/// empty while no enforced policy is applied (without auth on, no tenant can be held to
/// anything).
#[derive(Clone, Default)]
pub struct Slot(Arc<Mutex<Option<Tenants>>>);

impl Slot {
    pub fn set(&self, tenants: Tenants) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(tenants);
    }

    fn get(&self) -> Option<Tenants> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The decider of one member.
pub struct Decider {
    link: Link,
    slot: Slot,
    /// This member's node name (its records say who decided).
    member: String,
    /// The seconds of a compaction period: the write budgets start again each.
    period: Duration,
    /// What each tenant put in the current period, carried across counts.
    written: follow::Period,
}

impl Decider {
    /// The decider of `node`'s member; `None` when the node runs no member.
    pub fn new(node: &Node, link: Link, slot: Slot) -> Option<Decider> {
        let member = node.member()?.node_name.clone();
        Some(Decider {
            link,
            slot,
            member,
            period: Duration::from_secs(node.settings.compaction_period_seconds()),
            written: follow::Period::default(),
        })
    }
}

impl Duty for Decider {
    fn name(&self) -> String {
        format!("quotas: {}", self.link.endpoint())
    }

    fn pause(&self) -> Duration {
        TICK
    }

    /// On the leader's keeper: counts, then follows the zone's writes until the leadership,
    /// the policy or the period changes (or a call fails); elsewhere, nothing.
    async fn round(&mut self) -> Result<Round, String> {
        let tenants = match self.slot.get() {
            Some(t) if !t.is_empty() => t,
            _ => return Ok(Round::Quiet),
        };
        let mut client = self.link.client().await?;
        if !leads(&mut client).await? {
            return Ok(Round::Quiet);
        }
        let outcome = follow::follow(self, &mut client, tenants).await;
        if outcome.is_err() {
            self.link.reset().await;
        }
        outcome.map(|()| Round::Quiet)
    }
}

/// Whether this member leads the cluster now, as its etcd says.
async fn leads(client: &mut etcd_client::Client) -> Result<bool, String> {
    let status =
        cluster_api::within(async { client.status().await.map_err(|e| cluster_api::describe(&e)) })
            .await?;
    Ok(status
        .header()
        .is_some_and(|h| h.member_id() == status.leader()))
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The tenants a stop record names now.
pub async fn stopped(client: &mut etcd_client::Client) -> Result<Vec<String>, String> {
    let options = etcd_client::GetOptions::new()
        .with_prefix()
        .with_keys_only();
    let found = cluster_api::within(async {
        client
            .get(STOPPED_PREFIX, Some(options))
            .await
            .map_err(|e| cluster_api::describe(&e))
    })
    .await?;
    Ok(found
        .kvs()
        .iter()
        .filter_map(|kv| {
            kv.key_str()
                .ok()?
                .strip_prefix(STOPPED_PREFIX)
                .map(String::from)
        })
        .collect())
}
