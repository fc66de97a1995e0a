//! Issue 24's short run: histories recorded by zone-recorder on real 3-member zones
//! (`addresses::CONSISTENCY_*`; network-namespace machines zr115-*, zr116-* on
//! `addresses::CONSISTENCY_LATENCY` and `addresses::CONSISTENCY_PARTITION`) under faults, checked
//! by zone-consistency: the baseline, SIGKILL of a follower and of the leader, SIGSTOP of a
//! follower and of the leader, `maintain` defragmenting every member plus `snapshot save`, network
//! partitions and slow, lossy peer links, and the etcd path 3.5.30 -> 3.5.34 -> 3.6.15 -> 3.7.2 and
//! back down through etcd's downgrade to 3.5.34 (`addresses::CONSISTENCY_ETCD_PATH`), and a running
//! zone's move to least privilege (`addresses::CONSISTENCY_ACCESS`), all under load. Any anomaly
//! fails. And the pipeline is proven to see: a recorded history with an acknowledged write's effect
//! dropped is reported. `scripts/consistency.sh` runs the long version.

use crate::common;

use std::path::PathBuf;
use zone_consistency::{check_file, check_history, parse};
use zone_recorder::scenarios::{self, Options};
use zone_recorder::zone::Tools;
use zone_testkit::addresses;

fn options(subnet: u8, name: &str, ops: u64, dir: &tempfile::TempDir) -> Options {
    let seed = zone_recorder::rng::Rng::seed_from_time();
    eprintln!("{name}: seed {seed}");
    Options {
        tools: Tools {
            zone_etcd: PathBuf::from(env!("CARGO_BIN_EXE_zone-etcd")),
            bin_dir: common::repo().join("bin"),
        },
        subnet,
        ops,
        seed,
        out: dir.path().join(format!("{name}.jsonl")),
        history: format!("{name}-{seed}"),
    }
}

/// Records scenario `name` and checks it: panics naming the first anomaly (the history
/// kept). Returns the history's directory (removed when dropped) and file.
fn record_and_check(subnet: u8, name: &str, ops: u64) -> (tempfile::TempDir, PathBuf) {
    let (dir, path, _) = record_check_and_tell(subnet, name, ops);
    (dir, path)
}

/// [`record_and_check`], with what the recording saw (its errors among the notes).
fn record_check_and_tell(
    subnet: u8,
    name: &str,
    ops: u64,
) -> (tempfile::TempDir, PathBuf, scenarios::Outcome) {
    let dir = tempfile::tempdir().unwrap();
    let o = options(subnet, name, ops, &dir);
    let done = scenarios::run(name, &o).unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "{name}: {} operations ({} unknown, {} failed), {} watch responses, faults {:?}, {:.1} s",
        done.summary.ops,
        done.summary.unknown,
        done.summary.failed,
        done.summary.watch_responses,
        done.faults,
        done.seconds
    );
    assert!(done.summary.ops as u64 >= ops, "{:?}", done.summary);
    assert_eq!(
        done.summary.watchers_reached_fence, done.summary.watchers,
        "every watcher reached the fence: {:?}",
        done.summary
    );
    let report = check_file(&o.out).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        report.anomalies.is_empty(),
        "{name}: {} anomalies, the first: {} (history kept in {})",
        report.anomalies.len(),
        report.anomalies[0],
        keep(dir)
    );
    assert_eq!(report.ops, done.summary.ops);
    eprintln!("{name}: errors seen: {:?}", done.summary.notes);
    (dir, o.out, done)
}

/// Keeps a failing history's directory and names it.
fn keep(dir: tempfile::TempDir) -> String {
    dir.keep().display().to_string()
}

#[test]
fn baseline_and_leader_kills_have_no_anomaly() {
    record_and_check(addresses::CONSISTENCY_BASELINE.subnet(), "baseline", 200);
    record_and_check(addresses::CONSISTENCY_BASELINE.subnet(), "kill", 300);
}

#[test]
fn stopped_members_and_maintain_under_load_have_no_anomaly() {
    record_and_check(addresses::CONSISTENCY_STOP.subnet(), "stop", 300);
    record_and_check(addresses::CONSISTENCY_STOP.subnet(), "maintain", 300);
}

/// The members on network-namespace machines (`addresses::CONSISTENCY_PARTITION`): the leader,
/// then a follower, cut from the others, then a bridge cut; and peer links slowed past
/// the election timeout through the relays.
#[test]
fn partitions_have_no_anomaly() {
    record_and_check(addresses::CONSISTENCY_PARTITION.subnet(), "partition", 300);
}

/// Every step etcd allows, up to 3.7.2 and back to 3.5.34, one member at a time, under
/// writers and watchers (issue 33).
#[test]
fn the_etcd_path_up_and_back_down_has_no_anomaly() {
    record_and_check(addresses::CONSISTENCY_ETCD_PATH.subnet(), "etcd-path", 300);
}

/// A running zone moved to least privilege (issue 34: README "Moving a running zone to
/// least privilege"), one member at a time, under writers and watchers that change their
/// certificate for the service's identity half-way (`addresses::CONSISTENCY_ACCESS`): no anomaly,
/// and no write etcd refused (auth on never refuses the service its own keys).
#[test]
fn the_move_to_least_privilege_has_no_anomaly_and_refuses_no_write() {
    let (dir, _, done) = record_check_and_tell(
        addresses::CONSISTENCY_ACCESS.subnet(),
        "access-migrate",
        300,
    );
    // The recorder notes the distinct errors its clients saw: none may be a refusal of
    // auth (a permission, an old auth revision) or of the client's certificate (a TLS
    // alert): only members restarting (refused connections, a leader change).
    let refused: Vec<&String> = done
        .summary
        .notes
        .iter()
        .filter(|n| {
            let n = n.to_lowercase();
            ["permission", "auth", "certificate", "alert"]
                .iter()
                .any(|word| n.contains(word))
        })
        .collect();
    assert!(
        refused.is_empty(),
        "{refused:?} (history kept in {})",
        keep(dir)
    );
}

#[test]
fn slow_and_lossy_peer_links_have_no_anomaly() {
    record_and_check(addresses::CONSISTENCY_LATENCY.subnet(), "latency", 300);
}

/// A real recorded history, then the same with an acknowledged write's effect dropped:
/// the final read of a key says absent where an ok put wrote the value it held.
#[test]
fn a_recorded_history_with_a_lost_acknowledged_write_is_reported() {
    let (_dir, path) =
        record_and_check(addresses::CONSISTENCY_LOST_WRITE.subnet(), "baseline", 200);
    let text = std::fs::read_to_string(&path).unwrap();
    let clean = parse(&text).unwrap();
    assert!(check_history(&clean).anomalies.is_empty());

    let mut lost = clean.clone();
    let (index, put) = lost
        .finals
        .iter()
        .enumerate()
        .find_map(|(i, f)| {
            let value = f.value.as_ref()?;
            let put = clean.ops.iter().find(|o| {
                o.outcome == zone_consistency::Outcome::Ok && o.value.as_ref() == Some(value)
            })?;
            Some((i, put.clone()))
        })
        .expect("a key whose final value an acknowledged write wrote");
    lost.finals[index].value = None;
    lost.finals[index].mod_revision = 0;
    let report = check_history(&lost);
    assert!(
        !report.anomalies.is_empty(),
        "the write of {:?} to {} (revision {:?}) dropped from the final read, and nothing said",
        put.value,
        put.key,
        put.revision
    );
    eprintln!("reported: {}", report.anomalies[0]);
}
