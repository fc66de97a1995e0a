//! The section's figures from the recorded requests.

use serde_json::{json, Value};

use super::cuts;
use super::load::Sample;
use super::shape::{DIAGNOSTIC, START, WITH, WITHOUT, WITHOUT_AGAIN};
use crate::support::*;

/// The latencies (ms) of the acknowledged requests of `phases` in `rounds`, sorted.
fn latencies(samples: &[Sample], phases: &[u8], rounds: std::ops::Range<usize>) -> Vec<f64> {
    let mut l: Vec<f64> = samples
        .iter()
        .filter(|s| phases.contains(&s.phase) && rounds.contains(&(s.round as usize)))
        .filter_map(|s| s.acked.map(|a| ms(a - s.started)))
        .collect();
    l.sort_by(f64::total_cmp);
    l
}

/// p50/p99/max of the acknowledged requests of `phase` in `rounds`, and the failures.
pub(super) fn describe(samples: &[Sample], phase: u8, rounds: std::ops::Range<usize>) -> Value {
    let chosen: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.phase == phase && rounds.contains(&(s.round as usize)))
        .collect();
    let l = latencies(samples, &[phase], rounds.clone());
    let per_round: Vec<Value> = rounds
        .clone()
        .map(|r| {
            let v = latencies(samples, &[phase], r..r + 1);
            json!({"round": r, "requests": v.len(), "p50_ms": round(percentile(&v, 50.0)), "p99_ms": round(percentile(&v, 99.0))})
        })
        .collect();
    json!({
        "requests": chosen.len(),
        "failed": chosen.iter().filter(|s| s.acked.is_none()).count(),
        "p50_ms": round(percentile(&l, 50.0)),
        "p99_ms": round(percentile(&l, 99.0)),
        "max_ms": round(l.last().copied().unwrap_or(f64::NAN)),
        "per_round": per_round,
    })
}

pub(super) fn compare(samples: &[Sample], rounds: std::ops::Range<usize>) -> Value {
    let without = describe(samples, WITHOUT, rounds.clone());
    let with = describe(samples, WITH, rounds.clone());
    let start = describe(samples, START, rounds.clone());
    let f = |v: &Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    let mut out = json!({
        "p50_ratio": round(f(&with, "p50_ms") / f(&without, "p50_ms")),
        "p99_ratio": round(f(&with, "p99_ms") / f(&without, "p99_ms")),
        "p99_ratio_interval_95": interval(samples, (WITH, WITHOUT), rounds.clone()),
        "term_start": start,
    });
    // The diagnostic sides, each against "without", when the run had them.
    for (phase, prefix, key) in DIAGNOSTIC {
        let side = describe(samples, phase, rounds.clone());
        if side["requests"].as_u64().unwrap_or(0) == 0 {
            continue;
        }
        out[format!("{prefix}_p99_ratio")] =
            json!(round(f(&side, "p99_ms") / f(&without, "p99_ms")));
        out[format!("{prefix}_p99_ratio_interval_95")] =
            json!(interval(samples, (phase, WITHOUT), rounds.clone()));
        out[key] = side;
    }
    // With a second "without" in each round: "with" against both "without" windows
    // pooled (each round's baseline from two windows, either side of "with").
    if samples.iter().any(|s| s.phase == WITHOUT_AGAIN) {
        let both = [WITHOUT, WITHOUT_AGAIN];
        let pooled = latencies(samples, &both, rounds.clone());
        out["p99_ratio_to_both_without"] =
            json!(round(f(&with, "p99_ms") / percentile(&pooled, 99.0)));
        out["p99_ratio_to_both_without_interval_95"] =
            json!(interval_of(samples, (&[WITH], &both), rounds.clone()));
    }
    out["without"] = without;
    out["with_active"] = with;
    // Each round's own with/without ratio (its two sides minutes apart at most), median.
    let per = |v: &Value| -> Vec<f64> {
        v["per_round"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|r| r["p99_ms"].as_f64().unwrap_or(f64::NAN))
                    .collect()
            })
            .unwrap_or_default()
    };
    let ratios: Vec<f64> = per(&out["with_active"])
        .iter()
        .zip(per(&out["without"]))
        .map(|(w, o)| w / o)
        .collect();
    out["per_round_p99_ratio_median"] = json!(round(median(&ratios)));
    out["per_round_p99_ratios"] = json!(ratios.iter().map(|r| round(*r)).collect::<Vec<_>>());
    out
}

/// The requests of `phase` in `rounds`, acknowledged, for `backup_cuts`.
pub(super) fn timed(
    samples: &[Sample],
    phase: u8,
    rounds: std::ops::Range<usize>,
) -> Vec<cuts::Timed> {
    samples
        .iter()
        .filter(|s| s.phase == phase && rounds.contains(&(s.round as usize)))
        .filter_map(|s| {
            s.acked.map(|a| cuts::Timed {
                start_ms: s.wall_ms,
                latency_ms: ms(a - s.started),
            })
        })
        .collect()
}

/// How far the pooled p99 ratio of side `a` to side `b` moves when the rounds are drawn
/// again (a bootstrap over whole rounds, the same rounds for both sides: a round's two
/// sides share the machine's state of those minutes): the 2.5th and 97.5th percentiles
/// of 2,000 draws. A goal is settled only when this interval is on one side of it.
pub(super) fn interval(
    samples: &[Sample],
    (a, b): (u8, u8),
    rounds: std::ops::Range<usize>,
) -> [f64; 2] {
    interval_of(samples, (&[a], &[b]), rounds)
}

/// [`interval`] of the pooled p99 of the sides `a` against that of the sides `b`.
pub(super) fn interval_of(
    samples: &[Sample],
    (a, b): (&[u8], &[u8]),
    rounds: std::ops::Range<usize>,
) -> [f64; 2] {
    let per: Vec<(Vec<f64>, Vec<f64>)> = rounds
        .map(|r| {
            (
                latencies(samples, a, r..r + 1),
                latencies(samples, b, r..r + 1),
            )
        })
        .collect();
    if per.is_empty() {
        return [f64::NAN, f64::NAN];
    }
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut ratios: Vec<f64> = (0..2000)
        .map(|_| {
            let (mut x, mut y) = (Vec::new(), Vec::new());
            for _ in 0..per.len() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let (ra, rb) = &per[(state % per.len() as u64) as usize];
                x.extend_from_slice(ra);
                y.extend_from_slice(rb);
            }
            x.sort_by(f64::total_cmp);
            y.sort_by(f64::total_cmp);
            percentile(&x, 99.0) / percentile(&y, 99.0)
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    [
        round(percentile(&ratios, 2.5)),
        round(percentile(&ratios, 97.5)),
    ]
}

/// The requests of `phase` in `rounds` by the second of their window they were sent in
/// (a window starts at its round's first request of that phase), each second's count
/// and how many took longer than `threshold_ms`: whether a "with" window's slow requests
/// follow its term's start (the full snapshot, the prune after it) rather than the cuts.
pub(super) fn by_second_of_window(
    samples: &[Sample],
    phase: u8,
    rounds: std::ops::Range<usize>,
    threshold_ms: f64,
) -> Value {
    let mut bins: Vec<(usize, usize)> = Vec::new();
    for r in rounds {
        let chosen: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.phase == phase && s.round as usize == r)
            .collect();
        let Some(start) = chosen.iter().map(|s| s.wall_ms).reduce(f64::min) else {
            continue;
        };
        for s in chosen {
            let Some(acked) = s.acked else { continue };
            let second = ((s.wall_ms - start) / 1000.0).max(0.0) as usize;
            if bins.len() <= second {
                bins.resize(second + 1, (0, 0));
            }
            bins[second].0 += 1;
            if ms(acked - s.started) > threshold_ms {
                bins[second].1 += 1;
            }
        }
    }
    json!(bins
        .iter()
        .enumerate()
        .map(|(second, (n, over))| json!({"second": second, "requests": n, "over": over}))
        .collect::<Vec<_>>())
}
