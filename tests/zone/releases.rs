//! zone-etcd's own releases in one zone (issue 50): what a member of this release does
//! with what a newer release wrote. A zone document the zone root signed with content
//! this release cannot read is neither applied nor put back; a revocations document with
//! fields a later release added is in force and never put back; a zone at a format level
//! above what this release reads refuses the start, asked of the others or remembered.
//! Each of these, on v0.1.0's code, was a tug-of-war or a start over formats it cannot
//! read.
//!
//! Zone on `addresses::RELEASES` .1-3 (tests/zone/releases/two_builds.rs: .11-13, .21-23).

use crate::common;

mod two_builds;

use std::fs;
use std::path::Path;
use std::time::Duration;

use common::{run_ok, wait_for, Kind, TestZone};
use serde_json::Value;
use zone_testkit::addresses;

const ZONE: &str = "rel.zone";
const LAPTOP: &str = "laptop.rel.zone";
const SUBNET: u8 = addresses::RELEASES.subnet();

/// The value and mod revision at `key`, read through member 0.
fn read(zone: &TestZone, key: &str) -> (String, i64) {
    let (ok, out, err) = zone.etcdctl(0, &zone.endpoints(), &["get", key, "-w", "json"]);
    assert!(ok, "{err}");
    let json: Value = serde_json::from_str(&out).unwrap();
    let kv = &json["kvs"][0];
    let value = kv["value"].as_str().map(base64_decode).unwrap_or_default();
    (value, kv["mod_revision"].as_i64().unwrap_or(0))
}

fn base64_decode(text: &str) -> String {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap();
    String::from_utf8(bytes).unwrap()
}

fn put(zone: &TestZone, key: &str, value: &str) {
    let (ok, _, err) = zone.etcdctl(0, &zone.endpoints(), &["put", key, value]);
    assert!(ok, "{err}");
}

/// `text` (a signed zone document) with `change` made, signed again with the zone root:
/// what a newer release's `zone sign` would publish.
fn resigned(ca: &Path, text: &str, change: impl FnOnce(&mut Value)) -> String {
    let root = zone_pki::Authority::load(&ca.join("ca.crt"), &ca.join("ca.key")).unwrap();
    let mut value: Value = serde_json::from_str(text).unwrap();
    value.as_object_mut().unwrap().remove("sign");
    change(&mut value);
    let canonical = zone_model::zone_doc::canonical(&value).unwrap();
    let signature = root.sign(canonical.as_bytes()).unwrap();
    let key_id = zone_pki::CertInfo::parse(root.cert_der())
        .unwrap()
        .fingerprint_hex();
    use base64::Engine;
    value["sign"] = Value::String(format!(
        "{}:{key_id}:{}",
        zone_model::zone_doc::SIGN_SCHEME,
        base64::engine::general_purpose::STANDARD.encode(signature)
    ));
    value.to_string()
}

/// How many lines of every member's log contain `words`.
fn said(running: &[common::Running], words: &str) -> Vec<usize> {
    running
        .iter()
        .map(|r| r.log().lines().filter(|l| l.contains(words)).count())
        .collect()
}

/// `zone-etcd launch` of member `index` run to its end: (exit code, stderr).
fn refused_launch(zone: &TestZone, index: usize) -> (Option<i32>, String) {
    let out = common::zone_etcd()
        .args(["launch", "--config", zone.config(index).to_str().unwrap()])
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn what_a_newer_release_wrote_is_never_fought_over_and_a_higher_level_refuses_the_start() {
    let (zone, mut running) =
        common::access_zone(Kind::LeastPrivilege, ZONE, SUBNET, "", &[LAPTOP]);
    let ca = zone.path("ca");
    let config0 = zone.config(0);

    // 1. The zone's policy, signed by the root with a key this release does not know (a
    // newer release's [settings]): no member applies it, none puts its own back.
    let doc = zone.path("zone-doc.json");
    run_ok(&[
        "zone",
        "sign",
        "--ca",
        ca.to_str().unwrap(),
        "--zone",
        zone.path("zone.toml").to_str().unwrap(),
        "--out",
        doc.to_str().unwrap(),
    ]);
    let newer = resigned(&ca, &fs::read_to_string(&doc).unwrap(), |v| {
        v["signed_at"] = "2030-01-01T00:00:00Z".into();
        v["extend"]["settings"]["raft_pipeline"] = 4.into();
    });
    put(&zone, "zone-etcd/access/policy", &newer);
    let (_, published_at) = read(&zone, "zone-etcd/access/policy");
    let line = "stops applying the zone's access policy";
    wait_for(Duration::from_secs(15), "every keeper holds off", || {
        said(&running, line).iter().all(|&n| n >= 1)
    });
    std::thread::sleep(Duration::from_secs(3));
    let (value, at) = read(&zone, "zone-etcd/access/policy");
    assert_eq!(
        (value.as_str(), at),
        (newer.as_str(), published_at),
        "a keeper put its own policy back"
    );
    assert_eq!(said(&running, line), [1, 1, 1], "said once each");

    // 2. Revocations with a field a later release added (beside what this release signs):
    // in force on every member, never put back.
    let out = run_ok(&[
        "revoke",
        "--ca",
        ca.to_str().unwrap(),
        "--node",
        LAPTOP,
        "--config",
        config0.to_str().unwrap(),
    ]);
    assert!(out.contains("CRL number 1 published"), "{out}");
    let (text, _) = read(&zone, "zone-etcd/revocations");
    let mut later: Value = serde_json::from_str(&text).unwrap();
    later["services"] = serde_json::json!([{"service": "svc:web", "serial": "0a"}]);
    put(&zone, "zone-etcd/revocations", &later.to_string());
    let (_, put_at) = read(&zone, "zone-etcd/revocations");
    std::thread::sleep(Duration::from_secs(3));
    let (value, at) = read(&zone, "zone-etcd/revocations");
    assert_eq!(at, put_at, "a keeper put its own revocations back: {value}");
    assert_eq!(said(&running, "refused the revocations"), [0, 0, 0]);
    for i in 0..3 {
        let kept = fs::read_to_string(zone.node_dir(i).join("state/revocations.json")).unwrap();
        assert!(
            kept.contains("\"number\"") || kept.contains("crl"),
            "{kept}"
        );
    }

    // 3. The zone's format level. At 1, a member's keeper remembers it; a level above
    // what this release reads refuses a start in one line naming the release it needs,
    // writing nothing: asked of the others before a start over an empty data directory
    // (a node moved to this release from scratch), and as the member remembers it (a
    // newer release's keeper wrote it) before a start over its own data.
    let level = |n: u32| {
        format!(r#"{{"format":1,"level":{n},"release":"0.3.0","at":"2030-01-01T00:00:00Z"}}"#)
    };
    put(&zone, "zone-etcd/level", &level(1));
    running.remove(2).stop();
    running.insert(2, zone.launch(2));
    zone.wait_healthy(&mut running);
    let seen = zone.node_dir(2).join("state/zone-level.json");
    wait_for(
        Duration::from_secs(10),
        "member 2's keeper remembers the level",
        || fs::read_to_string(&seen).is_ok_and(|t| t.contains(r#""level":1"#)),
    );
    // A planted level binds nothing (issue 68): unsigned, as anyone who could write the
    // key once would put it, member 2's restart is not refused, its keeper says it
    // ignores it, and it remembers nothing above 1.
    put(&zone, "zone-etcd/level", &level(99));
    running.remove(2).stop();
    running.insert(2, zone.launch(2));
    zone.wait_healthy(&mut running);
    wait_for(
        Duration::from_secs(15),
        "member 2's keeper says it ignores the planted level",
        || {
            running[2]
                .log()
                .contains("zone-etcd/level: level 99 ignored: not signed by the zone root")
        },
    );
    assert!(
        fs::read_to_string(&seen).unwrap().contains(r#""level":1"#),
        "the planted level was remembered"
    );
    // Signed by the zone root for this zone, it binds.
    let root = zone_pki::Authority::load(&zone.path("ca/ca.crt"), &zone.path("ca/ca.key")).unwrap();
    let signed = zone_model::release::Level::parse(level(3).as_bytes())
        .unwrap()
        .signed(ZONE, &root)
        .unwrap()
        .render();
    put(&zone, "zone-etcd/level", &signed);
    running.remove(2).stop();
    let data = zone.node_dir(2).join("state/data");
    let aside = zone.node_dir(2).join("state/data.aside");
    fs::rename(&data, &aside).unwrap();
    let before = fs::read(&seen).unwrap();
    let (code, err) = refused_launch(&zone, 2);
    assert_eq!(code, Some(78), "{err}");
    let line = common::one_error_line(&err);
    for part in [
        "the zone is at format level 3 (raised by zone-etcd 0.3.0",
        &format!(
            "zone-etcd {} reads formats up to level 2",
            env!("CARGO_PKG_VERSION")
        ),
        "install zone-etcd 0.3.0 or later on this node",
    ] {
        assert!(line.contains(part), "{part}: {line}");
    }
    assert_eq!(
        fs::read(&seen).unwrap(),
        before,
        "the refused start wrote its level"
    );
    assert!(!data.exists(), "the refused start made a data directory");
    fs::rename(&aside, &data).unwrap();
    fs::write(&seen, level(3)).unwrap();
    let (code, err) = refused_launch(&zone, 2);
    assert_eq!(code, Some(78), "{err}");
    assert!(err.contains("format level 3"), "{err}");

    // One step beyond: with every other member down, what member 0 remembers refuses it
    // (a newer release's keeper wrote it), and a file it cannot read is refused naming it.
    for member in running.drain(..) {
        member.stop();
    }
    let seen0 = zone.node_dir(0).join("state/zone-level.json");
    fs::write(&seen0, level(3)).unwrap();
    let (code, err) = refused_launch(&zone, 0);
    assert_eq!(code, Some(78), "{err}");
    assert!(err.contains("format level 3"), "{err}");
    fs::write(&seen0, "{").unwrap();
    let (code, err) = refused_launch(&zone, 0);
    assert_eq!(code, Some(78), "{err}");
    assert!(err.contains("zone-level.json"), "{err}");
}
