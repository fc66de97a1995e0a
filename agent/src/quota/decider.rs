//! The decider as a duty of the keeper: a round on the leader's keeper counts and follows
//! ([`super::follow`]); elsewhere it does nothing. The module's invariants are its parent's.

use std::time::Duration;

use super::follow::follow;
use super::state::{Held, Period, Slot, TICK};
use crate::duty::{Duty, Round};
use crate::link::Link;
use zone_node::node::Node;

/// The decider of one member.
pub struct Decider {
    link: Link,
    held: Held,
}

impl Decider {
    /// The decider of `node`'s member; `None` when the node runs no member.
    pub fn new(node: &Node, link: Link, slot: Slot) -> Option<Decider> {
        let member = node.member()?.node_name.clone();
        Some(Decider {
            link,
            held: Held {
                slot,
                member,
                period: Duration::from_secs(node.settings.compaction_period_seconds()),
                written: Period::default(),
            },
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
        let tenants = match self.held.slot.get() {
            Some(t) if !t.is_empty() => t,
            _ => return Ok(Round::Quiet),
        };
        let mut client = self.link.client().await?;
        if !self.link.leads().await?.0 {
            return Ok(Round::Quiet);
        }
        let outcome = follow(&mut self.held, &mut client, tenants).await;
        if outcome.is_err() {
            self.link.reset().await;
        }
        outcome.map(|()| Round::Quiet)
    }
}
