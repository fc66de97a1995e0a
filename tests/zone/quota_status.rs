//! Quotas seen before they stop anyone (issue 69, item 4): `status` (text and `--json`)
//! and `check --format prometheus` show the decider's records as a real zone holds them.
//! The records are put by the owner (the admin identity of `ca admin`), as the decider
//! would put them (its own test writes them through a tenant's writes).
//!
//! Zone on `addresses::QUOTA_STATUS` .1-3.

use crate::common;

use serde_json::{json, Value};

use common::{run, TestZone};
use zone_testkit::addresses;

const ZONE: &str = "quotas.zone";

const USE: &str = r#"{"format":1,"at":"2026-11-28T12:00:00Z","by":"node1.quotas.zone","tenants":[{"name":"svc:photos","used_bytes":73400320,"quota_bytes":67108864,"keys":700,"written_bytes":3145728,"write_budget":67108864,"stopped":true},{"name":"node:nas.quotas.zone","used_bytes":54635725,"quota_bytes":67108864,"keys":12,"max_keys":1000,"written_bytes":3145728,"write_budget":67108864,"stopped":false}]}"#;
const STOP: &str = r#"{"format":1,"tenant":"svc:photos","crossed":"quota","used":73400320,"budget":67108864,"at":"2026-11-28T11:59:59Z","by":"node1.quotas.zone"}"#;

#[test]
fn status_and_the_metrics_show_each_tenant_and_name_a_stopped_one() {
    let zone = TestZone::bootstrap(ZONE, addresses::QUOTA_STATUS.subnet(), 3);
    let mut running = zone.launch_all();
    zone.wait_healthy(&mut running);
    let config = zone.config(0);
    let config = config.to_str().unwrap();

    // No record yet: an empty list, no section.
    let (ok, before, err) = zone.status(0);
    assert!(ok, "{err}");
    assert_eq!(
        (&before["quotas"], &before["quotas_at"]),
        (&json!([]), &Value::Null),
        "{before}"
    );
    let (_, text, _) = run(&["status", "--config", config]);
    assert!(!text.lines().any(|l| l.starts_with("quotas")), "{text}");

    let admin = common::admin_identity(&zone.path("ca"), &zone.path("admin"));
    let endpoints: Vec<String> = (0..3)
        .map(|i| format!("https://{}", zone.client_addr(i)))
        .collect();
    for (key, value) in [
        ("zone-etcd/quota/use", USE),
        ("zone-etcd/quota/stopped/svc:photos", STOP),
    ] {
        let (ok, said) = common::etcdctl_said(
            &endpoints.join(","),
            &zone.tls(0, "ca.crt"),
            &admin,
            &["put", key, value],
        );
        assert!(ok, "put {key}: {said}");
    }

    // The text: a warning naming the stop and its fix, the section the stopped first, and
    // the exit status the cluster's (0).
    let (ok, text, err) = run(&["status", "--config", config]);
    assert!(
        ok,
        "a stopped tenant is no failure of the zone: {text}{err}"
    );
    let fix = "its writes are refused until it is under 90% of its quota: delete some of its keys (on a node that runs it, `zone-etcd quota free --config /etc/zone-etcd/node.toml --service photos --prefix PREFIX`; or as the owner, with the admin identity from `zone-etcd ca admin`), or raise its quota in the zone file and `zone-etcd zone publish`";
    let warning = format!("warning: service photos is over its quota (70 MiB of 64 MiB): {fix}");
    assert!(text.lines().any(|l| l == warning), "{text}");
    let section: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("quotas"))
        .take(4)
        .collect();
    assert_eq!(
        section,
        [
            "quotas (counted at 2026-11-28T12:00:00Z by node1.quotas.zone's keeper):",
            "  service photos         70 MiB of 64 MiB (109%)    700 keys          history 3 MiB since the last compaction (with its keys 73 MiB of 128 MiB)   STOPPED",
            &format!("    service photos is over its quota (70 MiB of 64 MiB): {fix}"),
            "  node nas.quotas.zone   52.1 MiB of 64 MiB (81%)   12 of 1000 keys   history 3 MiB since the last compaction (with its keys 55.1 MiB of 128 MiB)",
        ],
        "{text}"
    );

    // The JSON: every field of each tenant.
    let (ok, after, err) = zone.status(0);
    assert!(ok, "{err}");
    assert_eq!(after["quotas_at"], "2026-11-28T12:00:00Z");
    assert_eq!(
        after["quotas"],
        json!([
            {"name": "photos", "kind": "service", "used_bytes": 73400320u64,
             "quota_bytes": 67108864u64, "keys": 700, "max_keys": null,
             "written_bytes": 3145728u64, "write_budget": 67108864u64, "stopped": true,
             "why": "service photos is over its quota (70 MiB of 64 MiB)"},
            {"name": "nas.quotas.zone", "kind": "node", "used_bytes": 54635725u64,
             "quota_bytes": 67108864u64, "keys": 12, "max_keys": 1000,
             "written_bytes": 3145728u64, "write_budget": 67108864u64, "stopped": false,
             "why": null},
        ]),
        "{after}"
    );

    // The metrics of a member: each tenant, from its own etcd.
    let (_, metrics, err) = run(&["check", "--format", "prometheus", "--config", config]);
    let quota: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("zone_etcd_quota_"))
        .collect();
    let node = &zone.members[0].0;
    let photos = format!(r#"{{kind="service",name="photos",node="{node}"}}"#);
    let nas = format!(r#"{{kind="node",name="nas.quotas.zone",node="{node}"}}"#);
    assert_eq!(
        quota,
        [
            format!("zone_etcd_quota_used_bytes{photos} 73400320"),
            format!("zone_etcd_quota_used_bytes{nas} 54635725"),
            format!("zone_etcd_quota_bytes{photos} 67108864"),
            format!("zone_etcd_quota_bytes{nas} 67108864"),
            format!("zone_etcd_quota_written_bytes{photos} 3145728"),
            format!("zone_etcd_quota_written_bytes{nas} 3145728"),
            format!("zone_etcd_quota_write_budget_bytes{photos} 67108864"),
            format!("zone_etcd_quota_write_budget_bytes{nas} 67108864"),
            format!("zone_etcd_quota_stopped{photos} 1"),
            format!("zone_etcd_quota_stopped{nas} 0"),
            format!(r#"zone_etcd_quota_record_timestamp_seconds{{node="{node}"}} 1795867200"#),
        ],
        "{metrics}{err}"
    );
    for member in running {
        member.stop();
    }
}
