//! A local backup chain torn by a restart of the machine (issue 37): a delta link's local
//! files are written without fsyncs, so the newest of them may be torn after a power cut.
//! Real processes: a 3-member zone on loopback, SeaweedFS and a directory target,
//! `backup run` on every member. The restart is made as the kernel would leave it: the
//! writer's `backup run` killed, its newest plain copy cut short, and its boot record
//! naming another boot. Zone on `addresses::BACKUP_TORN`; SeaweedFS on
//! `addresses::SEAWEED` .16. Part of tests/zone/backup.rs (its tests run side by side in
//! one binary).

use std::collections::BTreeSet;
use std::fs;
use std::time::Duration;

use crate::common::backup::{delta_revisions, BackupZone};
use crate::common::{self, wait_for};
use zone_testkit::addresses;

const POLICY: &str = "full_every = \"1h\"\ndelta_every = \"1s\"";

/// The drill's readers refuse the torn copy as this node's, not the targets'; `backup
/// run` moves the chain aside when it starts again, names the torn file, ships nothing of
/// it, and the zone's chain goes on whole: both owner drills pass and every acknowledged
/// write is in it.
#[test]
fn a_local_chain_torn_by_a_restart_is_moved_aside_and_the_chain_goes_on() {
    let z = BackupZone::start(
        "torn.zone",
        addresses::BACKUP_TORN.subnet(),
        &addresses::SEAWEED.ip(16),
        POLICY,
    );
    let mut runs = z.backup_runs_with_a_writer();
    // The first full snapshot on the targets before the writes: a write it holds is in no
    // delta, and this test reads the deltas.
    z.wait_shipped(z.revision(), Duration::from_secs(60));
    let load = z.zone.failover_load(&[], "torn", Duration::from_millis(70));
    z.wait_shipped(z.revision(), Duration::from_secs(60));
    let active = z.active().unwrap();
    let local = z.zone.node_dir(active).join("state/backup");
    assert!(
        local.join("unsynced-boot").is_file(),
        "no boot record before the first unsynced write"
    );

    // The machine of the writer restarts: the plain file of its newest chained delta is
    // cut short. (The newest plain file by name need not be a chained link's when the
    // writer is killed: the export at the newest link's time then never read it, cc18.)
    drop(runs[active].take());
    let mut manifests: Vec<_> = fs::read_dir(local.join("chain/chain"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with("-delta.json"))
        .collect();
    manifests.sort();
    let newest = manifests.last().expect("no delta manifest on the writer");
    let link = zone_backup::manifest::body_unverified(&fs::read(newest).unwrap()).unwrap();
    let object = link.object.clone().expect("a delta names its object");
    let torn = local
        .join("plain")
        .join(object.strip_suffix(".age").unwrap_or(&object));
    let bytes = fs::read(&torn).unwrap();
    fs::write(&torn, &bytes[..bytes.len() / 2]).unwrap();
    fs::write(local.join("unsynced-boot"), "an-earlier-boot\n").unwrap();
    let torn_name = torn.file_name().unwrap().to_string_lossy().into_owned();

    // A reader of the local chain: one line, this node's copy, not the targets' backup.
    let out_file = z.zone.path("export-torn.db");
    // The newest point of the local chain, which only the torn delta holds: a later
    // time is refused as after the chain's end, before the torn file is read.
    let at =
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(link.last_time_ms) * 1_000_000)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
    let out = z
        .command()
        .args(["backup", "export", "--from", "local", "--at", &at, "--out"])
        .arg(&out_file)
        .arg("--config")
        .arg(z.zone.config(active))
        .output()
        .unwrap();
    let (ok, stdout, stderr) = common::outcome(out);
    assert!(!ok, "export from a torn local chain passed: {stdout}");
    assert!(
        stderr.trim().lines().count() == 1
            && stderr.contains("torn")
            && stderr.contains("not the targets' backup")
            && stderr.contains(&torn_name),
        "{stderr}"
    );
    assert!(!out_file.exists(), "export wrote {}", out_file.display());

    // backup run again on that node: the torn chain goes aside, named in its log.
    runs[active] = Some(z.backup_run(active));
    // Moved aside first, then logged: wait for both.
    wait_for(
        Duration::from_secs(30),
        "the torn chain moved aside",
        || {
            fs::read_dir(&local)
                .unwrap()
                .flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("chain.stale-"))
                && run_logs(&z).contains("was torn when this machine stopped")
        },
    );
    let logs = run_logs(&z);
    assert!(
        logs.contains("was torn when this machine stopped") && logs.contains(&torn_name),
        "{logs}"
    );
    assert!(
        !fs::read_to_string(local.join("unsynced-boot"))
            .unwrap_or_default()
            .contains("an-earlier-boot"),
        "the earlier boot's record was kept"
    );

    let result = load.stop();
    assert!(
        result.acknowledged.len() > 20,
        "{} writes",
        result.acknowledged.len()
    );
    wait_for(Duration::from_secs(60), "an active writer", || {
        z.active().is_some()
    });
    z.wait_shipped(z.revision(), Duration::from_secs(90));
    for url in [z.file_url(), z.s3_url.clone()] {
        let (ok, _, stderr) = z.owner_drill(&url);
        assert!(ok, "after the torn chain, {url}: {stderr}");
    }
    let revisions = delta_revisions(&z.usb(), &z.owner_key());
    let written: BTreeSet<&String> = revisions.iter().flat_map(|(_, k)| k).collect();
    let lost: Vec<(&String, i64)> = result
        .acknowledged
        .iter()
        .zip(&result.revisions)
        .filter(|(k, _)| !written.contains(k))
        .map(|(k, r)| (k, *r))
        .collect();
    assert!(
        lost.is_empty(),
        "acknowledged writes (key, revision) missing from the chain: {lost:?}\nthe directory target's links (kind, object, first..last):\n{}\n{}",
        chain_ranges(&z.usb()),
        run_logs(&z)
    );
}

/// The links of the chain under `dir`, a line each: sequence, kind, writer's session,
/// revisions.
fn chain_ranges(dir: &std::path::Path) -> String {
    crate::common::backup::manifest_bodies(dir)
        .iter()
        .map(|b| {
            format!(
                "{} {} {} {}..{}",
                b["seq"], b["kind"], b["session"], b["first_revision"], b["last_revision"]
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `backup run` log of the zone, whole.
fn run_logs(z: &BackupZone) -> String {
    fs::read_dir(z.zone.path(""))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains(".backup-run."))
        .map(|p| fs::read_to_string(p).unwrap_or_default())
        .collect()
}
