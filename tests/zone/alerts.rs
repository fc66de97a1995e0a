//! The shipped alert rules (docs/alerts/zone-etcd.rules.yml): promtool checks them and
//! runs their unit tests, every alert carries what a paged operator needs, every read of
//! etcd's own series (and every dashboard query's) carries the member selector, which the
//! `sed` the rules' header gives narrows, and Debian's Prometheus, scraping a real zone with
//! the shipped scrape configuration (docs/alerts/prometheus-scrape.yml: the member's etcd as
//! job `etcd`, node_exporter's textfile collector for zone-etcd's metrics as job `node`),
//! sees alerts go pending, fire and resolve: a stopped member, a leaf made to expire soon, a
//! stopped backup store. Every metric name the rules read must be one the real zone
//! exports, so a renamed metric fails here; and every query of the dashboard
//! (docs/dashboards/zone-etcd.json) must parse and return series from that Prometheus.
//!
//! Zone on `addresses::ALERTS` .1-3 (client 2379, peer 2380, etcd metrics 2381); SeaweedFS
//! on `addresses::SEAWEED` .210 (the shared helper runs it on the SeaweedFS blocks only);
//! node_exporter on `addresses::ALERTS_MONITOR` .1:19210 and Prometheus on .1:19290.

use crate::common;
mod live;
mod prom;
mod quota;
mod slow_disk;

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::backup::BackupZone;
use common::*;
use live::{MetricsTimer, Monitoring};
use prom::find;
use zone_testkit::addresses;

const RULES: &str = "zone-etcd.rules.yml";
/// The unit tests: those of minutes, and those of hours and days (evaluated every 15
/// minutes, not every minute, to keep promtool quick).
const RULE_TESTS: [&str; 2] = ["zone-etcd.rules.test.yml", "zone-etcd.rules.hours.test.yml"];
/// The scrape configuration shipped beside the rules.
const SCRAPE: &str = "prometheus-scrape.yml";
/// The member selector: every read of etcd's own series (`up`, `etcd_*`, `grpc_*`), in the
/// rules and the dashboard, has it as its first label matcher.
const SELECTOR: &str = r#"job=~".*etcd.*""#;
/// Where node_exporter and Prometheus listen.
fn monitor_ip() -> String {
    addresses::ALERTS_MONITOR.ip(1)
}

const NODE_EXPORTER_PORT: u16 = 19210;
const PROMETHEUS_PORT: u16 = 19290;
/// The `for:` of every alert in the live test: long enough to be seen pending.
const LIVE_FOR: &str = "10s";

fn alerts_dir() -> PathBuf {
    repo().join("docs/alerts")
}

fn rules_text() -> String {
    fs::read_to_string(alerts_dir().join(RULES)).expect("docs/alerts/zone-etcd.rules.yml")
}

/// The rule file's alerts: (name, the lines of its block).
fn alert_blocks(rules: &str) -> Vec<(String, String)> {
    let mut blocks: Vec<(String, String)> = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in rules.lines() {
        let item = line.trim_start();
        if item.starts_with("- alert: ")
            || item.starts_with("- record: ")
            || item.starts_with("- name: ")
        {
            blocks.extend(current.take());
            if let Some(name) = item.strip_prefix("- alert: ") {
                current = Some((name.trim().to_string(), String::new()));
            }
        } else if let Some((_, block)) = current.as_mut() {
            block.push_str(line);
            block.push('\n');
        }
    }
    blocks.extend(current);
    blocks
}

#[test]
fn promtool_checks_the_rules_and_every_alert_fires_in_their_unit_tests() {
    let (ok, out) = prom::promtool(&alerts_dir(), &["check", "rules", RULES]);
    assert!(
        ok && out.contains("SUCCESS"),
        "promtool check rules:\n{out}"
    );
    let mut args = vec!["test", "rules"];
    args.extend(RULE_TESTS);
    let (ok, out) = prom::promtool(&alerts_dir(), &args);
    assert!(ok && out.contains("SUCCESS"), "promtool test rules:\n{out}");
    let (ok, out) = prom::promtool(&alerts_dir(), &["check", "config", SCRAPE]);
    assert!(
        ok && out.contains("SUCCESS"),
        "promtool check config {SCRAPE}:\n{out}"
    );

    // Every alert: a severity, a summary, and a description with the command that
    // tells more and the fix; and a unit test that sees it fire.
    let rules = rules_text();
    let blocks = alert_blocks(&rules);
    assert!(blocks.len() >= 28, "{} alerts", blocks.len());
    let tests: String = RULE_TESTS
        .iter()
        .map(|f| fs::read_to_string(alerts_dir().join(f)).unwrap())
        .collect();
    let lines: Vec<&str> = tests.lines().map(str::trim).collect();
    for (name, block) in &blocks {
        let severity = block
            .lines()
            .find_map(|l| l.trim().strip_prefix("severity: "))
            .unwrap_or_else(|| panic!("{name}: no severity label"));
        assert!(
            ["critical", "warning", "info"].contains(&severity),
            "{name}: severity {severity}"
        );
        assert!(block.contains("summary: "), "{name}: no summary");
        let description = block
            .split_once("description: ")
            .unwrap_or_else(|| panic!("{name}: no description"))
            .1;
        for part in ["Tells more: `", "Fix"] {
            assert!(
                description.contains(part),
                "{name}: the description does not say {part:?}"
            );
        }
        let fires = lines
            .windows(2)
            .any(|w| w[0] == format!("alertname: {name}") && w[1] == "exp_alerts:");
        assert!(fires, "{name}: no unit test in {RULE_TESTS:?} sees it fire");
    }
}

/// The `sed` lines of a shipped file's header comment, as an operator types them.
fn documented_seds(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("#   sed '"))
        .map(|l| format!("sed '{l}"))
        .collect()
}

/// Runs a documented `sed ... INSTALLED > COPY` over the repository's file (the package
/// installs docs/alerts/ and docs/dashboards/ under /usr/share/zone-etcd/), writing the copy
/// to `out` instead; returns the copy.
fn run_documented_sed(sed: &str, out: &std::path::Path) -> String {
    let (command, _) = sed.split_once(" > ").expect("a sed line writes a copy");
    let (program, installed) = command.rsplit_once(' ').unwrap();
    let source = repo().join("docs").join(
        installed
            .strip_prefix("/usr/share/zone-etcd/")
            .expect("the installed file"),
    );
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{program} {} > {}",
            source.display(),
            out.display()
        ))
        .status()
        .unwrap();
    assert!(status.success(), "{sed}");
    fs::read_to_string(out).unwrap()
}

#[test]
fn every_read_of_etcds_series_has_the_member_selector_and_the_documented_seds_work() {
    let rules = rules_text();
    let exprs = prom::exprs(&rules);
    assert!(exprs.len() >= 35, "{} exprs", exprs.len());
    let dashboard: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(live::dashboard_path()).unwrap()).unwrap();
    let queries = live::dashboard_queries(&dashboard);
    let mut outside = Vec::new();
    for expr in exprs.iter().chain(queries.iter().map(|(_, e)| e)) {
        outside.extend(prom::reads_outside(expr, SELECTOR));
    }
    assert!(
        outside.is_empty(),
        "reads of etcd's series without {SELECTOR}: {outside:#?}"
    );

    // The rules' header narrows the selector in a copy of the rules, then of the dashboard.
    let seds = documented_seds(&rules);
    assert_eq!(seds.len(), 2, "the rules' header's sed lines: {seds:#?}");
    let dir = tempfile::tempdir().unwrap();
    let narrowed = r#"job="etcd-members""#;
    // The rules' copy: every selector narrowed to the one job, and promtool takes it.
    let copy = run_documented_sed(&seds[0], &dir.path().join(RULES));
    let count = |text: &str, selector: &str| -> usize {
        prom::exprs(text)
            .iter()
            .map(|e| e.matches(selector).count())
            .sum()
    };
    assert!(count(&rules, SELECTOR) >= 20);
    assert_eq!(count(&copy, narrowed), count(&rules, SELECTOR));
    assert!(!copy.contains(".*etcd.*"), "{copy}");
    for expr in prom::exprs(&copy) {
        assert!(prom::reads_outside(&expr, narrowed).is_empty(), "{expr}");
    }
    let (ok, out) = prom::promtool(dir.path(), &["check", "rules", RULES]);
    assert!(ok && out.contains("SUCCESS"), "the narrowed copy:\n{out}");
    // The dashboard's copy: JSON still, every query narrowed.
    let copy = run_documented_sed(&seds[1], &dir.path().join("zone-etcd.json"));
    let copy: serde_json::Value = serde_json::from_str(&copy).unwrap();
    for (title, expr) in live::dashboard_queries(&copy) {
        assert!(!expr.contains(".*etcd.*"), "{title}: {expr}");
        assert!(
            prom::reads_outside(&expr, narrowed).is_empty(),
            "{title}: {expr}"
        );
    }

    // The scrape configuration's header names each target by the node's name.
    let scrape = fs::read_to_string(alerts_dir().join(SCRAPE)).unwrap();
    let scrape_seds = documented_seds(&scrape);
    assert_eq!(
        scrape_seds.len(),
        1,
        "{SCRAPE}'s sed lines: {scrape_seds:#?}"
    );
    let copy = run_documented_sed(&scrape_seds[0], &dir.path().join("prometheus.yml"));
    assert!(!copy.contains("node1.example.zone"), "{copy}");
    assert_eq!(
        copy.matches("labels: {instance: NODE}").count(),
        2,
        "{copy}"
    );
    let (ok, out) = prom::promtool(dir.path(), &["check", "config", "prometheus.yml"]);
    assert!(ok && out.contains("SUCCESS"), "the node's copy:\n{out}");

    // The guide gives the same commands.
    let guide = fs::read_to_string(repo().join("docs/src/monitoring.md")).unwrap();
    for sed in seds.iter().chain(&scrape_seds) {
        assert!(
            guide.contains(sed.as_str()),
            "docs/src/monitoring.md lacks {sed}"
        );
    }
}

/// The alerts under test: (alert, labels it must carry), each seen pending, then firing,
/// then gone once its cause is fixed.
struct Watched<'a> {
    name: &'a str,
    labels: Vec<(&'a str, String)>,
    pending: bool,
    firing: bool,
}

#[test]
fn a_real_prometheus_sees_alerts_fire_and_resolve_on_a_real_zone() {
    let started = Instant::now();
    let mut z = BackupZone::start_of(
        common::Kind::Previous(
            "the open zone's alert (ZoneEtcdEveryClientIsRoot) firing live is one of its subjects",
        ),
        "alerts.zone",
        addresses::ALERTS.subnet(),
        &addresses::SEAWEED.ip(210),
        "full_every = \"20s\"\ndelta_every = \"1s\"",
    );
    // Backups run on nodes 2 and 3 (node 1 runs nothing that would renew its leaves).
    let _runs: Vec<Running> = (1..3).map(|i| z.backup_run(i)).collect();
    wait_for(Duration::from_secs(60), "an active backup writer", || {
        z.active().is_some()
    });
    z.wait_shipped(z.revision(), Duration::from_secs(60));
    // A passed drill, so the drill's metrics are there and say so.
    let writer = z.active().expect("an active writer");
    let (ok, _, stderr) = z.member_drill(writer);
    assert!(ok, "member drill: {stderr}");

    let zone_ready = started.elapsed();
    let dir = tempfile::tempdir().unwrap();
    let textfiles = dir.path().join("textfiles");
    fs::create_dir_all(&textfiles).unwrap();
    let timer = MetricsTimer::start(&z, textfiles.clone());
    let mon = Monitoring::start(dir.path(), &textfiles, &z.zone.members);
    let api = &mon.api;

    // A healthy zone: every target scraped and no alert at all, pending or firing.
    prom::wait_some(
        Duration::from_secs(60),
        "every target up",
        || mon.context(),
        || {
            let targets = api.targets();
            (targets.len() == 4 && targets.iter().all(|t| t.2 == "up")).then_some(())
        },
    );
    // The dashboard: every query valid PromQL, with series from this zone (the rate
    // windows need two scrapes, the recorded series an evaluation).
    prom::wait_some(
        Duration::from_secs(60),
        "every dashboard query to return series",
        || {
            format!(
                "{}\n{}",
                live::dashboard_failures(api).join("\n"),
                mon.context()
            )
        },
        || live::dashboard_failures(api).is_empty().then_some(()),
    );
    // Every rule evaluated on those series, then no alert, pending or firing.
    let since = time::OffsetDateTime::now_utc();
    prom::wait_some(
        Duration::from_secs(30),
        "every rule group evaluated again",
        || mon.context(),
        || live::evaluated_since(api, since).then_some(()),
    );
    // This zone has no [access]: every client certificate is root, which the zone's own
    // alert says (firing: every `for:` is LIVE_FOR here) for node 1, the node whose check
    // the timer exports; nothing else, but the alerts that measure this machine's disk and
    // loopback (a loaded test machine may be slow for etcd for the 10 s of LIVE_FOR: the
    // alert is right then, the zone is not at fault), told when seen.
    const OPEN: &str = "ZoneEtcdEveryClientIsRoot";
    const HOST_BOUND: [&str; 4] = [
        "ZoneEtcdWalFsyncSlow",
        "ZoneEtcdWalFsyncCritical",
        "ZoneEtcdBackendCommitSlow",
        "ZoneEtcdPeerRoundTripSlow",
    ];
    let mut host_bound_seen = BTreeSet::new();
    prom::wait_some(
        Duration::from_secs(60),
        "no alert on a healthy zone but that every client is root",
        || mon.context(),
        || {
            api.alerts().filter(|alerts| {
                for a in alerts
                    .iter()
                    .filter(|a| HOST_BOUND.contains(&a.name.as_str()))
                {
                    let key = (a.name.clone(), a.labels.get("instance").cloned());
                    if host_bound_seen.insert(key) {
                        eprintln!("this machine is slow for etcd now: {a:?}");
                    }
                }
                alerts
                    .iter()
                    .all(|a| a.name == OPEN || HOST_BOUND.contains(&a.name.as_str()))
                    && find(alerts, OPEN, &[("node", z.zone.members[0].0.as_str())])
                        .is_some_and(|a| a.state == "firing")
            })
        },
    );

    // Every metric name the rules read is one the real zone exports: Prometheus holds
    // series of it, or an exporter declares it (a family with no sample now, such as the
    // CRL's age in a zone that revoked nothing). `up` is Prometheus' own.
    let rules = rules_text();
    let recorded = prom::recorded(&rules);
    let mut exported = api.names();
    for file in ["zone-etcd.prom", "zone-etcd-backup.prom"] {
        exported.extend(prom::declared(
            &fs::read_to_string(textfiles.join(file)).unwrap(),
        ));
    }
    let mut unknown = BTreeSet::new();
    for expr in prom::exprs(&rules) {
        for name in prom::metric_names(&expr) {
            let known = if name.contains(':') {
                recorded.contains(&name)
            } else {
                exported.contains(&name)
            };
            if !known {
                unknown.insert(name);
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "the rules read metrics the zone does not export: {unknown:?}"
    );

    // Three faults at once: member 3 stopped, node 1's server leaf 15 days from its end
    // (leaves live 90 days and renew with 30 left), the S3 store stopped.
    // The shipped scrape configuration names each member's etcd by its node's name.
    let node3 = z.zone.members[2].0.clone();
    let node1 = z.zone.members[0].0.clone();
    let mut watched = [
        Watched {
            name: "ZoneEtcdMemberDown",
            labels: vec![("instance", node3), ("job", "etcd".into())],
            pending: false,
            firing: false,
        },
        Watched {
            name: "ZoneEtcdLeafCertificateExpiringSoon",
            labels: vec![("certificate", "server".into()), ("node", node1)],
            pending: false,
            firing: false,
        },
        Watched {
            name: "ZoneBackupTargetDown",
            labels: vec![("target", z.s3_url.clone())],
            pending: false,
            firing: false,
        },
    ];
    z.members.remove(2).stop();
    let me = member_identity(&z.zone, 0);
    let at = time::OffsetDateTime::now_utc() - time::Duration::days(75);
    let params = zone_pki::profile::leaf(zone_pki::LeafKind::Server, &me, None, at).unwrap();
    put_leaf(
        &z.zone,
        "server",
        &node_authority(&z.zone, 0).issue(params).unwrap(),
    );
    z.weed.stop();

    let healthy = started.elapsed();
    let faulted = Instant::now();
    prom::wait_some(
        Duration::from_secs(120),
        "each alert pending, then firing",
        || mon.context(),
        || {
            let alerts = api.alerts()?;
            // Two of three members still make a quorum: the alert never fires. It may be
            // pending a moment: on a loaded machine a member's scrape can miss its 1 s
            // timeout (cc87), and `for:` is what keeps one missed scrape from paging.
            assert!(
                find(&alerts, "ZoneEtcdQuorumLost", &[]).is_none_or(|a| a.state != "firing"),
                "quorum lost with 2 of 3 members up: {alerts:#?}"
            );
            for w in watched.iter_mut() {
                let want: Vec<(&str, &str)> =
                    w.labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
                match find(&alerts, w.name, &want).map(|a| a.state.as_str()) {
                    Some("pending") => {
                        assert!(!w.firing, "{}: pending again after firing", w.name);
                        w.pending = true;
                    }
                    Some("firing") => {
                        assert!(w.pending, "{}: firing, never seen pending", w.name);
                        w.firing = true;
                    }
                    _ => assert!(
                        !w.pending,
                        "{}: gone before it fired, with its cause still there",
                        w.name
                    ),
                }
            }
            watched.iter().all(|w| w.firing).then_some(())
        },
    );
    let fired = faulted.elapsed();

    // The fixes: the member launched again, the leaves renewed, the store back.
    let fixed = Instant::now();
    z.members.push(z.zone.launch(2));
    run_ok(&["rotate", "--config", z.zone.config(0).to_str().unwrap()]);
    z.weed.restart().unwrap();
    prom::wait_some(
        Duration::from_secs(120),
        "each alert resolved",
        || mon.context(),
        || {
            let alerts = api.alerts()?;
            let active: Vec<&str> = watched
                .iter()
                .filter(|w| {
                    let want: Vec<(&str, &str)> =
                        w.labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
                    find(&alerts, w.name, &want).is_some()
                })
                .map(|w| w.name)
                .collect();
            active.is_empty().then_some(())
        },
    );
    drop(timer);
    eprintln!(
        "zone with backups and a drill: {zone_ready:.1?}; healthy and quiet: {healthy:.1?}; \
         alerts fired {fired:.1?} after the faults, resolved {:.1?} after the fixes; in all \
         {:.1?}",
        fixed.elapsed(),
        started.elapsed()
    );
}
