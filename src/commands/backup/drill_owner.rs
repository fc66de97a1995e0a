//! `backup drill --from TARGET_URL --ca CA_DIR --identity FILE`: the owner's full check,
//! from a target alone, on the owner's machine. Every manifest must be signed by a node of
//! the zone whose CA is in CA_DIR, the links must follow each other, every object must be
//! the one its manifest names; every object is decrypted with the owner's identity and
//! checked (a segment's revisions, a snapshot's revision); then the newest full snapshot
//! and the deltas after it are restored into a scratch etcd and replayed. Nothing on the
//! target is changed; the first problem is one line naming the object.

use std::path::Path;

use zone_io::Error;

use zone_backup::chain::{newest_restorable, Kind, Plan};
use zone_backup::scratch::{hash_kv, Scratch};
use zone_backup::{crypto, destination, segment, verify};
use zone_etcd_kit::cluster_api;

use zone_backup::segment::MAX_SEGMENT_BYTES;

pub struct Owner<'a> {
    pub from: &'a str,
    pub ca_dir: &'a Path,
    pub identity: &'a Path,
    pub endpoint: Option<&'a str>,
    pub region: Option<&'a str>,
}

pub fn run(owner: &Owner<'_>) -> Result<(), Error> {
    let roots = zone_backup::pitr::source::owner_roots(owner.ca_dir)?;
    let identities = crypto::load_identities(owner.identity)?;
    let target = destination::open_url(owner.from, owner.endpoint, owner.region, None)?;
    // Where the tools and scratch files live on the owner's machine.
    let tool = |name: &str| {
        zone_etcd_kit::etcd::find_tool(name, None, owner.identity).map_err(|_| {
            Error::new(format!(
                "{name} is needed to check the snapshots and restore the chain, and it is neither beside zone-etcd, in ../lib/zone-etcd/ from it, nor on PATH"
            ))
            .fix("install the zone-etcd package (it carries etcd and etcdutl), or put etcd and etcdutl of an etcd 3.5 release on PATH")
        })
    };
    let etcd = tool("etcd")?;
    let etcdutl = tool("etcdutl")?;
    let work = tempfile::Builder::new()
        .prefix("zone-etcd-drill-")
        .tempdir()
        .map_err(|e| Error::new(format!("cannot make a scratch directory: {e}")))?;
    let fail = |p: String| {
        // A target's own errors name it and say their fix already.
        let prefix = format!("{}: ", owner.from);
        let p = p.strip_prefix(&prefix).unwrap_or(&p);
        let error = Error::new(format!("backup drill failed: {}: {p}", owner.from));
        if p.contains("(fix: ") {
            error
        } else {
            error.fix("do not trust this chain; guide: Backups")
        }
    };
    let (links, _) = verify::target_links(target.as_ref(), None, &roots).map_err(fail)?;
    let zone = links
        .first()
        .map(|v| v.link.zone.clone())
        .ok_or_else(|| fail("holds no backup chain".into()))?;
    let mut segments = std::collections::BTreeMap::new();
    for v in &links {
        let Some(object) = &v.link.object else {
            continue;
        };
        let encrypted = work.path().join("object.age");
        let found = target
            .get_to_file(object, &encrypted)
            .map_err(|e| fail(e.to_string()))?;
        if !found {
            // Retention removes a link's manifest before its object: a manifest gone now
            // means the link was pruned while the drill read, not a missing object.
            let pruned = target
                .get(&v.name, zone_backup::local::MAX_MANIFEST_BYTES)
                .map_err(|e| fail(e.to_string()))?
                .is_none();
            if pruned {
                continue;
            }
            return Err(fail(format!("{object} is missing (named by {})", v.name)));
        }
        let bytes_ok = zone_io::sha256_file(&encrypted)
            .map(|(size, sha)| {
                size == v.link.object_size && zone_io::hex(&sha) == v.link.object_sha256
            })
            .map_err(|e| fail(e.to_string()))?;
        if !bytes_ok {
            return Err(fail(format!(
                "{object}: its bytes are not those {} names (changed or replaced)",
                v.name
            )));
        }
        match v.link.kind {
            Kind::Delta => {
                let plain = crypto::decrypt_bytes(
                    &std::fs::read(&encrypted).map_err(|e| fail(e.to_string()))?,
                    &identities,
                )
                .map_err(|e| fail(format!("{object}: {}", e.problem())))?;
                let (header, revisions) = segment::decode(&plain, &zone, MAX_SEGMENT_BYTES)
                    .map_err(|p| fail(format!("{object}: {p}")))?;
                if (header.first_revision, header.last_revision)
                    != (v.link.first_revision, v.link.last_revision)
                {
                    return Err(fail(format!(
                        "{object}: holds other revisions than {} names",
                        v.name
                    )));
                }
                segments.insert(v.name.clone(), revisions);
            }
            Kind::Full => {
                let plain = work.path().join(format!("{}.db", v.link.seq));
                crypto::decrypt_file(&encrypted, &plain, &identities)
                    .map_err(|e| fail(format!("{object}: {}", e.problem())))?;
                let revision = zone_etcd_kit::etcd::etcdutl::snapshot_revision(&etcdutl, &plain)
                    .map_err(|e| fail(format!("{object}: {}", e.problem())))?;
                if revision != v.link.last_revision {
                    return Err(fail(format!(
                        "{object}: holds revision {revision}, {} names {}",
                        v.name, v.link.last_revision
                    )));
                }
            }
            Kind::Gap => {}
        }
    }
    let plan = newest_restorable(&links).ok_or_else(|| fail("holds no full snapshot".into()))?;
    let full_plain = work.path().join(format!("{}.db", plan.full.link.seq));
    let (revision, hash) = cluster_api::runtime()?
        .block_on(replay(
            &etcd,
            &etcdutl,
            &full_plain,
            work.path(),
            &plan,
            segments,
        ))
        .map_err(fail)?;
    println!(
        "zone-etcd: backup drill passed: {} holds {} verified links of zone {zone}; the newest full snapshot (revision {}) and {} deltas restore to revision {revision} (HashKV {hash:#010x})",
        owner.from,
        links.len(),
        plan.full.link.last_revision,
        plan.deltas.len()
    );
    Ok(())
}

async fn replay(
    etcd: &Path,
    etcdutl: &Path,
    full: &Path,
    work: &Path,
    plan: &Plan<'_>,
    mut segments: std::collections::BTreeMap<String, Vec<segment::Revision>>,
) -> Result<(i64, u32), String> {
    let mut scratch = Scratch::restore(etcd, etcdutl, full, work)?;
    let mut client = scratch.connect().await?;
    let revision = scratch
        .replay_plan(&mut client, plan, |v| {
            Ok(segments.remove(&v.name).unwrap_or_default())
        })
        .await?;
    let (hash, _) = hash_kv(&mut client, revision).await?;
    Ok((revision, hash))
}
