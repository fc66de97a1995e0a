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
//! history starts again), so a drift (an event whose previous value was compacted) lasts one
//! period at most, and a new decider (a new leader) starts the period's history at zero;
//! the stop of a tenant the policy no longer has is deleted; the decider never writes a
//! tenant's keys, only roles' grants and its own records, each asked again while etcd
//! refuses it for an auth change in flight.

mod act;
mod decider;
mod follow;
mod state;

pub use decider::Decider;
pub use state::{stopped, Slot, Tenants};
