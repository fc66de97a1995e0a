//! Prometheus histograms as etcd exports them in its metrics' text: read
//! ([`parse`]), the observations between two readings ([`Histogram::since`]), and a
//! quantile interpolated as Prometheus' `histogram_quantile` does ([`Histogram::quantile`]),
//! so what `status` and `check` print agrees with a dashboard. Used for the peers' round
//! trips ([`crate::links`]) and the disk's syncs ([`crate::disk_minute`]).
//!
//! Invariants: a counter that went down (etcd restarted) makes the later reading the
//! whole window; buckets are kept in the order of their bounds, `+Inf` last.

use std::collections::BTreeMap;

/// A cumulative histogram: each bucket's upper bound (seconds; the last `+Inf`) with the
/// observations at or below it, in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Histogram {
    pub buckets: Vec<(f64, u64)>,
}

impl Histogram {
    /// How many observations it holds.
    pub fn count(&self) -> u64 {
        self.buckets.last().map_or(0, |(_, n)| *n)
    }

    /// What was observed since `earlier` (the same peer's reading before): bucket by
    /// bucket; when a count went down (etcd restarted), `self` whole.
    pub fn since(&self, earlier: &Histogram) -> Histogram {
        let same = self.buckets.len() == earlier.buckets.len()
            && self
                .buckets
                .iter()
                .zip(&earlier.buckets)
                .all(|((a, n), (b, m))| a == b && n >= m);
        if !same {
            return self.clone();
        }
        Histogram {
            buckets: self
                .buckets
                .iter()
                .zip(&earlier.buckets)
                .map(|((le, n), (_, m))| (*le, n - m))
                .collect(),
        }
    }

    /// The `q` quantile (0 to 1) in seconds, interpolated linearly within its bucket (the
    /// first bucket from 0); the highest finite bound when it falls in `+Inf`; `None`
    /// without observations.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = q * total as f64;
        let mut below = (0.0, 0u64);
        for &(le, n) in &self.buckets {
            if n as f64 >= rank {
                if le.is_infinite() {
                    return Some(below.0);
                }
                let inside = (n - below.1) as f64;
                if inside == 0.0 {
                    return Some(le);
                }
                return Some(below.0 + (le - below.0) * (rank - below.1 as f64) / inside);
            }
            below = (le, n);
        }
        Some(below.0)
    }
}

/// The histograms of `metric` in the metrics' text `text`, by the value of their label
/// `by` (hex member IDs for etcd's `To`), or all under `""` when `by` is `None` (one
/// histogram, such as a member's WAL fsyncs). Lines of other metrics, and lines that do
/// not parse, are skipped.
pub fn parse(text: &str, metric: &str, by: Option<&str>) -> BTreeMap<String, Histogram> {
    let mut out: BTreeMap<String, Histogram> = BTreeMap::new();
    let prefix = format!("{metric}_bucket{{");
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(&prefix) else {
            continue;
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        let label = |name: &str| {
            labels.split(',').find_map(|l| {
                let (k, v) = l.split_once('=')?;
                (k.trim() == name).then(|| v.trim().trim_matches('"').to_string())
            })
        };
        let to = match by {
            Some(by) => label(by),
            None => Some(String::new()),
        };
        let (Some(to), Some(le)) = (to, label("le")) else {
            continue;
        };
        let le = if le == "+Inf" {
            f64::INFINITY
        } else {
            match le.parse::<f64>() {
                Ok(le) => le,
                Err(_) => continue,
            }
        };
        let Ok(count) = value.trim().parse::<f64>() else {
            continue;
        };
        out.entry(to).or_default().buckets.push((le, count as u64));
    }
    for histogram in out.values_mut() {
        histogram
            .buckets
            .sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    }
    out
}
