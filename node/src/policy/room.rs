//! The room check (issue 69, docs/design/quotas.md) where a zone file's policy is accepted
//! for the zone: `bootstrap`, `zone sign` and `zone publish` refuse, in one line naming the
//! zone file and the field, with nothing written, a policy whose tenants' quotas together
//! leave the zone's database ([`Settings::quota_bytes`], `[settings] quota_backend_bytes`)
//! less room than they need beside its reserve ([`zone_model::quota::room`]).
//!
//! The tenants counted: every service that may write; the nodes with an identity of their
//! own, members left out ([`tenant_nodes`]): `[access] nodes` as listed, and under
//! `nodes = ["*"]` the nodes the zone file names (in its services' `nodes`) and those the
//! running zone marked as issued (`zone publish` reads them; offline, none).
//!
//! Invariants: pure but for [`check`]'s error; a policy with no tenant is never refused (a
//! zone with no service and no node of its own needs no room for quotas, whatever its
//! backend quota); the field named is the largest tenant's quota when the file gave it
//! (`access.service[N].quota`, `access.service_quota`, `access.node_quota`), else
//! `access`.
//!
//! [`Settings::quota_bytes`]: zone_model::settings::Settings::quota_bytes

use std::collections::BTreeSet;
use std::path::Path;

use zone_io::Error;
use zone_model::config::zone::Zone;
use zone_model::policy::rbac::service_role;
use zone_model::policy::Policy;
use zone_model::quota::{self, Tenant};

/// The nodes with an identity of their own under `policy`, `members` left out: the
/// policy's `nodes`, or under `nodes = ["*"]` the nodes its services name and the nodes
/// `marked` (the zone's marks of issued identities; empty offline). Sorted, each once.
pub fn tenant_nodes(policy: &Policy, members: &[String], marked: &[String]) -> Vec<String> {
    let listed: BTreeSet<&String> = if policy.any_node() {
        policy
            .services
            .iter()
            .flat_map(|s| s.nodes.iter())
            .chain(marked)
            .collect()
    } else {
        policy.nodes.iter().collect()
    };
    listed
        .into_iter()
        .filter(|n| !members.contains(n) && n.as_str() != zone_model::policy::ANY_NODE)
        .cloned()
        .collect()
}

/// Whether `zone` has room for its policy's tenants (`marked`: see [`tenant_nodes`]).
/// `Err` is the refusal: the field to name, the problem, the fix.
pub fn decide(zone: &Zone, marked: &[String]) -> Result<(), (String, String, String)> {
    let policy = &zone.access;
    let members: Vec<String> = zone.members.iter().map(|m| m.node_name.clone()).collect();
    let nodes = tenant_nodes(policy, &members, marked);
    let tenants: Vec<Tenant> = quota::tenants(policy, &nodes)
        .into_iter()
        .map(|(t, _, _)| t)
        .collect();
    if tenants.is_empty() {
        return Ok(());
    }
    let shown: Vec<Tenant> = tenants
        .iter()
        .map(|t| Tenant {
            name: quota::display(&t.name),
            ..t.clone()
        })
        .collect();
    quota::room(zone.settings.quota_bytes(), &shown).map_err(|(problem, fix)| {
        // The largest tenant as `room` names it first.
        let largest = tenants
            .iter()
            .zip(&shown)
            .max_by(|a, b| a.1.quota.cmp(&b.1.quota).then(b.1.name.cmp(&a.1.name)))
            .map(|(t, _)| t);
        (
            largest.map_or("access".into(), |t| field_of(policy, t)),
            problem,
            fix,
        )
    })
}

/// The field that sets `tenant`'s quota, if the file set it, else `access`.
fn field_of(policy: &Policy, tenant: &Tenant) -> String {
    if tenant.name.starts_with("svc:") {
        let found = policy
            .services
            .iter()
            .enumerate()
            .find(|(_, s)| service_role(&s.name) == tenant.name);
        match found {
            Some((i, s)) if s.quota.is_some() => return format!("access.service[{i}].quota"),
            Some(_) if policy.service_quota.is_some() => return "access.service_quota".into(),
            _ => {}
        }
    } else if tenant.name.starts_with("node:") && policy.node_quota.is_some() {
        return "access.node_quota".into();
    }
    "access".into()
}

/// [`decide`] as the commands say it: one line naming `zone_file` and the field, with
/// the fix.
pub fn check(zone: &Zone, zone_file: &Path, marked: &[String]) -> Result<(), Error> {
    decide(zone, marked)
        .map_err(|(field, problem, fix)| Error::new(problem).file(zone_file).field(field).fix(fix))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn zone(settings: &str, access: &str) -> Zone {
        let text = format!(
            "name = \"example.zone\"\n\n[[etcd]]\nnode_name = \"node1.example.zone\"\naddress = \"10.0.0.1\"\n\n[settings]\n{settings}\n\n{access}"
        );
        Zone::parse(Path::new("zone.toml"), &text).unwrap()
    }

    fn service(name: &str, node: &str, extra: &str) -> String {
        format!("[[access.service]]\nname = \"{name}\"\nnodes = [\"{node}\"]\nread_write = [\"apps/{name}/\"]\n{extra}\n")
    }

    #[test]
    fn the_nodes_counted_are_those_with_an_identity_of_their_own() {
        let members = vec!["node1.example.zone".to_string()];
        let listed = zone(
            "",
            &format!(
                "[access]\nnodes = [\"nas.example.zone\", \"pi.example.zone\"]\n{}",
                service("photos", "node1.example.zone", "")
            ),
        );
        // Listed: exactly the list, whatever the zone marked.
        assert_eq!(
            tenant_nodes(&listed.access, &members, &["tv.example.zone".into()]),
            ["nas.example.zone", "pi.example.zone"]
        );
        // Any node: those the file names for its services and those marked, members out.
        let any = zone(
            "",
            &format!(
                "[access]\nnodes = [\"*\"]\n{}{}",
                service("photos", "nas.example.zone", ""),
                service("dns", "node1.example.zone", "")
            ),
        );
        assert_eq!(
            tenant_nodes(&any.access, &members, &[]),
            ["nas.example.zone"]
        );
        let marked = [
            "tv.example.zone".into(),
            "node1.example.zone".into(),
            "nas.example.zone".into(),
        ];
        assert_eq!(
            tenant_nodes(&any.access, &members, &marked),
            ["nas.example.zone", "tv.example.zone"]
        );
        // No policy: no node of its own.
        assert!(tenant_nodes(&Policy::default(), &members, &[]).is_empty());
    }

    #[test]
    fn quotas_that_do_not_fit_are_refused_naming_the_largest_tenants_field() {
        let photos = |quota: &str| {
            service(
                "photos",
                "nas.example.zone",
                &format!("quota = \"{quota}\""),
            )
        };
        let nas = "[access]\nnodes = [\"nas.example.zone\"]\n";
        // 256 MiB: 128 MiB beside the reserve; photos 100 MiB and the node's default
        // 8 MiB ask (108 x 2) x 1.25 = 270 MiB.
        let small = "quota_backend_bytes = 268435456";
        let (field, problem, fix) =
            decide(&zone(small, &format!("{nas}{}", photos("100 MiB"))), &[]).unwrap_err();
        assert_eq!(field, "access.service[0].quota");
        assert!(
            problem.starts_with("the quotas of 2 tenant(s) (service photos 100 MiB, node nas.example.zone 8 MiB) need 270 MiB"),
            "{problem}"
        );
        assert!(
            problem.ends_with("(quota_backend_bytes 256 MiB)"),
            "{problem}"
        );
        assert!(fix.contains("quota_backend_bytes"), "{fix}");
        // Fits: (40 + 8) x 2 x 1.25 = 120 MiB of 128.
        decide(&zone(small, &format!("{nas}{}", photos("40 MiB"))), &[]).unwrap();
        // The zone's service_quota, or the node's, named when it is the largest's.
        let zonewide = format!(
            "{nas}service_quota = \"200 MiB\"\n{}",
            service("photos", "nas.example.zone", "")
        );
        assert_eq!(
            decide(&zone(small, &zonewide), &[]).unwrap_err().0,
            "access.service_quota"
        );
        let nodes = "[access]\nnodes = [\"nas.example.zone\"]\nnode_quota = \"300 MiB\"\n";
        assert_eq!(
            decide(&zone(small, nodes), &[]).unwrap_err().0,
            "access.node_quota"
        );
        // The defaults alone: `access`. Three services of 32 MiB ask 240 MiB.
        let three = format!(
            "{nas}{}{}{}",
            service("a", "nas.example.zone", ""),
            service("b", "nas.example.zone", ""),
            service("c", "nas.example.zone", "")
        );
        let (field, problem, _) = decide(&zone(small, &three), &[]).unwrap_err();
        assert_eq!(field, "access", "{problem}");
        // The same in etcd's default 2 GiB.
        decide(&zone("", &three), &[]).unwrap();
    }

    #[test]
    fn a_zone_without_tenants_is_never_refused_and_marked_nodes_count() {
        // 16 MiB is under the reserve's floor, but nothing asks for room.
        let tiny = "quota_backend_bytes = 16777216";
        decide(&zone(tiny, ""), &[]).unwrap();
        decide(&zone(tiny, "[access]\nnodes = [\"*\"]\n"), &[]).unwrap();
        // Under "*", each marked node counts at the node quota: 8 MiB x 2 x 1.25 = 20 MiB
        // each, 128 MiB beside the reserve of a 256 MiB zone holds six.
        let any = zone(
            "quota_backend_bytes = 268435456",
            "[access]\nnodes = [\"*\"]\n",
        );
        let marked =
            |n: usize| -> Vec<String> { (0..n).map(|i| format!("n{i}.example.zone")).collect() };
        decide(&any, &marked(6)).unwrap();
        let (field, problem, _) = decide(&any, &marked(7)).unwrap_err();
        assert_eq!(field, "access");
        assert!(
            problem.contains("7 tenant(s)") && problem.contains("140 MiB"),
            "{problem}"
        );
        assert_eq!(quota::asked(&[Tenant::new("x", 8 * MIB)]), 20 * MIB);
        // The line names the file and field, and the fix.
        let line = check(&any, Path::new("/z/zone.toml"), &marked(7))
            .unwrap_err()
            .to_string();
        assert!(
            line.starts_with("/z/zone.toml: access: the quotas of 7 tenant(s)"),
            "{line}"
        );
        assert!(line.contains("(fix: give smaller quotas"), "{line}");
    }
}
