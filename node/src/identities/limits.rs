//! How much one node may ask of a member's identity endpoint (issue 68): a node that
//! hammers it, with slow connections or fast requests, cannot keep another node from its
//! identity, nor fill the zone's database through it.
//!
//! - **Per address**: at most [`PER_ADDRESS`] connections at once from one IP address
//!   (before the handshake, the only name a connection has); more are closed at once. A
//!   node's slow connections hold its own slots, not the zone's ([`super::connection::CONNECTIONS`]
//!   in all).
//! - **Per node**: each node (the name its node CA proves) has a bucket of [`BURST`]
//!   requests, refilled one every [`REFILL_EVERY`]; past it, 429 with when to ask again.
//! - **Live identities per node**: at most [`LIVE_PER_NODE`] unexpired entries under the
//!   node in the zone's ledger (or, while its etcd does not answer, in the member's journal
//!   of it); past it, nothing is issued (429): what a node can make the zone store through
//!   the endpoint is bounded, whatever its grant.
//!
//! Invariants: the decisions are pure ([`Buckets::take`], [`Addresses::enter`]); a
//! refusal costs no signature and no write.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The most connections at once from one address.
pub const PER_ADDRESS: usize = 4;
/// The requests a node may make at once.
pub const BURST: u32 = 20;
/// One more request allowed this often.
pub const REFILL_EVERY: Duration = Duration::from_secs(2);
/// The most unexpired identities and branches the ledger holds for one node.
pub const LIVE_PER_NODE: usize = 200;

/// The open connections by address.
#[derive(Default)]
pub struct Addresses(HashMap<IpAddr, usize>);

impl Addresses {
    /// Whether one more connection from `ip` may be served (counted when it may).
    pub fn enter(&mut self, ip: IpAddr) -> bool {
        let open = self.0.entry(ip).or_default();
        if *open >= PER_ADDRESS {
            return false;
        }
        *open += 1;
        true
    }

    /// A connection from `ip` ended.
    pub fn leave(&mut self, ip: IpAddr) {
        if let Some(open) = self.0.get_mut(&ip) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                self.0.remove(&ip);
            }
        }
    }
}

/// Each node's requests left, and when it was last counted.
#[derive(Default)]
pub struct Buckets(HashMap<String, (u32, Instant)>);

impl Buckets {
    /// Takes one request of `node`'s at `now`: `Err` with how long until it may ask again.
    pub fn take(&mut self, node: &str, now: Instant) -> Result<(), Duration> {
        let (left, at) = self.0.entry(node.to_string()).or_insert((BURST, now));
        let refills = (now.saturating_duration_since(*at).as_millis()
            / REFILL_EVERY.as_millis().max(1)) as u32;
        if refills > 0 {
            *left = left.saturating_add(refills).min(BURST);
            *at += REFILL_EVERY * refills;
        }
        if *left == 0 {
            return Err((*at + REFILL_EVERY).saturating_duration_since(now));
        }
        *left -= 1;
        Ok(())
    }
}

/// The refusal of a node past its bucket.
pub fn too_many(node: &str, wait: Duration) -> String {
    format!(
        "too many requests from {node}: at most {BURST} at once and one every {} s; ask again in {} s",
        REFILL_EVERY.as_secs(),
        wait.as_secs().max(1)
    )
}

/// The refusal of a node with [`LIVE_PER_NODE`] live identities already.
pub fn too_many_live(node: &str, live: usize) -> String {
    format!(
        "{node} holds {live} unexpired identities already (at most {LIVE_PER_NODE}): nothing more is issued to it until some expire or the owner revokes it"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_holds_at_most_its_share_of_connections() {
        let mut open = Addresses::default();
        let (a, b): (IpAddr, IpAddr) =
            ("198.18.0.1".parse().unwrap(), "198.18.0.2".parse().unwrap());
        for _ in 0..PER_ADDRESS {
            assert!(open.enter(a));
        }
        assert!(!open.enter(a));
        assert!(open.enter(b), "another address is not held back");
        open.leave(a);
        assert!(open.enter(a));
    }

    #[test]
    fn a_node_past_its_burst_waits_for_the_refill_and_others_go_on() {
        let mut buckets = Buckets::default();
        let t0 = Instant::now();
        for _ in 0..BURST {
            assert!(buckets.take("nas", t0).is_ok());
        }
        let wait = buckets.take("nas", t0).unwrap_err();
        assert_eq!(wait, REFILL_EVERY);
        assert!(
            buckets.take("tv", t0).is_ok(),
            "another node is not held back"
        );
        assert!(buckets.take("nas", t0 + REFILL_EVERY).is_ok());
        assert!(buckets.take("nas", t0 + REFILL_EVERY).is_err());
        // Long idle: back to the burst, no more.
        let later = t0 + REFILL_EVERY * 1000;
        for _ in 0..BURST {
            assert!(buckets.take("nas", later).is_ok());
        }
        assert!(buckets.take("nas", later).is_err());
    }
}
