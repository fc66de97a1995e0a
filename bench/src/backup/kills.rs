//! The recovery point: SIGKILL of every member and every `backup run` at once, under the
//! writer, at a random instant against the cuts; then each acknowledged write is looked
//! up in the chain each target holds, and the zone comes back from its members' data.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::load::{Rng, Sample};
use super::reader::ChainReader;
use super::rounds::{Bench, Priority};
use crate::support::*;

/// `count` kills; returns each kill's figures and the instant of the last one (every write
/// acknowledged before it must be in the chain once a new term shipped).
pub(super) fn recovery_points(
    b: &mut Bench,
    members: &mut Vec<Process>,
    client: &TlsClient,
    count: usize,
    delta_every: Duration,
) -> Result<(Vec<Value>, Instant)> {
    let mut rng = Rng(std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64 | 1)
        .unwrap_or(7));
    let mut settled = Instant::now(); // every write acknowledged before this must be in
    let mut kills = Vec::new();
    for k in 0..count {
        let (runs, active) = b.start_term(&format!("k{k}"), true, Priority::Normal)?;
        // A random instant relative to the segment cuts: 2 s, then up to 2 x delta_every.
        let wait = Duration::from_secs(2)
            + Duration::from_millis(rng.next() % (2 * delta_every.as_millis() as u64));
        std::thread::sleep(wait);
        b.record_memory(&runs, &active);
        let pids: Vec<u32> = members.iter().chain(&runs).map(Process::pid).collect();
        let killed_at = Instant::now();
        for pid in &pids {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(*pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        drop(runs);
        drop(std::mem::take(members));
        // In-flight uploads that left the machine before the kill land now.
        std::thread::sleep(Duration::from_millis(500));
        b.refresh()?;
        let samples = b.load.samples();
        let acked: Vec<(&Sample, Instant)> = samples
            .iter()
            .filter_map(|s| s.acked.filter(|a| *a < killed_at).map(|a| (s, a)))
            .collect();
        let mut per_target = serde_json::Map::new();
        for r in &b.readers {
            let newest_in = acked
                .iter()
                .filter(|(s, _)| r.holds(s))
                .map(|(_, a)| *a)
                .max();
            let missing: Vec<Instant> = acked
                .iter()
                .filter(|(s, _)| !r.holds(s))
                .map(|(_, a)| *a)
                .collect();
            let oldest_missing = missing.iter().min().copied();
            let lost = missing.iter().filter(|a| **a < settled).count();
            per_target.insert(
                r.name.into(),
                json!({
                    "newest_in_chain_s": newest_in.map(|a| round((killed_at - a).as_secs_f64())),
                    "oldest_missing_s": round(oldest_missing.map_or(0.0, |a| (killed_at - a).as_secs_f64())),
                    "missing_writes": missing.len(),
                    "lost_writes": lost,
                    "chain_check": r.check().err().unwrap_or_else(|| "ok".into()),
                }),
            );
        }
        eprintln!(
            "    kill {k}: s3 newest in chain {} s before, oldest missing {} s ({} writes); dir {} s / {} s",
            per_target["s3"]["newest_in_chain_s"],
            per_target["s3"]["oldest_missing_s"],
            per_target["s3"]["missing_writes"],
            per_target["dir"]["newest_in_chain_s"],
            per_target["dir"]["oldest_missing_s"],
        );
        kills.push(
            json!({"active": active, "waited_s": round(wait.as_secs_f64()), "targets": per_target}),
        );
        settled = killed_at;
        // Back from the members' data.
        *members = (0..3).map(|i| b.zone.launch(i)).collect::<Result<_>>()?;
        b.zone.wait_healthy(client, Instant::now())?;
    }
    Ok((kills, settled))
}

/// Per target: the recovery point of every kill (oldest acknowledged write missing,
/// newest in the chain) and the acknowledged writes never in the chain.
pub(super) fn per_target(
    readers: &[ChainReader],
    kills: &[Value],
    samples: &[Sample],
    settled: Instant,
) -> serde_json::Map<String, Value> {
    let rpo = |target: &str, key: &str| -> Vec<f64> {
        kills
            .iter()
            .filter_map(|k| k["targets"][target][key].as_f64())
            .collect()
    };
    let mut rpo_json = serde_json::Map::new();
    for r in readers {
        // Every write acknowledged before the last kill is in the chain once the next
        // term has shipped its first delta (checked before each kill for the previous).
        let after_last = samples
            .iter()
            .filter(|s| s.acked.is_some_and(|a| a < settled) && !r.holds(s))
            .count() as u64;
        let lost: u64 = kills
            .iter()
            .filter_map(|k| k["targets"][r.name]["lost_writes"].as_u64())
            .sum::<u64>()
            + after_last;
        rpo_json.insert(
            r.name.into(),
            json!({
                "oldest_missing_s": spread(&rpo(r.name, "oldest_missing_s"), ""),
                "newest_in_chain_s": spread(&rpo(r.name, "newest_in_chain_s"), ""),
                "lost_writes": lost,
            }),
        );
    }
    rpo_json
}
