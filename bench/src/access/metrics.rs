//! The members' etcd metrics a window reads ([`METRICS`], [`HISTOGRAMS`]) and their
//! parsing from etcd's `/metrics` text ([`parse`]).

use std::collections::HashMap;

/// The metrics read from each member (sums and counts of histograms, counters).
const METRICS: [&str; 10] = [
    "etcd_disk_wal_fsync_duration_seconds_sum",
    "etcd_disk_wal_fsync_duration_seconds_count",
    "etcd_disk_backend_commit_duration_seconds_sum",
    "etcd_disk_backend_commit_duration_seconds_count",
    "grpc_server_handled_total",
    "etcd_server_proposals_committed_total",
    "etcd_server_slow_apply_total",
    "etcd_server_slow_read_indexes_total",
    "etcd_server_apply_duration_seconds_sum",
    "etcd_server_apply_duration_seconds_count",
];

/// Histograms whose buckets are read too (summed over their labels but `le`).
pub(crate) const HISTOGRAMS: [&str; 3] = [
    "etcd_disk_wal_fsync_duration_seconds",
    "etcd_disk_backend_commit_duration_seconds",
    "etcd_server_apply_duration_seconds",
];

/// `METRICS` summed over their labels; each of `HISTOGRAMS`' buckets as `<name>|<le>`;
/// the applies' count and sum per operation as `<name>|op=<op>`.
pub(crate) fn parse(text: &str) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let name = line.split(['{', ' ']).next().unwrap_or_default();
        let Some(value) = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) else {
            continue;
        };
        let label = |key: &str| {
            let start = line.find(&format!("{key}=\""))? + key.len() + 2;
            let len = line[start..].find('"')?;
            Some(line[start..start + len].to_string())
        };
        let mut add = |key: String| *out.entry(key).or_insert(0.0) += value;
        if METRICS.contains(&name) {
            add(name.to_string());
            if name.starts_with("etcd_server_apply_duration_seconds") {
                if let Some(op) = label("op") {
                    add(format!("{name}|op={op}"));
                }
            }
        } else if let Some(base) = name.strip_suffix("_bucket") {
            if let (true, Some(le)) = (HISTOGRAMS.contains(&base), label("le")) {
                add(format!("{base}|{le}"));
            }
        }
    }
    out
}
