//! Late links: a manifest of a writer that is out, landing on a target after the next
//! writer took over. An S3 store can apply a request after its client gave up on it (seen
//! in issue 37's benchmark: SeaweedFS applied a held PUT 25 s later), after that writer's
//! election lease is gone; neither the lease nor the head record can stop it. The late
//! link carries the number the next writer's first link has and names the same previous
//! link: the chain forks, and one branch is a dead end nothing continues.
//!
//! The chain is the branch that holds the newest signed link (the writer that is active
//! now, or was last: a writer signs only under its lease, and the next one is elected
//! after that lease ended), followed back by each link's `prev` hash ([`split_late`]).
//! A link off that path is late when it descends from it: its `prev` names a link of the
//! path, or another late link, one number below it, and no link of its session is on the
//! path at its number. Retention can keep the fork's full snapshot and drop the link
//! before it (`crate::retention`): a link at the path's oldest number whose `prev` names
//! a link no longer held is late as well. Its revisions are etcd's history, which the
//! chain covers from the other writer's full snapshot at the fork, so leaving it out loses
//! nothing.
//!
//! Invariants:
//! - a chain with one link per number is returned as it is (every chain without a fork);
//! - anything else stays in the chain, for [`check_links`](super::chain::check_links) to
//!   call broken: two links of one session under one number, a link whose `prev` names no
//!   link one number below it (above the path's oldest number), a fork below the path's
//!   oldest number;
//! - the late links are named to the caller, never dropped silently.

use std::collections::{BTreeMap, HashMap};

use super::chain::Verified;

/// A target's links, split.
#[derive(Debug, Default)]
pub struct Split {
    /// The chain, in the order given.
    pub chain: Vec<Verified>,
    /// Late links off it, in the order given.
    pub late: Vec<Verified>,
}

/// The order in which links are newer: the chain is the branch of the greatest (signed
/// last, then the higher number); a takeover that lists two links under one number
/// continues that branch too.
pub fn newest_key(link: &super::chain::Link) -> (i64, u64) {
    (link.signed_ms, link.seq)
}

/// Splits `links` (in chain order: by sequence number) into the chain and its late links.
pub fn split_late(links: Vec<Verified>) -> Split {
    let mut per_seq: BTreeMap<u64, usize> = BTreeMap::new();
    for v in &links {
        *per_seq.entry(v.link.seq).or_default() += 1;
    }
    if per_seq.values().all(|&n| n == 1) {
        return Split {
            chain: links,
            late: Vec::new(),
        };
    }
    let Some(tip) = (0..links.len()).max_by_key(|&i| newest_key(&links[i].link)) else {
        return Split::default();
    };
    let by_hash: HashMap<&str, usize> = links
        .iter()
        .enumerate()
        .map(|(i, v)| (v.sha256.as_str(), i))
        .collect();
    // The prev of `i`, when it is the link one number below.
    let parent = |i: usize| {
        let prev = links[i].link.prev.as_deref()?;
        let &p = by_hash.get(prev)?;
        (links[p].link.seq + 1 == links[i].link.seq).then_some(p)
    };
    let mut on_path = vec![false; links.len()];
    let mut path_session: HashMap<u64, &str> = HashMap::new();
    let mut at = Some(tip);
    while let Some(i) = at {
        on_path[i] = true;
        path_session.insert(links[i].link.seq, &links[i].link.session);
        at = parent(i);
    }
    // Where the path starts: retention keeps a chain from a full snapshot on, so a late
    // link at that number lost its parent with everything before it.
    let oldest = path_session.keys().min().copied();
    let pruned = |i: usize| {
        links[i]
            .link
            .prev
            .as_deref()
            .is_some_and(|prev| !by_hash.contains_key(prev))
            && Some(links[i].link.seq) == oldest
    };
    let mut late = vec![false; links.len()];
    // By number, so a late link's parent is judged before it.
    let mut order: Vec<usize> = (0..links.len()).collect();
    order.sort_by_key(|&i| links[i].link.seq);
    for i in order {
        let l = &links[i].link;
        if on_path[i] {
            continue;
        }
        let same_session = path_session.get(&l.seq) == Some(&l.session.as_str());
        late[i] = !same_session && (parent(i).is_some_and(|p| on_path[p] || late[p]) || pruned(i));
    }
    let mut split = Split::default();
    for (i, v) in links.into_iter().enumerate() {
        if late[i] {
            split.late.push(v);
        } else {
            split.chain.push(v);
        }
    }
    split
}

#[cfg(test)]
#[path = "fork_tests.rs"]
mod tests;
