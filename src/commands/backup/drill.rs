//! `backup drill --config NODE_FILE`: the daily proof that the backups restore. On the
//! active writer's node: the newest local chain (a full snapshot and the deltas after it)
//! is restored into a scratch etcd, replayed to its last revision, and its HashKV there is
//! compared with the live cluster's; every target must hold every link of the local chain
//! with its object, and those of the newest restorable part byte-identical. The result
//! is kept (`<state>/backup/drill.json`, and in etcd for `status` on every member).

use std::path::Path;

use zone_io::Error;

use zone_backup::chain::{newest_restorable, Kind, Plan};
use zone_backup::local::LocalChain;
use zone_backup::report::Drill;
use zone_backup::runner::active::active_writer;
use zone_backup::runner::writer::now_ms;
use zone_backup::scratch::{hash_kv, Scratch};
use zone_backup::segment;
use zone_backup::verify;
use zone_etcd_kit::cluster_api::{self, describe, within};
use zone_node::node::Node;

use super::DRILL_KEY;

use zone_backup::segment::MAX_SEGMENT_BYTES;

pub fn run(config: &Path) -> Result<(), Error> {
    let node = Node::load(config)?;
    let targets = super::open_targets(&node)?;
    let roots = zone_model::config::trusted_roots(&node.zone_ca_pem)?;
    let creds = zone_node::reach::client_credentials(&node)?;
    let etcd = zone_node::preflight::etcd::chosen_etcd(&node, zone_etcd_kit::etcd::Remember::No)?.0;
    let etcdutl = zone_etcd_kit::etcd::etcdutl::etcdutl(node.etcd_bin.as_deref(), config)?;
    let local = LocalChain::open(&node.state_dir)?;
    let endpoints: Vec<String> = node
        .members
        .iter()
        .map(zone_model::cluster::client_url)
        .collect();
    let runtime = cluster_api::runtime()?;
    let active = runtime.block_on(async {
        let client =
            cluster_api::connect_many(&endpoints, &creds, cluster_api::CALL_DEADLINE).await?;
        active_writer(&client).await
    });
    match active {
        Ok(Some((writer, _))) if writer == node.name => {}
        Ok(Some((writer, _))) => {
            eprintln!(
                "zone-etcd: backup drill: {writer} writes the chain, not {}: its drill runs there",
                node.name
            );
            return Ok(());
        }
        Ok(None) => {
            return Err(Error::new("no backup writer is active in the zone")
                .file(config)
                .fix("start zone-etcd-backup.service on the members (backup run)"))
        }
        Err(p) => {
            return Err(Error::new(format!("the cluster does not answer: {p}"))
                .file(config)
                .fix("check the zone with `zone-etcd status`"))
        }
    }
    let outcome = (|| -> Result<String, String> {
        let links = verify::local_links(&local, &node.zone, &roots)?;
        let checked = check_local_segments(&local, &node.zone, &links)?;
        let plan = newest_restorable(&links).ok_or(
            "the local chain holds no full snapshot yet (backup run takes one when it starts)",
        )?;
        let (revision, hash) = runtime.block_on(restore_and_compare(
            &plan, &local, &node.zone, &etcd, &etcdutl, &endpoints, &creds,
        ))?;
        let mut deep: Vec<_> = vec![plan.full];
        deep.extend(plan.deltas.iter().copied());
        let mut held = Vec::new();
        for target in &targets {
            let n = verify::target_holds(target.as_ref(), &local, &links, &deep)?;
            held.push(format!("{} holds all {n} links", target.url()));
        }
        Ok(format!(
            "{checked} local segments read whole; restored the full snapshot at revision {} and {} deltas to revision {revision}: HashKV {hash:#010x} equals the live cluster's; {}",
            plan.full.link.last_revision,
            plan.deltas.len(),
            held.join(", ")
        ))
    })();
    let drill = Drill {
        ok: outcome.is_ok(),
        time_ms: now_ms(),
        node: node.name.clone(),
        summary: match &outcome {
            Ok(s) => s.clone(),
            Err(p) => p.clone(),
        },
    };
    record(&local, &drill, &endpoints, &creds, &runtime);
    match outcome {
        Ok(summary) => {
            println!("zone-etcd: backup drill passed: {summary}");
            Ok(())
        }
        Err(problem) => Err(Error::new(format!("backup drill failed: {problem}"))
            .file(config)
            .fix("guide: Backups; a failed drill means the chain cannot be trusted until the next full snapshot")),
    }
}

/// Reads every delta segment the local chain keeps a plain copy of (not only those the
/// restore replays): each must decode whole and hold the revisions its link names.
fn check_local_segments(
    local: &LocalChain,
    zone: &str,
    links: &[zone_backup::chain::Verified],
) -> Result<usize, String> {
    let mut checked = 0;
    for v in links.iter().filter(|v| v.link.kind == Kind::Delta) {
        let Some(object) = &v.link.object else {
            continue;
        };
        let path = local.plain_path(object);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            // A link adopted from the targets has no local copy.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let (header, _) = segment::decode(&bytes, zone, MAX_SEGMENT_BYTES)
            .map_err(|p| format!("{}: {p}", path.display()))?;
        if (header.first_revision, header.last_revision)
            != (v.link.first_revision, v.link.last_revision)
        {
            return Err(format!(
                "{}: holds other revisions than {} names",
                path.display(),
                v.name
            ));
        }
        checked += 1;
    }
    Ok(checked)
}

/// Restores `plan` from the local plain copies into a scratch etcd, replays it, and
/// compares HashKV at the last revision with the live cluster's.
async fn restore_and_compare(
    plan: &Plan<'_>,
    local: &LocalChain,
    zone: &str,
    etcd: &Path,
    etcdutl: &Path,
    endpoints: &[String],
    creds: &std::sync::Arc<cluster_api::Credentials>,
) -> Result<(i64, u32), String> {
    let full_object = plan.full.link.object.as_deref().unwrap_or_default();
    let mut scratch =
        Scratch::restore(etcd, etcdutl, &local.plain_path(full_object), local.root())?;
    let mut client = scratch.connect().await?;
    let revision = scratch
        .replay_plan(&mut client, plan, |v| {
            let object = v.link.object.as_deref().unwrap_or_default();
            let path = local.plain_path(object);
            let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            segment::decode(&bytes, zone, MAX_SEGMENT_BYTES)
                .map(|(_, revisions)| revisions)
                .map_err(|p| format!("{}: {p}", path.display()))
        })
        .await?;
    let mut live = cluster_api::connect_many(endpoints, creds, cluster_api::CALL_DEADLINE).await?;
    let (live_hash, live_compacted) = hash_kv(&mut live, revision)
        .await
        .map_err(|p| format!("the live cluster's HashKV at revision {revision}: {p}"))?;
    let (_, scratch_compacted) = hash_kv(&mut client, revision).await?;
    if live_compacted > scratch_compacted && live_compacted <= revision {
        // The live cluster compacted since the snapshot: the scratch member does the same,
        // so both hash the same history.
        within(async {
            client
                .compact(
                    live_compacted,
                    Some(etcd_client::CompactionOptions::new().with_physical()),
                )
                .await
                .map_err(|e| describe(&e))
        })
        .await?;
    }
    let (hash, _) = hash_kv(&mut client, revision).await?;
    if hash != live_hash {
        return Err(format!(
            "the restored chain's HashKV at revision {revision} is {hash:#010x}, the live cluster's {live_hash:#010x}: the chain does not hold what etcd holds"
        ));
    }
    Ok((revision, hash))
}

/// Keeps the result locally and in etcd (best effort: a drill that cannot record still
/// reports).
fn record(
    local: &LocalChain,
    drill: &Drill,
    endpoints: &[String],
    creds: &std::sync::Arc<cluster_api::Credentials>,
    runtime: &tokio::runtime::Runtime,
) {
    let Ok(json) = serde_json::to_vec(drill) else {
        return;
    };
    if let Err(e) = zone_io::write_atomic(
        &local.root().join(super::DRILL_FILE),
        &json,
        zone_io::KEY_MODE,
    ) {
        eprintln!("zone-etcd: backup drill: cannot record the result: {e}");
    }
    let _ = runtime.block_on(async {
        let client =
            cluster_api::connect_many(endpoints, creds, cluster_api::CALL_DEADLINE).await?;
        let json = json.as_slice();
        cluster_api::ask(&client, |mut c| async move {
            c.put(DRILL_KEY, json, None).await
        })
        .await
        .map_err(String::from)
    });
}
