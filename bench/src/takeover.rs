//! A writer's takeover over a long chain (issue 37, item 2): how long the new writer takes
//! to find where the chain ends, and how many requests it makes, with each target's head
//! record against the listing every takeover made before heads, same run, for a chain of
//! 1,000 and of 100,000 links on SeaweedFS (S3) and on a directory.
//!
//! The chain is made of real manifests signed by a real zone's member (`ca init`,
//! `bootstrap`), written straight to the store (uploads in parallel, plain files on the
//! directory: only the manifests, which is all a takeover reads). The measured call is the
//! library's `runner::resume::resume`, what `backup run` calls when it becomes the writer,
//! behind a counting target; "without" is the same call with the head deleted (it then
//! lists `chain/` and reads the last manifest, as every takeover did before).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};
use zone_backup::chain::{delta_name, Kind, Link, FORMAT};
use zone_backup::destination::counting::Counting;
use zone_backup::destination::file::DirTarget;
use zone_backup::destination::Target;
use zone_backup::head;
use zone_backup::local::{LocalChain, Stored};
use zone_backup::manifest;
use zone_backup::runner::resume::resume;
use zone_backup::signing::Signer;
use zone_node::node::Node;

use crate::seaweed::Seaweed;
use crate::support::Result;
use crate::support::{loadavg, median, ms, round, Zone};
use zone_testkit::addresses;

const ZONE: &str = "takeover.bench";
const SIZES: [u64; 2] = [1_000, 100_000];

pub fn run(work: &Path, runs: usize) -> Result<Value> {
    let dir = work.join("takeover");
    let zone = Zone::bootstrap(&dir, ZONE, addresses::BENCH_TAKEOVER.subnet(), 1)?;
    let node = Node::load(&zone.config(0)).map_err(|e| e.to_string())?;
    let roots = zone_model::config::trusted_roots(&node.zone_ca_pem).map_err(|e| e.to_string())?;
    let signer = zone_node::backup_node::signer(&node).map_err(|e| e.to_string())?;
    let weed = Seaweed::start(&dir.join("weed"), &addresses::BENCH_TAKEOVER.ip(100))?;
    let mut out = json!({"load_before": loadavg(), "runs": runs});
    for links in SIZES {
        eprintln!("zone-etcd-bench: takeover: signing and storing {links} links");
        let chain = signed_chain(&signer, &node.name, links)?;
        let s3: Arc<dyn Target> = Arc::new(crate::seaweed::s3_target(
            &weed,
            &format!("{ZONE}-{links}"),
        )?);
        let root = dir.join(format!("usb-{links}"));
        let usb: Arc<dyn Target> =
            Arc::new(DirTarget::new(&format!("file://{}", root.display()), &root));
        store_s3(&s3, &chain)?;
        store_dir(&root, &chain)?;
        let mut sizes = json!({});
        for (kind, target) in [("s3", s3), ("dir", usb)] {
            let last = chain.last().ok_or("an empty chain")?;
            sizes[kind] = measure(&target, last, &node.name, &roots, runs, dir.as_path())?;
            eprintln!(
                "zone-etcd-bench: takeover: {links} links, {kind}: {}",
                sizes[kind]
            );
        }
        out[links.to_string()] = sizes;
    }
    out["load_after"] = json!(loadavg());
    drop(weed);
    Ok(out)
}

/// `runs` takeovers with the head and as many without, alternating (ABBA).
fn measure(
    target: &Arc<dyn Target>,
    last: &Stored,
    node: &str,
    roots: &[zone_pki::CertInfo],
    runs: usize,
    dir: &Path,
) -> Result<Value> {
    let counted = Arc::new(Counting::new(target.clone()));
    let targets: Vec<Arc<dyn Target>> = vec![counted.clone()];
    let (mut with, mut without) = (Vec::new(), Vec::new());
    let (mut with_counts, mut without_counts) = (None, None);
    for i in 0..2 * runs {
        let head_on = matches!(i % 4, 0 | 3);
        if head_on {
            target
                .put(head::NAME, &head::record(Some(&last.bytes), "bench0001"))
                .map_err(|e| e.to_string())?;
        } else {
            target.delete(head::NAME).map_err(|e| e.to_string())?;
        }
        let state = tempfile::tempdir_in(dir).map_err(|e| e.to_string())?;
        let local = LocalChain::open(state.path()).map_err(|e| e.to_string())?;
        counted.take();
        let started = Instant::now();
        let resumed = resume(&targets, &local, ZONE, roots)
            .map_err(|e| e.to_string())?
            .ok_or("resume found no chain")?;
        let took = ms(started.elapsed());
        let counts = counted.take();
        if resumed.stored.sha256 != last.sha256 {
            return Err(format!(
                "{node}: resumed at {}, not the chain's last link {}",
                resumed.stored.name, last.name
            ));
        }
        let counts = json!({"requests": counts.requests(), "lists": counts.list, "names_listed": counts.listed});
        if head_on {
            with.push(took);
            with_counts = Some(counts);
        } else {
            without.push(took);
            without_counts = Some(counts);
        }
    }
    let (w, wo) = (median(&with), median(&without));
    Ok(json!({
        "with_head_ms": round(w),
        "listing_ms": round(wo),
        "ratio": round(w / wo),
        "with_head_samples_ms": with.iter().map(|x| round(*x)).collect::<Vec<_>>(),
        "listing_samples_ms": without.iter().map(|x| round(*x)).collect::<Vec<_>>(),
        "with_head_requests": with_counts,
        "listing_requests": without_counts,
    }))
}

/// `n` delta links signed by `signer`, each naming the previous one's hash.
fn signed_chain(signer: &Signer, writer: &str, n: u64) -> Result<Vec<Stored>> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_millis() as i64;
    let mut out: Vec<Stored> = Vec::with_capacity(n as usize);
    for seq in 1..=n {
        let revision = seq as i64 + 1;
        let t = now - (n - seq) as i64 * 5_000;
        let link = Link {
            format: FORMAT.into(),
            zone: ZONE.into(),
            cluster_id: "c0ffee".into(),
            seq,
            session: "bench0001".into(),
            writer: writer.into(),
            kind: Kind::Delta,
            first_revision: revision,
            last_revision: revision,
            first_time_ms: t,
            last_time_ms: t,
            object: Some(delta_name(seq, "bench0001", revision, revision)),
            object_size: 1,
            object_sha256: "00".into(),
            next_delta: revision + 1,
            prev: out.last().map(|p| p.sha256.clone()),
            signed_ms: now,
        };
        let body = serde_json::to_vec(&link).map_err(|e| e.to_string())?;
        let bytes = signer.sign(&body).map_err(|e| e.to_string())?;
        out.push(manifest::stored(&link.manifest_name(), bytes));
    }
    Ok(out)
}

/// The manifests uploaded by 8 threads.
fn store_s3(target: &Arc<dyn Target>, chain: &[Stored]) -> Result<()> {
    let next = AtomicU64::new(0);
    let failed = std::sync::Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst) as usize;
                let Some(stored) = chain.get(i) else { break };
                // Setting up, not measured: a store that stumbles is given a few more tries.
                let mut tries = 0;
                while let Err(e) = target.put(&stored.name, &stored.bytes) {
                    tries += 1;
                    if tries == 5 {
                        *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
                        return;
                    }
                    std::thread::sleep(std::time::Duration::from_secs(1));
                }
            });
        }
    });
    match failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The manifests as the directory target keeps them (0600 in 0700 directories), written
/// without an fsync each: setting up, not measured.
fn store_dir(root: &Path, chain: &[Stored]) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let dir = root.join("chain");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    for stored in chain {
        let path = root.join(&stored.name);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        std::io::Write::write_all(&mut file, &stored.bytes)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}
