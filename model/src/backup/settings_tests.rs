use super::*;
use crate::backup::duration::{format_duration, parse_duration};
use serde_json::json;

const R: &str = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";

#[test]
fn the_contract_example_parses_and_round_trips() {
    let v = json!({
        "recipients": [R], "full_every": "1h", "delta_every": "5s", "window": "7d",
        "target": [
            {"url": "s3://bucket/zones/example", "endpoint": "https://s3.example.net"},
            {"url": "file:///mnt/usb/zone-backups"},
        ]
    });
    let s = BackupSettings::parse(&v, "backup").unwrap();
    assert_eq!(s.delta_every(), Duration::from_secs(5));
    assert_eq!(s.window(), DEFAULT_WINDOW);
    assert_eq!(
        s.targets[0].location,
        Location::S3 {
            bucket: "bucket".into(),
            prefix: "zones/example".into()
        }
    );
    assert_eq!(
        s.targets[1].location,
        Location::Dir("/mnt/usb/zone-backups".into())
    );
    let again = BackupSettings::parse(&Value::Object(s.to_value()), "backup").unwrap();
    assert_eq!(again, s);
    assert!(BackupSettings::default().to_value().is_empty());
}

#[test]
fn only_what_the_zone_set_is_written_back() {
    // Nothing but the recipients: no duration written (a later release's new key, never
    // set, is never written either: older readers refuse keys they do not know).
    let s = BackupSettings::parse(&json!({"recipients": [R]}), "backup").unwrap();
    assert_eq!(
        s.to_value(),
        json!({"recipients": [R]}).as_object().unwrap().clone()
    );
    assert_eq!(s.full_every(), DEFAULT_FULL_EVERY);
    // A duration set to today's default is kept as set; the others stay out.
    let s = BackupSettings::parse(
        &json!({"recipients": [], "full_every": "1h", "keep_daily": "10d"}),
        "backup",
    )
    .unwrap();
    assert_eq!(
        Value::Object(s.to_value()),
        json!({"recipients": [], "full_every": "1h", "keep_daily": "10d"})
    );
    // An empty table is still a table.
    let s = BackupSettings::parse(&json!({}), "backup").unwrap();
    assert!(s.present);
    assert_eq!(
        BackupSettings::parse(&Value::Object(s.to_value()), "backup").unwrap(),
        s
    );
}

#[test]
fn mistakes_name_their_key() {
    let field = |v: Value| {
        BackupSettings::parse(&v, "backup")
            .unwrap_err()
            .field_name()
            .map(String::from)
    };
    let t = json!([{"url": "file:///b"}]);
    assert_eq!(
        field(json!({"target": t})),
        Some("backup.recipients".into())
    );
    assert_eq!(
        field(json!({"recipients": ["age1nope"]})),
        Some("backup.recipients[0]".into())
    );
    assert_eq!(
        field(json!({"recipients": [R], "delta_every": "5"})),
        Some("backup.delta_every".into())
    );
    assert_eq!(
        field(json!({"recipients": [R], "delta_every": "100ms"})),
        Some("backup.delta_every".into())
    );
    assert_eq!(
        field(json!({"recipients": [R], "full_every": "1s"})),
        Some("backup.full_every".into())
    );
    assert_eq!(
        field(json!({"recipients": [R], "windw": "1d"})),
        Some("backup.windw".into())
    );
    assert_eq!(
        field(json!({"recipients": [R], "target": [{"url": "http://x"}]})),
        Some("backup.target[0].url".into())
    );
    assert_eq!(
        field(json!({"recipients": [R], "target": [{"url": "file://rel"}]})),
        Some("backup.target[0].url".into())
    );
    assert_eq!(
        field(json!({"recipients": [R], "target": [{"url": "s3://B"}]})),
        Some("backup.target[0].url".into())
    );
    assert_eq!(
        field(json!({"recipients": [R], "target": [{"url": "s3://bkt", "secret_key": "x"}]})),
        Some("backup.target[0].secret_key".into())
    );
    assert_eq!(
        field(json!({"recipients": [R], "target": [{"url": "file:///b", "region": "x"}]})),
        Some("backup.target[0].region".into())
    );
    assert_eq!(
        field(
            json!({"recipients": [R], "target": [{"url": "s3://bkt", "endpoint": "s3.example.net"}]})
        ),
        Some("backup.target[0].endpoint".into())
    );
    assert_eq!(
        field(json!({"recipients": [R], "target": [{"url": "file:///b"}, {"url": "file:///b"}]})),
        Some("backup.target[1].url".into())
    );
    let secret = BackupSettings::parse(&json!({"recipients": ["AGE-SECRET-KEY-1XYZ"]}), "backup")
        .unwrap_err();
    assert!(
        secret.problem().contains("secret key"),
        "{}",
        secret.problem()
    );
}

#[test]
fn durations() {
    assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
    assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
    assert_eq!(
        parse_duration("12w"),
        Some(Duration::from_secs(12 * 7 * 86400))
    );
    for bad in ["", "5", "h", "1.5h", "-1s", "5x", "s5"] {
        assert_eq!(parse_duration(bad), None, "{bad}");
    }
    for d in [1, 5, 60, 90, 3600, 86400, 7 * 86400, 8 * 86400] {
        let d = Duration::from_secs(d);
        assert_eq!(parse_duration(&format_duration(d)), Some(d));
    }
    assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
}
