//! The fault actions scenarios are made of, each done to a [`LocalZone`] from the fault
//! thread while the recorder runs.
//!
//! Invariants: each action either did what it says and left the zone whole again (every
//! member running and the zone answering a quorum read), or returns an error naming what
//! failed: a fault that did not happen must fail the run, never pass as a clean history.
//! Signals go to the PIDs the zone holds, never by name.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::connect::connect_now;
use crate::health::block_on;
use crate::proxy::Delay;
use crate::shared::Control;
use crate::zone::{LocalZone, PEER_PORT};

/// Who a fault is done to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Leader,
    Follower,
}

impl Target {
    pub fn pick(self, zone: &LocalZone) -> Result<usize, String> {
        match self {
            Target::Leader => zone.leader(),
            Target::Follower => zone.follower(),
        }
    }
}

/// How long a zone gets to be whole again after a fault.
pub const HEAL: Duration = Duration::from_secs(90);

/// SIGKILL of `target`, down for `down`, then `zone-etcd launch` again.
pub fn kill_and_restart(
    zone: &mut LocalZone,
    target: Target,
    down: Duration,
) -> Result<String, String> {
    let i = target.pick(zone)?;
    zone.signal(i, Signal::SIGKILL)?;
    std::thread::sleep(down);
    zone.launch(i)?;
    zone.wait_healthy(HEAL)?;
    Ok(format!("SIGKILL {:?} {}", target, zone.members[i].0))
}

/// SIGSTOP of `target` for `stopped`, then SIGCONT.
pub fn stop_and_continue(
    zone: &mut LocalZone,
    target: Target,
    stopped: Duration,
) -> Result<String, String> {
    let i = target.pick(zone)?;
    zone.signal(i, Signal::SIGSTOP)?;
    std::thread::sleep(stopped);
    zone.signal(i, Signal::SIGCONT)?;
    zone.wait_healthy(HEAL)?;
    Ok(format!(
        "SIGSTOP {:?} {} for {stopped:?}",
        target, zone.members[i].0
    ))
}

/// A network partition between the members (their machines' own iptables).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// One member cut from both others (a minority of one; clients still reach it).
    Isolate(Target),
    /// The leader and one follower cut apart, both still reaching the third member
    /// (Jepsen's "bridge": no majority side, the third member bridges them).
    Bridge,
}

/// Partitions the zone as `cut` says for `held`, heals it, and waits until the zone is
/// whole again. Needs a zone on network-namespace machines
/// ([`LocalZone::create_networked`]).
///
/// The cut is proven, not assumed: every pair it cuts must fail to connect to each other's
/// peer port while it holds, and connect again once healed; an isolated leader must be
/// replaced by a leader on the other side before the cut is healed.
pub fn partition(zone: &mut LocalZone, cut: Cut, held: Duration) -> Result<String, String> {
    let count = zone.members.len();
    let started = Instant::now();
    let (pairs, what, isolated_leader) = match cut {
        Cut::Isolate(target) => {
            let i = target.pick(zone)?;
            let pairs: Vec<(usize, usize)> =
                (0..count).filter(|&j| j != i).map(|j| (i, j)).collect();
            let what = format!("{:?} {} cut from the others", target, zone.members[i].0);
            (pairs, what, (target == Target::Leader).then_some(i))
        }
        Cut::Bridge => {
            let leader = zone.leader()?;
            let other = (leader + 1) % count;
            let what = format!(
                "leader {} and {} cut apart, both reaching the third",
                zone.members[leader].0, zone.members[other].0
            );
            (vec![(leader, other)], what, None)
        }
    };
    let net = machines(zone)?;
    for &(a, b) in &pairs {
        net.cut(a, b)?;
    }
    for &(a, b) in &pairs {
        if net.reaches(a, b, PEER_PORT)? || net.reaches(b, a, PEER_PORT)? {
            return Err(format!("partition: {what}, but {a} and {b} still connect"));
        }
    }
    if let Some(old) = isolated_leader {
        new_leader_without(zone, old, started + held + Duration::from_secs(10))
            .map_err(|e| format!("partition: {what}, but {e}"))?;
    }
    std::thread::sleep(held.saturating_sub(started.elapsed()));
    net.heal()?;
    for &(a, b) in &pairs {
        if !net.reaches(a, b, PEER_PORT)? {
            return Err(format!("partition: healed, but {a} still cannot reach {b}"));
        }
    }
    zone.wait_healthy(HEAL)?;
    Ok(format!("partition: {what} for {held:?}, healed"))
}

fn machines(zone: &LocalZone) -> Result<&crate::net::Net, String> {
    zone.net
        .as_ref()
        .ok_or_else(|| "the zone has no machines to partition".to_string())
}

/// Waits until a member other than `old` says a member other than `old` leads.
fn new_leader_without(zone: &LocalZone, old: usize, deadline: Instant) -> Result<(), String> {
    let old_id = zone.status(old)?.0;
    loop {
        let elected = (0..zone.members.len())
            .filter(|&j| j != old)
            .any(|j| zone.status(j).is_ok_and(|(_, l)| l != 0 && l != old_id));
        if elected {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err("the others elected no new leader".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Holds back the bytes of every peer connection as `delay` says for `held`, then lets
/// them flow freely and waits until the zone is whole again. Needs the relays
/// ([`LocalZone::install_relays`]).
///
/// The path is proven, not assumed: before, every directed pair of members must have
/// sent bytes through the relays; while it holds, every pair must have had chunks held
/// back.
pub fn slow_peers(zone: &mut LocalZone, delay: Delay, held: Duration) -> Result<String, String> {
    let relays = zone
        .relays
        .as_ref()
        .ok_or("the zone's peer connections have no relays")?;
    let count = zone.members.len();
    let pairs: Vec<(usize, usize)> = (0..count)
        .flat_map(|a| (0..count).filter(move |&b| b != a).map(move |b| (a, b)))
        .collect();
    let relayed = relays.relayed();
    if let Some(p) = pairs
        .iter()
        .find(|p| relayed.get(p).copied().unwrap_or(0) == 0)
    {
        return Err(format!(
            "no peer traffic from member {} to {} went through the relays",
            p.0, p.1
        ));
    }
    let before = relays.delayed();
    relays.set(delay);
    std::thread::sleep(held);
    relays.set(Delay::default());
    let after = relays.delayed();
    let held_back = |p: &(usize, usize)| {
        after.get(p).copied().unwrap_or(0) - before.get(p).copied().unwrap_or(0)
    };
    if let Some(p) = pairs.iter().find(|p| held_back(p) == 0) {
        return Err(format!(
            "nothing from member {} to {} was held back",
            p.0, p.1
        ));
    }
    let total: u64 = pairs.iter().map(held_back).sum();
    zone.wait_healthy(HEAL)?;
    Ok(format!(
        "peer links slowed ({:?} + up to {:?}, one chunk in {} {:?} more) for {held:?}: {total} chunks held back",
        delay.base, delay.jitter, delay.stall_one_in, delay.stall
    ))
}

/// Writes about 5 MiB under a prefix outside any history, deletes it and compacts the
/// history physically up to now: every member's database is then mostly free pages, so
/// `maintain` defragments each. Before the recording (the compaction is below its start).
pub fn fill_and_free(zone: &LocalZone) -> Result<(), String> {
    let urls = vec![zone.client_url(0)];
    let creds = zone.creds(0);
    let value = "x".repeat(8 * 1024);
    for round in 0..6 {
        let (urls, creds, value) = (urls.clone(), creds.clone(), value.clone());
        block_on(async move {
            let mut c = connect_now(&urls, &creds, Duration::from_secs(10)).await?;
            let ops: Vec<etcd_client::TxnOp> = (0..100)
                .map(|i| {
                    etcd_client::TxnOp::put(format!("/cz-filler/{round}/{i}"), value.as_str(), None)
                })
                .collect();
            c.txn(etcd_client::Txn::new().and_then(ops))
                .await
                .map_err(|e| format!("filling: {e}"))?;
            Ok(())
        })?;
    }
    block_on(async move {
        let mut c = connect_now(&urls, &creds, Duration::from_secs(10)).await?;
        let r = c
            .delete(
                "/cz-filler/",
                Some(etcd_client::DeleteOptions::new().with_prefix()),
            )
            .await
            .map_err(|e| format!("freeing: {e}"))?;
        let rev = r.header().map_or(0, |h| h.revision());
        c.compact(
            rev,
            Some(etcd_client::CompactionOptions::new().with_physical()),
        )
        .await
        .map_err(|e| format!("compacting: {e}"))?;
        Ok(())
    })
}

/// `zone-etcd maintain --json` from member `i`: every member must say `defragmented`.
pub fn maintain(zone: &LocalZone, i: usize) -> Result<String, String> {
    let out = zone.on(i, &["maintain", "--json"])?;
    let json: serde_json::Value =
        serde_json::from_str(&out).map_err(|e| format!("maintain --json: {e}: {out}"))?;
    let rows = json["members"].as_array().cloned().unwrap_or_default();
    let done = rows
        .iter()
        .filter(|r| r["action"] == "defragmented")
        .count();
    if done != zone.members.len() {
        return Err(format!(
            "maintain defragmented {done} of {} members: {out}",
            zone.members.len()
        ));
    }
    Ok(format!("maintain defragmented {done} members"))
}

/// `zone-etcd snapshot save` from member `i` into the zone's directory.
pub fn snapshot_save(zone: &LocalZone, i: usize) -> Result<String, String> {
    let file = zone.path().join("snapshot.db");
    zone.on(
        i,
        &["snapshot", "save", "--out", &file.display().to_string()],
    )?;
    let size = std::fs::metadata(&file)
        .map_err(|e| format!("{}: {e}", file.display()))?
        .len();
    Ok(format!("snapshot save ({size} bytes)"))
}

/// Waits for `fraction` of the planned operations (the fault's moment).
pub fn at(control: &Control, fraction: f64) -> Result<(), String> {
    control.wait_ops(fraction, Duration::from_secs(300))
}

/// Restore (guide "Restore, step by step") under the recorder: the clients paused (every
/// operation in flight returned), a snapshot saved from member 0, every member stopped
/// and restored from it, the zone launched again, then the clients resumed. Nothing was
/// written between the snapshot and the restore, so every read after it must agree with
/// the snapshot plus the later writes; the restore raises revisions and marks them
/// compacted, so a watcher of the old cluster that resumes is told "compacted".
pub fn restore(zone: &mut LocalZone, control: &Control) -> Result<String, String> {
    use std::sync::atomic::Ordering;
    control.paused.store(true, Ordering::SeqCst);
    // A client checks the pause before each operation; one in flight ends within its
    // timeout (2 s).
    std::thread::sleep(Duration::from_millis(2500));
    let file = zone.path().join("restore-from.db");
    let result = (|| {
        zone.on(
            0,
            &["snapshot", "save", "--out", &file.display().to_string()],
        )?;
        for i in 0..zone.members.len() {
            zone.terminate(i)?;
        }
        for i in 0..zone.members.len() {
            zone.on(i, &["restore", "--from", &file.display().to_string()])?;
        }
        zone.launch_all()?;
        zone.wait_healthy(HEAL)
    })();
    control.paused.store(false, Ordering::SeqCst);
    result?;
    Ok("snapshot save, every member stopped and restored from it, launched".into())
}
