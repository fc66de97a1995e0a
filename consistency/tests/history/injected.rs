//! The checker catches each bug injected on purpose into correct generated histories
//! (tests/history/common/inject.rs), by the rule meant for it, on many seeds: a stale read and a
//! lost acknowledged write (linearizability), a dropped watch event (watch reliable), a
//! reordered watch event (watch ordered).

use crate::common;

use common::inject;
use common::sim::{generate, Config, Generated};
use zone_consistency::{check_history, History, Rule};

/// Injects with `bug` into 30 seeds that have a place for it; each must be caught by
/// `rule`, and the same history without the bug must be clean.
fn caught(bug: fn(&Generated) -> Option<(History, String)>, rule: Rule) {
    let mut tried = 0;
    for seed in 1000..1200 {
        let g = generate(Config::small(seed));
        let Some((broken, what)) = bug(&g) else {
            continue;
        };
        assert!(
            check_history(&g.history).anomalies.is_empty(),
            "seed {seed} is not clean before the bug"
        );
        let report = check_history(&broken);
        assert!(
            report.anomalies.iter().any(|a| a.rule == rule),
            "seed {seed}: {what}: no {:?} anomaly; found: {:?}",
            rule,
            report
                .anomalies
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
        );
        if tried == 0 {
            eprintln!(
                "{what}\n  -> {}",
                report.anomalies.iter().find(|a| a.rule == rule).unwrap()
            );
        }
        tried += 1;
        if tried == 30 {
            return;
        }
    }
    panic!("only {tried} seeds had a place for the bug");
}

#[test]
fn a_stale_read_is_caught() {
    caught(inject::stale_read, Rule::Linearizable);
}

#[test]
fn a_lost_acknowledged_write_is_caught() {
    caught(inject::lost_write, Rule::Linearizable);
}

#[test]
fn a_dropped_watch_event_is_caught() {
    caught(inject::drop_event, Rule::WatchReliable);
}

#[test]
fn a_reordered_watch_event_is_caught() {
    caught(inject::reorder_events, Rule::WatchOrdered);
}
