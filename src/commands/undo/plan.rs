//! The plan of an undo: which keys under the prefix to write, and which to leave alone. A
//! pure function of the history ([`PrefixHistory`], the point to now) and the keys as they
//! are now; no I/O.
//!
//! Invariants:
//! - only a key whose existence or value differs between the point and now is written (a
//!   key changed in between but back as it was is never touched);
//! - a key changed exactly once since the point is taken back (that change is the damage);
//!   a key changed more than once (someone wrote it again after the damage) is left alone
//!   and listed, unless `force`;
//! - every key written starts with the prefix (asserted: keys outside it are never
//!   touched);
//! - every action carries the key's mod revision now (0 for a key absent now), which the
//!   transaction compares, so a key changed after the plan is never overwritten;
//! - a history that does not account for the keys as they are now (a change now that it
//!   does not list) is refused, never planned from.

use std::collections::{BTreeMap, BTreeSet};

use zone_backup::pitr::{OldKey, PrefixHistory};

/// A key as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NowKey {
    pub value: Vec<u8>,
    pub mod_revision: i64,
}

/// What an action does to its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Absent now, present at the point: put its old value.
    Recreate,
    /// Present at both with another value now: put its old value.
    SetBack,
    /// Absent at the point, present now: delete it.
    Delete,
}

/// One key to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub key: Vec<u8>,
    pub kind: Kind,
    /// The value at the point (empty for a delete).
    pub value: Vec<u8>,
    /// The key's mod revision now; 0 when it is absent now.
    pub seen: i64,
    /// How many times it changed since the point, and the last of those revisions.
    pub changes: usize,
    pub last: i64,
}

/// A key changed more than once since the point: not written (without `--force`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftAlone {
    pub key: Vec<u8>,
    pub changes: usize,
    pub last: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The point (the history's revision).
    pub point: i64,
    /// The revision the keys now were read at (the history's `through`).
    pub now: i64,
    pub actions: Vec<Action>,
    pub left_alone: Vec<LeftAlone>,
}

impl Plan {
    pub fn count(&self, kind: Kind) -> usize {
        self.actions.iter().filter(|a| a.kind == kind).count()
    }
}

/// Plans taking the keys under `prefix` back to `history.revision`, from the keys `now`
/// (read at `history.through`). Refuses (with why) a history that does not account for
/// the keys now.
pub fn plan(
    prefix: &[u8],
    history: &PrefixHistory,
    now: &BTreeMap<Vec<u8>, NowKey>,
    force: bool,
) -> Result<Plan, String> {
    let point = history.revision;
    let mut plan = Plan {
        point,
        now: history.through,
        ..Plan::default()
    };
    let keys: BTreeSet<&Vec<u8>> = history.keys.keys().chain(now.keys()).collect();
    for key in keys {
        let old = history.keys.get(key);
        let current = now.get(key);
        let changes: &[i64] = history.changes.get(key).map_or(&[], Vec::as_slice);
        check_accounted(key, history, old, current, changes)?;
        let kind = match (old, current) {
            (Some(o), Some(c)) if o.value == c.value => continue,
            (None, None) => continue,
            (Some(_), None) => Kind::Recreate,
            (Some(_), Some(_)) => Kind::SetBack,
            (None, Some(_)) => Kind::Delete,
        };
        let last = changes.last().copied().unwrap_or(0);
        if changes.len() > 1 && !force {
            plan.left_alone.push(LeftAlone {
                key: key.clone(),
                changes: changes.len(),
                last,
            });
            continue;
        }
        assert!(
            key.starts_with(prefix),
            "undo planned a write outside its prefix"
        );
        plan.actions.push(Action {
            key: key.clone(),
            kind,
            value: old.map(|o| o.value.clone()).unwrap_or_default(),
            seen: current.map_or(0, |c| c.mod_revision),
            changes: changes.len(),
            last,
        });
    }
    Ok(plan)
}

/// Whether the history agrees with how `key` is now: present now and changed since the
/// point exactly when its mod revision is after the point, its last change being that
/// mod revision (and unchanged, it was there at the point); absent now after being present
/// at the point only through a change; changes ascending, within `point+1..=through`.
fn check_accounted(
    key: &[u8],
    history: &PrefixHistory,
    old: Option<&OldKey>,
    current: Option<&NowKey>,
    changes: &[i64],
) -> Result<(), String> {
    let (point, through) = (history.revision, history.through);
    let shown = super::show::show_key(key);
    if changes.iter().any(|&r| r <= point || r > through) {
        return Err(format!(
            "the history lists a change of {shown} outside revisions {}..={through}",
            point + 1
        ));
    }
    if changes.windows(2).any(|w| w[0] >= w[1]) {
        return Err(format!(
            "the history's changes of {shown} are not in ascending order"
        ));
    }
    let unlisted = match current {
        Some(c) if c.mod_revision > point => changes.last() != Some(&c.mod_revision),
        Some(_) => !changes.is_empty() || old.is_none(),
        None => old.is_some() && changes.is_empty(),
    };
    if unlisted {
        return Err(match current {
            Some(c) => format!(
                "the history does not account for {shown} as it is now (last changed at revision {})",
                c.mod_revision
            ),
            None => format!(
                "the history does not account for {shown} as it is now (deleted since revision {point})"
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
