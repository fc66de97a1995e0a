//! `zone-etcd snapshot save --from-data`: the way back when a majority of members lost
//! their data for good and this member holds the only copy (k3s answers it with
//! `--cluster-reset`). It makes an ordinary snapshot, manifest and all, from this member's
//! own data directory while its etcd is stopped; `restore` with it on every member brings
//! the zone back with everything this member had.
//!
//! Invariants:
//! - the data directory is only read: its database file is opened read-only and held
//!   under a shared lock (`flock`), which etcd's database (bbolt) takes exclusively while
//!   it runs, so a running etcd is refused, and an etcd started meanwhile waits;
//! - the file is etcd's database followed by its SHA-256, exactly what etcd's Snapshot
//!   API streams, checked by [`Integrity`] as it is written; it is written under a
//!   temporary name and renamed whole, as every snapshot ([`zone_node::snapshot::store::Place::keep`]).
//!
//! What it holds: the database as etcd last committed it. etcd commits it at every clean
//! stop; after a crash the newest writes (etcd commits at least every 100 ms) may live only
//! in etcd's log, which etcd replays at its next start, quorum or not: start the member
//! once and stop it, then save (the guide's 3 a.m. procedure says so).

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use ring::digest::{Context, SHA256};
use time::OffsetDateTime;
use zone_io::Error;

use zone_etcd_kit::cluster_api::Integrity;
use zone_etcd_kit::etcd::etcdutl::etcdutl;
use zone_etcd_kit::etcd::Remember;
use zone_etcd_kit::wal;
use zone_node::node::Node;
use zone_node::snapshot::store::{Place, Taken};

/// etcd's database inside a data directory.
pub fn database(data_dir: &Path) -> PathBuf {
    data_dir.join("member").join("snap").join("db")
}

pub fn save(node: &Node, out: Option<&Path>, keep: Option<usize>) -> Result<(), Error> {
    let config = &node.path;
    if node.member().is_none() {
        return Err(Error::new(format!(
            "{} is not an etcd member of zone {}: it holds no etcd data",
            node.name, node.zone
        ))
        .file(config)
        .fix("run snapshot save --from-data on a member that kept its data"));
    }
    let data = &node.data_dir;
    let local = wal::local_member(data)?.ok_or_else(|| {
        Error::new("holds no etcd member (no member/wal): there is no data to save here")
            .file(data)
            .fix("run snapshot save --from-data on a member that kept its data")
    })?;
    let db_path = database(data);
    let db =
        fs::File::open(&db_path).map_err(|e| Error::io("open etcd's database", &db_path, &e))?;
    let db = Flock::lock(db, FlockArg::LockSharedNonblock).map_err(|(_, errno)| {
        if errno == nix::errno::Errno::EWOULDBLOCK {
            Error::new("etcd is running on this data directory (its database is locked)")
                .file(&db_path)
                .fix("stop it first (systemctl stop zone-etcd, or kill its zone-etcd launch), then save again; while it runs, snapshot save without --from-data takes a snapshot through etcd")
        } else {
            Error::io("lock", &db_path, &std::io::Error::from(errno))
        }
    })?;
    let etcdutl = etcdutl(node.etcd_bin.as_deref(), config)?;
    let place = Place::of(node, out)?;
    let mut tmp = place.temporary()?;
    let taken_at = OffsetDateTime::now_utc();
    let (size, sha256) = copy_with_hash(&db, &db_path, &mut tmp)?;
    let etcd_version = zone_node::preflight::etcd::local_etcd(node, Remember::No)
        .map(|(_, profile)| profile.version.to_string())
        .unwrap_or_else(|_| "unknown".into());
    let taken = Taken {
        tmp,
        taken_at,
        size,
        sha256,
        cluster_id: local.cluster_id,
        member: node.name.clone(),
        member_id: local.member_id,
        etcd_version,
    };
    place
        .keep(&node.zone, &etcdutl, taken, keep)
        .map_err(|e| e.file(config))?;
    drop(db);
    Ok(())
}

/// Copies the database into `out` and appends its SHA-256, as etcd's Snapshot API does;
/// the result is checked as a streamed snapshot is. Returns the size and the SHA-256 (hex)
/// of the whole file.
fn copy_with_hash(
    mut db: &fs::File,
    db_path: &Path,
    out: &mut tempfile::NamedTempFile,
) -> Result<(u64, String), Error> {
    let out_path = out.path().to_path_buf();
    let mut database = Context::new(&SHA256);
    let mut integrity = Integrity::default();
    let mut writer = BufWriter::with_capacity(zone_io::CHUNK_BYTES, out.as_file_mut());
    zone_io::for_each_chunk(&mut db, db_path, |chunk| {
        database.update(chunk);
        integrity.update(chunk);
        writer
            .write_all(chunk)
            .map_err(|e| Error::io("write", &out_path, &e))
    })?;
    let hash = database.finish();
    integrity.update(hash.as_ref());
    writer
        .write_all(hash.as_ref())
        .and_then(|()| writer.flush())
        .map_err(|e| Error::io("write", &out_path, &e))?;
    integrity.finish().map_err(|problem| {
        Error::new(format!(
            "the snapshot made from the database is not whole: {problem}"
        ))
        .file(db_path)
        .fix("run snapshot save --from-data again")
    })
}
