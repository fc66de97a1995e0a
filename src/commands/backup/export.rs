//! `backup export --from SOURCE (--at TIME | --revision REV) --out FILE`: the zone as it
//! was at a point, as a snapshot `restore` takes (see [`zone_backup::pitr`]).
//!
//! SOURCE is a target, read on the owner's machine with the owner's CA (every manifest is
//! verified up to it, so another zone's chain is refused) and age identity; or `local`
//! with `--config`: the node's own chain, whose plain copies need no identity. Before
//! anything is written: the chain is verified and checked whole, and the point must be
//! reachable (else one line names the nearest points that are). Then FILE is written
//! under a temporary name, checked against etcd's integrity hash, fsynced and renamed,
//! and its manifest `FILE.json` beside it: nothing is left at FILE on failure.

use std::io::{BufWriter, Write};
use std::path::Path;

use etcd_client::LeaseTimeToLiveOptions;
use time::OffsetDateTime;
use zone_io::Error;

use zone_backup::coverage;
use zone_backup::local::LocalChain;
use zone_backup::pitr::reach::{reach, stretches};
use zone_backup::pitr::rebuild::{rebuild, Rebuilt, Tools};
use zone_backup::pitr::source::{open_target, Source, TargetAccess};
use zone_backup::pitr::{format_time, parse_time, Point};
use zone_backup::runner::active::active_writer;
use zone_backup::scratch::REPLAY_LEASE_TTL;
use zone_etcd_kit::cluster_api::{self, describe, within, Integrity};
use zone_node::node::Node;
use zone_node::snapshot::store::{manifest_path, Place, Taken};
use zone_node::snapshot::Manifest;

pub struct Export<'a> {
    pub from: &'a str,
    pub at: Option<&'a str>,
    pub revision: Option<i64>,
    pub out: &'a Path,
    pub config: Option<&'a Path>,
    pub ca: Option<&'a Path>,
    pub identity: Option<&'a Path>,
    pub endpoint: Option<&'a str>,
    pub region: Option<&'a str>,
}

/// Where the chain comes from, and what it is checked against and run with.
struct Opened {
    source: Source,
    roots: Vec<zone_pki::CertInfo>,
    /// The zone, when the source is a node's (a target's is learned from its chain).
    zone: Option<String>,
    etcd: std::path::PathBuf,
    etcdutl: std::path::PathBuf,
}

pub fn run(export: &Export<'_>) -> Result<(), Error> {
    let point = parse_point(export)?;
    refuse_existing(export.out)?;
    let opened = open(export, point)?;
    let fail = |p: String| {
        let what = opened.source.describe();
        let prefix = format!("{what}: ");
        let p = p.strip_prefix(&prefix).unwrap_or(&p).to_string();
        Error::new(format!("backup export failed: {what}: {p}")).fix("guide: Backups")
    };
    let links = opened.source.links(&opened.roots).map_err(fail)?;
    let zone = match (&opened.zone, links.first()) {
        (Some(z), _) => z.clone(),
        (None, Some(v)) => v.link.zone.clone(),
        (None, None) => return Err(fail("holds no backup chain".into())),
    };
    let all = stretches(&links);
    let stretch = reach(&all, &links, point).map_err(|p| match export.config {
        Some(config) if export.from == "local" => local_refusal(config, export, point, p),
        _ => fail(p),
    })?;
    let place = Place::file(export.out)?;
    let work = tempfile::Builder::new()
        .prefix(".export-")
        .tempdir_in(place.dir())
        .map_err(|e| Error::io("make a scratch directory in", place.dir(), &e))?;
    let tools = Tools {
        etcd: &opened.etcd,
        etcdutl: &opened.etcdutl,
    };
    let runtime = cluster_api::runtime()?;
    let (rebuilt, leased, tmp, integrity, version) = runtime
        .block_on(async {
            let mut rebuilt =
                rebuild(&opened.source, &zone, stretch, point, &tools, work.path()).await?;
            let leased = leased_keys(&mut rebuilt).await?;
            let mut tmp = place.temporary().map_err(|e| e.to_string())?;
            let mut integrity = Integrity::default();
            {
                let mut writer = BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
                cluster_api::snapshot(
                    &rebuilt.scratch.endpoint,
                    &rebuilt.scratch.creds,
                    &mut writer,
                    |chunk| integrity.update(chunk),
                )
                .await?;
                writer
                    .flush()
                    .map_err(|e| format!("cannot write the snapshot: {e}"))?;
            }
            let version = cluster_api::versions(&rebuilt.scratch.endpoint, &rebuilt.scratch.creds)
                .map(|v| v.server)
                .unwrap_or_else(|_| "unknown".into());
            Ok::<_, String>((rebuilt, leased, tmp, integrity, version))
        })
        .map_err(fail)?;
    let Rebuilt {
        scratch,
        revision,
        time_ms,
        full_revision,
        replayed,
        ..
    } = rebuilt;
    drop(scratch);
    let (size, sha256) = integrity
        .finish()
        .map_err(|p| fail(format!("the scratch member's snapshot is not whole: {p}")))?;
    let cluster_id = u64::from_str_radix(&stretch.full.link.cluster_id, 16).unwrap_or(0);
    let taken = Taken {
        tmp,
        taken_at: OffsetDateTime::from_unix_timestamp_nanos(i128::from(time_ms) * 1_000_000)
            .unwrap_or_else(|_| OffsetDateTime::now_utc()),
        size,
        sha256,
        cluster_id,
        member: format!("backup export from {}", opened.source.describe()),
        member_id: 0,
        etcd_version: version,
    };
    let manifest: Manifest = place.keep(&zone, &opened.etcdutl, taken, None)?;
    if manifest.revision != revision {
        return Err(fail(format!(
            "the exported snapshot holds revision {}, not {revision}",
            manifest.revision
        )));
    }
    println!(
        "zone-etcd: backup export: zone {zone} at revision {revision} (received {}): the full snapshot at revision {full_revision} and {replayed} revisions replayed after it",
        format_time(time_ms)
    );
    if leased > 0 {
        println!(
            "zone-etcd: backup export: {leased} {} attached to a lease: leases come back too, and each expires after its TTL unless its holder renews it, as after any etcd restore (a lease granted after the full snapshot gets {REPLAY_LEASE_TTL} s: the chain records no grant)",
            if leased == 1 { "key is" } else { "keys are" }
        );
    }
    Ok(())
}

fn parse_point(export: &Export<'_>) -> Result<Point, Error> {
    match (export.at, export.revision) {
        (Some(at), None) => parse_time(at)
            .map(Point::Time)
            .map_err(|p| Error::new(p).field("--at")),
        (None, Some(r)) if r >= 1 => Ok(Point::Revision(r)),
        (None, Some(r)) => Err(Error::new(format!("revision {r} is not a revision"))
            .field("--revision")
            .fix("give a revision of 1 or more")),
        _ => Err(Error::new("give --at TIME or --revision REV").field("--at")),
    }
}

fn refuse_existing(out: &Path) -> Result<(), Error> {
    for path in [out.to_path_buf(), manifest_path(out)] {
        if path.exists() {
            return Err(
                Error::new("already exists: export never overwrites a snapshot")
                    .file(&path)
                    .fix("choose another --out, or move the old file away"),
            );
        }
    }
    Ok(())
}

/// This node's own chain cannot give `point`: one line naming the node whose chain can
/// (as its backup run recorded it), or the owner's command from a target.
fn local_refusal(config: &Path, export: &Export<'_>, point: Point, reason: String) -> Error {
    let Ok(node) = Node::load(config) else {
        return Error::new(reason).file(config);
    };
    let (records, active) = zone_node::reach::client_credentials(&node)
        .and_then(|creds| {
            let endpoints = zone_model::cluster::client_endpoints(&node.members);
            cluster_api::runtime()?.block_on(async {
                let client = within(cluster_api::connect_many(
                    &endpoints,
                    &creds,
                    cluster_api::CALL_DEADLINE,
                ))
                .await
                .map_err(Error::new)?;
                let records = coverage::recorded(&client).await.map_err(Error::new)?;
                let active = active_writer(&client).await.ok().flatten().map(|(n, _)| n);
                Ok((records, active))
            })
        })
        .unwrap_or_default();
    let (what, asked) = match point {
        Point::Revision(r) => (format!("revision {r}"), format!("--revision {r}")),
        Point::Time(ms) => (
            format_time(ms),
            format!("--at {}", export.at.unwrap_or_default()),
        ),
    };
    let target = coverage::owners_from(&node.backup);
    let owners = format!(
        "zone-etcd backup export --from {target} --ca CA_DIR --identity OWNER_KEY {asked} --out {}",
        export.out.display()
    );
    Error::new(format!(
        "{}'s own backup chain cannot give {what}: {reason}",
        node.name
    ))
    .file(config)
    .fix(coverage::elsewhere(
        &node.name,
        &records,
        active.as_deref(),
        point,
        &owners,
    ))
}

fn open(export: &Export<'_>, point: Point) -> Result<Opened, Error> {
    if export.from == "local" {
        let Some(config) = export.config else {
            return Err(Error::new(
                "--from local reads a node's own chain: give --config NODE_FILE",
            )
            .field("--config"));
        };
        let node = Node::load(config)?;
        if !node.state_dir.join("backup/chain/chain").is_dir() {
            return Err(local_refusal(
                config,
                export,
                point,
                format!(
                    "{} keeps none (only a node whose backup run wrote the chain keeps one)",
                    node.name
                ),
            ));
        }
        let chain = LocalChain::open(&node.state_dir)?;
        let roots =
            zone_model::config::trusted_roots(&node.zone_ca_pem).map_err(|e| e.file(config))?;
        let etcd =
            zone_node::preflight::etcd::chosen_etcd(&node, zone_etcd_kit::etcd::Remember::No)?.0;
        let etcdutl = zone_etcd_kit::etcd::etcdutl::etcdutl(node.etcd_bin.as_deref(), config)?;
        return Ok(Opened {
            source: Source::Local {
                chain,
                zone: node.zone.clone(),
            },
            roots,
            zone: Some(node.zone.clone()),
            etcd,
            etcdutl,
        });
    }
    let (Some(ca_dir), Some(identity)) = (export.ca, export.identity) else {
        return Err(Error::new(
            "a target is read with the owner's CA and identity: give --ca CA_DIR --identity FILE",
        )
        .field("--ca")
        .fix("or --from local --config NODE_FILE on the node that writes the chain"));
    };
    let (source, roots) = open_target(&TargetAccess {
        url: export.from,
        endpoint: export.endpoint,
        region: export.region,
        ca: ca_dir,
        identity,
    })?;
    let tool = |name: &str| {
        zone_etcd_kit::etcd::find_tool(name, None, identity).map_err(|_| {
            Error::new(format!(
                "{name} is needed to rebuild the zone, and it is neither beside zone-etcd, in ../lib/zone-etcd/ from it, nor on PATH"
            ))
            .fix("install the zone-etcd package (it carries etcd and etcdutl), or put etcd and etcdutl of an etcd 3.5 release on PATH")
        })
    };
    Ok(Opened {
        source,
        roots,
        zone: None,
        etcd: tool("etcd")?,
        etcdutl: tool("etcdutl")?,
    })
}

/// How many keys of the rebuilt zone are attached to a lease (asked lease by lease: a
/// zone's leases are few, its keys may be millions).
async fn leased_keys(rebuilt: &mut Rebuilt) -> Result<usize, String> {
    let client = &mut rebuilt.client;
    let leases = within(async { client.leases().await.map_err(|e| describe(&e)) }).await?;
    let mut keys = 0;
    for lease in leases.leases() {
        let ttl = within(async {
            client
                .lease_time_to_live(lease.id(), Some(LeaseTimeToLiveOptions::new().with_keys()))
                .await
                .map_err(|e| describe(&e))
        })
        .await?;
        keys += ttl.keys().len();
    }
    Ok(keys)
}
