//! `zone-etcd snapshot save | list | prune`: backups of the zone's data.
//!
//! `save` streams a snapshot through etcd's Snapshot API with the node's client
//! certificate, from the local member when it answers, else from another member. The file
//! is written under a temporary name in its directory, checked against etcd's integrity
//! hash as it arrives, fsynced and only then renamed to its final name (0600, in a 0700
//! directory; default `<state>/snapshots/`), so a snapshot under its final name is always
//! whole. Its manifest (`<file>.json`) follows the same way. The rules and the node's
//! snapshot files are [`zone_node::snapshot`]'s. `save --from-data` makes the same file from the member's own data
//! directory while its etcd is stopped (`from_data`).

mod from_data;

use std::io::{BufWriter, Write};
use std::path::Path;

use time::OffsetDateTime;
use zone_io::Error;

use zone_etcd_kit::cluster_api::{self, Integrity};
use zone_etcd_kit::etcd::etcdutl::etcdutl;
use zone_node::node::Node;
use zone_node::snapshot::store::{default_dir, find, prune_dir, Place, Taken};

pub fn save(
    config: &Path,
    out: Option<&Path>,
    keep: Option<usize>,
    from_data: bool,
) -> Result<(), Error> {
    check_keep(keep)?;
    let node = Node::load(config)?;
    if from_data {
        return from_data::save(&node, out, keep);
    }
    let creds = zone_node::reach::client_credentials(&node)?;
    let etcdutl = etcdutl(node.etcd_bin.as_deref(), config)?;
    let place = Place::of(&node, out)?;
    // The local member first, then the others in the zone's order.
    let mut members: Vec<_> = node.members.iter().collect();
    members.sort_by_key(|m| m.node_name != node.name);
    let runtime = cluster_api::runtime()?;
    let mut failures = Vec::new();
    for member in members {
        let endpoint = zone_model::cluster::client_url(member);
        let mut tmp = place.temporary()?;
        let taken_at = OffsetDateTime::now_utc();
        let mut integrity = Integrity::default();
        let streamed = {
            let mut writer = BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
            let result = runtime.block_on(cluster_api::snapshot(
                &endpoint,
                &creds,
                &mut writer,
                |chunk| integrity.update(chunk),
            ));
            result.and_then(|s| {
                writer
                    .flush()
                    .map(|()| s)
                    .map_err(|e| format!("cannot write the snapshot: {e}"))
            })
        };
        let streamed = match streamed {
            Ok(s) => s,
            Err(reason) => {
                failures.push((endpoint, reason));
                continue;
            }
        };
        let (size, sha256) = integrity.finish().map_err(|problem| {
            Error::new(format!("the snapshot {member} streamed is not whole: {problem}", member = member.node_name))
                .file(config)
                .fix("run snapshot save again; if it fails the same way, check that member's disk and logs")
        })?;
        let taken = Taken {
            tmp,
            taken_at,
            size,
            sha256,
            cluster_id: streamed.cluster_id,
            member: member.node_name.clone(),
            member_id: streamed.member_id,
            etcd_version: cluster_api::versions(&endpoint, &creds)
                .map(|v| v.server)
                .unwrap_or_else(|_| "unknown".into()),
        };
        return place
            .keep(&node.zone, &etcdutl, taken, keep)
            .map(|_| ())
            .map_err(|e| e.file(config));
    }
    Err(zone_node::reach::unreachable(&failures, config))
}

fn check_keep(keep: Option<usize>) -> Result<(), Error> {
    if keep == Some(0) {
        return Err(Error::new("0 would remove every snapshot")
            .field("--keep")
            .fix("keep at least 1, e.g. --keep 5"));
    }
    Ok(())
}

pub fn list(config: &Path, json: bool) -> Result<(), Error> {
    let node = Node::load_with(config, zone_node::nameservice::CachePolicy::ReadOnly)?;
    let dir = default_dir(&node);
    let found = find(&dir)?;
    if json {
        let rows: Vec<serde_json::Value> = found
            .iter()
            .map(|f| match &f.manifest {
                Ok(m) => serde_json::json!({ "file": f.file, "manifest": m }),
                Err(problem) => serde_json::json!({ "file": f.file, "problem": problem }),
            })
            .collect();
        println!("{}", serde_json::json!({ "dir": dir, "snapshots": rows }));
        return Ok(());
    }
    println!("{}", dir.display());
    if found.is_empty() {
        println!(
            "no snapshots (zone-etcd snapshot save --config {})",
            config.display()
        );
    }
    for f in &found {
        let name = f.file.file_name().unwrap_or_default().to_string_lossy();
        match &f.manifest {
            Ok(m) => println!(
                "{name}  {}  revision {}  {}  from {}  etcd {}",
                m.taken_at,
                m.revision,
                zone_node::maintenance::human_size(m.size as i64),
                m.member,
                m.etcd_version
            ),
            Err(problem) => println!("{name}  no usable manifest ({problem})"),
        }
    }
    Ok(())
}

pub fn prune(config: &Path, keep: usize) -> Result<(), Error> {
    check_keep(Some(keep))?;
    let node = Node::load_with(config, zone_node::nameservice::CachePolicy::ReadOnly)?;
    prune_dir(&default_dir(&node), keep)
}
