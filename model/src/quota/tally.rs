//! What each tenant uses, kept from etcd's events ([`Tally`]), and what the decider does
//! about it ([`Tally::verdict`]).
//!
//! The decider (the leader's keeper) counts each tenant's live keys once (a range of its
//! prefixes, [`Tally::count`]) and then follows every put and delete of the key space with
//! the previous value (a watch with `prev_kv`): a put adds what it costs and takes what the
//! value it replaced cost; a delete takes what the value cost; every put adds to the
//! period's writes, cleared at each compaction ([`Tally::compacted`]).
//!
//! Invariants: pure; a key belongs to the tenant of the longest prefix that holds it, or to
//! none (zone-etcd's own keys, keys no grant covers); figures never go below zero (an event
//! seen twice or a count taken mid-stream corrects itself at the next count); a tenant is
//! stopped when any budget is crossed and resumed only once every figure is under
//! [`RESUME_AT`] of its budget, so a tenant at its quota does not flap.

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
    /// What it put since the last compaction.
    pub written: u64,
}

/// Which budget a stopped tenant crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crossed {
    Quota,
    Keys,
    Writes,
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
        let now = cost(key.len(), value_len);
        match previous {
            Some(prev) => u.live = u.live.saturating_sub(cost(key.len(), prev)),
            None => u.keys += 1,
        }
        u.live = u.live.saturating_add(now);
        u.written = u.written.saturating_add(now);
    }

    /// A delete of `key`, whose value was `previous` bytes.
    pub fn delete(&mut self, key: &[u8], previous: usize) {
        if let Some(u) = self.use_of(key) {
            u.live = u.live.saturating_sub(cost(key.len(), previous));
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
            } else if u.written > tenant.write_budget {
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
                && under(u.written, tenant.write_budget);
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
                written: 369 + 319
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
        // A delete seen twice never takes the figures below zero.
        t.delete(b"apps/photos/a", 50);
        assert_eq!(u(&t, "service photos").live, 0);
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
        // keys (24 > 18) nor of the writes (10,770 put this period): stays stopped.
        for i in 0..6 {
            t.delete(format!("apps/photos/{i:02}").as_bytes(), 87);
        }
        assert_eq!(t.verdict(&["service photos".into()]), Verdict::default());
        for i in 6..14 {
            t.delete(format!("apps/photos/{i:02}").as_bytes(), 87);
        }
        t.compacted();
        let v = t.verdict(&["service photos".into()]);
        assert_eq!(v.resume, ["service photos"]);
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
}
