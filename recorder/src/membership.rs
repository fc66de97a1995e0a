//! The faults that change who serves and with which certificates: leaf rotation, a member
//! leaving and joining again, a member whose disk was lost replaced (`join --replace`),
//! the zone CA's three phases (guide "Rotating the zone CA"), and rolling restarts.
//!
//! Invariants: each follows the guide's procedure for operators, one member at a time,
//! and returns only once `zone-etcd status` says every member is healthy with a quorum
//! (a joined learner is promoted by then); any step that fails is an error naming it.
//! The recorder's own credentials are copied again from member 0 whenever that member's
//! leaves move to another root, so the recorder keeps a certificate the zone accepts.

use std::time::{Duration, Instant};

use crate::faults::HEAL;
use crate::zone::LocalZone;

/// Waits until `zone-etcd status` from member `from` exits 0: every member healthy,
/// a quorum, no alarm.
pub fn wait_status_ok(zone: &mut LocalZone, from: usize) -> Result<(), String> {
    let deadline = Instant::now() + HEAL;
    loop {
        match zone.on(from, &["status"]) {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() > deadline => return Err(format!("after {HEAL:?}: {e}")),
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

/// `zone-etcd rotate` on every member while etcd serves: new leaves, no restart.
pub fn rotate_all(zone: &mut LocalZone) -> Result<String, String> {
    for i in 0..zone.members.len() {
        zone.on(i, &["rotate"])?;
        if zone.exited(i) {
            return Err(format!("{} exited during its rotate", zone.members[i].0));
        }
    }
    Ok("rotate on every member".into())
}

/// Member `i` leaves (`zone-etcd leave`; its etcd stops by itself), then joins again
/// (`zone-etcd join`, as a learner promoted once caught up).
pub fn leave_and_join(zone: &mut LocalZone, i: usize) -> Result<String, String> {
    let name = zone.members[i].0.clone();
    let step = |what: &str| {
        let what = format!("leave + join {name}: {what}");
        move |e: String| format!("{what}: {e}")
    };
    zone.on(i, &["leave"]).map_err(step("leave"))?;
    zone.wait_exit(i, Duration::from_secs(30))
        .map_err(step("its etcd stopping"))?;
    zone.wait_healthy(HEAL)
        .map_err(step("the others healthy"))?;
    join(zone, i, &["join"]).map_err(step("join"))?;
    wait_status_ok(zone, (i + 1) % zone.members.len()).map_err(step("status"))?;
    Ok(format!("leave + join {name}"))
}

/// Member `i` loses its disk (SIGKILL, its data directory deleted) and is replaced with
/// `zone-etcd join --replace`.
pub fn replace(zone: &mut LocalZone, i: usize) -> Result<String, String> {
    zone.kill(i);
    let data = zone.node_dir(i).join("state/data");
    std::fs::remove_dir_all(&data).map_err(|e| format!("{}: {e}", data.display()))?;
    zone.wait_healthy(HEAL)?;
    join(zone, i, &["join", "--replace"])?;
    wait_status_ok(zone, (i + 1) % zone.members.len())?;
    Ok(format!(
        "join --replace {} (data deleted)",
        zone.members[i].0
    ))
}

/// Starts `join` as member `i`'s process; a join the cluster refuses at once (a leader
/// still being elected after a removal: "not healthy, so no member is added") is started
/// again, up to 5 times. Returns once the zone answers with it.
fn join(zone: &mut LocalZone, i: usize, args: &[&str]) -> Result<(), String> {
    for attempt in 1..=5 {
        zone.start(i, args)?;
        std::thread::sleep(Duration::from_secs(3));
        if !zone.exited(i) {
            return zone.wait_healthy(HEAL);
        }
        if attempt == 5 {
            return Err(format!(
                "{} {}: {}",
                args.join(" "),
                zone.members[i].0,
                zone.log_tail(i)
            ));
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    Ok(())
}

/// Stops each member with SIGTERM and launches it again, each healthy before the next.
pub fn rolling_restart(zone: &mut LocalZone) -> Result<(), String> {
    for i in 0..zone.members.len() {
        zone.terminate(i)?;
        zone.launch(i)?;
        zone.wait_healthy(HEAL)?;
        wait_status_ok(zone, i)?;
    }
    Ok(())
}

/// Phase 1 of the zone CA's rotation: a new root, every node trusting both, rolling
/// restart.
pub fn ca_trust_both(zone: &mut LocalZone) -> Result<String, String> {
    let (old, new) = (zone.path().join("ca"), zone.path().join("ca-next"));
    zone.zone_etcd(&["ca", "rotate", "--ca", &s(&old), "--out", &s(&new)])?;
    for i in 0..zone.members.len() {
        zone.on(i, &["trust", "--ca", &s(&new.join("trust.crt"))])?;
    }
    rolling_restart(zone)?;
    // The recorder trusts both roots too (member 0's CA file now holds both).
    zone.recorder_creds(0)?;
    Ok("ca rotate: both roots trusted, rolling restart".into())
}

/// Phase 2: every node re-activated under the new root, its leaves rotated (no restart);
/// the recorder takes member 0's new client certificate.
pub fn ca_reactivate(zone: &mut LocalZone) -> Result<String, String> {
    let new = zone.path().join("ca-next");
    for i in 0..zone.members.len() {
        let bundle = zone.path().join(format!("reactivated-{i}"));
        activate(zone, &new, &zone.path().join("zone.toml"), i, &bundle)?;
        let pki = zone.node_dir(i).join("pki");
        std::fs::rename(&pki, zone.node_dir(i).join("pki.old"))
            .and_then(|()| std::fs::rename(bundle.join("pki"), &pki))
            .map_err(|e| format!("{}: {e}", pki.display()))?;
        zone.on(i, &["rotate"])?;
        if i == 0 {
            zone.recorder_creds(0)?;
        }
    }
    wait_status_ok(zone, 0)?;
    Ok("ca rotate: every node re-activated under the new root and rotated".into())
}

/// Phase 3: the old root retired, every node trusting the new one alone, rolling restart.
pub fn ca_retire(zone: &mut LocalZone) -> Result<String, String> {
    let new = zone.path().join("ca-next");
    zone.zone_etcd(&["ca", "retire", "--ca", &s(&new)])?;
    for i in 0..zone.members.len() {
        zone.on(i, &["trust", "--ca", &s(&new.join("ca.crt"))])?;
    }
    rolling_restart(zone)?;
    zone.recorder_creds(0)?;
    Ok("ca retire: the old root dropped, rolling restart".into())
}

/// `zone-etcd activate` of member `i` by the CA in `ca` and the zone file `zone_file`,
/// its bundle into `out`.
pub fn activate(
    zone: &LocalZone,
    ca: &std::path::Path,
    zone_file: &std::path::Path,
    i: usize,
    out: &std::path::Path,
) -> Result<String, String> {
    zone.zone_etcd(&[
        "activate",
        "--ca",
        &s(ca),
        "--zone",
        &s(zone_file),
        "--node",
        &zone.members[i].0,
        "--out",
        &s(out),
    ])
}

fn s(p: &std::path::Path) -> String {
    p.display().to_string()
}

/// The cluster version `zone-etcd status --json` reports.
pub(crate) fn cluster_version(zone: &LocalZone) -> Result<String, String> {
    let out = zone.on(0, &["status", "--json"])?;
    let json: serde_json::Value =
        serde_json::from_str(&out).map_err(|e| format!("status --json: {e}"))?;
    Ok(json["cluster_version"].as_str().unwrap_or("").to_string())
}

/// guide "A member that moves": member `i` gets address `to` in the zone file (and in
/// every other node's member list), is re-activated there (its node CA is constrained to
/// its address; node.toml and pki/ copied over its bundle, state/ kept) and launched; the
/// cluster must then list it, same member, at its new peer URL.
pub fn move_member(zone: &mut LocalZone, i: usize, to: &str) -> Result<String, String> {
    let (name, from) = zone.members[i].clone();
    let step = |what: &str| {
        let what = format!("move {name} {from} -> {to}: {what}");
        move |e: String| format!("{what}: {e}")
    };
    let id_before = member_id(zone, (i + 1) % zone.members.len(), &name)?;
    let zone_file = zone.path().join("zone.toml");
    let mut files = vec![zone_file.clone()];
    files.extend(
        (0..zone.members.len())
            .filter(|&j| j != i)
            .map(|j| zone.config(j)),
    );
    for file in &files {
        readdress(file, &from, to).map_err(step("the member lists"))?;
    }
    zone.terminate(i).map_err(step("stopping it"))?;
    let bundle = zone.path().join(format!("moved-{i}-{to}"));
    activate(zone, &zone.path().join("ca"), &zone_file, i, &bundle).map_err(step("activate"))?;
    let dir = zone.node_dir(i);
    let aside = zone.path().join(format!("pki-before-{i}-{to}"));
    std::fs::rename(dir.join("pki"), &aside)
        .and_then(|()| std::fs::rename(bundle.join("pki"), dir.join("pki")))
        .and_then(|()| std::fs::rename(bundle.join("node.toml"), zone.config(i)))
        .map_err(|e| format!("move {name}: the new bundle: {e}"))?;
    zone.members[i].1 = to.to_string();
    zone.launch(i).map_err(step("launch"))?;
    zone.wait_healthy(HEAL).map_err(step("healthy"))?;
    wait_status_ok(zone, i).map_err(step("status"))?;
    let out = zone.on(i, &["status", "--json"])?;
    let json: serde_json::Value =
        serde_json::from_str(&out).map_err(|e| format!("status --json: {e}"))?;
    let listed = json["members"].as_array().and_then(|ms| {
        ms.iter()
            .find(|m| m["name"] == name.as_str())
            .map(|m| (m["id"].clone(), m["peer_urls"][0].clone()))
    });
    let want = serde_json::Value::from(format!("https://{to}:{}", crate::zone::PEER_PORT));
    match listed {
        Some((id, url)) if id == id_before && url == want => {
            Ok(format!("move {name} {from} -> {to} (same member {id})"))
        }
        other => Err(format!(
            "move {name}: the cluster lists {other:?}, not member {id_before} at {want}"
        )),
    }
}

/// The member ID `status --json` from member `from` gives `name`.
fn member_id(zone: &LocalZone, from: usize, name: &str) -> Result<serde_json::Value, String> {
    let out = zone.on(from, &["status", "--json"])?;
    let json: serde_json::Value =
        serde_json::from_str(&out).map_err(|e| format!("status --json: {e}"))?;
    json["members"]
        .as_array()
        .and_then(|ms| {
            ms.iter()
                .find(|m| m["name"] == name)
                .map(|m| m["id"].clone())
        })
        .ok_or_else(|| format!("status lists no member {name}: {out}"))
}

/// Rewrites the one `address = "<from>"` line of a zone file or node.toml to `to`.
fn readdress(file: &std::path::Path, from: &str, to: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let line = format!("address = \"{from}\"");
    if text.matches(&line).count() != 1 {
        return Err(format!("{}: not exactly one {line}", file.display()));
    }
    let tmp = file.with_extension("moving");
    std::fs::write(&tmp, text.replace(&line, &format!("address = \"{to}\"")))
        .and_then(|()| std::fs::rename(&tmp, file))
        .map_err(|e| format!("{}: {e}", file.display()))
}
