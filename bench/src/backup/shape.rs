//! The section's zone, its writer and the sides a request can be part of: constants the
//! other modules share (a leaf: it imports none of them).

use std::time::Duration;
use zone_testkit::addresses;

pub(super) const ZONE: &str = "backup.zone";
pub(super) const SUBNET: u8 = addresses::BENCH_BACKUP.subnet();
/// What the recovery-point goal allows beyond the zone's `delta_every` (issue 22: 2 s).
pub(super) const RPO_SLACK: Duration = Duration::from_secs(2);
pub(super) const VALUE_BYTES: usize = 256;
/// Pause between two requests of the writer.
pub(super) const PAUSE: Duration = Duration::from_millis(10);

/// What a request was part of.
pub(super) const IDLE: u8 = 0;
pub(super) const WITHOUT: u8 = 1;
pub(super) const START: u8 = 2;
pub(super) const WITH: u8 = 3;
/// With `backup run` active, its local chain (`<state>/backup`) bind-mounted on a tmpfs:
/// the same run without the local chain's disk writes and fsyncs (diagnosis, issue 37).
pub(super) const WITH_TMPFS: u8 = 4;
/// A second "without" window in each round: the A/A comparison that shows the run's
/// own noise, against which a with/without ratio can be judged.
pub(super) const WITHOUT_AGAIN: u8 = 5;
/// With `backup run` at a lower CPU and I/O priority (nice 10, best-effort I/O level 7):
/// whether what it costs the writer is CPU and I/O it could yield (diagnosis, issue 37).
pub(super) const WITH_NICE: u8 = 6;
/// With `backup run` active while SeaweedFS is stopped (SIGSTOP, after the term's start):
/// the S3 uploads wait, the directory target's go on (diagnosis, issue 37).
pub(super) const WITH_NO_S3: u8 = 7;
/// As [`WITH_NO_S3`], and the directory target's root moved away (its shipper waits
/// too): the cut's own work alone, its local files and its CPU.
pub(super) const WITH_NO_TARGETS: u8 = 8;

/// With `backup run` under the idle scheduling policy (`chrt --idle 0`, SCHED_IDLE): any
/// other thread that wakes takes its core at once (diagnosis, issue 37: is the cost CPU
/// the writer's etcd waits for?).
pub(super) const WITH_IDLE: u8 = 9;
/// As [`WITH_NO_TARGETS`], with the local chain on a tmpfs as well: no I/O at all, only
/// the cut's CPU (diagnosis, issue 37).
pub(super) const WITH_CPU_ONLY: u8 = 10;

/// Without `backup run`, with a bare watcher of every key instead (`etcdctl watch
/// --prefix ""`, its output discarded): what etcd's side of a watch costs the writer
/// (diagnosis, issue 37).
pub(super) const WITH_WATCH_ONLY: u8 = 11;

/// The diagnostic sides beside "with" and "without": (phase, short name, name in the
/// results).
pub(super) const DIAGNOSTIC: [(u8, &str, &str); 8] = [
    (WITH_TMPFS, "tmpfs", "with_local_chain_on_tmpfs"),
    (WITH_NICE, "niced", "with_niced"),
    (WITH_NO_S3, "no_s3", "with_s3_stopped"),
    (WITH_NO_TARGETS, "no_targets", "with_targets_away"),
    (WITH_IDLE, "idle", "with_sched_idle"),
    (WITH_CPU_ONLY, "cpu_only", "with_cpu_only"),
    (WITH_WATCH_ONLY, "watch_only", "with_a_bare_watch"),
    (WITHOUT_AGAIN, "aa", "without_again"),
];
