//! The etcd versions scenarios: the rolling upgrade 3.4.23 -> 3.5.30 (`upgrade`), and the
//! etcd path (`etcd-path`): the zone moves along every step etcd's guides allow, from
//! Debian's 3.5.30 (the bundle before 3.6) to etcd's official 3.5.34, 3.6.15 (the bundle)
//! and 3.7.2, and back down through etcd's downgrade to 3.6.15 and 3.5.34 (guide "etcd
//! versions and rolling upgrades").
//!
//! Invariants: one member at a time, each healthy (`zone-etcd status` exits 0) before the
//! next; each minor step waits for etcd to move the cluster version; before 3.7, every
//! member on 3.6 has taken a snapshot past the v2 entries etcd 3.5 wrote (the launcher
//! refuses 3.7 otherwise): each restarts on 3.6 once with a low `snapshot_count`.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use crate::faults::HEAL;
use crate::membership::{cluster_version, wait_status_ok};
use crate::zone::LocalZone;

/// The etcd the scenario starts on (`scripts/fetch-etcd.sh --compat`).
pub fn first_etcd(zone: &LocalZone) -> Result<PathBuf, String> {
    release(zone, "3.5.30")
}

/// `bin/etcd-<version>/etcd`, or the bundle (`bin/etcd`) for 3.6.15.
fn release(zone: &LocalZone, version: &str) -> Result<PathBuf, String> {
    let path = match version {
        "3.6.15" => zone.tools.bin_dir.join("etcd"),
        _ => zone.tools.bin_dir.join(format!("etcd-{version}/etcd")),
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{} missing: run scripts/fetch-etcd.sh --compat",
            path.display()
        ))
    }
}

/// Every member, in turn, stopped, pointed at `version`, launched and healthy.
fn roll(zone: &mut LocalZone, version: &str) -> Result<(), String> {
    let etcd = release(zone, version)?;
    for i in 0..zone.members.len() {
        zone.terminate(i)?;
        zone.set_etcd_bin(i, &etcd)?;
        zone.launch(i)?;
        zone.wait_healthy(HEAL)?;
        wait_status_ok(zone, i)?;
    }
    Ok(())
}

/// Waits until etcd reports the cluster version `want` (`3.6.0`).
fn wait_cluster(zone: &LocalZone, want: &str) -> Result<(), String> {
    let deadline = Instant::now() + HEAL;
    loop {
        let now = cluster_version(zone)?;
        if now == want {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("cluster version {now}, not {want}, after {HEAL:?}"));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Each member restarts on 3.6 with `snapshot_count = 200` in its node.toml, then is
/// waited for until it wrote a snapshot after its restart.
fn snapshot_past_3_5(zone: &mut LocalZone) -> Result<(), String> {
    for i in 0..zone.members.len() {
        let config = zone.config(i);
        let text =
            std::fs::read_to_string(&config).map_err(|e| format!("{}: {e}", config.display()))?;
        if !text.contains("snapshot_count") {
            std::fs::write(
                &config,
                format!("{text}\n[settings]\nsnapshot_count = 200\n"),
            )
            .map_err(|e| format!("{}: {e}", config.display()))?;
        }
    }
    let restarted = SystemTime::now();
    roll(zone, "3.6.15")?;
    let deadline = Instant::now() + HEAL;
    for i in 0..zone.members.len() {
        let snap = zone.node_dir(i).join("state/data/member/snap");
        loop {
            let fresh = std::fs::read_dir(&snap)
                .map_err(|e| format!("{}: {e}", snap.display()))?
                .flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "snap"))
                .any(|e| {
                    e.metadata()
                        .and_then(|m| m.modified())
                        .is_ok_and(|t| t > restarted)
                });
            if fresh {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} took no snapshot on 3.6 within {HEAL:?}",
                    zone.members[i].0
                ));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    Ok(())
}

/// `zone-etcd downgrade --to <to>` from member 0, retried while etcd still ends the last
/// downgrade (it refuses a new one until every member runs the old target).
fn downgrade(zone: &mut LocalZone, to: &str) -> Result<(), String> {
    let deadline = Instant::now() + HEAL;
    loop {
        match zone.on(0, &["downgrade", "--to", to]) {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() > deadline => return Err(format!("downgrade --to {to}: {e}")),
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

/// The whole path up and back down; returns what it did.
pub fn path(zone: &mut LocalZone) -> Result<Vec<String>, String> {
    let mut done = Vec::new();
    let before = cluster_version(zone)?;
    if before != "3.5.0" {
        return Err(format!(
            "the zone runs cluster version {before}, not 3.5 before the path"
        ));
    }
    roll(zone, "3.5.34")?;
    done.push("every member 3.5.30 -> 3.5.34".to_string());
    roll(zone, "3.6.15")?;
    wait_cluster(zone, "3.6.0")?;
    done.push("every member -> 3.6.15, cluster version 3.6".to_string());
    snapshot_past_3_5(zone)?;
    done.push("every member restarted on 3.6 and took a snapshot".to_string());
    roll(zone, "3.7.2")?;
    wait_cluster(zone, "3.7.0")?;
    done.push("every member -> 3.7.2, cluster version 3.7".to_string());
    downgrade(zone, "3.6")?;
    wait_cluster(zone, "3.6.0")?;
    roll(zone, "3.6.15")?;
    done.push("downgrade to 3.6: every member -> 3.6.15".to_string());
    downgrade(zone, "3.5")?;
    wait_cluster(zone, "3.5.0")?;
    roll(zone, "3.5.34")?;
    done.push("downgrade to 3.5: every member -> 3.5.34, cluster version 3.5".to_string());
    Ok(done)
}

/// The older etcd of the upgrade scenario (`scripts/fetch-etcd.sh --compat`).
pub fn old_etcd(zone: &LocalZone) -> Result<std::path::PathBuf, String> {
    release(zone, "3.4.23")
}

/// The rolling upgrade of guide "etcd versions and rolling upgrades": one member at a
/// time stopped, pointed at Debian's etcd 3.5.30 (the bundle before 3.6; 3.4 -> 3.6 would
/// skip a minor version), launched, healthy before the next.
pub fn upgrade(zone: &mut LocalZone) -> Result<String, String> {
    let new = zone.tools.bin_dir.join("etcd-3.5.30/etcd");
    let before = cluster_version(zone)?;
    if !before.starts_with("3.4") {
        return Err(format!(
            "the zone runs cluster version {before}, not 3.4 before the upgrade"
        ));
    }
    for i in 0..zone.members.len() {
        zone.terminate(i)?;
        zone.set_etcd_bin(i, &new)?;
        zone.launch(i)?;
        zone.wait_healthy(HEAL)?;
        wait_status_ok(zone, i)?;
    }
    let deadline = Instant::now() + HEAL;
    loop {
        let after = cluster_version(zone)?;
        if after.starts_with("3.5") {
            return Ok(format!(
                "rolling upgrade: cluster version {before} -> {after}"
            ));
        }
        if Instant::now() > deadline {
            return Err(format!("cluster version still {after} after the upgrade"));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
