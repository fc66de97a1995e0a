//! The operations that keep and recover the zone's data, done under the recorder: `backup
//! run` on every member with its writer killed (a failover), and `undo` of a bad write
//! under another prefix.
//!
//! Invariants: each action proves it did what it says (a new writer named by `backup
//! status`, the chain reaching the zone's revision after it; the undone keys exactly as
//! they were, read back), or returns an error naming what failed. Neither writes under a
//! history's prefix: their own keys (the election, the undone application's keys) are
//! outside it, so the history holds only the recorder's operations.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::connect::connect_now;
use crate::faults::HEAL;
use crate::health::block_on;
use crate::zone::LocalZone;

/// The `[backup]` table of the backup scenario: the owner's recipient, deltas every
/// second, one directory target.
pub fn backup_table(recipient: &str, target: &std::path::Path) -> String {
    format!(
        "[backup]\nrecipients = [\"{recipient}\"]\nfull_every = \"1h\"\ndelta_every = \"1s\"\n\n[[backup.target]]\nurl = \"file://{}\"\n",
        target.display()
    )
}

/// The directory target under `dir`, made (0700, as the guide asks of one).
pub fn target_dir(dir: &std::path::Path) -> Result<std::path::PathBuf, String> {
    use std::os::unix::fs::DirBuilderExt;
    let target = dir.join("target");
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&target)
        .map_err(|e| format!("{}: {e}", target.display()))?;
    Ok(target)
}

/// A new owner identity (`age-keygen`, Debian's age) in `dir`: its recipient.
pub fn owner_recipient(dir: &std::path::Path) -> Result<String, String> {
    let key = dir.join("owner.key");
    let out = std::process::Command::new("age-keygen")
        .arg("-o")
        .arg(&key)
        .output()
        .map_err(|e| format!("age-keygen (Debian's age; scripts/test.sh installs it): {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "age-keygen: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let text = std::fs::read_to_string(&key).map_err(|e| format!("{}: {e}", key.display()))?;
    text.lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .map(str::to_string)
        .ok_or_else(|| format!("no public key in {}", key.display()))
}

/// `backup status --json` from member `i`: (exit 0, the JSON).
/// Exit 1 (in trouble) still prints the JSON.
fn status(zone: &LocalZone, i: usize) -> (bool, serde_json::Value) {
    match zone.on_any(i, &["backup", "status", "--json"]) {
        Ok((ok, out)) => (ok, serde_json::from_str(&out).unwrap_or_default()),
        Err(_) => (false, serde_json::Value::Null),
    }
}

/// The index of the member whose `backup run` writes, as `backup status` names it.
fn writer(zone: &LocalZone) -> Option<usize> {
    let (_, json) = status(zone, 0);
    let node = json["active_node"].as_str()?;
    zone.members.iter().position(|(n, _)| n == node)
}

fn wait_writer(
    zone: &LocalZone,
    limit: Duration,
    ok: impl Fn(usize) -> bool,
) -> Result<usize, String> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(w) = writer(zone).filter(|&w| ok(w)) {
            return Ok(w);
        }
        if Instant::now() > deadline {
            return Err(format!("no such backup writer after {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// `backup run` on every member; returns once one of them writes. Its handles, by member.
pub fn start_backups(zone: &mut LocalZone) -> Result<Vec<usize>, String> {
    let runs = (0..zone.members.len())
        .map(|i| zone.start_beside(i, &["backup", "run"], "backup-run"))
        .collect::<Result<Vec<_>, _>>()?;
    wait_writer(zone, Duration::from_secs(60), |_| true)
        .map_err(|e| format!("backup run on every member: {e}"))?;
    Ok(runs)
}

/// How the backup writer is made to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// SIGKILL of its `backup run` (started again once another took over).
    Kill,
    /// SIGSTOP of its `backup run` until another took over, then SIGCONT: a writer that
    /// hung past its lease must not write again.
    Pause,
}

/// The backup writer fails as `how` says; another member's `backup run` must take over
/// within 20 s, and the chain then reach the zone's revision with no gap.
pub fn writer_failover(
    zone: &mut LocalZone,
    runs: &mut [usize],
    how: Failure,
) -> Result<String, String> {
    let old = wait_writer(zone, Duration::from_secs(30), |_| true)?;
    let name = zone.members[old].0.clone();
    let failed = Instant::now();
    match how {
        Failure::Kill => zone.kill_beside(runs[old]),
        Failure::Pause => zone.signal_beside(runs[old], Signal::SIGSTOP)?,
    }
    let new = wait_writer(zone, Duration::from_secs(20), |w| w != old)
        .map_err(|_| format!("no writer took over from {name} within 20 s"))?;
    let took = failed.elapsed();
    match how {
        Failure::Kill => {
            runs[old] = zone.start_beside(old, &["backup", "run"], "backup-run")?;
        }
        Failure::Pause => zone.signal_beside(runs[old], Signal::SIGCONT)?,
    }
    shipped_to_now(zone, 0)?;
    let (_, json) = status(zone, 0);
    let gaps: Vec<&serde_json::Value> = json["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["open_gap"] == true || t["gaps"].as_array().is_some_and(|g| !g.is_empty()))
        .collect();
    if !gaps.is_empty() {
        return Err(format!("the chain has a gap after the failover: {gaps:?}"));
    }
    Ok(format!(
        "backup writer {name}: {how:?} of its backup run; {} took over in {:.1} s; the chain reaches the zone's revision, no gap",
        zone.members[new].0,
        took.as_secs_f64()
    ))
}

/// Waits until the target's newest delta reaches the zone's revision now.
fn shipped_to_now(zone: &LocalZone, from: usize) -> Result<(), String> {
    let now = revision(zone, from)?;
    let deadline = Instant::now() + HEAL;
    loop {
        let (_, json) = status(zone, from);
        let shipped = json["targets"].as_array().is_some_and(|targets| {
            !targets.is_empty()
                && targets
                    .iter()
                    .all(|t| t["newest_delta"]["revision"].as_i64().unwrap_or(0) >= now)
        });
        if shipped {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("the chain does not reach revision {now}: {json}"));
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn revision(zone: &LocalZone, i: usize) -> Result<i64, String> {
    let urls = vec![zone.client_url(i)];
    let creds = zone.creds(i);
    block_on(async move {
        let mut c = connect_now(&urls, &creds, Duration::from_secs(5)).await?;
        let r = c
            .get("/cz-revision", None)
            .await
            .map_err(|e| e.to_string())?;
        Ok(r.header().map_or(0, |h| h.revision()))
    })
}

/// The application prefix `undo` takes back (outside every history's prefix).
pub const APP: &str = "/cz-app/";
const APP_KEYS: usize = 40;

/// Writes the application's keys; returns the revision after (the point to undo to).
pub fn write_app(zone: &LocalZone) -> Result<i64, String> {
    app_txn(zone, |k| {
        etcd_client::TxnOp::put(k, format!("good-{k}"), None)
    })
}

/// One transaction of `op` on every application key; the revision it made.
fn app_txn(zone: &LocalZone, op: impl Fn(&str) -> etcd_client::TxnOp) -> Result<i64, String> {
    let ops: Vec<etcd_client::TxnOp> = (0..APP_KEYS)
        .map(|i| op(&format!("{APP}k{i:02}")))
        .collect();
    let urls = zone.client_urls();
    let creds = zone.creds(0);
    block_on(async move {
        let mut c = connect_now(&urls, &creds, Duration::from_secs(5)).await?;
        let r = c
            .txn(etcd_client::Txn::new().and_then(ops))
            .await
            .map_err(|e| format!("the application's write: {e}"))?;
        Ok(r.header().map_or(0, |h| h.revision()))
    })
}

/// The application's keys and values now.
fn app_now(zone: &LocalZone) -> Result<Vec<(String, String)>, String> {
    let urls = zone.client_urls();
    let creds = zone.creds(0);
    block_on(async move {
        let mut c = connect_now(&urls, &creds, Duration::from_secs(5)).await?;
        let r = c
            .get(APP, Some(etcd_client::GetOptions::new().with_prefix()))
            .await
            .map_err(|e| e.to_string())?;
        Ok(r.kvs()
            .iter()
            .map(|kv| {
                (
                    String::from_utf8_lossy(kv.key()).into_owned(),
                    String::from_utf8_lossy(kv.value()).into_owned(),
                )
            })
            .collect())
    })
}

/// A bad write (half the application's keys deleted, the other half overwritten), then
/// `undo --dry-run` (must change nothing) and `undo` to `point` from member `i`: every key
/// must be back as it was.
pub fn bad_write_undone(zone: &LocalZone, point: i64, i: usize) -> Result<String, String> {
    let good = app_now(zone)?;
    if good.len() != APP_KEYS {
        return Err(format!(
            "{} application keys before the bad write",
            good.len()
        ));
    }
    let bad = app_txn(zone, |k| {
        if k.ends_with(['0', '2', '4', '6', '8']) {
            etcd_client::TxnOp::delete(k, None)
        } else {
            etcd_client::TxnOp::put(k, "bad", None)
        }
    })?;
    let damaged = app_now(zone)?;
    let point = point.to_string();
    let args = ["undo", "--prefix", APP, "--revision", &point];
    zone.on(i, &[&args[..], &["--dry-run"]].concat())?;
    if app_now(zone)? != damaged {
        return Err("undo --dry-run changed the application's keys".into());
    }
    zone.on(i, &args)?;
    let after = app_now(zone)?;
    if after != good {
        return Err(format!(
            "after undo to revision {point}, the application's keys are not as they were: {} of {} back",
            after.iter().filter(|kv| good.contains(kv)).count(),
            good.len()
        ));
    }
    Ok(format!(
        "undo of a bad write (revision {bad}: {} keys deleted, {} overwritten) to revision {point}: every key back",
        APP_KEYS / 2,
        APP_KEYS / 2
    ))
}
