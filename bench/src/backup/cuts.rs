//! Where a writer's tail goes while `backup run` is active (issue 37): per-request latency
//! placed against the instants the active run cut a segment, and the etcd writes the
//! backup runs add, counted from the members' raft index and revision.
//!
//! A cut starts at its delta link's `last_time_ms` (the writer's clock when the batch was
//! taken); the local chain's files, the manifest and the uploads follow within tens of
//! milliseconds. Each request of a "with" window is placed by the wall-clock time it was
//! sent, relative to the latest cut at or before it (a request sent shortly before a cut
//! is placed at a negative offset of the next one). The bins show whether the slowest
//! requests gather just after the cuts (the local chain's and the targets' fsyncs, the
//! upload) or are spread evenly (the watch, the lease renewals, the machine).

use serde_json::{json, Value};

use crate::support::{round, spread};

/// A request: wall-clock start (ms since the epoch) and latency (ms).
pub struct Timed {
    pub start_ms: f64,
    pub latency_ms: f64,
}

/// Bins of the offset from the nearest cut, in ms: [-100, 0), [0, 50), ... [450, 500),
/// then everything farther.
const BIN_MS: f64 = 50.0;
const FIRST_MS: f64 = -100.0;
const LAST_MS: f64 = 500.0;

/// The offset of `t` from the nearest cut around it: after the latest cut at or before
/// it, unless the next cut is at most 100 ms later (then negative).
fn offset(cuts: &[f64], t: f64) -> Option<f64> {
    let i = cuts.partition_point(|c| *c <= t);
    if let Some(next) = cuts.get(i) {
        if next - t <= -FIRST_MS {
            return Some(t - next);
        }
    }
    i.checked_sub(1).map(|p| t - cuts[p])
}

/// Latency by offset from the cuts; where the slowest 1% of the side sits; and, for
/// comparison, the slowest 1% of the side without, taken as the bar: how many requests
/// of each bin are slower than the "without" side's p99.
pub fn around_cuts(cuts: &[f64], with: &[Timed], without_p99_ms: f64) -> Value {
    let mut cuts = cuts.to_vec();
    cuts.sort_by(f64::total_cmp);
    let bins = ((LAST_MS - FIRST_MS) / BIN_MS) as usize;
    let mut binned: Vec<Vec<f64>> = vec![Vec::new(); bins + 1];
    for r in with {
        let slot = match offset(&cuts, r.start_ms) {
            Some(o) if (FIRST_MS..LAST_MS).contains(&o) => ((o - FIRST_MS) / BIN_MS) as usize,
            _ => bins,
        };
        binned[slot].push(r.latency_ms);
    }
    let rows: Vec<Value> = binned
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let over = v.iter().filter(|l| **l > without_p99_ms).count();
            let (from, to) = if i == bins {
                (json!("farther"), json!(null))
            } else {
                let from = FIRST_MS + i as f64 * BIN_MS;
                (json!(from), json!(from + BIN_MS))
            };
            json!({
                "from_ms": from,
                "to_ms": to,
                "over_without_p99": over,
                "latency": spread(&v, "_ms"),
            })
        })
        .collect();
    let total_over = with
        .iter()
        .filter(|r| r.latency_ms > without_p99_ms)
        .count();
    let near_over = with
        .iter()
        .filter(|r| r.latency_ms > without_p99_ms)
        .filter(|r| offset(&cuts, r.start_ms).is_some_and(|o| (FIRST_MS..LAST_MS).contains(&o)))
        .count();
    json!({
        "cuts": cuts.len(),
        "without_p99_ms": round(without_p99_ms),
        "requests_over_without_p99": total_over,
        "of_which_within_-100..500_ms_of_a_cut": near_over,
        "bins": rows,
    })
}

/// etcd's counters at one instant, from one member: (raft index, revision).
pub fn counters(client: &crate::support::TlsClient, base: &str) -> Option<(i64, i64)> {
    let text = client
        .post(&format!("{base}/v3/maintenance/status"), "{}")
        .ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    let num = |x: &Value| -> Option<i64> {
        x.as_str()
            .and_then(|s| s.parse().ok())
            .or_else(|| x.as_i64())
    };
    Some((num(&v["raftIndex"])?, num(&v["header"]["revision"])?))
}

/// What etcd committed during a window beside the writer's own puts, per second: raft
/// entries that are not puts (lease grants, revokes, ...) and puts (revisions) of others.
pub fn extra_rates(
    before: Option<(i64, i64)>,
    after: Option<(i64, i64)>,
    writer_puts: usize,
    seconds: f64,
) -> Value {
    let (Some((i0, r0)), Some((i1, r1))) = (before, after) else {
        return json!(null);
    };
    let (entries, revisions) = ((i1 - i0) as f64, (r1 - r0) as f64);
    json!({
        "raft_entries_per_s": round(entries / seconds),
        "revisions_per_s": round(revisions / seconds),
        "writer_puts_per_s": round(writer_puts as f64 / seconds),
        "other_revisions_per_s": round((revisions - writer_puts as f64) / seconds),
        "raft_entries_not_revisions_per_s": round((entries - revisions) / seconds),
    })
}

/// The series of etcd's `/metrics` that tell where a request's time went, summed over
/// the members: WAL fsyncs and backend commits (count, sum, and how many took longer
/// than 8 and 16 ms) and the members' CPU.
const HISTOGRAMS: [&str; 2] = [
    "etcd_disk_wal_fsync_duration_seconds",
    "etcd_disk_backend_commit_duration_seconds",
];

pub type Metrics = std::collections::BTreeMap<String, f64>;

/// Reads the chosen series from every member and sums them.
pub fn etcd_metrics(client: &crate::support::TlsClient, bases: &[String]) -> Option<Metrics> {
    let mut sum = Metrics::new();
    for base in bases {
        let text = client.get(&format!("{base}/metrics")).ok()?;
        for line in text.lines() {
            let Some((name, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let wanted = HISTOGRAMS.iter().any(|h| {
                name == format!("{h}_count")
                    || name == format!("{h}_sum")
                    || name == format!("{h}_bucket{{le=\"0.008\"}}")
                    || name == format!("{h}_bucket{{le=\"0.016\"}}")
            }) || name == "process_cpu_seconds_total";
            if wanted {
                *sum.entry(name.to_string()).or_default() += value;
            }
        }
    }
    Some(sum)
}

/// Per second of a window: fsyncs and commits, their mean, how many were slow, and the
/// members' CPU (share of one core, the three summed).
pub fn metrics_rates(before: Option<Metrics>, after: Option<Metrics>, seconds: f64) -> Value {
    let (Some(b), Some(a)) = (before, after) else {
        return json!(null);
    };
    let d = |k: &str| a.get(k).copied().unwrap_or(0.0) - b.get(k).copied().unwrap_or(0.0);
    let mut out = serde_json::Map::new();
    for h in HISTOGRAMS {
        let short = h
            .trim_start_matches("etcd_disk_")
            .trim_end_matches("_duration_seconds");
        let count = d(&format!("{h}_count"));
        let le8 = d(&format!("{h}_bucket{{le=\"0.008\"}}"));
        let le16 = d(&format!("{h}_bucket{{le=\"0.016\"}}"));
        out.insert(
            short.into(),
            json!({
                "per_s": round(count / seconds),
                "mean_ms": round(d(&format!("{h}_sum")) * 1000.0 / count.max(1.0)),
                "over_8ms": count - le8,
                "over_16ms": count - le16,
            }),
        );
    }
    out.insert(
        "members_cpu_share".into(),
        json!(round(d("process_cpu_seconds_total") / seconds)),
    );
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_from_the_nearest_cut_before_or_just_after() {
        let cuts = [1000.0, 2000.0];
        assert_eq!(offset(&cuts, 999.0), Some(-1.0));
        assert_eq!(offset(&cuts, 1000.0), Some(0.0));
        assert_eq!(offset(&cuts, 1500.0), Some(500.0));
        assert_eq!(offset(&cuts, 1950.0), Some(-50.0));
        assert_eq!(offset(&cuts, 500.0), None);
    }
}
