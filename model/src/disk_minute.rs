//! A member's disk as its own etcd saw it over the last minute: etcd's metrics carry
//! `etcd_disk_wal_fsync_duration_seconds` (each fdatasync of its write-ahead log, which
//! every write waits on) and `etcd_disk_backend_commit_duration_seconds` (each commit of
//! its database); from two readings a minute apart ([`Reading::read`], [`minute`]) come
//! the minute's p50 and p99 of the WAL's syncs and the p99 of the commits. Each member's
//! keeper puts them in its links record ([`crate::links::Links::disk`]), so `status`
//! shows every member's disk and names the slow one ([`slow`]), where the app's disk probe
//! (`check`, `disk_probe.rs`) measures only the machine it runs on.
//!
//! Invariants: a minute without a WAL sync (an idle zone writes nothing) gives no figure,
//! and the record keeps the last minute that had one; the figures are etcd's, interpolated
//! as Prometheus does ([`crate::histogram`]), so they agree with the alerts
//! `ZoneEtcdWalFsyncSlow` and `ZoneEtcdBackendCommitSlow`; the guidance is etcd's own
//! (WAL fsync p99 under 10 ms, backend commit p99 under 25 ms).

use serde::{Deserialize, Serialize};

use crate::histogram::{self, Histogram};

/// The WAL's fdatasync durations, one histogram a member.
pub const WAL_FSYNC: &str = "etcd_disk_wal_fsync_duration_seconds";
/// The database commits' durations.
pub const BACKEND_COMMIT: &str = "etcd_disk_backend_commit_duration_seconds";
/// etcd's guidance for the WAL's fdatasync, at the 99th percentile.
pub const WAL_FSYNC_P99_MS: f64 = 10.0;
/// etcd's guidance for the backend commit, at the 99th percentile.
pub const BACKEND_COMMIT_P99_MS: f64 = 25.0;

/// One minute of a member's disk, as its etcd measured it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiskMinute {
    pub wal_fsync_p50_ms: f64,
    pub wal_fsync_p99_ms: f64,
    /// How many WAL syncs the minute had.
    pub wal_fsyncs: u64,
    /// Absent when the minute had no commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_commit_p99_ms: Option<f64>,
}

impl DiskMinute {
    /// What `status` prints: `WAL fsync p50/p99 0.4/1.2 ms (31 syncs), backend commit p99 2.1 ms`.
    pub fn line(&self) -> String {
        let commit = self
            .backend_commit_p99_ms
            .map(|c| format!(", backend commit p99 {c} ms"))
            .unwrap_or_default();
        format!(
            "WAL fsync p50/p99 {}/{} ms ({} syncs){commit}",
            self.wal_fsync_p50_ms, self.wal_fsync_p99_ms, self.wal_fsyncs
        )
    }

    /// Whether it is over etcd's guidance.
    pub fn slow(&self) -> bool {
        self.wal_fsync_p99_ms > WAL_FSYNC_P99_MS
            || self
                .backend_commit_p99_ms
                .is_some_and(|c| c > BACKEND_COMMIT_P99_MS)
    }
}

/// The two histograms of one reading of a member's metrics.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reading {
    pub wal_fsync: Histogram,
    pub backend_commit: Histogram,
}

impl Reading {
    /// The histograms in the metrics' text (empty ones when etcd exports none).
    pub fn read(text: &str) -> Reading {
        let one = |metric: &str| {
            histogram::parse(text, metric, None)
                .remove("")
                .unwrap_or_default()
        };
        Reading {
            wal_fsync: one(WAL_FSYNC),
            backend_commit: one(BACKEND_COMMIT),
        }
    }
}

/// The minute from `before` to `now` (pure), in milliseconds to a hundredth; `None` when
/// the WAL had no sync in it.
pub fn minute(now: &Reading, before: &Reading) -> Option<DiskMinute> {
    let ms = |s: f64| (s * 100_000.0).round() / 100.0;
    let wal = now.wal_fsync.since(&before.wal_fsync);
    let commit = now.backend_commit.since(&before.backend_commit);
    Some(DiskMinute {
        wal_fsync_p50_ms: ms(wal.quantile(0.5)?),
        wal_fsync_p99_ms: ms(wal.quantile(0.99)?),
        wal_fsyncs: wal.count(),
        backend_commit_p99_ms: commit.quantile(0.99).map(ms),
    })
}

/// Whether a new minute is worth a write (one raft entry, which every member syncs, so
/// itself a WAL sync the next minute measures): the first figure, a disk that crossed
/// etcd's guidance either way, or a disk over it whose WAL p99 moved by more than half.
/// Under the guidance a disk's figures wander (a few syncs a minute on an idle zone) and
/// wait for the record's refresh: writing each wander would make the idle zone write
/// every minute.
pub fn moved(held: Option<&DiskMinute>, new: Option<&DiskMinute>) -> bool {
    match (held, new) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(h), Some(n)) => {
            let (was, is) = (h.wal_fsync_p99_ms, n.wal_fsync_p99_ms);
            h.slow() != n.slow() || (n.slow() && (is > was * 1.5 || is * 1.5 < was))
        }
    }
}

/// One line for each member (`member`, its minute) whose disk is over etcd's guidance,
/// naming it, its figures and what to do (pure).
pub fn slow<'a>(members: impl IntoIterator<Item = (&'a str, &'a DiskMinute)>) -> Vec<String> {
    members
        .into_iter()
        .filter(|(_, d)| d.slow())
        .map(|(member, d)| {
            format!(
                "{member}'s disk is slow for etcd: {} over its last minute of writes (etcd's guidance: WAL fsync p99 under {WAL_FSYNC_P99_MS} ms, backend commit p99 under {BACKEND_COMMIT_P99_MS} ms); every write of the zone waits on it while it leads or is needed for a majority. `zone-etcd check` on {member} measures the disk and names the fix (data_dir on an SSD)",
                d.line()
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(wal: [u64; 4], commit: [u64; 4]) -> String {
        let bounds = ["0.001", "0.008", "0.128", "+Inf"];
        let mut text = String::from("# TYPE etcd_disk_wal_fsync_duration_seconds histogram\n");
        for (le, n) in bounds.iter().zip(wal) {
            text += &format!("{WAL_FSYNC}_bucket{{le=\"{le}\"}} {n}\n");
        }
        text += &format!("{WAL_FSYNC}_sum 0.5\n{WAL_FSYNC}_count {}\n", wal[3]);
        for (le, n) in bounds.iter().zip(commit) {
            text += &format!("{BACKEND_COMMIT}_bucket{{le=\"{le}\"}} {n}\n");
        }
        text
    }

    #[test]
    fn a_minute_of_syncs_is_read_from_two_readings() {
        let before = Reading::read(&metrics([10, 10, 10, 10], [5, 5, 5, 5]));
        assert_eq!(before.wal_fsync.count(), 10);
        // 20 syncs in the minute: 10 under 1 ms, 10 in (8 ms, 128 ms].
        let now = Reading::read(&metrics([20, 20, 30, 30], [5, 8, 8, 8]));
        let m = minute(&now, &before).unwrap();
        assert_eq!(m.wal_fsyncs, 20);
        // rank 10 of 20: the last in the first bucket.
        assert_eq!(m.wal_fsync_p50_ms, 1.0);
        // rank 19.8: 9.8 of the 10 in (8, 128] ms.
        assert_eq!(m.wal_fsync_p99_ms, 125.6);
        assert_eq!(m.backend_commit_p99_ms, Some(7.93));
        assert!(m.slow());
        assert_eq!(
            m.line(),
            "WAL fsync p50/p99 1/125.6 ms (20 syncs), backend commit p99 7.93 ms"
        );
    }

    #[test]
    fn an_idle_minute_or_no_metrics_gives_no_figure() {
        let same = Reading::read(&metrics([10, 10, 10, 10], [5, 5, 5, 5]));
        assert_eq!(minute(&same, &same), None);
        assert_eq!(minute(&Reading::read(""), &Reading::default()), None);
        // The first reading after a start: all of it.
        let first = minute(&same, &Reading::default()).unwrap();
        assert_eq!(first.wal_fsyncs, 10);
        assert_eq!(first.backend_commit_p99_ms, Some(0.99));
    }

    fn disk(p99: f64) -> DiskMinute {
        DiskMinute {
            wal_fsync_p50_ms: p99 / 2.0,
            wal_fsync_p99_ms: p99,
            wal_fsyncs: 30,
            backend_commit_p99_ms: None,
        }
    }

    #[test]
    fn a_minute_is_written_when_it_crossed_the_guidance_or_a_slow_disk_moved() {
        assert!(moved(None, Some(&disk(1.0))));
        assert!(!moved(Some(&disk(1.0)), None));
        assert!(!moved(None, None));
        // Under the guidance, wandering figures wait for the refresh (an idle zone's few
        // syncs a minute: 0.3 to 4 ms and back).
        assert!(!moved(Some(&disk(0.3)), Some(&disk(4.0))));
        assert!(!moved(Some(&disk(4.0)), Some(&disk(0.3))));
        // 9.5 to 10.5 ms crosses the guidance; and back.
        assert!(moved(Some(&disk(9.5)), Some(&disk(10.5))));
        assert!(moved(Some(&disk(10.5)), Some(&disk(9.5))));
        // Over it, a move by more than half either way.
        assert!(!moved(Some(&disk(50.0)), Some(&disk(70.0))));
        assert!(moved(Some(&disk(50.0)), Some(&disk(80.0))));
        assert!(moved(Some(&disk(80.0)), Some(&disk(50.0))));
    }

    #[test]
    fn only_a_disk_over_the_guidance_is_named() {
        let fast = disk(2.0);
        let slow_wal = disk(83.0);
        let slow_commit = DiskMinute {
            backend_commit_p99_ms: Some(40.0),
            ..disk(2.0)
        };
        let lines = slow([("n1", &fast), ("n2", &slow_wal), ("n3", &slow_commit)]);
        assert_eq!(lines.len(), 2, "{lines:#?}");
        assert!(lines[0].starts_with(
            "n2's disk is slow for etcd: WAL fsync p50/p99 41.5/83 ms (30 syncs) over"
        ));
        assert!(lines[0].contains("`zone-etcd check` on n2"));
        assert!(lines[1].starts_with("n3's disk is slow for etcd"));
        assert!(slow([("n1", &fast)]).is_empty());
    }
}
