//! The scenarios: a fresh 3-member zone per history, the recorder's load on it, and one
//! kind of fault done to it while the recorder runs.
//!
//! Invariants:
//! - A scenario whose setup or fault fails is an error (the run fails loudly), never a
//!   history: a history is written only when the fault happened as planned and the zone
//!   was whole again before the recorder's clients stopped.
//! - The clients run at least the planned operations and until the fault is over, so
//!   each history holds operations before, during and after the fault.
//! - The zone, and every process it started, is gone when [`run`] returns, pass or fail.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::faults::{self, at, Target};
use crate::membership;
use crate::net::Net;
use crate::proxy::Delay;
use crate::record::{record, Plan, Summary};
use crate::recovery;
use crate::shared::Control;
use crate::sink::Sink;
use crate::zone::{LocalZone, Tools};
use zone_testkit::Kind;

/// Every scenario, in the order `scripts/consistency.sh` runs them.
pub const ALL: [&str; 16] = [
    "baseline",
    "kill",
    "stop",
    "partition",
    "latency",
    "maintain",
    "rotate",
    "membership",
    "ca-rotate",
    "upgrade",
    "etcd-path",
    "restore",
    "move",
    "backup",
    "undo",
    "access-migrate",
];

/// The kind of zone scenario `name` records on: the one `ca init` makes today, but where
/// the scenario's subject needs a zone of the previous kind (every client root).
fn kind_of(name: &str) -> Kind {
    match name {
        "access-migrate" => Kind::Previous(
            "the move of a zone of the previous kind to least privilege is its subject",
        ),
        "upgrade" => {
            Kind::Previous("it starts on etcd 3.4, which launch refuses under least privilege")
        }
        _ => Kind::LeastPrivilege,
    }
}

/// How one history is to be recorded.
#[derive(Debug, Clone)]
pub struct Options {
    pub tools: Tools,
    /// The zone's members are on `127.0.<subnet>.1-3` (the partition and latency
    /// scenarios': machines on `198.19.<subnet>.x`, see [`crate::net`]).
    pub subnet: u8,
    pub ops: u64,
    pub seed: u64,
    /// Where the history is written.
    pub out: PathBuf,
    /// Unique among the histories of a run (part of the key prefix).
    pub history: String,
}

/// What one scenario run did.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub summary: Summary,
    /// What the fault did, in order.
    pub faults: Vec<String>,
    pub seconds: f64,
}

type Fault = fn(&mut LocalZone, &Control) -> Result<Vec<String>, String>;

fn fault_of(name: &str) -> Option<Fault> {
    Some(match name {
        "baseline" => baseline,
        "kill" => kill,
        "stop" => stop,
        "partition" => partition,
        "latency" => latency,
        "maintain" => maintain,
        "rotate" => rotate,
        "membership" => membership,
        "ca-rotate" => ca_rotate,
        "upgrade" => upgrade,
        "etcd-path" => etcd_path,
        "restore" => restore,
        "move" => move_members,
        "backup" => backup,
        "undo" => undo,
        "access-migrate" => access_migrate,
        _ => return None,
    })
}

/// Records one history of scenario `name`.
pub fn run(name: &str, o: &Options) -> Result<Outcome, String> {
    let fault = fault_of(name)
        .ok_or_else(|| format!("unknown scenario {name:?} (known: {})", ALL.join(", ")))?;
    let started = Instant::now();
    // The backup scenario's owner identity and directory target, dropped after the zone.
    let aux = tempfile::Builder::new()
        .prefix("zone-recorder-aux.")
        .tempdir()
        .map_err(|e| format!("a temporary directory: {e}"))?;
    let extra = match name {
        "backup" => recovery::backup_table(
            &recovery::owner_recipient(aux.path())?,
            &recovery::target_dir(aux.path())?,
        ),
        _ => String::new(),
    };
    let kind = kind_of(name);
    let mut zone = match name {
        // Members on machines of their own, so a partition cuts real links and a relay
        // sits on real peer connections.
        "partition" | "latency" => {
            LocalZone::create_networked(&o.tools, kind, Net::new(o.subnet, 3)?, 3, &extra)?
        }
        _ => LocalZone::create(&o.tools, kind, o.subnet, 3, &extra)?,
    };
    if name == "latency" {
        zone.install_relays()?;
    }
    if name == "upgrade" {
        let old = crate::versions::old_etcd(&zone)?;
        (0..3).try_for_each(|i| zone.set_etcd_bin(i, &old))?;
    }
    if name == "etcd-path" {
        let first = crate::versions::first_etcd(&zone)?;
        (0..3).try_for_each(|i| zone.set_etcd_bin(i, &first))?;
    }
    zone.launch_all()?;
    zone.wait_healthy(Duration::from_secs(60))?;
    prepare(name, &zone)?;
    let plan = Plan {
        endpoints: zone.client_urls(),
        creds: zone.recorder_creds(0)?,
        // The access policy's prefixes have no leading '/'.
        prefix: match name {
            "access-migrate" => format!("cz/{}/", o.history),
            _ => format!("/cz/{}/", o.history),
        },
        keys: 5,
        ops: o.ops,
        clients_all: 3,
        op_timeout: Duration::from_secs(2),
        seed: o.seed,
    };
    let control = Arc::new(Control::default());
    let sink = Arc::new(Sink::new());
    let rt = crate::record::runtime()?;
    let (recorded, faulted) = std::thread::scope(|s| {
        let control_f = control.clone();
        let zone = &mut zone;
        let f = s.spawn(move || {
            let r = fault(zone, &control_f);
            if r.is_err() {
                control_f.abort.store(true, Ordering::SeqCst);
            }
            control_f.fault_done.store(true, Ordering::SeqCst);
            r
        });
        let recorded = rt.block_on(record(&plan, control.clone(), sink.clone()));
        if recorded.is_err() {
            control.abort.store(true, Ordering::SeqCst);
        }
        let faulted = f
            .join()
            .unwrap_or_else(|_| Err("the fault thread panicked".into()));
        (recorded, faulted)
    });
    let faults = faulted.map_err(|e| format!("scenario {name}: the fault failed: {e}"))?;
    let summary = recorded.map_err(|e| format!("scenario {name}: recording failed: {e}"))?;
    sink.write(&o.out)?;
    drop(zone);
    if name == "restore" && !sink.history().watches.iter().any(|w| w.compacted) {
        return Err(format!(
            "scenario restore: no watcher of the old cluster was told \"compacted\" (history in {})",
            o.out.display()
        ));
    }
    Ok(Outcome {
        summary,
        faults,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// What a scenario needs done before the recording starts.
fn prepare(name: &str, zone: &LocalZone) -> Result<(), String> {
    match name {
        "maintain" => faults::fill_and_free(zone),
        _ => Ok(()),
    }
}

fn baseline(_: &mut LocalZone, c: &Control) -> Result<Vec<String>, String> {
    at(c, 0.0)?;
    Ok(vec![])
}

fn kill(z: &mut LocalZone, c: &Control) -> Result<Vec<String>, String> {
    at(c, 0.15)?;
    let a = faults::kill_and_restart(z, Target::Follower, Duration::from_secs(2))?;
    at(c, 0.5)?;
    let b = faults::kill_and_restart(z, Target::Leader, Duration::from_secs(2))?;
    Ok(vec![a, b])
}

fn stop(z: &mut LocalZone, c: &Control) -> Result<Vec<String>, String> {
    at(c, 0.15)?;
    let a = faults::stop_and_continue(z, Target::Follower, Duration::from_secs(3))?;
    at(c, 0.5)?;
    let b = faults::stop_and_continue(z, Target::Leader, Duration::from_secs(3))?;
    Ok(vec![a, b])
}

fn partition(z: &mut LocalZone, c: &Control) -> Result<Vec<String>, String> {
    at(c, 0.1)?;
    let a = faults::partition(
        z,
        faults::Cut::Isolate(Target::Leader),
        Duration::from_secs(5),
    )?;
    at(c, 0.4)?;
    let b = faults::partition(
        z,
        faults::Cut::Isolate(Target::Follower),
        Duration::from_secs(5),
    )?;
    at(c, 0.7)?;
    let d = faults::partition(z, faults::Cut::Bridge, Duration::from_secs(5))?;
    Ok(vec![a, b, d])
}

fn latency(z: &mut LocalZone, c: &Control) -> Result<Vec<String>, String> {
    let ms = Duration::from_millis;
    at(c, 0.1)?;
    // A slow, lossy link: 30-70 ms, one chunk in 20 as if its segment were lost.
    let mild = Delay {
        base: ms(30),
        jitter: ms(40),
        stall_one_in: 20,
        stall: ms(250),
    };
    let a = faults::slow_peers(z, mild, Duration::from_secs(8))?;
    at(c, 0.5)?;
    // Past the heartbeat and near the election timeout (100 ms, 1 s): leaders change.
    let severe = Delay {
        base: ms(300),
        jitter: ms(300),
        stall_one_in: 10,
        stall: ms(1000),
    };
    let b = faults::slow_peers(z, severe, Duration::from_secs(6))?;
    Ok(vec![a, b])
}

fn move_members(z: &mut LocalZone, c: &Control) -> Result<Vec<String>, String> {
    let mut done = Vec::new();
    for (at_out, at_back, target) in [(0.1, 0.3, Target::Follower), (0.5, 0.7, Target::Leader)] {
        at(c, at_out)?;
        let i = target.pick(z)?;
        let home = z.members[i].1.clone();
        // 127.0.S.n -> 127.0.S.(10 + n), and back.
        let (net, host) = home
            .rsplit_once('.')
            .ok_or_else(|| format!("address {home}"))?;
        let host: u8 = host.parse().map_err(|_| format!("address {home}"))?;
        let away = format!("{net}.{}", host + 10);
        done.push(membership::move_member(z, i, &away)?);
        at(c, at_back)?;
        done.push(membership::move_member(z, i, &home)?);
    }
    Ok(done)
}

fn backup(z: &mut LocalZone, c: &Control) -> Result<Vec<String>, String> {
    at(c, 0.0)?;
    let mut runs = recovery::start_backups(z)?;
    at(c, 0.3)?;
    let a = recovery::writer_failover(z, &mut runs, recovery::Failure::Kill)?;
    at(c, 0.6)?;
    let b = recovery::writer_failover(z, &mut runs, recovery::Failure::Pause)?;
    Ok(vec![a, b])
}

fn undo(z: &mut LocalZone, c: &Control) -> Result<Vec<String>, String> {
    let mut done = Vec::new();
    for (when, from) in [(0.2, Target::Follower), (0.6, Target::Leader)] {
        at(c, when)?;
        let point = recovery::write_app(z)?;
        std::thread::sleep(Duration::from_millis(500));
        let i = from.pick(z)?;
        done.push(recovery::bad_write_undone(z, point, i)?);
    }
    Ok(done)
}

fn maintain(z: &mut LocalZone, c: &Control) -> Result<Vec<String>, String> {
    at(c, 0.15)?;
    let a = faults::maintain(z, 0)?;
    at(c, 0.5)?;
    let b = faults::snapshot_save(z, 1)?;
    Ok(vec![a, b])
}

fn rotate(z: &mut LocalZone, c: &Control) -> Result<Vec<String>, String> {
    at(c, 0.15)?;
    let a = membership::rotate_all(z)?;
    at(c, 0.5)?;
    let b = membership::rotate_all(z)?;
    Ok(vec![a, b])
}

fn membership(z: &mut LocalZone, c: &Control) -> Result<Vec<String>, String> {
    at(c, 0.1)?;
    let follower = z.follower()?;
    let a = membership::leave_and_join(z, follower)?;
    at(c, 0.4)?;
    let leader = z.leader()?;
    let b = membership::leave_and_join(z, leader)?;
    at(c, 0.6)?;
    let other = z.follower()?;
    let d = membership::replace(z, other)?;
    Ok(vec![a, b, d])
}

fn ca_rotate(z: &mut LocalZone, c: &Control) -> Result<Vec<String>, String> {
    at(c, 0.1)?;
    let a = membership::ca_trust_both(z)?;
    let b = membership::ca_reactivate(z)?;
    let d = membership::ca_retire(z)?;
    Ok(vec![a, b, d])
}

fn access_migrate(z: &mut LocalZone, c: &Control) -> Result<Vec<String>, String> {
    at(c, 0.1)?;
    let a = crate::access::identities(z)?;
    let b = crate::access::service(z, c)?;
    let d = crate::access::enforce(z)?;
    at(c, 0.9)?;
    Ok(vec![a, b, d])
}

fn upgrade(z: &mut LocalZone, c: &Control) -> Result<Vec<String>, String> {
    at(c, 0.15)?;
    Ok(vec![crate::versions::upgrade(z)?])
}

fn etcd_path(z: &mut LocalZone, c: &Control) -> Result<Vec<String>, String> {
    at(c, 0.05)?;
    crate::versions::path(z)
}

fn restore(z: &mut LocalZone, c: &Control) -> Result<Vec<String>, String> {
    at(c, 0.3)?;
    Ok(vec![faults::restore(z, c)?])
}
