//! The zone's quotas as `check --format prometheus` exports them (issue 69): `check` is
//! otherwise offline (it reads the node's files and what its keeper kept), and nothing on
//! a node keeps the decider's records, so a member's metrics run reads them from its own
//! etcd, serializable (its copy: no leader needed, the record's time says its age), with
//! its client certificate (a member's identity is root in etcd; a node's reads only its
//! own prefix, which is why only members export them). Every member exports the same
//! zone-wide series, each with its `node`: the rules take the largest of each tenant's.
//! Nothing read (the member down, no record yet): no quota series, and no problem for
//! `check`, which is the node's, not the cluster's (`status` tells the cluster's).

use serde::Serialize;
use zone_model::quota::seen::{self, Seen};

use zone_node::node::Node;

/// What the decider recorded, as this member's etcd holds it.
#[derive(Debug, Serialize)]
pub(super) struct Quotas {
    /// When the decider counted (`None`: no use record, only stops).
    pub(super) at: Option<String>,
    pub(super) tenants: Vec<Seen>,
    /// The zone's leases, as the decider counted them.
    pub(super) leases: Option<u64>,
}

/// The quota records of `node`'s own member (`None`: not a member, or nothing read).
pub(super) fn read(node: &Node) -> Option<Quotas> {
    let member = node.member()?;
    let endpoints = zone_model::cluster::client_endpoints(std::slice::from_ref(member));
    // The leaves as they are: `check` reports on the node and never changes it (the
    // cluster's commands renew due leaves; a check that did would hide the leaf it reports
    // as expiring, as the real Prometheus test saw).
    let creds = zone_etcd_kit::cluster_api::Credentials::load(&node.leaf_paths()).ok()?;
    let runtime = zone_etcd_kit::cluster_api::runtime().ok()?;
    let (uses, stops) = runtime
        .block_on(async {
            let client = zone_etcd_kit::cluster_api::connect_many(
                &endpoints,
                &creds,
                zone_etcd_kit::cluster_api::REQUEST_TIMEOUT,
            )
            .await?;
            zone_node::quota_records::read_quotas(&client, true).await
        })
        .ok()?;
    Some(Quotas {
        at: uses.as_ref().map(|u| u.at.clone()),
        leases: uses.as_ref().and_then(|u| u.leases),
        tenants: seen::seen(uses.as_ref(), &stops),
    })
}

/// The quota families of `quotas` (each family's HELP and TYPE even without a sample), as
/// `node` exports them.
pub(super) fn families(out: &mut String, quotas: Option<&Quotas>, node: &str) {
    use zone_node::exposition::{family, labels};
    let tenants = quotas.map(|q| q.tenants.as_slice()).unwrap_or_default();
    let each = |value: fn(&Seen) -> u64| {
        tenants.iter().map(move |t| {
            (
                labels(&[("kind", t.kind), ("name", &t.name), ("node", node)]),
                value(t),
            )
        })
    };
    family(
        out,
        "zone_etcd_quota_used_bytes",
        "A tenant's live keys and values as etcd counts them (256 bytes a key beside its key and value), as the zone's decider last recorded them (issue 69).",
        each(|t| t.used_bytes),
    );
    family(
        out,
        "zone_etcd_quota_bytes",
        "A tenant's quota: what it may keep (its writes are refused over it).",
        each(|t| t.quota_bytes),
    );
    family(
        out,
        "zone_etcd_quota_written_bytes",
        "The history a tenant made since the last compaction: what its puts replaced and its deletes removed, as etcd counts each.",
        each(|t| t.written_bytes),
    );
    family(
        out,
        "zone_etcd_quota_write_budget_bytes",
        "A tenant's write budget: its writes are refused once its keys and history pass its quota and this together.",
        each(|t| t.write_budget),
    );
    family(
        out,
        "zone_etcd_quota_stopped",
        "1 while the zone refuses a tenant's writes (over its quota, its max_keys or its write budget), else 0: zone-etcd status names why and the fix.",
        each(|t| u64::from(t.stopped)),
    );
    family(
        out,
        "zone_etcd_leases",
        "The zone's leases, as its decider last counted them: no tenant owns a lease, so they are bounded in all (ZoneEtcdLeasesMany).",
        quotas
            .and_then(|q| q.leases)
            .map(|n| (labels(&[("node", node)]), n)),
    );
    family(
        out,
        "zone_etcd_quota_record_timestamp_seconds",
        "When the zone's decider counted the tenants' figures above, in seconds since the Unix epoch (absent: no record read).",
        quotas
            .and_then(|q| q.at.as_deref())
            .and_then(|at| {
                time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .map(|at| (labels(&[("node", node)]), at.unix_timestamp())),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use zone_model::quota::record::{Stopped, TenantUse, Uses};

    fn quotas() -> Quotas {
        let tenant = |name: &str, used: u64, quota: u64| TenantUse {
            name: name.into(),
            used_bytes: used,
            quota_bytes: quota,
            keys: 3,
            max_keys: None,
            written_bytes: used / 2,
            write_budget: quota,
            stopped: false,
        };
        let uses = Uses {
            format: 1,
            at: "2026-11-28T12:00:00Z".into(),
            by: "node1.example.zone".into(),
            tenants: vec![
                tenant("node:nas.example.zone", 300, 8 << 20),
                tenant("svc:photos", 70 << 20, 64 << 20),
            ],
            leases: Some(42),
        };
        let stop = Stopped {
            format: 1,
            tenant: "svc:photos".into(),
            crossed: "quota".into(),
            used: 70 << 20,
            budget: 64 << 20,
            at: "2026-11-28T11:59:59Z".into(),
            by: "node1.example.zone".into(),
        };
        Quotas {
            at: Some(uses.at.clone()),
            leases: uses.leases,
            tenants: seen::seen(Some(&uses), &[stop]),
        }
    }

    #[test]
    fn each_tenant_has_its_figures_and_whether_it_is_stopped() {
        let mut out = String::new();
        families(&mut out, Some(&quotas()), "node1.example.zone");
        let samples = |name: &str| -> Vec<String> {
            out.lines()
                .filter(|l| l.starts_with(&format!("{name}{{")))
                .map(str::to_string)
                .collect()
        };
        assert_eq!(
            samples("zone_etcd_leases"),
            [r#"zone_etcd_leases{node="node1.example.zone"} 42"#]
        );
        let photos = r#"{kind="service",name="photos",node="node1.example.zone"}"#;
        let nas = r#"{kind="node",name="nas.example.zone",node="node1.example.zone"}"#;
        assert_eq!(
            samples("zone_etcd_quota_used_bytes"),
            [
                format!("zone_etcd_quota_used_bytes{photos} 73400320"),
                format!("zone_etcd_quota_used_bytes{nas} 300"),
            ]
        );
        assert_eq!(
            samples("zone_etcd_quota_bytes"),
            [
                format!("zone_etcd_quota_bytes{photos} 67108864"),
                format!("zone_etcd_quota_bytes{nas} 8388608"),
            ]
        );
        assert_eq!(
            samples("zone_etcd_quota_written_bytes"),
            [
                format!("zone_etcd_quota_written_bytes{photos} 36700160"),
                format!("zone_etcd_quota_written_bytes{nas} 150"),
            ]
        );
        assert_eq!(
            samples("zone_etcd_quota_write_budget_bytes"),
            [
                format!("zone_etcd_quota_write_budget_bytes{photos} 67108864"),
                format!("zone_etcd_quota_write_budget_bytes{nas} 8388608"),
            ]
        );
        assert_eq!(
            samples("zone_etcd_quota_stopped"),
            [
                format!("zone_etcd_quota_stopped{photos} 1"),
                format!("zone_etcd_quota_stopped{nas} 0"),
            ]
        );
        assert_eq!(
            samples("zone_etcd_quota_record_timestamp_seconds"),
            [r#"zone_etcd_quota_record_timestamp_seconds{node="node1.example.zone"} 1795867200"#]
        );
        for name in [
            "zone_etcd_quota_used_bytes",
            "zone_etcd_quota_bytes",
            "zone_etcd_quota_written_bytes",
            "zone_etcd_quota_write_budget_bytes",
            "zone_etcd_quota_stopped",
            "zone_etcd_leases",
            "zone_etcd_quota_record_timestamp_seconds",
        ] {
            assert!(out.contains(&format!("# HELP {name} ")), "{name}: {out}");
            assert!(
                out.contains(&format!("# TYPE {name} gauge\n")),
                "{name}: {out}"
            );
        }
    }

    #[test]
    fn nothing_read_is_no_sample() {
        let mut out = String::new();
        families(&mut out, None, "n");
        assert!(out.lines().all(|l| l.starts_with('#')), "{out}");
        assert_eq!(out.lines().count(), 14);
    }
}
