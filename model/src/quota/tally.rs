//! What each tenant uses, kept from etcd's events ([`Tally`]), and what the decider does
//! about it ([`Tally::verdict`]).
//!
//! The decider (the leader's keeper) counts each tenant's live keys once (a range of its
//! prefixes, [`Tally::count`]) and then follows every put and delete of the key space with
//! the previous value (a watch with `prev_kv`): a put adds what it costs and takes what the
//! value it replaced cost; a delete takes what the value cost. What a put replaced and
//! what a delete removed stays in etcd's file as history until the next compaction: that
//! is the period's *writes*, cleared at each compaction ([`Tally::compacted`]). So each
//! byte a tenant costs the file is counted once, live or history, and what the zone's
//! room check reserves for it (its quota and its write budget) bounds the two together:
//! a writer of new keys meets its quota, a rewriter of one key its quota and write budget
//! together, and a tenant that deletes keys to come back under its quota has room to
//! write again (its live bytes moved to history, their sum unchanged).
//!
//! Invariants: pure; a key belongs to the tenant of the longest prefix that holds it, or to
//! none (zone-etcd's own keys, keys no grant covers); figures never go below zero (an event
//! seen twice or a count taken mid-stream corrects itself at the next count); a tenant is
//! stopped when its live bytes pass its quota, its keys its `max_keys`, or its live bytes
//! and history together its quota and write budget together, and resumed only once every
//! one of these figures is under [`RESUME_AT`] of its bound, so a tenant at its quota
//! does not flap.

use std::collections::BTreeMap;

use super::{cost, Tenant};

/// A stopped tenant writes again once every figure is under this share of its budget
/// (nine tenths).
pub const RESUME_AT: (u64, u64) = (9, 10);

/// One tenant's figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Use {
    /// Its live keys and values, as etcd counts them ([`cost`]).
    pub live: u64,
    /// Its live keys.
    pub keys: u64,
    /// The history it made since the last compaction: the values its puts replaced and
    /// its deletes removed, as etcd counts them.
    pub written: u64,
}

/// Which budget a stopped tenant crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crossed {
    Quota,
    Keys,
    Writes,
}

impl Crossed {
    /// The word a stop record (`crossed`) and a line use.
    pub fn word(self) -> &'static str {
        match self {
            Crossed::Quota => "quota",
            Crossed::Keys => "max_keys",
            Crossed::Writes => "writes",
        }
    }
}

/// The decider's next steps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    pub stop: Vec<(String, Crossed)>,
    pub resume: Vec<String>,
}

/// Each tenant's budgets, prefixes and figures.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// (prefix, tenant), longest prefix first.
    prefixes: Vec<(Vec<u8>, String)>,
    budgets: BTreeMap<String, (Tenant, Option<u64>)>,
    uses: BTreeMap<String, Use>,
}

impl Tally {
    /// A tally of `tenants`, each with its prefixes and its `max_keys` if any.
    pub fn new(tenants: Vec<(Tenant, Vec<String>, Option<u64>)>) -> Tally {
        let mut tally = Tally::default();
        for (tenant, prefixes, max_keys) in tenants {
            for p in prefixes {
                tally.prefixes.push((p.into_bytes(), tenant.name.clone()));
            }
            tally.uses.insert(tenant.name.clone(), Use::default());
            tally
                .budgets
                .insert(tenant.name.clone(), (tenant, max_keys));
        }
        tally
            .prefixes
            .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
        tally
    }

    /// The tenant `key` belongs to.
    pub fn tenant_of(&self, key: &[u8]) -> Option<&str> {
        self.prefixes
            .iter()
            .find(|(p, _)| key.starts_with(p))
            .map(|(_, t)| t.as_str())
    }

    fn use_of(&mut self, key: &[u8]) -> Option<&mut Use> {
        let tenant = self.tenant_of(key)?.to_string();
        self.uses.get_mut(&tenant)
    }

    /// A tenant's live keys counted anew: `keys` its (key length, value length) pairs.
    pub fn count(&mut self, tenant: &str, keys: impl IntoIterator<Item = (usize, usize)>) {
        if let Some(u) = self.uses.get_mut(tenant) {
            let (mut live, mut n) = (0u64, 0u64);
            for (k, v) in keys {
                live = live.saturating_add(cost(k, v));
                n += 1;
            }
            (u.live, u.keys) = (live, n);
        }
    }

    /// A put of `key` with a value of `value_len` bytes, over a value of `previous` bytes
    /// (`None`: a new key).
    pub fn put(&mut self, key: &[u8], value_len: usize, previous: Option<usize>) {
        let Some(u) = self.use_of(key) else {
            return;
        };
        match previous {
            Some(prev) => {
                let replaced = cost(key.len(), prev);
                u.live = u.live.saturating_sub(replaced);
                u.written = u.written.saturating_add(replaced);
            }
            None => u.keys += 1,
        }
        u.live = u.live.saturating_add(cost(key.len(), value_len));
    }

    /// A delete of `key`, whose value was `previous` bytes.
    pub fn delete(&mut self, key: &[u8], previous: usize) {
        if let Some(u) = self.use_of(key) {
            let removed = cost(key.len(), previous);
            u.live = u.live.saturating_sub(removed);
            u.written = u.written.saturating_add(removed);
            u.keys = u.keys.saturating_sub(1);
        }
    }

    /// A compaction: every tenant's period of writes starts again.
    pub fn compacted(&mut self) {
        for u in self.uses.values_mut() {
            u.written = 0;
        }
    }

    /// Each tenant's figures with its quota, the largest use first.
    pub fn uses(&self) -> Vec<(&str, Use, u64)> {
        let mut all: Vec<(&str, Use, u64)> = self
            .uses
            .iter()
            .filter_map(|(name, u)| Some((name.as_str(), *u, self.budgets.get(name)?.0.quota)))
            .collect();
        all.sort_by(|a, b| b.1.live.cmp(&a.1.live).then(a.0.cmp(b.0)));
        all
    }

    /// A tenant's writes of the current period, carried from an earlier tally (a count
    /// taken again within the period).
    pub fn carry(&mut self, tenant: &str, written: u64) {
        if let Some(u) = self.uses.get_mut(tenant) {
            u.written = written;
        }
    }

    /// A tenant's figure for the budget `crossed`, and that budget.
    pub fn figures(&self, tenant: &str, crossed: Crossed) -> (u64, u64) {
        let u = self.uses.get(tenant).copied().unwrap_or_default();
        let Some((budgets, max_keys)) = self.budgets.get(tenant) else {
            return (0, 0);
        };
        match crossed {
            Crossed::Quota => (u.live, budgets.quota),
            Crossed::Keys => (u.keys, max_keys.unwrap_or(u64::MAX)),
            Crossed::Writes => (
                u.live.saturating_add(u.written),
                budgets.quota.saturating_add(budgets.write_budget),
            ),
        }
    }

    /// Every tenant's figures as [`super::record::Uses`] carries them, the largest share
    /// of its quota first; `stopped` those stopped now.
    pub fn records(&self, stopped: &[String]) -> Vec<super::record::TenantUse> {
        let mut all: Vec<super::record::TenantUse> = self
            .budgets
            .iter()
            .map(|(name, (budget, max_keys))| {
                let u = self.uses.get(name).copied().unwrap_or_default();
                super::record::TenantUse {
                    name: name.clone(),
                    used_bytes: u.live,
                    quota_bytes: budget.quota,
                    keys: u.keys,
                    max_keys: *max_keys,
                    written_bytes: u.written,
                    write_budget: budget.write_budget,
                    stopped: stopped.contains(name),
                }
            })
            .collect();
        let share = |t: &super::record::TenantUse| {
            u128::from(t.used_bytes) * 1_000_000 / u128::from(t.quota_bytes.max(1))
        };
        all.sort_by(|a, b| share(b).cmp(&share(a)).then(a.name.cmp(&b.name)));
        all
    }

    /// What to do, the tenants in `stopped` being stopped now.
    pub fn verdict(&self, stopped: &[String]) -> Verdict {
        let mut verdict = Verdict::default();
        for (name, (tenant, max_keys)) in &self.budgets {
            let u = self.uses.get(name).copied().unwrap_or_default();
            let is_stopped = stopped.iter().any(|s| s == name);
            let crossed = if u.live > tenant.quota {
                Some(Crossed::Quota)
            } else if max_keys.is_some_and(|m| u.keys > m) {
                Some(Crossed::Keys)
            } else if u.live.saturating_add(u.written)
                > tenant.quota.saturating_add(tenant.write_budget)
            {
                Some(Crossed::Writes)
            } else {
                None
            };
            let under = |figure: u64, budget: u64| {
                u128::from(figure) * u128::from(RESUME_AT.1)
                    < u128::from(budget) * u128::from(RESUME_AT.0)
            };
            let well_under = under(u.live, tenant.quota)
                && max_keys.is_none_or(|m| under(u.keys, m))
                && under(
                    u.live.saturating_add(u.written),
                    tenant.quota.saturating_add(tenant.write_budget),
                );
            match (is_stopped, crossed) {
                (false, Some(why)) => verdict.stop.push((name.clone(), why)),
                (true, _) if well_under => verdict.resume.push(name.clone()),
                _ => {}
            }
        }
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally() -> Tally {
        Tally::new(vec![
            (
                Tenant::new("service photos", 10_000),
                vec!["apps/photos/".into(), "shared/photos/".into()],
                Some(20),
            ),
            (
                Tenant::new("service cache", 10_000),
                vec!["apps/photos/cache/".into()],
                None,
            ),
            (
                Tenant::new("node nas", 5_000),
                vec!["nodes/nas/".into()],
                None,
            ),
        ])
    }

    #[test]
    fn a_key_is_its_longest_prefixs_tenants() {
        let t = tally();
        assert_eq!(t.tenant_of(b"apps/photos/a"), Some("service photos"));
        assert_eq!(t.tenant_of(b"apps/photos/cache/a"), Some("service cache"));
        assert_eq!(t.tenant_of(b"shared/photos/x"), Some("service photos"));
        assert_eq!(t.tenant_of(b"zone-etcd/level"), None);
        assert_eq!(t.tenant_of(b"apps/photo"), None);
    }

    #[test]
    fn puts_and_deletes_keep_the_figures_as_etcd_counts_them() {
        let mut t = tally();
        t.put(b"apps/photos/a", 100, None); // 256 + 13 + 100
        t.put(b"apps/photos/a", 50, Some(100)); // replaced
        t.put(b"nodes/nas/x", 10, None);
        t.put(b"zone-etcd/level", 10, None); // no tenant's
        let u = |t: &Tally, n: &str| {
            t.uses()
                .into_iter()
                .find(|(name, ..)| *name == n)
                .unwrap()
                .1
        };
        assert_eq!(
            u(&t, "service photos"),
            Use {
                live: 319,
                keys: 1,
                written: 369
            }
        );
        t.delete(b"apps/photos/a", 50);
        assert_eq!(
            u(&t, "service photos"),
            Use {
                live: 0,
                keys: 0,
                written: 688
            }
        );
        // A delete seen twice never takes the live figures below zero.
        t.delete(b"apps/photos/a", 50);
        assert_eq!(u(&t, "service photos").live, 0);
        assert_eq!(u(&t, "service photos").keys, 0);
        t.compacted();
        assert_eq!(u(&t, "service photos").written, 0);
        assert_eq!(
            u(&t, "node nas"),
            Use {
                live: 277,
                keys: 1,
                written: 0
            }
        );
        // A count replaces what the events said.
        t.count("service photos", [(13, 100), (13, 200)]);
        assert_eq!(
            u(&t, "service photos"),
            Use {
                live: 369 + 469,
                keys: 2,
                written: 0
            }
        );
    }

    #[test]
    fn a_tenant_is_stopped_at_any_budget_and_resumed_well_under_all() {
        let mut t = tally();
        // 30 keys of 90 bytes: 30 * (256 + 13 + 90) = 10,770 > 10,000, and 30 keys > 20.
        for i in 0..30 {
            t.put(format!("apps/photos/{i:02}").as_bytes(), 87, None);
        }
        let v = t.verdict(&[]);
        assert_eq!(v.stop, [("service photos".to_string(), Crossed::Quota)]);
        // Still over, already stopped: nothing new.
        assert_eq!(t.verdict(&["service photos".into()]), Verdict::default());
        // Down to 24 keys (8,616 bytes): under the quota but not under nine tenths of the
        // keys (24 > 18): stays stopped.
        for i in 0..6 {
            t.delete(format!("apps/photos/{i:02}").as_bytes(), 87);
        }
        assert_eq!(t.verdict(&["service photos".into()]), Verdict::default());
        // Down to 16 keys (5,744 bytes): the 5,026 bytes deleted are history under nine
        // tenths of the write budget, so the way back is deleting, not waiting.
        for i in 6..14 {
            t.delete(format!("apps/photos/{i:02}").as_bytes(), 87);
        }
        let v = t.verdict(&["service photos".into()]);
        assert_eq!(v.resume, ["service photos"]);
        // New keys are never history: a writer of new keys meets its quota alone.
        let mut n = tally();
        for i in 0..20 {
            n.put(format!("apps/photos/{i:02}").as_bytes(), 87, None);
        }
        assert!(n.uses().iter().all(|(_, u, _)| u.written == 0));
        // Keys alone, and writes alone.
        let mut k = tally();
        for i in 0..21 {
            k.put(format!("apps/photos/{i:02}").as_bytes(), 0, None);
        }
        assert_eq!(
            k.verdict(&[]).stop,
            [("service photos".to_string(), Crossed::Keys)]
        );
        let mut w = tally();
        for _ in 0..40 {
            w.put(b"nodes/nas/x", 10, Some(10));
        }
        assert_eq!(
            w.verdict(&[]).stop,
            [("node nas".to_string(), Crossed::Writes)]
        );
    }

    #[test]
    fn records_put_the_largest_share_first_and_carry_the_period() {
        let mut t = tally();
        t.put(b"nodes/nas/a", 2_000, None);
        t.put(b"apps/photos/a", 1_000, None);
        t.carry("service photos", 9_500);
        let rows = t.records(&["node nas".to_string()]);
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["node nas", "service photos", "service cache"]);
        assert!(rows[0].stopped && !rows[1].stopped);
        assert_eq!(rows[1].written_bytes, 9_500);
        assert_eq!(rows[1].max_keys, Some(20));
        assert_eq!(
            t.figures("service photos", Crossed::Writes),
            (9_500 + 1_269, 20_000)
        );
        assert_eq!(t.figures("service photos", Crossed::Keys), (1, 20));
        assert_eq!(t.figures("nobody", Crossed::Quota), (0, 0));
    }
}
