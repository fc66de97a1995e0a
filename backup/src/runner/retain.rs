//! Retention in `backup run` (see [`crate::retention`]).
//!
//! The active writer prunes its local chain every [`PRUNE_EVERY`] and after each full
//! snapshot ([`local_round`]), then publishes the time it planned at in [`Orders`]. Each
//! shipper, after shipping and only while this node holds the election lease, prunes its
//! target by a plan made from that target's own links at the same time
//! ([`target_round`]): a target may hold older links than the local chain (from earlier
//! writers), and the same time makes both plans agree (a later plan drops what an earlier
//! one dropped, and a chain's suffix is planned as the whole chain would be).
//!
//! Invariants:
//! - the time planned at is the local head's (never later than the clock): a chain that
//!   stops growing is not pruned away, and a clock set ahead prunes nothing early;
//! - a target never loses a link the local chain still holds (the shipper would send it
//!   again): its round stops at the first such link and goes on after the local round;
//! - only the lease holder prunes a target; a round deletes at most [`BUDGET`] links.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use zone_io::Error;
use zone_pki::CertInfo;

use super::writer::now_ms;
use crate::destination::Target;
use crate::local::LocalChain;
use crate::prune::{self, Links};
use crate::retention::{self, Policy};

pub const PRUNE_EVERY: Duration = Duration::from_secs(300);
/// The most links one round deletes.
pub const BUDGET: usize = 2000;

/// What the writer last planned its local chain at, for the shippers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Order {
    pub policy: Policy,
    pub now_ms: i64,
    /// Counts the orders, so a shipper applies each once.
    pub round: u64,
}

#[derive(Default)]
pub struct Orders {
    latest: Mutex<Option<Order>>,
}

impl Orders {
    pub fn publish(&self, policy: Policy, now_ms: i64) {
        if let Ok(mut latest) = self.latest.lock() {
            let round = latest.map_or(1, |o| o.round + 1);
            *latest = Some(Order {
                policy,
                now_ms,
                round,
            });
        }
    }

    pub fn latest(&self) -> Option<Order> {
        self.latest.lock().ok().and_then(|o| *o)
    }
}

/// Plans the local chain and prunes it; publishes the time planned at. Returns how many
/// links were removed.
pub fn local_round(
    local: &LocalChain,
    links: &mut Links,
    policy: Policy,
    orders: &Orders,
) -> Result<usize, Error> {
    let names = local.manifests()?;
    links.sync(&names, |name, _| prune::read_local(local, name))?;
    let Some(head_ms) = links.head_time_ms() else {
        return Ok(0);
    };
    let now = now_ms().min(head_ms);
    let plan = retention::plan(&links.summaries(), &policy, now);
    let done = prune::prune_local(local, &plan.drop, BUDGET)?;
    for d in &plan.drop[..done] {
        links.forget(&d.manifest);
    }
    orders.publish(policy, now);
    Ok(done)
}

/// Plans a target from its own links (`present`: its manifests' names as this shipper
/// knows them) and prunes it. Returns whether more is left that the next round can do
/// now (the budget ran out); links the local chain still holds wait for the next order.
pub fn target_round(
    target: &dyn Target,
    local: &LocalChain,
    present: &mut BTreeSet<String>,
    links: &mut Links,
    (zone, roots): (&str, &[CertInfo]),
    order: &Order,
) -> Result<bool, String> {
    let gone = links.sync(present.iter(), |name, kind| {
        prune::read_target(target, name, kind, zone, roots)
    })?;
    for name in gone {
        present.remove(&name);
    }
    let plan = retention::plan(&links.summaries(), &order.policy, order.now_ms);
    let held: BTreeSet<String> = local
        .manifests()
        .map_err(|e| e.to_string())?
        .into_iter()
        .collect();
    let upto = plan
        .drop
        .iter()
        .position(|d| held.contains(&d.manifest))
        .unwrap_or(plan.drop.len());
    let done =
        prune::prune_target(target, &plan.drop[..upto], BUDGET).map_err(|e| e.to_string())?;
    for d in &plan.drop[..done] {
        present.remove(&d.manifest);
        links.forget(&d.manifest);
    }
    if done > 0 {
        tracing::info!(
            "backup target {}: retention removed {done} link(s)",
            target.url()
        );
    }
    Ok(done == BUDGET && done < upto)
}

/// The writer's side: local rounds on a blocking thread, one at a time, never holding up
/// the watch.
pub struct Pruner {
    task: Option<tokio::task::JoinHandle<(Links, Result<usize, Error>)>>,
    links: Option<Links>,
    next: std::time::Instant,
}

impl Default for Pruner {
    fn default() -> Self {
        Pruner {
            task: None,
            links: Some(Links::default()),
            next: std::time::Instant::now() + PRUNE_EVERY,
        }
    }
}

impl Pruner {
    /// Prunes at the next step (after a full snapshot).
    pub fn soon(&mut self) {
        self.next = std::time::Instant::now();
    }

    /// Collects a finished round, and starts one when due.
    pub async fn step(
        &mut self,
        local: &std::sync::Arc<LocalChain>,
        policy: Policy,
        orders: &std::sync::Arc<Orders>,
    ) {
        if self.task.as_ref().is_some_and(|t| t.is_finished()) {
            self.finish().await;
        }
        if self.task.is_some() || std::time::Instant::now() < self.next {
            return;
        }
        let Some(mut links) = self.links.take() else {
            return;
        };
        self.next = std::time::Instant::now() + PRUNE_EVERY;
        let (local, orders) = (local.clone(), orders.clone());
        self.task = Some(tokio::task::spawn_blocking(move || {
            let result = local_round(&local, &mut links, policy, &orders);
            (links, result)
        }));
    }

    /// Waits for the round under way, if any.
    pub async fn finish(&mut self) {
        let Some(task) = self.task.take() else {
            return;
        };
        match task.await {
            Ok((links, result)) => {
                self.links = Some(links);
                match result {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!("backup: retention removed {n} local link(s)");
                        if n == BUDGET {
                            self.soon();
                        }
                    }
                    Err(e) => tracing::warn!("backup: local retention failed: {e}"),
                }
            }
            Err(e) => {
                self.links = Some(Links::default());
                tracing::warn!("backup: the local retention task failed: {e}");
            }
        }
    }
}
