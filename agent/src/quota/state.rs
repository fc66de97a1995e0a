//! What the decider's parts share: the tenants handed over by the access keeper
//! ([`Slot`]), what a decider holds between its rounds ([`Held`]), and its few calls to etcd
//! that are not a decision (the leadership, the stop records). The module's invariants are
//! its parent's.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zone_etcd_kit::cluster_api;
use zone_model::quota::record::STOPPED_PREFIX;
use zone_model::quota::Tenant;

/// How often the decider looks at its leadership, the policy and the figures to record.
pub(super) const TICK: Duration = Duration::from_secs(1);

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

    pub(super) fn get(&self) -> Option<Tenants> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// What a decider holds from one round to the next.
pub(super) struct Held {
    pub slot: Slot,
    /// This member's node name (its records say who decided).
    pub member: String,
    /// A compaction period: the write budgets start again each.
    pub period: Duration,
    /// What each tenant made of history in the current period, carried across counts.
    pub written: Period,
}

/// The current compaction period: when it began, and each tenant's history in it so far.
#[derive(Debug, Default)]
pub(super) struct Period {
    pub began: Option<Instant>,
    pub written: BTreeMap<String, u64>,
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
