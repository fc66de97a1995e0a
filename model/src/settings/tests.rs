//! Unit tests of [`super::Settings`]: defaults, every key to its flag, every refusal.
use super::*;
use serde_json::json;

fn parse(value: Value) -> Result<Settings, String> {
    Settings::parse(&value, "settings").map_err(|e| e.to_string())
}

#[test]
fn an_empty_table_gives_the_defaults() {
    let settings = parse(json!({})).unwrap();
    assert!(settings.is_empty());
    let flags = settings.flags();
    assert_eq!(
        flags,
        vec![
            ("heartbeat-interval", "100".to_string()),
            ("election-timeout", "1000".to_string()),
            ("quota-backend-bytes", "2147483648".to_string()),
            ("auto-compaction-mode", "periodic".to_string()),
            ("auto-compaction-retention", "5m".to_string()),
        ]
    );
}

#[test]
fn every_key_reaches_its_flag_and_round_trips() {
    let table = json!({
        "heartbeat_interval_ms": 300, "election_timeout_ms": 3000,
        "quota_backend_bytes": 16777216, "auto_compaction_mode": "revision",
        "auto_compaction_retention": 1000, "snapshot_count": 5000,
    });
    let settings = parse(table).unwrap();
    let flags = settings.flags();
    for expected in [
        ("heartbeat-interval", "300"),
        ("election-timeout", "3000"),
        ("quota-backend-bytes", "16777216"),
        ("auto-compaction-mode", "revision"),
        ("auto-compaction-retention", "1000"),
        ("snapshot-count", "5000"),
    ] {
        assert!(
            flags.contains(&(expected.0, expected.1.to_string())),
            "{expected:?} in {flags:?}"
        );
    }
    let written = Value::Object(settings.to_value());
    assert_eq!(parse(written).unwrap(), settings);
    // Only what the zone set is written back.
    let partial = parse(json!({"heartbeat_interval_ms": 150})).unwrap();
    assert_eq!(partial.to_value().len(), 1);
}

#[test]
fn each_bad_table_is_refused_naming_its_key() {
    let refused = |value: Value, key: &str, words: &str| {
        let message = parse(value.clone()).unwrap_err();
        assert!(
            message.contains(&format!("settings.{key}:")) && message.contains(words),
            "{value} -> {message}"
        );
        assert!(message.contains("(fix: "), "{message}");
    };
    refused(
        json!({"heartbeat_interval_ms": 300, "election_timeout_ms": 1000}),
        "election_timeout_ms",
        "under 5 heartbeats",
    );
    refused(
        json!({"heartbeat_interval_ms": 300}),
        "heartbeat_interval_ms",
        "default election timeout",
    );
    refused(
        json!({"heartbeat_interval_ms": 10000, "election_timeout_ms": 50000}),
        "election_timeout_ms",
        "50 s",
    );
    refused(
        json!({"quota_backend_bytes": 8589934593_u64}),
        "quota_backend_bytes",
        "8 GiB",
    );
    refused(
        json!({"quota_backend_bytes": 1000}),
        "quota_backend_bytes",
        "1 MiB",
    );
    refused(
        json!({"snapshot_count": 0}),
        "snapshot_count",
        "0 is not allowed",
    );
    refused(
        json!({"heartbeat_interval_ms": -5}),
        "heartbeat_interval_ms",
        "negative",
    );
    refused(
        json!({"heartbeat_interval_ms": 1.5}),
        "heartbeat_interval_ms",
        "whole",
    );
    refused(
        json!({"heartbeat_interval_ms": "300"}),
        "heartbeat_interval_ms",
        "not a string",
    );
    refused(
        json!({"snapshot_count": 100000000}),
        "snapshot_count",
        "in memory",
    );
    refused(json!({"heartbeat": 100}), "heartbeat", "unknown key");
    refused(json!({"cert_file": "x"}), "cert_file", "cannot be set");
    refused(
        json!({"tls_min_version": "TLS1.2"}),
        "tls_min_version",
        "cannot be set",
    );
    refused(
        json!({"auto_compaction_mode": "daily"}),
        "auto_compaction_mode",
        "not a compaction mode",
    );
    refused(
        json!({"auto_compaction_retention": "1 hour"}),
        "auto_compaction_retention",
        "not a duration",
    );
    refused(
        json!({"auto_compaction_retention": "1000"}),
        "auto_compaction_retention",
        "bare number as hours",
    );
    refused(
        json!({"auto_compaction_retention": "0s"}),
        "auto_compaction_retention",
        "turns compaction off",
    );
    refused(
        json!({"auto_compaction_retention": true}),
        "auto_compaction_retention",
        "not a retention",
    );
    refused(
        json!({"auto_compaction_mode": "revision"}),
        "auto_compaction_retention",
        "missing",
    );
    refused(
        json!({"auto_compaction_mode": "revision", "auto_compaction_retention": "1h"}),
        "auto_compaction_retention",
        "number of revisions",
    );
    let not_table = parse(json!([1])).unwrap_err();
    assert!(
        not_table.contains("settings: must be a table"),
        "{not_table}"
    );
}
