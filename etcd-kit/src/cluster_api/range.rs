//! Reading every key under a prefix at one revision, in pages (a long prefix never needs
//! one answer larger than the client takes), and telling etcd's refusals apart.
//!
//! Invariants: every page is read at the first page's revision, so the keys returned are
//! the prefix at exactly one revision; a page whose answer would be larger than the client
//! takes is asked again in smaller pieces (large values), never given up; a revision etcd
//! compacted is [`Fail::Compacted`], never a partial answer; a page etcd refused because its
//! auth store changed while it was in flight is asked again ([`ask`]), never a failed read.

use std::collections::BTreeMap;

use etcd_client::{Client, GetOptions, KeyValue};

use super::client::ask;
use super::error::Kind;
use zone_model::keys::prefix_end;

/// Keys read per request, at most: fewer when an answer would be larger than the client
/// decodes ([`MAX_ANSWER`]; a value may be 1.5 MiB).
const PAGE: i64 = 1000;
/// The largest answer a page may be.
const MAX_ANSWER: usize = 64 << 20;

/// Why a read gave no answer.
pub enum Fail {
    /// The revision is older than etcd's compaction.
    Compacted,
    /// etcd answered, and refused.
    Refused(String),
    /// No answer (or the request did not get through).
    Other(String),
}

impl std::fmt::Display for Fail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fail::Compacted => write!(f, "etcd has compacted that revision"),
            Fail::Refused(r) | Fail::Other(r) => write!(f, "{r}"),
        }
    }
}

/// The keys under `prefix` at `revision` (0: now) with their values and mod revisions,
/// and the revision read at.
pub async fn read_prefix(
    client: &Client,
    prefix: &[u8],
    revision: i64,
) -> Result<(i64, BTreeMap<Vec<u8>, (Vec<u8>, i64)>), Fail> {
    let mut keys = BTreeMap::new();
    let at = scan_prefix(client, prefix, revision, |kv| {
        keys.insert(kv.key().to_vec(), (kv.value().to_vec(), kv.mod_revision()));
    })
    .await?;
    Ok((at, keys))
}

/// Hands each key under `prefix` at `revision` (0: now) to `each`, a page at a time (so
/// nothing but a page is held), and returns the revision read at.
pub async fn scan_prefix(
    client: &Client,
    prefix: &[u8],
    revision: i64,
    mut each: impl FnMut(&KeyValue),
) -> Result<i64, Fail> {
    let kv = client.kv_client().max_decoding_message_size(MAX_ANSWER);
    let end = prefix_end(prefix);
    let mut start = prefix.to_vec();
    let mut at = revision;
    let mut page = PAGE;
    loop {
        let options = GetOptions::new()
            .with_range(end.clone())
            .with_limit(page)
            .with_revision(at);
        // Through [`ask`]: a page refused because the auth store changed meanwhile (a
        // keeper applying the policy or stopping a tenant) is asked again, at the same
        // revision, as any other request is.
        let resp = match ask(&kv, |mut kv| {
            let (start, options) = (start.clone(), options.clone());
            async move { kv.get(start, Some(options)).await }
        })
        .await
        {
            Err(e) if e.kind() == Kind::Compacted => return Err(Fail::Compacted),
            // Large values: the same page in smaller pieces.
            Err(e) if e.kind() == Kind::AnswerTooLarge && page > 1 => {
                page = (page / 8).max(1);
                continue;
            }
            Err(e) if e.is_refusal() => return Err(Fail::Refused(e.to_string())),
            Err(e) => return Err(Fail::Other(e.to_string())),
            Ok(resp) => resp,
        };
        if at == 0 {
            at = resp.header().map_or(0, |h| h.revision());
        }
        for kv in resp.kvs() {
            each(kv);
        }
        match resp.kvs().last() {
            Some(last) if resp.more() => {
                start = last.key().to_vec();
                start.push(0);
            }
            _ => return Ok(at),
        }
    }
}
