//! Writes a plan into the running zone: the actions in transactions of at most [`BATCH`]
//! operations, each guarded by a compare of every one of its keys' mod revision with the
//! one the plan saw.
//!
//! Invariants:
//! - a key is written only while its mod revision is still the one the plan saw (0: still
//!   absent), so a key someone changed while undo ran is never overwritten;
//! - a batch whose compares fail is retried one key per transaction with the same
//!   compares (never without them), and the keys that fail theirs are reported as changed
//!   while undo ran;
//! - a transaction that gets no answer is not retried (it may have been applied): the
//!   error says how far undo got, and running undo again is safe (a key already back is as
//!   it was at the point, and is not written again);
//! - only the plan's keys are written; the zone keeps serving (these are ordinary writes).

use etcd_client::{Client, Compare, CompareOp, Txn, TxnOp};

use super::plan::{Action, Kind};
use zone_etcd_kit::cluster_api;

/// Operations per transaction: half etcd's default `--max-txn-ops` (128).
pub const BATCH: usize = 64;

/// What was written.
#[derive(Debug, Default)]
pub struct Applied<'a> {
    pub written: Vec<&'a Action>,
    /// Keys whose compare failed: changed while undo ran, left alone.
    pub changed_meanwhile: Vec<&'a Action>,
    pub transactions: usize,
    /// The first and last revision undo's transactions made.
    pub revisions: Option<(i64, i64)>,
}

impl Applied<'_> {
    pub fn count(&self, kind: Kind) -> usize {
        self.written.iter().filter(|a| a.kind == kind).count()
    }

    fn made(&mut self, revision: i64) {
        self.transactions += 1;
        self.revisions = Some(match self.revisions {
            None => (revision, revision),
            Some((first, _)) => (first, revision),
        });
    }
}

/// Applies `actions`; on a transaction that gets no answer, what was written before it
/// and why.
pub async fn apply<'a>(
    client: &Client,
    actions: &'a [Action],
) -> Result<Applied<'a>, (Applied<'a>, String)> {
    let mut applied = Applied::default();
    for batch in actions.chunks(BATCH) {
        match commit(client, batch).await {
            Ok(Some(revision)) => {
                applied.made(revision);
                applied.written.extend(batch);
                continue;
            }
            Ok(None) => {}
            Err(reason) => return Err((applied, reason)),
        }
        for action in batch {
            match commit(client, std::slice::from_ref(action)).await {
                Ok(Some(revision)) => {
                    applied.made(revision);
                    applied.written.push(action);
                }
                Ok(None) => applied.changed_meanwhile.push(action),
                Err(reason) => return Err((applied, reason)),
            }
        }
    }
    Ok(applied)
}

/// One transaction: `batch`'s writes if every key's mod revision is still the one seen.
/// The revision it made, or None when a compare failed.
async fn commit(client: &Client, batch: &[Action]) -> Result<Option<i64>, String> {
    let compares: Vec<Compare> = batch
        .iter()
        .map(|a| Compare::mod_revision(a.key.clone(), CompareOp::Equal, a.seen))
        .collect();
    let ops: Vec<TxnOp> = batch
        .iter()
        .map(|a| match a.kind {
            Kind::Recreate | Kind::SetBack => TxnOp::put(a.key.clone(), a.value.clone(), None),
            Kind::Delete => TxnOp::delete(a.key.clone(), None),
        })
        .collect();
    let txn = Txn::new().when(compares).and_then(ops);
    let resp = cluster_api::txn(client, txn).await?;
    if !resp.succeeded() {
        return Ok(None);
    }
    Ok(Some(resp.header().map_or(0, |h| h.revision())))
}
