use serde_json::{json, Value};
use zone_io::Error;

use super::*;

const ZONE: &str = "example.zone";

fn members() -> Vec<String> {
    vec!["node1.example.zone".into(), "node2.example.zone".into()]
}

fn parse(value: Value) -> Result<Policy, Error> {
    Policy::parse(&value, "access", ZONE, &members())
}

/// The one line a refusal prints, for the assertions.
fn refusal(value: Value) -> String {
    let e = parse(value).expect_err("refused");
    format!(
        "{} | {} | {}",
        e.field_name().unwrap_or(""),
        e.problem(),
        e.fix_text().unwrap_or("")
    )
}

fn photos() -> Value {
    json!({"name": "photos", "nodes": ["nas.example.zone"], "read_write": ["apps/photos/"], "read": ["apps/shared/"]})
}

#[test]
fn a_policy_reads_and_writes_back_the_same() {
    let value = json!({"nodes": ["nas.example.zone"], "service": [photos(),
        {"name": "music", "nodes": ["node1.example.zone", "nas.example.zone"], "read_write": ["apps/music/"], "read": ["apps/photos/"]}]});
    let policy = parse(value).unwrap();
    assert!(policy.present);
    assert_eq!(policy.node_prefix, "nodes/");
    assert_eq!(
        policy.node_prefix_of("nas.example.zone"),
        "nodes/nas.example.zone/"
    );
    let on_nas: Vec<&str> = policy
        .services_of("nas.example.zone")
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(on_nas, ["photos", "music"]);
    assert_eq!(policy.services_of("node2.example.zone").count(), 0);
    let again = parse(Value::Object(policy.to_value())).unwrap();
    assert_eq!(again, policy);
    assert!(Policy::default().to_value().is_empty());
}

#[test]
fn keys_that_hold_their_default_are_not_written() {
    // A later release's key, left to its default, must never reach an older reader
    // (which refuses keys it does not know): today's keys are written the same way.
    let policy = parse(json!({"enforce": false, "nodes": [], "node_prefix": "nodes/", "service": [
        {"name": "photos", "nodes": ["node1.example.zone"], "read_write": [], "read": ["apps/shared/"]}]}))
    .unwrap();
    assert_eq!(
        Value::Object(policy.to_value()),
        json!({"nodes": [], "service": [
            {"name": "photos", "nodes": ["node1.example.zone"], "read": ["apps/shared/"]}]})
    );
    assert_eq!(parse(Value::Object(policy.to_value())).unwrap(), policy);
    // The least-privilege default as node.toml and the zone document carry it.
    assert_eq!(
        Value::Object(Policy::by_default().to_value()),
        json!({"enforce": true, "nodes": ["*"]})
    );
    // An empty table is still a table; a set prefix is written.
    let empty = parse(json!({})).unwrap();
    assert_eq!(Value::Object(empty.to_value()), json!({"nodes": []}));
    assert_eq!(parse(Value::Object(empty.to_value())).unwrap(), empty);
    let other = parse(json!({"nodes": [], "node_prefix": "homes/"})).unwrap();
    assert_eq!(other.to_value()["node_prefix"], "homes/");
}

#[test]
fn overlapping_read_write_grants_are_refused_naming_both() {
    let line = refusal(json!({"nodes": ["nas.example.zone"], "service": [photos(),
        {"name": "all-apps", "nodes": ["nas.example.zone"], "read_write": ["apps/"]}]}));
    assert!(line.starts_with("access.service[1].read_write |"), "{line}");
    assert!(
        line.contains("\"apps/\" overlaps \"apps/photos/\" of photos"),
        "{line}"
    );
    // Reading another's prefix is a grant on purpose: taken.
    parse(json!({"nodes": ["nas.example.zone"], "service": [photos(),
        {"name": "viewer", "nodes": ["nas.example.zone"], "read": ["apps/photos/"]}]}))
    .unwrap();
    // Prefixes that merely share letters do not overlap.
    parse(json!({"nodes": ["nas.example.zone"], "service": [photos(),
        {"name": "photos2", "nodes": ["nas.example.zone"], "read_write": ["apps/photos2/"]}]}))
    .unwrap();
}

#[test]
fn zone_etcds_keys_and_the_nodes_prefixes_are_no_services() {
    for (prefix, said) in [
        ("zone-etcd/backup/", "zone-etcd's own keys"),
        ("zone-etcd/", "zone-etcd's own keys"),
        ("nodes/node1.example.zone/", "the nodes' own prefixes"),
    ] {
        let line = refusal(
            json!({"service": [{"name": "x", "nodes": ["node1.example.zone"], "read": [prefix]}]}),
        );
        assert!(
            line.contains(said) && line.starts_with("access.service[0].read |"),
            "{line}"
        );
    }
    let line = refusal(json!({"node_prefix": "zone-etcd/nodes/"}));
    assert!(line.starts_with("access.node_prefix |"), "{line}");
}

#[test]
fn unknown_nodes_names_and_shapes_are_refused_in_one_line() {
    for (value, field, said) in [
        (
            json!({"service": [{"name": "photos", "nodes": ["nas.example.zone"], "read_write": ["apps/photos/"]}]}),
            "access.service[0].nodes",
            "nas.example.zone is neither an etcd member",
        ),
        (
            json!({"nodes": ["nas.other.zone"]}),
            "access.nodes[0]",
            "not a node name of zone",
        ),
        (
            json!({"nodes": ["node1.example.zone"]}),
            "access.nodes[0]",
            "is an etcd member",
        ),
        (
            json!({"service": [{"name": "Photos", "nodes": ["node1.example.zone"], "read": ["a/"]}]}),
            "access.service[0].name",
            "not a DNS label",
        ),
        (
            json!({"service": [{"name": "root", "nodes": ["node1.example.zone"], "read": ["a/"]}]}),
            "access.service[0].name",
            "reserved",
        ),
        (
            json!({"service": [{"name": "a", "nodes": ["node1.example.zone"], "read": ["a/"]},
                               {"name": "a", "nodes": ["node1.example.zone"], "read": ["b/"]}]}),
            "access.service[1].name",
            "also access.service[0]",
        ),
        (
            json!({"service": [{"name": "a", "nodes": [], "read": ["a/"]}]}),
            "access.service[0].nodes",
            "names no node",
        ),
        (
            json!({"service": [{"name": "a", "nodes": ["node1.example.zone"]}]}),
            "access.service[0].read_write",
            "grants nothing",
        ),
        (
            json!({"service": [{"name": "a", "nodes": ["node1.example.zone"], "read_write": ["apps"]}]}),
            "access.service[0].read_write",
            "ending in '/'",
        ),
        (
            json!({"service": [{"name": "a", "nodes": ["node1.example.zone"], "read_write": [""]}]}),
            "access.service[0].read_write",
            "ending in '/'",
        ),
        (json!({"servce": []}), "access.servce", "unknown key"),
        (
            json!({"service": [{"name": "a", "node": ["x"]}]}),
            "access.service[0].node",
            "unknown key",
        ),
        (
            json!({"nodes": "nas.example.zone"}),
            "access.nodes",
            "must be a list of strings",
        ),
        (json!([]), "access", "must be a table"),
    ] {
        let line = refusal(value.clone());
        assert!(
            line.starts_with(&format!("{field} |")) && line.contains(said),
            "{value}: {line}"
        );
        assert!(!line.ends_with("| "), "no fix: {line}");
    }
}

#[test]
fn prefixes_that_start_with_a_slash_are_grantable_but_not_the_slash_alone() {
    // Patroni's keys, Kubernetes' and CoreDNS's layouts.
    let policy = parse(json!({"nodes": ["nas.example.zone"], "service": [
        {"name": "patroni", "nodes": ["nas.example.zone"], "read_write": ["/service/pg/"]},
        {"name": "dns", "nodes": ["nas.example.zone"], "read_write": ["/skydns/"], "read": ["/service/"]}]}))
    .unwrap();
    assert_eq!(policy.services[0].read_write, ["/service/pg/"]);
    let line = refusal(
        json!({"nodes": ["nas.example.zone"], "service": [{"name": "all", "nodes": ["nas.example.zone"], "read_write": ["/"]}]}),
    );
    assert!(
        line.starts_with("access.service[0].read_write |")
            && line.contains("every key that starts with '/'"),
        "{line}"
    );
    // Two services over one '/' layout overlap like any other prefixes.
    let line = refusal(json!({"nodes": ["nas.example.zone"], "service": [
        {"name": "patroni", "nodes": ["nas.example.zone"], "read_write": ["/service/pg/"]},
        {"name": "all", "nodes": ["nas.example.zone"], "read_write": ["/service/"]}]}));
    assert!(
        line.contains("\"/service/\" overlaps \"/service/pg/\""),
        "{line}"
    );
}

/// Issue 69: `[access] node_quota`, `service_quota` and a service's `quota`, `max_keys`.
fn quoted(service: Value) -> Value {
    json!({"nodes": ["nas.example.zone"], "service": [service]})
}

fn photos_with(key: &str, value: Value) -> Value {
    let mut service = photos();
    service[key] = value;
    quoted(service)
}

#[test]
fn quotas_read_as_people_write_sizes_or_as_bytes() {
    const MIB: u64 = 1 << 20;
    let policy = parse(json!({"nodes": ["nas.example.zone"], "node_quota": "512 KiB",
        "service_quota": 33554432_u64, "service": [
        {"name": "photos", "nodes": ["nas.example.zone"], "read_write": ["apps/photos/"], "quota": "64 MiB", "max_keys": 100000},
        {"name": "music", "nodes": ["nas.example.zone"], "read_write": ["apps/music/"]}]}))
    .unwrap();
    assert_eq!(policy.node_quota, Some(512 << 10));
    assert_eq!(policy.service_quota, Some(32 * MIB));
    assert_eq!(policy.services[0].quota, Some(64 * MIB));
    assert_eq!(policy.services[0].max_keys, Some(100_000));
    assert_eq!(policy.services[1].quota, None);
    assert_eq!(policy.services[1].max_keys, None);
    // What each tenant gets: its own, else the zone's, else the default.
    assert_eq!(policy.service_quota(&policy.services[0]), 64 * MIB);
    assert_eq!(policy.service_quota(&policy.services[1]), 32 * MIB);
    assert_eq!(policy.node_quota(), 512 << 10);
    let plain = parse(quoted(photos())).unwrap();
    assert_eq!(
        plain.service_quota(&plain.services[0]),
        super::DEFAULT_SERVICE_QUOTA
    );
    assert_eq!(plain.node_quota(), super::DEFAULT_NODE_QUOTA);
    // A number of bytes, as a string too.
    let bytes = parse(photos_with("quota", json!("1048576"))).unwrap();
    assert_eq!(bytes.services[0].quota, Some(MIB));
}

#[test]
fn a_quota_that_is_no_size_or_zero_is_refused_naming_its_field() {
    for (value, field, said) in [
        (
            photos_with("quota", json!("0")),
            "access.service[0].quota",
            "0 bytes",
        ),
        (
            photos_with("quota", json!(0)),
            "access.service[0].quota",
            "0 bytes",
        ),
        (
            photos_with("quota", json!("64 MB/s")),
            "access.service[0].quota",
            "is not a size",
        ),
        (
            photos_with("quota", json!("64 M")),
            "access.service[0].quota",
            "is not a size",
        ),
        (
            photos_with("quota", json!(-1)),
            "access.service[0].quota",
            "is not a size",
        ),
        (
            photos_with("quota", json!(true)),
            "access.service[0].quota",
            "must be a size",
        ),
        (
            json!({"nodes": [], "node_quota": "lots"}),
            "access.node_quota",
            "is not a size",
        ),
        (
            json!({"nodes": [], "node_quota": "0 MiB"}),
            "access.node_quota",
            "0 bytes",
        ),
        (
            json!({"nodes": [], "service_quota": [1]}),
            "access.service_quota",
            "must be a size",
        ),
        (
            photos_with("max_keys", json!(0)),
            "access.service[0].max_keys",
            "a whole number above 0",
        ),
        (
            photos_with("max_keys", json!(-5)),
            "access.service[0].max_keys",
            "a whole number above 0",
        ),
        (
            photos_with("max_keys", json!("1000")),
            "access.service[0].max_keys",
            "a whole number above 0, not a string",
        ),
        (
            photos_with("max_keys", json!(1.5)),
            "access.service[0].max_keys",
            "a whole number above 0",
        ),
    ] {
        let line = refusal(value.clone());
        assert!(
            line.starts_with(&format!("{field} |")) && line.contains(said),
            "{value}: {line}"
        );
        assert!(!line.ends_with("| "), "no fix: {line}");
    }
}

#[test]
fn quotas_are_written_back_as_sizes_and_only_when_given() {
    let policy = parse(json!({"nodes": ["nas.example.zone"], "node_quota": 8388608_u64,
        "service_quota": "1.5 GiB", "service": [
        {"name": "photos", "nodes": ["nas.example.zone"], "read_write": ["apps/photos/"], "quota": 67108864_u64, "max_keys": 100000},
        {"name": "odd", "nodes": ["nas.example.zone"], "read_write": ["apps/odd/"], "quota": "1000 B"}]}))
    .unwrap();
    let written = Value::Object(policy.to_value());
    assert_eq!(
        written,
        json!({"nodes": ["nas.example.zone"], "node_quota": "8 MiB", "service_quota": "1536 MiB",
            "service": [
            {"name": "photos", "nodes": ["nas.example.zone"], "read_write": ["apps/photos/"], "quota": "64 MiB", "max_keys": 100000},
            {"name": "odd", "nodes": ["nas.example.zone"], "read_write": ["apps/odd/"], "quota": "1000"}]})
    );
    // parse -> to_value -> parse: the same policy, written the same.
    let again = parse(written.clone()).unwrap();
    assert_eq!(again, policy);
    assert_eq!(Value::Object(again.to_value()), written);
    // Absent, nothing is written: the document stays readable by releases before 0.3.
    let plain = Value::Object(parse(quoted(photos())).unwrap().to_value());
    for key in ["node_quota", "service_quota"] {
        assert!(plain.get(key).is_none(), "{plain}");
    }
    for key in ["quota", "max_keys"] {
        assert!(plain["service"][0].get(key).is_none(), "{plain}");
    }
    assert_eq!(
        Value::Object(Policy::by_default().to_value()),
        json!({"enforce": true, "nodes": ["*"]})
    );
    // Quotas are part of what a policy means.
    let mut other = policy.clone();
    other.services[0].quota = Some(1 << 30);
    assert_ne!(other, policy);
}
