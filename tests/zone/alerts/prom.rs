//! tests/zone/alerts.rs's helpers: promtool, the metric names a rule file reads, and Debian's
//! Prometheus and node_exporter run by the test on loopback (killed by their PIDs on drop,
//! through `Running`).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::Running;

/// A tool of Debian's prometheus packages; panics (the test fails) when it is missing.
pub fn tool(name: &str, package: &str) -> PathBuf {
    which::which(name).unwrap_or_else(|_| {
        panic!(
            "{name} is missing: install Debian's {package} (./scripts/need.sh {name}:{package}; \
             scripts/test.sh does). This test never skips."
        )
    })
}

/// Runs `promtool <args>` in `dir`; returns (success, stdout and stderr).
pub fn promtool(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(tool("promtool", "prometheus"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("promtool runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The rule file's `expr:` values, one a line (a folded expression is refused, so that
/// none escapes the metric-name check).
pub fn exprs(rules: &str) -> Vec<String> {
    rules
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("expr: "))
        .map(|e| {
            assert!(
                !e.starts_with(['>', '|']),
                "write every expr on one line: {e}"
            );
            e.to_string()
        })
        .collect()
}

/// The names a rule file records (`record:`).
pub fn recorded(rules: &str) -> BTreeSet<String> {
    rules
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("- record: "))
        .map(|n| n.trim().to_string())
        .collect()
}

/// The metric names a PromQL expression reads: identifiers outside strings, label
/// matchers `{...}`, ranges `[...]` and the label lists of by/without/on/ignoring/
/// group_left/group_right, that are neither a function (followed by `(`) nor a keyword.
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    metric_reads(expr)
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}

/// The reads of etcd's own series (`up`, `etcd_*`, `grpc_*`) in a PromQL expression that do
/// not select them with `selector` as their first label matcher, each as it is written.
pub fn reads_outside(expr: &str, selector: &str) -> Vec<String> {
    metric_reads(expr)
        .into_iter()
        .filter(|(name, _)| name == "up" || name.starts_with("etcd_") || name.starts_with("grpc_"))
        .filter(|(_, end)| !expr[*end..].starts_with(&format!("{{{selector}")))
        .map(|(name, end)| {
            let matchers = match expr[end..].find('}') {
                Some(close) if expr[end..].starts_with('{') => &expr[end..=end + close],
                _ => "",
            };
            format!("{name}{matchers}")
        })
        .collect()
}

/// Every metric name a PromQL expression reads (as [`metric_names`]), with the byte offset
/// just past it, in the order written.
fn metric_reads(expr: &str) -> Vec<(String, usize)> {
    // Operators, and the aggregations (which may come before their `by (...)`).
    const KEYWORDS: [&str; 17] = [
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
    ];
    const LABEL_LISTS: [&str; 6] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    assert!(expr.is_ascii(), "a PromQL expression of ASCII only: {expr}");
    let chars: Vec<char> = expr.chars().collect();
    let mut names = Vec::new();
    let mut i = 0;
    let skip_to = |from: usize, close: char| {
        let mut j = from;
        while j < chars.len() && chars[j] != close {
            if chars[j] == '"' {
                j += 1;
                while j < chars.len() && chars[j] != '"' {
                    j += if chars[j] == '\\' { 2 } else { 1 };
                }
            }
            j += 1;
        }
        j + 1
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i += 1;
            while i < chars.len() && chars[i] != c {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c == '{' {
            i = skip_to(i + 1, '}');
        } else if c == '[' {
            i = skip_to(i + 1, ']');
        } else if c.is_ascii_digit() || c == '.' {
            // A number (or a duration): digits, letters, dots.
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut next = i;
            while next < chars.len() && chars[next] == ' ' {
                next += 1;
            }
            let call = next < chars.len() && chars[next] == '(';
            if call && LABEL_LISTS.contains(&word.as_str()) {
                i = skip_to(next + 1, ')');
            } else if !call && !KEYWORDS.contains(&word.as_str()) {
                names.push((word, i));
            }
        } else {
            i += 1;
        }
    }
    names
}

/// One process of the test's monitoring, with its log.
pub fn spawn(program: &Path, args: &[String], log: &Path) -> Running {
    let mut cmd = Command::new(program);
    cmd.args(args);
    Running::spawn(cmd, log)
}

/// Prometheus' HTTP API on `base` (http://host:port).
pub struct Api {
    pub base: String,
    agent: ureq::Agent,
}

/// An active alert: its name, labels and state (pending or firing).
#[derive(Debug, Clone)]
pub struct Alert {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub state: String,
}

impl Api {
    pub fn new(base: &str) -> Api {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .build()
            .into();
        Api {
            base: base.to_string(),
            agent,
        }
    }

    /// GET `path`; the JSON's `data`, or `None` when Prometheus does not answer (yet).
    pub fn get(&self, path: &str) -> Option<serde_json::Value> {
        let mut response = self.agent.get(format!("{}{path}", self.base)).call().ok()?;
        let body = response.body_mut().read_to_string().ok()?;
        let json: serde_json::Value = serde_json::from_str(&body).ok()?;
        (json["status"] == "success").then(|| json["data"].clone())
    }

    /// The active alerts (pending or firing); `None` while Prometheus does not answer.
    pub fn alerts(&self) -> Option<Vec<Alert>> {
        let data = self.get("/api/v1/alerts")?;
        let alerts = data["alerts"].as_array()?;
        Some(
            alerts
                .iter()
                .map(|a| {
                    let labels: BTreeMap<String, String> =
                        serde_json::from_value(a["labels"].clone()).unwrap_or_default();
                    Alert {
                        name: labels.get("alertname").cloned().unwrap_or_default(),
                        labels,
                        state: a["state"].as_str().unwrap_or_default().to_string(),
                    }
                })
                .collect(),
        )
    }

    /// Every scrape target's (job, instance, health).
    pub fn targets(&self) -> Vec<(String, String, String)> {
        let Some(data) = self.get("/api/v1/targets") else {
            return Vec::new();
        };
        data["activeTargets"]
            .as_array()
            .map(|targets| {
                targets
                    .iter()
                    .map(|t| {
                        let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
                        (
                            s(&t["labels"]["job"]),
                            s(&t["labels"]["instance"]),
                            s(&t["health"]),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// An instant query: the number of series it returns, or Prometheus' error (a query
    /// that does not parse, say).
    pub fn query(&self, expr: &str) -> Result<usize, String> {
        let mut response = self
            .agent
            .get(format!("{}/api/v1/query", self.base))
            .query("query", expr)
            .call()
            .map_err(|e| e.to_string())?;
        let body = response
            .body_mut()
            .read_to_string()
            .map_err(|e| e.to_string())?;
        let json: serde_json::Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
        if json["status"] != "success" {
            return Err(format!("{}: {}", json["errorType"], json["error"]));
        }
        Ok(json["data"]["result"].as_array().map_or(0, Vec::len))
    }

    /// Every metric name Prometheus holds series of.
    pub fn names(&self) -> BTreeSet<String> {
        self.get("/api/v1/label/__name__/values")
            .and_then(|d| serde_json::from_value(d).ok())
            .unwrap_or_default()
    }
}

/// The alert of `name` whose labels include every `(label, value)` of `want`.
pub fn find<'a>(alerts: &'a [Alert], name: &str, want: &[(&str, &str)]) -> Option<&'a Alert> {
    alerts.iter().find(|a| {
        a.name == name
            && want
                .iter()
                .all(|(k, v)| a.labels.get(*k).map(String::as_str) == Some(*v))
    })
}

/// The names a metrics text declares (`# HELP name ...`), samples or not.
pub fn declared(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# HELP "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// Polls `done` every 200 ms until it returns `Some`; panics after `limit` with `what`
/// and `context()` (the logs).
pub fn wait_some<T>(
    limit: Duration,
    what: &str,
    context: impl Fn() -> String,
    mut done: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = done() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The tail of a log file, for a failure's message.
pub fn tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::metric_names;

    #[test]
    fn metric_names_skip_functions_labels_ranges_and_keywords() {
        let names = |e: &str| metric_names(e).into_iter().collect::<Vec<_>>();
        assert_eq!(
            names(r#"sum by (instance) (increase(grpc_x_total{job="a",c="b}"}[5m])) > 0"#),
            ["grpc_x_total"]
        );
        assert_eq!(
            names("zone_a < on() group_left() max(zone_a) and on(node) b_c unless d"),
            ["b_c", "d", "zone_a"]
        );
        assert_eq!(
            names("count(count by (v) (e_v{j=\"m\"})) > 1 and min without (a) (f)"),
            ["e_v", "f"]
        );
        assert_eq!(
            names("zone_a < on() group_left() max(zone_a) and on(node) b_c unless d"),
            ["b_c", "d", "zone_a"]
        );
        assert_eq!(
            names("time() - x_seconds > 2 * 86400 or rec:ord:er <= 1.5e3"),
            ["rec:ord:er", "x_seconds"]
        );
    }

    #[test]
    fn reads_of_etcds_series_without_the_selector_are_named() {
        const SELECTOR: &str = r#"job=~".*etcd.*""#;
        let outside = |e: &str| super::reads_outside(e, SELECTOR);
        assert!(
            outside(r#"up{job=~".*etcd.*"} == 0 unless on(job) node_exporter_build_info"#)
                .is_empty()
        );
        assert!(outside(
            r#"histogram_quantile(0.99, sum by (job, instance, le) (rate(etcd_disk_x_bucket{job=~".*etcd.*",le!=""}[5m])))"#
        )
        .is_empty());
        assert_eq!(outside("up == 0"), ["up"]);
        assert_eq!(
            outside(r#"etcd_a{job=~".*etcd.*"} / etcd_b{job="etcd"}"#),
            [r#"etcd_b{job="etcd"}"#]
        );
        assert_eq!(
            outside(r#"rate(grpc_c{grpc_code="OK",job=~".*etcd.*"}[5m])"#),
            [r#"grpc_c{grpc_code="OK",job=~".*etcd.*"}"#]
        );
        // zone-etcd's own series and node_exporter's are not etcd's.
        assert!(outside("zone_etcd_check_ok == 0 and node_textfile_mtime_seconds").is_empty());
    }
}
