//! What the decider (the leader's keeper) records of the tenants' quotas, in the zone's own
//! keys: each stopped tenant at [`STOPPED_PREFIX`]`<role>` ([`Stopped`]), which every
//! member's keeper honours (the role's ranges read only), and every tenant's figures at
//! [`USE_KEY`] ([`Uses`]), which `status` and `check` read.
//!
//! Invariants: a record reads whatever release wrote it (fields it does not know are
//! skipped, a later `format` is read as far as it goes); the text this release writes is
//! pinned by golden tests; a stop is keyed by the role it makes read only, so two
//! deciders (a leadership change) write the same key and the last one stands.

use serde::{Deserialize, Serialize};

/// Where each stopped tenant's record is: `<STOPPED_PREFIX><role>`.
pub const STOPPED_PREFIX: &str = "zone-etcd/quota/stopped/";
/// Where every tenant's figures are.
pub const USE_KEY: &str = "zone-etcd/quota/use";
/// The format of the records this release writes.
pub const FORMAT: u32 = 1;

/// A tenant the decider stopped: its writes are refused until it is back under nine
/// tenths of every budget, or the owner raises its quota.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stopped {
    pub format: u32,
    /// Its role (`svc:photos`, `node:nas.example.zone`).
    pub tenant: String,
    /// The budget crossed: `quota`, `max_keys` or `writes`.
    pub crossed: String,
    /// Its figure then, and the budget (bytes, or keys for `max_keys`).
    pub used: u64,
    pub budget: u64,
    /// When (RFC 3339), and the member whose keeper decided.
    pub at: String,
    pub by: String,
}

impl Stopped {
    pub fn key(&self) -> String {
        format!("{STOPPED_PREFIX}{}", self.tenant)
    }

    pub fn render(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn parse(bytes: &[u8]) -> Result<Stopped, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("not a quota stop record: {e}"))
    }

    /// Why it is stopped, in a line: `service photos is over its quota (70.1 MiB of 64 MiB)`.
    pub fn line(&self) -> String {
        let who = super::display(&self.tenant);
        let figures = |f: fn(u64) -> String| format!("{} of {}", f(self.used), f(self.budget));
        match self.crossed.as_str() {
            "max_keys" => format!("{who} holds too many keys ({})", figures(|n| n.to_string())),
            "writes" => format!(
                "{who} keeps more than its quota and write budget in etcd's file, its keys and what it replaced or deleted since the last compaction ({})",
                figures(crate::size::human)
            ),
            _ => format!("{who} is over its quota ({})", figures(crate::size::human)),
        }
    }
}

/// One tenant's figures in [`Uses`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantUse {
    /// Its role (`svc:photos`, `node:nas.example.zone`).
    pub name: String,
    /// Its live keys and values, as etcd counts them.
    pub used_bytes: u64,
    pub quota_bytes: u64,
    pub keys: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_keys: Option<u64>,
    /// What it put since the last compaction, and how much it may.
    pub written_bytes: u64,
    pub write_budget: u64,
    pub stopped: bool,
}

/// Every tenant's figures, the largest use first, as the decider last recorded them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Uses {
    pub format: u32,
    /// When (RFC 3339), and the member whose keeper counted.
    pub at: String,
    pub by: String,
    pub tenants: Vec<TenantUse>,
    /// The zone's leases, as the decider last counted them (etcd's LeaseLeases): no
    /// tenant owns a lease, so they are bounded only in all ([`LEASES_MANY`]). Absent when
    /// not counted (and in records before it was).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leases: Option<u64>,
}

/// More leases than this in a zone is no service's need (a Patroni cluster holds one, a
/// lock service one a client): `ZoneEtcdLeasesMany` fires over it. Each lease costs every
/// member memory until it expires, and 64 bytes of etcd's quota at its grant.
pub const LEASES_MANY: u64 = 100_000;

impl Uses {
    pub fn render(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn parse(bytes: &[u8]) -> Result<Uses, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("not a quota use record: {e}"))
    }

    /// Whether `now` and `leases` differ enough from this record to be written again: a
    /// tenant came, went, stopped or resumed, a figure moved by a hundredth of its budget,
    /// or the leases by a hundredth (and at least ten).
    pub fn moved(&self, now: &[TenantUse], leases: Option<u64>) -> bool {
        let by = |a: u64, b: u64, budget: u64| a.abs_diff(b).saturating_mul(100) >= budget.max(1);
        let leases_moved = match (self.leases, leases) {
            (Some(a), Some(b)) => a.abs_diff(b) >= (a.max(b) / 100).max(10),
            (a, b) => a.is_none() != b.is_none(),
        };
        leases_moved
            || self.tenants.len() != now.len()
            || self.tenants.iter().zip(now).any(|(was, is)| {
                was.name != is.name
                    || was.stopped != is.stopped
                    || was.quota_bytes != is.quota_bytes
                    || by(was.used_bytes, is.used_bytes, is.quota_bytes)
                    || by(was.written_bytes, is.written_bytes, is.write_budget)
                    || is.max_keys.is_some_and(|m| by(was.keys, is.keys, m))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stop_this_release_writes_is_pinned() {
        let golden = r#"{"format":1,"tenant":"svc:photos","crossed":"quota","used":73400320,"budget":67108864,"at":"2026-11-28T12:00:00Z","by":"node1.example.zone"}"#;
        let stop = Stopped::parse(golden.as_bytes()).unwrap();
        assert_eq!(stop.render(), golden);
        assert_eq!(stop.key(), "zone-etcd/quota/stopped/svc:photos");
        assert_eq!(
            stop.line(),
            "service photos is over its quota (70 MiB of 64 MiB)"
        );
        let later = r#"{"format":2,"tenant":"node:n","crossed":"writes","used":2,"budget":1,"at":"t","by":"m","until":"x"}"#;
        let read = Stopped::parse(later.as_bytes()).unwrap();
        assert_eq!(read.format, 2);
        assert!(
            read.line()
                .starts_with("node n keeps more than its quota and write budget"),
            "{}",
            read.line()
        );
        assert!(Stopped::parse(b"{}").is_err());
    }

    #[test]
    fn the_use_this_release_writes_is_pinned() {
        let golden = r#"{"format":1,"at":"2026-11-28T12:00:00Z","by":"node1.example.zone","tenants":[{"name":"svc:photos","used_bytes":1048576,"quota_bytes":67108864,"keys":12,"max_keys":1000,"written_bytes":2097152,"write_budget":67108864,"stopped":false},{"name":"node:nas.example.zone","used_bytes":300,"quota_bytes":8388608,"keys":1,"written_bytes":300,"write_budget":8388608,"stopped":false}]}"#;
        let uses = Uses::parse(golden.as_bytes()).unwrap();
        assert_eq!(uses.render(), golden);
        assert_eq!(uses.tenants[1].max_keys, None);
        assert_eq!(uses.leases, None);
        let counted = r#"{"format":1,"at":"2026-11-28T12:00:00Z","by":"node1.example.zone","tenants":[],"leases":1234}"#;
        let uses = Uses::parse(counted.as_bytes()).unwrap();
        assert_eq!((uses.render().as_str(), uses.leases), (counted, Some(1234)));
        assert!(Uses::parse(b"{\"format\":1}").is_err());
    }

    #[test]
    fn a_use_is_written_again_only_when_it_moved() {
        let t = |used: u64, stopped: bool| TenantUse {
            name: "svc:a".into(),
            used_bytes: used,
            quota_bytes: 1000,
            keys: 1,
            max_keys: None,
            written_bytes: 0,
            write_budget: 1000,
            stopped,
        };
        let held = Uses {
            format: FORMAT,
            at: "t".into(),
            by: "m".into(),
            tenants: vec![t(500, false)],
            leases: Some(2_000),
        };
        let two = Some(2_000);
        assert!(!held.moved(&[t(509, false)], two));
        assert!(held.moved(&[t(510, false)], two));
        assert!(held.moved(&[t(500, true)], two));
        assert!(held.moved(&[], two));
        assert!(!held.moved(&[t(500, false)], Some(2_019)));
        assert!(held.moved(&[t(500, false)], Some(2_020)));
        assert!(held.moved(&[t(500, false)], None));
    }
}
