//! tests/zone/alerts.rs's live parts: the rules as the live Prometheus loads them, the metrics
//! timer, and node_exporter and Prometheus started on loopback (killed by their PIDs on
//! drop, through `Running`).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::prom::{self, Api};
use super::{monitor_ip, rules_text, LIVE_FOR, NODE_EXPORTER_PORT, PROMETHEUS_PORT, RULES, SCRAPE};
use crate::common::backup::BackupZone;
use crate::common::{zone_etcd, Running};

/// The rule file with every alert's `for:` made [`LIVE_FOR`], and nothing else changed.
pub fn live_rules(rules: &str) -> String {
    let mut changed = 0;
    let text: Vec<String> = rules
        .lines()
        .map(|line| match line.split_once("for: ") {
            Some((indent, _)) if indent.trim().is_empty() => {
                changed += 1;
                format!("{indent}for: {LIVE_FOR}")
            }
            _ => line.to_string(),
        })
        .collect();
    assert!(changed >= 10, "only {changed} for: lines");
    text.join("\n") + "\n"
}

/// Writes the zone's metrics into the textfile directory every second, as the package's
/// zone-etcd-metrics.timer does every 5 minutes: node 1's `check`, and node 2's `backup
/// status` (any command that reaches the cluster renews its node's due leaves, so node 1
/// runs none: its leaf made to expire soon stays so until the fix); stopped and joined on
/// drop.
pub struct MetricsTimer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsTimer {
    pub fn start(z: &BackupZone, dir: PathBuf) -> MetricsTimer {
        let stop = Arc::new(AtomicBool::new(false));
        let (check_config, backup_config) = (z.zone.config(0), z.zone.config(1));
        let (access, secret) = (
            z.weed.access_key().to_string(),
            z.weed.secret_key().to_string(),
        );
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                for (args, config, file) in [
                    (&["check"][..], &check_config, "zone-etcd.prom"),
                    (
                        &["backup", "status"][..],
                        &backup_config,
                        "zone-etcd-backup.prom",
                    ),
                ] {
                    // A finding exits 1 after writing the file: the metrics report it.
                    let _ = zone_etcd()
                        .args(args)
                        .arg("--config")
                        .arg(config)
                        .args(["--format", "prometheus", "--out"])
                        .arg(dir.join(file))
                        .env("AWS_ACCESS_KEY_ID", &access)
                        .env("AWS_SECRET_ACCESS_KEY", &secret)
                        .output();
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        });
        MetricsTimer {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for MetricsTimer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// node_exporter (textfile collector only) and Prometheus, started by the test on
/// loopback with their own config and storage in `dir`; killed by their PIDs on drop.
pub struct Monitoring {
    pub api: Api,
    prometheus_log: PathBuf,
    _node_exporter: Running,
    _prometheus: Running,
}

/// The shipped scrape configuration (docs/alerts/prometheus-scrape.yml, one node's) made
/// the test's: its jobs and their settings as shipped, the etcd job's target entry once
/// per member as the file's header says to write it on each node (the node's name for
/// node1.example.zone, the member's metrics address for 127.0.0.1:2381), node_exporter's
/// at the test's address under node 1's name, every interval 1 s, and the live rules.
pub fn live_config(shipped: &str, members: &[(String, String)], monitor: &str) -> String {
    const ETCD_ENTRY: &str =
        "      - targets: [\"127.0.0.1:2381\"]\n        labels: {instance: node1.example.zone}\n";
    const NODE_ENTRY: &str =
        "      - targets: [\"127.0.0.1:9100\"]\n        labels: {instance: node1.example.zone}\n";
    const GLOBAL: &str = "global:\n  scrape_interval: 30s\n  scrape_timeout: 10s\n";
    for (part, what) in [
        ("  - job_name: etcd\n    static_configs:\n", "the job etcd"),
        ("  - job_name: node\n    static_configs:\n", "the job node"),
        (ETCD_ENTRY, "the member's metrics on loopback"),
        (NODE_ENTRY, "node_exporter on its Debian port"),
        (GLOBAL, "the global intervals"),
    ] {
        assert_eq!(
            shipped.matches(part).count(),
            1,
            "{what}: {part:?} in the shipped file"
        );
    }
    let etcd: String = members
        .iter()
        .map(|(name, address)| {
            ETCD_ENTRY
                .replace("node1.example.zone", name)
                .replace("127.0.0.1", address)
        })
        .collect();
    let node = NODE_ENTRY
        .replace("node1.example.zone", &members[0].0)
        .replace("127.0.0.1:9100", &format!("{monitor}:{NODE_EXPORTER_PORT}"));
    shipped
        .replace(
            GLOBAL,
            &format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 rule_files: [{RULES}]\n"
            ),
        )
        .replace(ETCD_ENTRY, &etcd)
        .replace(NODE_ENTRY, &node)
}

impl Monitoring {
    /// `members`: the zone's (node name, address) pairs.
    pub fn start(dir: &Path, textfiles: &Path, members: &[(String, String)]) -> Monitoring {
        Self::start_on(dir, textfiles, members, &monitor_ip())
    }

    /// The same, node_exporter and Prometheus listening on `monitor` (another test's own).
    pub fn start_on(
        dir: &Path,
        textfiles: &Path,
        members: &[(String, String)],
        monitor: &str,
    ) -> Monitoring {
        fs::write(dir.join(RULES), live_rules(&rules_text())).unwrap();
        let shipped = fs::read_to_string(super::alerts_dir().join(SCRAPE)).unwrap();
        fs::write(
            dir.join("prometheus.yml"),
            live_config(&shipped, members, monitor),
        )
        .unwrap();
        let (ok, out) = prom::promtool(dir, &["check", "config", "prometheus.yml"]);
        assert!(
            ok,
            "promtool check config on the live configuration:\n{out}"
        );
        let node_exporter = prom::spawn(
            &prom::tool("prometheus-node-exporter", "prometheus-node-exporter"),
            &[
                "--collector.disable-defaults".into(),
                "--collector.textfile".into(),
                format!("--collector.textfile.directory={}", textfiles.display()),
                format!("--web.listen-address={monitor}:{NODE_EXPORTER_PORT}"),
            ],
            &dir.join("node-exporter.log"),
        );
        let prometheus_log = dir.join("prometheus.log");
        let prometheus = prom::spawn(
            &prom::tool("prometheus", "prometheus"),
            &[
                format!("--config.file={}", dir.join("prometheus.yml").display()),
                format!("--storage.tsdb.path={}", dir.join("data").display()),
                format!("--web.listen-address={monitor}:{PROMETHEUS_PORT}"),
            ],
            &prometheus_log,
        );
        Monitoring {
            api: Api::new(&format!("http://{monitor}:{PROMETHEUS_PORT}")),
            prometheus_log,
            _node_exporter: node_exporter,
            _prometheus: prometheus,
        }
    }

    /// What a failure shows: the active alerts, the targets, the rule groups' health and
    /// Prometheus' log.
    pub fn context(&self) -> String {
        let groups = self.api.get("/api/v1/rules").unwrap_or_default();
        let rules: Vec<String> = groups["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .map(|r| format!("{} {} {}", r["name"], r["health"], r["lastError"]))
            .collect();
        format!(
            "alerts: {:#?}
targets: {:#?}
rules: {rules:#?}
log:\n{}",
            self.api.alerts(),
            self.api.targets(),
            prom::tail(&self.prometheus_log)
        )
    }
}

/// docs/dashboards/zone-etcd.json.
pub fn dashboard_path() -> PathBuf {
    crate::common::repo().join("docs/dashboards/zone-etcd.json")
}

/// The dashboard's queries: (panel title, expression), every panel's every target.
pub fn dashboard_queries(dashboard: &serde_json::Value) -> Vec<(String, String)> {
    let panels = dashboard["panels"]
        .as_array()
        .expect("the dashboard's panels");
    let mut queries = Vec::new();
    for panel in panels {
        let title = panel["title"].as_str().unwrap_or_default().to_string();
        assert!(!title.is_empty(), "a panel with no title: {panel}");
        if panel["type"] == "row" {
            continue;
        }
        let targets = panel["targets"].as_array().cloned().unwrap_or_default();
        assert!(!targets.is_empty(), "{title}: no query");
        for target in targets {
            let expr = target["expr"].as_str().unwrap_or_default();
            assert!(!expr.is_empty(), "{title}: a target with no expr");
            queries.push((title.clone(), expr.to_string()));
        }
    }
    queries
}

/// The queries of docs/dashboards/zone-etcd.json that are not valid PromQL or return no
/// series from the live Prometheus, each as a line.
pub fn dashboard_failures(api: &Api) -> Vec<String> {
    let text = fs::read_to_string(dashboard_path()).expect("docs/dashboards/zone-etcd.json");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let queries = dashboard_queries(&dashboard);
    assert!(queries.len() >= 20, "{} queries", queries.len());
    queries
        .iter()
        .filter_map(|(title, expr)| match api.query(expr) {
            Ok(0) => Some(format!("{title}: {expr}: no series")),
            Ok(_) => None,
            Err(e) => Some(format!("{title}: {expr}: {e}")),
        })
        .collect()
}

/// Whether every rule group was evaluated after `since`.
pub fn evaluated_since(api: &Api, since: time::OffsetDateTime) -> bool {
    use time::format_description::well_known::Rfc3339;
    let Some(data) = api.get("/api/v1/rules") else {
        return false;
    };
    let groups = data["groups"].as_array().cloned().unwrap_or_default();
    !groups.is_empty()
        && groups.iter().all(|g| {
            g["lastEvaluation"]
                .as_str()
                .and_then(|t| time::OffsetDateTime::parse(t, &Rfc3339).ok())
                .is_some_and(|t| t > since)
        })
}
