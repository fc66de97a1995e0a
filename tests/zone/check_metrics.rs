//! `zone-etcd check --format prometheus --out FILE`: the node's certificates as metrics
//! for node_exporter's textfile collector, read back with the parser of the
//! `prometheus_client` Python package (scripts/test.sh installs it) as a scraper would.
//!
//! Subnet: `addresses::CHECK_METRICS` (no etcd: a stand-in).

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::*;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use zone_testkit::addresses;

const DAY: f64 = 86_400.0;

/// One sample: its labels and value.
#[derive(Debug)]
struct Sample {
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Metric families by name: (type, samples).
type Families = BTreeMap<String, (String, Vec<Sample>)>;

/// Parses a metrics file with prometheus_client's own parser: family name to (type,
/// samples). Fails loudly when python3 or prometheus_client is missing.
fn parse_metrics(file: &Path) -> Families {
    const SCRIPT: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
with open(sys.argv[1]) as f:
    text = f.read()
print(json.dumps([
    {"name": fam.name, "type": fam.type, "help": fam.documentation,
     "samples": [{"name": s.name, "labels": s.labels, "value": s.value} for s in fam.samples]}
    for fam in text_string_to_metric_families(text)
]))
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .arg(file)
        .output()
        .expect("python3 runs (scripts/test.sh installs it and prometheus_client)");
    assert!(
        out.status.success(),
        "prometheus_client could not parse {} (scripts/test.sh installs prometheus_client):\n{}\n{}",
        file.display(),
        String::from_utf8_lossy(&out.stderr),
        fs::read_to_string(file).unwrap_or_default()
    );
    let families: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut parsed = BTreeMap::new();
    for family in families.as_array().unwrap() {
        let name = family["name"].as_str().unwrap().to_string();
        assert!(
            !family["help"].as_str().unwrap_or_default().is_empty(),
            "{name}: no HELP"
        );
        let samples = family["samples"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                assert_eq!(s["name"], family["name"], "a sample outside its family");
                Sample {
                    labels: serde_json::from_value(s["labels"].clone()).unwrap(),
                    value: s["value"].as_f64().unwrap(),
                }
            })
            .collect();
        let kind = family["type"].as_str().unwrap().to_string();
        assert!(
            parsed.insert(name.clone(), (kind, samples)).is_none(),
            "{name} twice"
        );
    }
    parsed
}

/// The metrics, as (family, certificate, quantile or "" for none) to value.
fn values(metrics: &Families) -> BTreeMap<(String, String), f64> {
    let mut values = BTreeMap::new();
    for (name, (_, samples)) in metrics {
        for s in samples {
            let cert = (s.labels.get("certificate"))
                .or(s.labels.get("quantile"))
                .cloned()
                .unwrap_or_default();
            assert!(values.insert((name.clone(), cert), s.value).is_none());
        }
    }
    values
}

fn get(values: &BTreeMap<(String, String), f64>, family: &str, cert: &str) -> f64 {
    *values
        .get(&(family.to_string(), cert.to_string()))
        .unwrap_or_else(|| panic!("no {family}{{certificate={cert:?}}} in {values:#?}"))
}

/// Runs zone-etcd; returns (exit code, stdout, stderr).
fn run_status(args: &[&str]) -> (Option<i32>, String, String) {
    let out = zone_etcd().args(args).output().expect("zone-etcd runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `check --format prometheus --out FILE` under umask 077 (the metrics must still be
/// public); returns (exit code, stderr, parsed metrics).
fn check_metrics(config: &Path, file: &Path) -> (Option<i32>, String, Families) {
    let out = Command::new("sh")
        .args(["-c", r#"umask 077 && exec "$0" "$@""#])
        .arg(env!("CARGO_BIN_EXE_zone-etcd"))
        .args(["check", "--config"])
        .arg(config)
        .args(["--format", "prometheus", "--out"])
        .arg(file)
        .env_remove("ZONE_ETCD_LOG")
        .output()
        .expect("zone-etcd runs");
    let (code, stderr) = (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert_eq!(out.stdout, b"", "with --out nothing goes to stdout");
    assert_eq!(mode(file), 0o644, "the metrics file is public");
    (code, stderr, parse_metrics(file))
}

/// A member of a zone of least privilege: its leaves, and the client CA and signer its
/// identities come from.
const CERTIFICATES: [&str; 7] = [
    "zone CA",
    "node CA",
    "server",
    "peer",
    "client",
    "client CA",
    "signer",
];
const FAMILIES: [&str; 22] = [
    "zone_etcd_certificate_expiry_seconds",
    "zone_etcd_certificate_not_after_timestamp_seconds",
    "zone_etcd_certificate_problems",
    "zone_etcd_check_problems",
    "zone_etcd_check_ok",
    "zone_etcd_check_timestamp_seconds",
    "zone_etcd_crl_number",
    "zone_etcd_crl_age_seconds",
    "zone_etcd_etcd_warnings",
    "zone_etcd_access_enforced",
    "zone_etcd_disk_fdatasync_seconds",
    "zone_etcd_disk_measured_timestamp_seconds",
    "zone_etcd_disk_findings",
    "zone_etcd_peer_round_trip_seconds",
    "zone_etcd_quota_used_bytes",
    "zone_etcd_quota_bytes",
    "zone_etcd_quota_written_bytes",
    "zone_etcd_quota_write_budget_bytes",
    "zone_etcd_quota_stopped",
    "zone_etcd_leases",
    "zone_etcd_quota_record_timestamp_seconds",
    "zone_etcd_release_info",
];

#[test]
fn metrics_of_a_node_parse_and_say_what_check_says() {
    let zone = zone_with_true_etcd(addresses::CHECK_METRICS.subnet());
    let config = zone.config(0);
    run_ok(&["launch", "--config", config.to_str().unwrap()]);
    let node = zone.members[0].0.clone();
    let out_dir = tempfile::tempdir().unwrap();
    let file = out_dir.path().join("zone-etcd.prom");

    // A clean node: every family, every certificate, plausible dates, exit 0.
    let before = OffsetDateTime::now_utc().unix_timestamp() as f64;
    let (code, stderr, metrics) = check_metrics(&config, &file);
    let after = OffsetDateTime::now_utc().unix_timestamp() as f64;
    assert_eq!(code, Some(0), "{stderr}");
    let names: BTreeSet<&str> = metrics.keys().map(String::as_str).collect();
    assert_eq!(names, BTreeSet::from(FAMILIES));
    for (name, (kind, samples)) in &metrics {
        assert_eq!(kind, "gauge", "{name}");
        for s in samples {
            assert_eq!(s.labels.get("node"), Some(&node), "{name}: {s:?}");
            let keys: Vec<&str> = s.labels.keys().map(String::as_str).collect();
            if name.starts_with("zone_etcd_certificate_") {
                assert_eq!(keys, ["certificate", "node"], "{name}");
            } else if name == "zone_etcd_etcd_warnings" {
                assert_eq!(keys, ["node", "version"], "{name}");
            } else if name.starts_with("zone_etcd_quota_")
                && name != "zone_etcd_quota_record_timestamp_seconds"
            {
                assert_eq!(keys, ["kind", "name", "node"], "{name}");
            } else if name == "zone_etcd_disk_fdatasync_seconds" {
                assert_eq!(keys, ["node", "quantile"], "{name}");
            } else if name == "zone_etcd_release_info" {
                assert_eq!(
                    keys,
                    ["commit", "node", "reads", "release", "writes"],
                    "{name}"
                );
            } else {
                assert_eq!(keys, ["node"], "{name}");
            }
        }
    }
    for family in &FAMILIES[..3] {
        let certs: BTreeSet<&str> = metrics[*family]
            .1
            .iter()
            .map(|s| s.labels["certificate"].as_str())
            .collect();
        assert_eq!(certs, BTreeSet::from(CERTIFICATES), "{family}");
    }
    let v = values(&metrics);
    // Nothing revoked in this zone: CRL number 0 (and no age: tests/zone/revocation.rs).
    assert_eq!(get(&v, "zone_etcd_crl_number", ""), 0.0);
    // A zone of least privilege (the default), and the metric says so.
    assert_eq!(get(&v, "zone_etcd_access_enforced", ""), 1.0);
    // The stand-in answers as etcd 3.6.15: no known defect.
    assert_eq!(get(&v, "zone_etcd_etcd_warnings", ""), 0.0);
    assert_eq!(
        metrics["zone_etcd_etcd_warnings"].1[0].labels["version"],
        "3.6.15"
    );
    // The release that checked, as `--version` names it.
    let release = &metrics["zone_etcd_release_info"].1;
    assert_eq!(release.len(), 1, "{release:?}");
    let version = run_ok(&["--version"]);
    let labels = &release[0].labels;
    assert_eq!(labels["release"], env!("CARGO_PKG_VERSION"));
    assert!(
        version.contains(&format!("(commit {})", labels["commit"])),
        "{version} {labels:?}"
    );
    assert_eq!(
        (labels["reads"].as_str(), labels["writes"].as_str()),
        (
            zone_model::release::READS.to_string().as_str(),
            zone_model::release::WRITES.to_string().as_str()
        )
    );
    assert_eq!(get(&v, "zone_etcd_release_info", ""), 1.0);
    let ran = get(&v, "zone_etcd_check_timestamp_seconds", "");
    assert!(
        before <= ran && ran <= after,
        "{before} <= {ran} <= {after}"
    );
    // The leaves are fresh, 90 days (pki/src/profile.rs LEAF_DAYS); the node CA 5 years,
    // the zone CA 10.
    for (cert, low, high) in [
        ("server", 80.0, 91.0),
        ("peer", 80.0, 91.0),
        ("client", 80.0, 91.0),
        ("node CA", 5.0 * 365.0 - 1.0, 5.0 * 365.0 + 1.0),
        ("zone CA", 3649.0, 3651.0),
    ] {
        let left = get(&v, "zone_etcd_certificate_expiry_seconds", cert);
        assert!(
            low * DAY < left && left < high * DAY,
            "{cert}: {} days left",
            left / DAY
        );
        let not_after = get(
            &v,
            "zone_etcd_certificate_not_after_timestamp_seconds",
            cert,
        );
        assert_eq!(not_after - ran, left, "{cert}");
        assert_eq!(get(&v, "zone_etcd_certificate_problems", cert), 0.0);
    }
    assert_eq!(get(&v, "zone_etcd_check_problems", ""), 0.0);
    assert_eq!(get(&v, "zone_etcd_check_ok", ""), 1.0);
    // The same notAfter as the JSON report, and the same number as the certificate's.
    let report: serde_json::Value = serde_json::from_str(&run_ok(&[
        "check",
        "--config",
        config.to_str().unwrap(),
        "--format",
        "json",
    ]))
    .unwrap();
    let server = report["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "server")
        .expect("the report names the server certificate");
    let not_after = OffsetDateTime::parse(server["not_after"].as_str().unwrap(), &Rfc3339)
        .unwrap()
        .unix_timestamp() as f64;
    assert_eq!(
        get(
            &v,
            "zone_etcd_certificate_not_after_timestamp_seconds",
            "server"
        ),
        not_after
    );
    let cert =
        zone_pki::CertInfo::parse_pem(&fs::read_to_string(zone.tls(0, "server.crt")).unwrap())
            .unwrap();
    assert_eq!(not_after, cert.not_after.unix_timestamp() as f64);
    // The data disk: no sample before a measurement (the metrics never measure), then the
    // figures `check --json` measured and kept, in seconds, with their time.
    assert!(metrics["zone_etcd_disk_fdatasync_seconds"].1.is_empty());
    let (_, _, measured) = check_metrics(&config, &file);
    let disk = values(&measured);
    for (quantile, key) in [("0.5", "fdatasync_p50_ms"), ("0.99", "fdatasync_p99_ms")] {
        // Floats: the text form and its parse may differ in the last bit.
        let ms = report["disk"][key].as_f64().unwrap();
        let seconds = get(&disk, "zone_etcd_disk_fdatasync_seconds", quantile);
        assert!(
            (seconds - ms / 1000.0).abs() < 1e-9,
            "{quantile}: {seconds} s, {ms} ms"
        );
    }
    let at = OffsetDateTime::parse(report["disk"]["at"].as_str().unwrap(), &Rfc3339).unwrap();
    assert_eq!(
        get(&disk, "zone_etcd_disk_measured_timestamp_seconds", ""),
        at.unix_timestamp() as f64
    );
    // The file was replaced whole: no temporary file beside it, no key in it.
    let listing: Vec<_> = fs::read_dir(out_dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(listing, ["zone-etcd.prom"]);
    let text = fs::read_to_string(&file).unwrap();
    for line in key_body_lines(&fs::read_to_string(zone.tls(0, "server.key")).unwrap()) {
        assert!(!text.contains(&line));
    }

    // A key open to others: the file is still written, with the problem, and exit 1.
    let key = zone.tls(0, "server.key");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    let (code, stderr, metrics) = check_metrics(&config, &file);
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("1 problem found"), "{stderr}");
    let v = values(&metrics);
    assert_eq!(get(&v, "zone_etcd_certificate_problems", "server"), 1.0);
    for cert in ["zone CA", "node CA", "peer", "client"] {
        assert_eq!(
            get(&v, "zone_etcd_certificate_problems", cert),
            0.0,
            "{cert}"
        );
    }
    assert_eq!(get(&v, "zone_etcd_check_problems", ""), 1.0);
    assert_eq!(get(&v, "zone_etcd_check_ok", ""), 0.0);
    assert!(get(&v, "zone_etcd_certificate_expiry_seconds", "server") > 80.0 * DAY);

    // A missing certificate: its problems, and no expiry series for it.
    fs::remove_file(zone.tls(0, "client.crt")).unwrap();
    let (code, stderr, metrics) = check_metrics(&config, &file);
    assert_eq!(code, Some(1), "{stderr}");
    let v = values(&metrics);
    assert!(get(&v, "zone_etcd_certificate_problems", "client") >= 1.0);
    assert!(get(&v, "zone_etcd_check_problems", "") >= 1.0);
    assert_eq!(get(&v, "zone_etcd_check_ok", ""), 0.0);
    for family in &FAMILIES[..2] {
        let certs: BTreeSet<&str> = metrics[*family]
            .1
            .iter()
            .map(|s| s.labels["certificate"].as_str())
            .collect();
        assert_eq!(
            certs,
            BTreeSet::from([
                "zone CA",
                "node CA",
                "server",
                "peer",
                "client CA",
                "signer"
            ]),
            "{family}"
        );
    }
    run_ok(&["rotate", "--config", config.to_str().unwrap()]);
    assert_eq!(check_metrics(&config, &file).0, Some(0));

    // A node config that does not load: still a file, saying the check failed.
    let (code, stderr, metrics) = check_metrics(&zone.path("no-such-node.toml"), &file);
    assert_eq!(code, Some(1), "{stderr}");
    let v = values(&metrics);
    assert_eq!(get(&v, "zone_etcd_check_ok", ""), 0.0);
    assert_eq!(get(&v, "zone_etcd_check_problems", ""), 1.0);
    assert!(metrics["zone_etcd_certificate_problems"].1.is_empty());
}

#[test]
fn out_and_format_on_the_command_line() {
    let zone = zone_with_true_etcd(addresses::CHECK_METRICS.subnet());
    let config = zone.config(0);
    run_ok(&["launch", "--config", config.to_str().unwrap()]);
    let config = config.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();

    // --out into a directory that does not exist: one line, nothing written.
    let missing = dir.path().join("missing");
    let file = missing.join("zone-etcd.prom");
    let (code, stdout, stderr) = run_status(&[
        "check",
        "--config",
        config,
        "--format",
        "prometheus",
        "--out",
        file.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stdout, "");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(missing.to_str().unwrap()), "{stderr}");
    assert!(!missing.exists());
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);

    // --json keeps its meaning, and is refused beside --format (it is --format json).
    for args in [vec!["--json"], vec!["--format", "json"]] {
        let (code, stdout, stderr) =
            run_status(&[&["check", "--config", config][..], &args].concat());
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(report["ok"], true);
    }
    for format in ["text", "json", "prometheus"] {
        let (code, stdout, stderr) =
            run_status(&["check", "--config", config, "--json", "--format", format]);
        assert_eq!(code, Some(2), "--json --format {format}: {stderr}");
        assert_eq!(stdout, "");
        assert!(stderr.contains("'--json' cannot be used"), "{stderr}");
    }

    // Every format goes to --out (the text table too), and the default is text.
    let text = dir.path().join("check.txt");
    let (code, stdout, _) =
        run_status(&["check", "--config", config, "--out", text.to_str().unwrap()]);
    assert_eq!((code, stdout.as_str()), (Some(0), ""));
    let written = fs::read_to_string(&text).unwrap();
    assert!(
        written.starts_with("certificates of ") && written.contains("no problems"),
        "{written}"
    );
    let json = dir.path().join("check.json");
    run_ok(&[
        "check",
        "--config",
        config,
        "--json",
        "--out",
        json.to_str().unwrap(),
    ]);
    let report: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["ok"], true);
}
