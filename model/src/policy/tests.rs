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
