//! `status`'s quotas (issue 69): each tenant's use against its budgets, from the decider's
//! records ([`zone_model::quota::seen`]), and a warning a stopped tenant.
//!
//! A stopped tenant is a warning, not a failure of the zone: the exit status stays 0. The
//! exit status is the cluster's (quorum, a member down, an alarm that refuses every
//! client's writes), what `upgrade` and scripts gate on; a stop is the policy doing its
//! work on one tenant while the zone serves every other, as a member that left unrevoked
//! or a slow disk is a warning line. `ZoneEtcdQuotaStopped` is what pages.

use zone_model::quota::record::{Stopped, Uses};
use zone_model::quota::seen;

use super::rows::ClusterStatus;

/// Fills `status`'s quotas from what was read, and its warnings with each stopped tenant.
pub(super) fn fill(status: &mut ClusterStatus, read: Result<(Option<Uses>, Vec<Stopped>), String>) {
    let (uses, stops) = match read {
        Ok(records) => records,
        Err(why) => {
            status.quotas_unread = Some(why);
            return;
        }
    };
    status.quotas = seen::seen(uses.as_ref(), &stops);
    status.quotas_at = uses.as_ref().map(|u| u.at.clone());
    status.leases = uses.as_ref().and_then(|u| u.leases);
    status.quotas_by = uses.map(|u| u.by);
    status.warnings.extend(warnings(&status.quotas));
}

/// One warning a stopped tenant: why, and its fix.
fn warnings(tenants: &[seen::Seen]) -> Vec<String> {
    tenants
        .iter()
        .filter(|t| t.stopped)
        .map(|t| {
            format!(
                "{}: {}",
                t.why
                    .clone()
                    .unwrap_or_else(|| format!("{} is stopped", t.who())),
                t.fix.as_deref().unwrap_or_default()
            )
        })
        .collect()
}

/// The `quotas:` section: nothing when the zone has no tenant's record.
pub(super) fn section(status: &ClusterStatus) -> String {
    if let Some(why) = &status.quotas_unread {
        return format!("quotas: unknown (the zone's quota records were not read: {why})\n");
    }
    if status.quotas.is_empty() {
        return String::new();
    }
    let leases = status
        .leases
        .map(|n| {
            let many = if n > zone_model::quota::record::LEASES_MANY {
                ": more than any service needs, see ZoneEtcdLeasesMany"
            } else {
                ""
            };
            format!("; {n} lease(s) in the zone{many}")
        })
        .unwrap_or_default();
    let mut out = match (&status.quotas_at, &status.quotas_by) {
        (Some(at), Some(by)) => format!("quotas (counted at {at} by {by}'s keeper{leases}):\n"),
        _ => "quotas (no count recorded yet, only the stops):\n".to_string(),
    };
    for line in seen::lines(&status.quotas) {
        out.push_str(&format!("  {line}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use zone_model::quota::record::TenantUse;

    fn status() -> ClusterStatus {
        super::super::rows::tests::cluster()
    }

    fn stop() -> Stopped {
        Stopped {
            format: 1,
            tenant: "svc:photos".into(),
            crossed: "quota".into(),
            used: 70 << 20,
            budget: 64 << 20,
            at: "2026-11-28T12:00:00Z".into(),
            by: "node1.example.zone".into(),
        }
    }

    fn uses() -> Uses {
        Uses {
            format: 1,
            at: "2026-11-28T12:00:01Z".into(),
            by: "node1.example.zone".into(),
            tenants: vec![TenantUse {
                name: "svc:photos".into(),
                used_bytes: 70 << 20,
                quota_bytes: 64 << 20,
                keys: 700,
                max_keys: None,
                written_bytes: 70 << 20,
                write_budget: 64 << 20,
                stopped: true,
            }],
            leases: Some(3),
        }
    }

    #[test]
    fn a_stopped_tenant_is_a_warning_with_its_fix_and_a_section() {
        let mut s = status();
        fill(&mut s, Ok((Some(uses()), vec![stop()])));
        assert_eq!(s.quotas_at.as_deref(), Some("2026-11-28T12:00:01Z"));
        assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
        assert!(
            s.warnings[0].starts_with("service photos is over its quota (70 MiB of 64 MiB): its writes are refused until it is under 90% of its quota"),
            "{}",
            s.warnings[0]
        );
        let text = section(&s);
        assert!(
            text.starts_with(
                "quotas (counted at 2026-11-28T12:00:01Z by node1.example.zone's keeper; 3 lease(s) in the zone):\n  service photos   70 MiB of 64 MiB (109%)   700 keys"
            ),
            "{text}"
        );
        assert!(
            text.contains("STOPPED\n    service photos is over"),
            "{text}"
        );
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["quotas"][0]["name"], "photos");
        assert_eq!(json["quotas"][0]["kind"], "service");
        assert_eq!(json["quotas"][0]["max_keys"], serde_json::Value::Null);
        assert_eq!(json["quotas"][0]["stopped"], true);
        assert!(json["quotas"][0].get("fix").is_none());
    }

    #[test]
    fn no_record_is_no_section_and_an_unread_one_says_why() {
        let mut s = status();
        fill(&mut s, Ok((None, Vec::new())));
        assert_eq!(section(&s), "");
        assert!(s.warnings.is_empty());
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["quotas"], serde_json::json!([]));
        assert_eq!(json["quotas_at"], serde_json::Value::Null);
        assert!(json.get("quotas_unread").is_none());
        fill(&mut s, Err("permission denied".into()));
        assert_eq!(
            section(&s),
            "quotas: unknown (the zone's quota records were not read: permission denied)\n"
        );
    }
}
