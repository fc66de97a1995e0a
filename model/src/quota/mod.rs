//! Quotas per tenant (issue 69, docs/design/quotas.md): how a tenant is counted, and
//! whether the zone's database has room for every tenant's quota at once.
//!
//! A *tenant* is a service or a node's own prefix. It is counted as etcd counts a write
//! ([`cost`]: 256 bytes a key beside its key and value), so what it is allowed maps onto
//! what fills etcd's file: measured, the file grows by 1.1 x the bytes put plus about 100
//! bytes a revision ([`PAGE_FACTOR`] covers both, design page).
//!
//! Invariants: pure; [`room`] refuses exactly when the reserve and every tenant's quota
//! and one compaction period of its writes, times [`PAGE_FACTOR`], exceed the backend
//! quota; every figure is in bytes and nothing overflows (sums saturate).

use crate::policy::rbac::{node_role, service_role};
use crate::policy::Policy;
use crate::size::human;

pub mod record;
pub mod seen;
pub mod tally;

/// What etcd counts beside a key and its value for each put (`kvOverhead` in etcd's
/// `storage/quota.go`, every release 3.4 to 3.7).
pub const KV_OVERHEAD: u64 = 256;

/// The file's bytes per byte counted, in quarters (5 / 4 = 1.25): the measured worst of
/// 1.10 (100 KB values) to 1.58 (100 B values, counted at 381 bytes a key for 197 in the
/// file), with room.
pub const PAGE_FACTOR: (u64, u64) = (5, 4);

/// The reserve's share of the backend quota (a quarter), and its floor: zone-etcd's own
/// keys, the owner's emergency writes, compaction's lag.
pub const RESERVE_SHARE: (u64, u64) = (1, 4);
pub const RESERVE_FLOOR: u64 = 128 << 20;

/// The quotas of a tenant whose policy names none (defined beside the policy, which reads
/// them).
pub use crate::policy::{DEFAULT_NODE_QUOTA, DEFAULT_SERVICE_QUOTA};

/// What one put of `key` and `value` counts.
pub fn cost(key_len: usize, value_len: usize) -> u64 {
    KV_OVERHEAD
        .saturating_add(key_len as u64)
        .saturating_add(value_len as u64)
}

/// One tenant's budgets: what it may keep, and what it may put in one compaction period
/// (by default its quota).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// Its etcd role: `svc:photos`, `node:nas.example.zone` ([`display`] writes it for
    /// people).
    pub name: String,
    pub quota: u64,
    pub write_budget: u64,
}

impl Tenant {
    pub fn new(name: impl Into<String>, quota: u64) -> Tenant {
        Tenant {
            name: name.into(),
            quota,
            write_budget: quota,
        }
    }
}

/// The tenants of `policy`: each service that may write (named by its role,
/// `svc:<name>`, its `read_write` prefixes, its `max_keys`), then each of `nodes` (the nodes
/// with an identity of their own, members left out by the caller: `node:<name>`, its own
/// prefix). Tenants are named as etcd's roles are, so a stop is a change to one role.
pub fn tenants(policy: &Policy, nodes: &[String]) -> Vec<(Tenant, Vec<String>, Option<u64>)> {
    let services = policy
        .services
        .iter()
        .filter(|s| !s.read_write.is_empty())
        .map(|s| {
            (
                Tenant::new(service_role(&s.name), policy.service_quota(s)),
                s.read_write.clone(),
                s.max_keys,
            )
        });
    let nodes = nodes.iter().map(|n| {
        (
            Tenant::new(node_role(n), policy.node_quota()),
            vec![policy.node_prefix_of(n)],
            None,
        )
    });
    services.chain(nodes).collect()
}

/// A role's kind and name: `svc:photos` is (`service`, `photos`), `node:nas.example.zone`
/// (`node`, `nas.example.zone`); a role of neither kind is (`tenant`, the role).
pub fn kind_and_name(role: &str) -> (&'static str, &str) {
    if let Some(name) = role.strip_prefix("svc:") {
        ("service", name)
    } else if let Some(name) = role.strip_prefix("node:") {
        ("node", name)
    } else {
        ("tenant", role)
    }
}

/// A tenant's name as people read it: `service photos`, `node nas.example.zone` (a role of
/// neither kind as it is).
pub fn display(tenant: &str) -> String {
    match kind_and_name(tenant) {
        ("tenant", role) => role.to_string(),
        (kind, name) => format!("{kind} {name}"),
    }
}

/// The reserve a backend quota keeps outside every tenant's reach.
pub fn reserve(backend_quota: u64) -> u64 {
    (backend_quota / RESERVE_SHARE.1 * RESERVE_SHARE.0).max(RESERVE_FLOOR)
}

/// What `tenants` ask of the file at most: their quotas and one period of writes each,
/// times the page factor.
pub fn asked(tenants: &[Tenant]) -> u64 {
    let counted = tenants.iter().fold(0u64, |sum, t| {
        sum.saturating_add(t.quota).saturating_add(t.write_budget)
    });
    (counted / PAGE_FACTOR.1)
        .saturating_mul(PAGE_FACTOR.0)
        .saturating_add((counted % PAGE_FACTOR.1) * PAGE_FACTOR.0 / PAGE_FACTOR.1)
}

/// Whether a zone whose backend quota is `backend_quota` holds every one of `tenants`
/// at its full quota and write budget at once, beside the reserve. `Err` is the refusal:
/// the problem, then the fix.
pub fn room(backend_quota: u64, tenants: &[Tenant]) -> Result<(), (String, String)> {
    let (reserve, asked) = (reserve(backend_quota), asked(tenants));
    if reserve.saturating_add(asked) <= backend_quota {
        return Ok(());
    }
    let mut largest: Vec<&Tenant> = tenants.iter().collect();
    largest.sort_by(|a, b| b.quota.cmp(&a.quota).then(a.name.cmp(&b.name)));
    let named: Vec<String> = largest
        .iter()
        .take(3)
        .map(|t| format!("{} {}", t.name, human(t.quota)))
        .collect();
    Err((
        format!(
            "the quotas of {} tenant(s) ({}{}) need {} of the database at once (each quota and a compaction period of writes, x1.25 for etcd's pages), and the zone has {} beside its reserve of {} (quota_backend_bytes {})",
            tenants.len(),
            named.join(", "),
            if tenants.len() > 3 { ", …" } else { "" },
            human(asked),
            human(backend_quota.saturating_sub(reserve)),
            human(reserve),
            human(backend_quota),
        ),
        "give smaller quotas ([access] node_quota, service_quota, or a service's quota), or raise [settings] quota_backend_bytes (at most 8 GiB)".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn a_put_counts_as_etcd_counts_it() {
        assert_eq!(cost(10, 100), 366);
        assert_eq!(cost(0, 0), KV_OVERHEAD);
    }

    #[test]
    fn the_reserve_is_a_quarter_and_never_under_128_mib() {
        assert_eq!(reserve(2 << 30), 512 * MIB);
        assert_eq!(reserve(256 * MIB), 128 * MIB);
        assert_eq!(reserve(8 << 30), 2 << 30);
    }

    /// A 2 GiB zone (etcd's default) has 1.5 GiB beside its reserve: 1.5 GiB / 1.25 / 2 =
    /// 614.4 MiB of quotas in all (quota and as much written per period each).
    #[test]
    fn a_2_gib_zone_holds_614_mib_of_quotas_and_not_a_byte_more() {
        let zone = 2u64 << 30;
        let fits = [
            Tenant::new("service photos", 500 * MIB),
            Tenant::new("node nas.example.zone", 114 * MIB + 409 * 1024),
        ];
        assert_eq!(room(zone, &fits), Ok(()));
        let mut over = fits.to_vec();
        over[1].quota += 1024;
        over[1].write_budget += 1024;
        let (problem, fix) = room(zone, &over).unwrap_err();
        assert!(
            problem.starts_with("the quotas of 2 tenant(s) (service photos 500 MiB, node nas.example.zone 114.4 MiB) need 1.5 GiB of the database at once"),
            "{problem}"
        );
        assert!(
            problem.ends_with(
                "the zone has 1.5 GiB beside its reserve of 512 MiB (quota_backend_bytes 2 GiB)"
            ),
            "{problem}"
        );
        assert!(fix.contains("quota_backend_bytes"), "{fix}");
    }

    #[test]
    fn the_defaults_fit_a_home_zone() {
        // Eight services and twenty nodes at the defaults in etcd's default 2 GiB.
        let mut tenants: Vec<Tenant> = (0..8)
            .map(|i| Tenant::new(format!("service s{i}"), DEFAULT_SERVICE_QUOTA))
            .collect();
        tenants.extend((0..20).map(|i| Tenant::new(format!("node n{i}"), DEFAULT_NODE_QUOTA)));
        assert_eq!(room(2 << 30, &tenants), Ok(()));
        assert_eq!(asked(&tenants), (8 * 32 + 20 * 8) * 2 * MIB * 5 / 4);
        assert_eq!(asked(&tenants), 1040 * MIB);
        // No overflow, whatever is asked.
        let huge = [Tenant::new("service x", u64::MAX)];
        assert!(room(8 << 30, &huge).is_err());
    }
}
