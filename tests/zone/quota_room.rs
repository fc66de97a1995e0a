//! Quotas per tenant (issue 69, docs/design/quotas.md): a policy whose quotas together
//! leave the zone's database less room than they need is refused by `zone sign` and
//! `bootstrap` in one line naming the zone file, the field and the fix, nothing written;
//! the same zone with quotas that fit is signed and bootstrapped, its quotas carried as
//! written. (`zone publish` runs the same check, `policy::room`, its unit tests.)

use crate::common;

use std::fs;
use std::path::Path;

use common::{bootstrap_args, ca_init_args, run, run_ok, snapshot, zone_toml};

/// A zone of one member whose database is 256 MiB (128 MiB beside its reserve), with a
/// node of its own and photos on it at `quota`.
fn zone_file(quota: &str) -> String {
    format!(
        "{}\n[settings]\nquota_backend_bytes = 268435456\n\n[access]\nnodes = [\"nas.example.zone\"]\nnode_quota = \"4 MiB\"\n\n[[access.service]]\nname = \"photos\"\nnodes = [\"nas.example.zone\"]\nread_write = [\"apps/photos/\"]\nquota = \"{quota}\"\nmax_keys = 100000\n",
        zone_toml("example.zone", &[("node1.example.zone", "10.0.0.1")])
    )
}

/// Runs zone-etcd expecting one line of refusal with every part of `expected`, and the
/// tree under `dir` as before.
fn refused(dir: &Path, args: &[String], expected: &[&str]) {
    let before = snapshot(dir);
    let (ok, stdout, stderr) = run(args);
    assert!(!ok, "zone-etcd {args:?} should fail; stdout: {stdout}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one line on stderr, got: {stderr}");
    assert!(lines[0].starts_with("zone-etcd: error: "), "{stderr}");
    for part in expected {
        assert!(lines[0].contains(part), "expected {part:?} in: {stderr}");
    }
    assert_eq!(snapshot(dir), before, "a refusal writes nothing");
}

#[test]
fn quotas_that_do_not_fit_the_database_are_refused_and_those_that_fit_are_signed() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca");
    run_ok(&ca_init_args("example.zone", ca.to_str().unwrap()));
    let zone = dir.path().join("zone.toml");
    let (doc, out) = (dir.path().join("zone.json"), dir.path().join("nodes"));
    let sign = [
        "zone",
        "sign",
        "--ca",
        ca.to_str().unwrap(),
        "--zone",
        zone.to_str().unwrap(),
        "--out",
        doc.to_str().unwrap(),
    ]
    .map(String::from);
    let bootstrap = bootstrap_args(
        ca.to_str().unwrap(),
        zone.to_str().unwrap(),
        out.to_str().unwrap(),
    );

    // photos 100 MiB and the node's 4 MiB ask (104 x 2) x 1.25 = 260 MiB of 128.
    fs::write(&zone, zone_file("100 MiB")).unwrap();
    let named = format!("{}: access.service[0].quota: ", zone.display());
    let expected = [
        named.as_str(),
        "the quotas of 2 tenant(s) (service photos 100 MiB, node nas.example.zone 4 MiB) need 260 MiB",
        "the zone has 128 MiB beside its reserve of 128 MiB (quota_backend_bytes 256 MiB)",
        "(fix: give smaller quotas ([access] node_quota, service_quota, or a service's quota), or raise [settings] quota_backend_bytes",
    ];
    refused(dir.path(), &sign, &expected);
    refused(dir.path(), &bootstrap, &expected);
    assert!(!doc.exists() && !out.exists());

    // 40 MiB: (44 x 2) x 1.25 = 110 MiB of 128.
    fs::write(&zone, zone_file("40 MiB")).unwrap();
    run_ok(&sign);
    let signed: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&doc).unwrap()).unwrap();
    let access = &signed["extend"]["access"];
    assert_eq!(access["node_quota"], "4 MiB", "{signed}");
    assert_eq!(access["service"][0]["quota"], "40 MiB", "{signed}");
    assert_eq!(access["service"][0]["max_keys"], 100000, "{signed}");
    assert!(access.get("service_quota").is_none(), "{signed}");
    run_ok(&bootstrap);
    let node = fs::read_to_string(out.join("node1.example.zone/node.toml")).unwrap();
    assert!(
        node.contains("quota = \"40 MiB\"") && node.contains("node_quota = \"4 MiB\""),
        "{node}"
    );
}
