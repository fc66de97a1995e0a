//! `zone-etcd restore --config NODE_FILE --from FILE [--force]`: the way back after the
//! zone lost its quorum for good. Every member of the zone's list restores the same
//! snapshot, then launches: as in etcd's recovery guide, each member's data directory is
//! made anew from the snapshot with the bundled `etcdutl`, for a new cluster whose token
//! every member derives alone ([`cluster::restored_token`]): from the zone, its members,
//! its CA and the snapshot's SHA-256.
//!
//! Safety, before the data directory changes (only a staging directory beside it is
//! written until all of them passed):
//! - the snapshot must be this zone's (its manifest), whole (etcd's integrity hash) and
//!   unchanged (the SHA-256 of its manifest); the file is read once for both hashes, while
//!   `etcdutl` restores it into the staging directory;
//! - the local member must not be running (its data directory is in use);
//! - one restore at a time, under the node's state lock, which the `etcdutl` filling the
//!   staging directory holds too (inherited): it dies with the restore, and until it has
//!   died the next restore waits, so a killed restore's staging directory is removed
//!   only when nothing writes to it;
//! - the staged restore gives the new cluster's ID; if a quorum of any *other* cluster
//!   answers (the zone is still alive), restoring would split it: refused unless
//!   `--force`. A quorum of the restored cluster itself (members that restored the same
//!   snapshot first) is what this member joins. The members are asked from the start,
//!   and the answer is taken as soon as it is known (`live`).
//!
//! Then the old data directory is moved aside (`<data>.before-restore-<time>`, never
//! deleted), the staged one renamed into place, and `<state>/restored.json` records what
//! was restored, so `launch` knows this data replaced the old cluster on purpose.

mod live;

use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::fcntl::Flock;
use nix::sys::signal::Signal;

use zone_io::Error;
use zone_io::{sync_dir, write_atomic, PUBLIC_MODE};

use zone_etcd_kit::cluster_api::{self, hex_id, Credentials, Integrity};
use zone_etcd_kit::etcd::etcdutl::etcdutl;
use zone_etcd_kit::wal;
use zone_model::cluster::{self, restored_token};
use zone_node::node::Node;
use zone_node::restored::{Restored, RECORD_FILE};
use zone_node::snapshot::store::{manifest_path, read_manifest};
use zone_node::snapshot::Manifest;

/// etcd's advice for a restore: bump every revision far past what any watcher has seen,
/// and mark them compacted, so watchers of the old cluster re-list instead of silently
/// missing what happened after the snapshot.
pub const BUMP_REVISION: u64 = 1_000_000_000;
pub fn run(config: &Path, from: &Path, force: bool) -> Result<(), Error> {
    let node = Node::load(config)?;
    let Some(member) = node.member().cloned() else {
        return Err(Error::new(format!(
            "{} is not an etcd member of zone {}: only members restore",
            node.name, node.zone
        ))
        .file(config)
        .fix("run restore on each member of the zone's list"));
    };
    let creds = zone_node::reach::client_credentials(&node)?;
    // Ask the members while the snapshot is checked and restored: a restored member that
    // waits for its quorum holds each question on its client port, not on its peer port.
    let peer_creds = Credentials::load_peer(&node.leaf_paths()).ok();
    let probe = live::Probe::start(&node.members, &creds, peer_creds);
    let manifest = check_manifest(&node, from)?;
    // An etcd without a quorum does not answer requests, but it listens.
    let running = [cluster::peer_url(&member), cluster::client_url(&member)]
        .into_iter()
        .find(|url| cluster_api::listening(url, cluster_api::CONNECT_TIMEOUT));
    if let Some(url) = running {
        return Err(Error::new(format!(
            "this node's etcd member is running (something listens on {url}): its data directory is in use"
        ))
        .file(config)
        .fix(
            "stop it first (systemctl stop zone-etcd, or kill its zone-etcd launch), then restore",
        ));
    }

    // Stage the new data directory beside the old one (same file system: one rename),
    // under the state lock: one restore at a time, so a staging directory left by a killed
    // restore (made from the snapshot, never a member's data) can go.
    let parent = node
        .data_dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    zone_io::ensure_private_dir(&parent)?;
    let lock = zone_io::state::lock(&node.state_dir)?;
    remove_stale_staging(&parent)?;
    let staging = tempfile::Builder::new()
        .prefix(".restore-")
        .tempdir_in(&parent)
        .map_err(|e| Error::io("create a staging directory in", &parent, &e))?;
    let staged = staging.path().join("data");
    let token = restored_token(
        &node.zone,
        &node.members,
        &node.zone_ca_info.fingerprint(),
        &manifest.sha256,
    );
    let etcdutl = etcdutl(node.etcd_bin.as_deref(), config)?;
    // The file's two hashes while etcdutl restores it: nothing leaves the staging
    // directory before they passed. etcdutl is told not to check etcd's hash a second
    // time (a third of its time); the file must then be the same file, unchanged, from
    // before etcdutl started until both reads ended.
    let before = file_identity(from)?;
    let hashing = {
        let (from, manifest) = (from.to_path_buf(), manifest.clone());
        std::thread::spawn(move || check_unchanged(&from, &manifest))
    };
    let mut command = Command::new(&etcdutl);
    bound_to_this_restore(&mut command, &lock);
    let out = command
        .arg("snapshot")
        .arg("restore")
        .arg(from)
        .arg(format!("--name={}", member.node_name))
        .arg(format!(
            "--initial-cluster={}",
            cluster::initial_cluster(&node.members)
        ))
        .arg(format!("--initial-cluster-token={token}"))
        .arg(format!(
            "--initial-advertise-peer-urls={}",
            cluster::peer_url(&member)
        ))
        .arg(format!("--data-dir={}", staged.display()))
        .arg(format!("--bump-revision={BUMP_REVISION}"))
        .arg("--mark-compacted")
        .arg("--skip-hash-check")
        .output()
        .map_err(|e| Error::io("run", &etcdutl, &e));
    // A damaged file is named as such, before etcdutl's own failure over it.
    hashing.join().map_err(|_| {
        Error::new("checking the snapshot's hashes failed").fix("run restore again")
    })??;
    if file_identity(from)? != before {
        return Err(Error::new(
            "the file changed while it was restored (its inode, size or change time differ)",
        )
        .file(from)
        .fix("restore it again once nothing writes to it"));
    }
    let out = out?;
    if !out.status.success() {
        let last = zone_etcd_kit::etcd::last_stderr_line(&out.stderr);
        return Err(Error::new(format!("etcdutl snapshot restore failed: {last}"))
            .file(from)
            .fix("check the snapshot with zone-etcd snapshot list; if it is damaged, use another"));
    }
    let restored = wal::local_member(&staged)?.ok_or_else(|| {
        Error::new("etcdutl left no member in the restored data directory")
            .file(&staged)
            .fix("run restore again")
    })?;

    // A live quorum of another cluster: the zone is not lost, restoring would split it.
    let live = probe.live_others(restored.cluster_id)?;
    if !live.is_empty() {
        if !force {
            return Err(Error::new(format!(
                "the zone's cluster still has a quorum ({} serve{} quorum reads): restoring this member would split the zone, so nothing was changed",
                live.join(", "),
                if live.len() == 1 { "s" } else { "" }
            ))
            .file(config)
            .fix("restore only when the quorum is lost for good; a member that lost its disk comes back with zone-etcd join --replace; to go back to the snapshot anyway, stop every member first or pass --force"));
        }
        tracing::warn!("--force: restoring while {} answer", live.join(", "));
    }

    // Move the old data aside, the restored data into place.
    let moved_aside = if fs::symlink_metadata(&node.data_dir).is_ok() {
        let aside = aside_path(&node.data_dir);
        fs::rename(&node.data_dir, &aside)
            .map_err(|e| Error::io("move aside", &node.data_dir, &e))?;
        Some(aside)
    } else {
        None
    };
    fs::rename(&staged, &node.data_dir).map_err(|e| Error::io("move into place", &staged, &e))?;
    sync_dir(&parent)?;
    let record = Restored {
        cluster_id: hex_id(restored.cluster_id),
        snapshot: from.display().to_string(),
        sha256: manifest.sha256.clone(),
        revision: manifest.revision,
        moved_aside: moved_aside.clone(),
        restored_at: now_rfc3339(),
    };
    let text = serde_json::to_string_pretty(&record)
        .map_err(|e| Error::new(format!("cannot write the restore record: {e}")))?;
    write_atomic(
        &node.state_dir.join(RECORD_FILE),
        (text + "\n").as_bytes(),
        PUBLIC_MODE,
    )?;
    println!(
        "restored {} (zone {}, revision {}, taken {}) as member {} of new cluster {}",
        from.display(),
        manifest.zone,
        manifest.revision,
        manifest.taken_at,
        member.node_name,
        hex_id(restored.cluster_id)
    );
    if let Some(aside) = moved_aside {
        println!(
            "the data directory before the restore is in {}",
            aside.display()
        );
    }
    println!(
        "next: zone-etcd launch --config {} here; restore the same snapshot on every other member of the zone, then launch each",
        config.display()
    );
    Ok(())
}

/// The snapshot's manifest, once it is found to be this zone's (the file itself is
/// checked by [`check_unchanged`]).
fn check_manifest(node: &Node, from: &Path) -> Result<Manifest, Error> {
    let manifest_file = manifest_path(from);
    let manifest = read_manifest(&manifest_file).map_err(|problem| {
        Error::new(format!("no usable manifest beside the snapshot: {problem}"))
            .file(from)
            .fix("restore a snapshot saved by zone-etcd snapshot save, with its .json beside it")
    })?;
    if manifest.zone != node.zone {
        return Err(Error::new(format!(
            "a snapshot of zone {:?}, not of this node's zone {:?}",
            manifest.zone, node.zone
        ))
        .file(from)
        .fix("restore a snapshot of this zone"));
    }
    Ok(manifest)
}

/// Reads the snapshot once: whole (etcd's integrity hash at its end) and unchanged (the
/// size and SHA-256 of its manifest).
fn check_unchanged(from: &Path, manifest: &Manifest) -> Result<(), Error> {
    let mut file = fs::File::open(from).map_err(|e| Error::io("open", from, &e))?;
    let mut integrity = Integrity::default();
    zone_io::for_each_chunk(&mut file, from, |chunk| {
        integrity.update(chunk);
        Ok(())
    })?;
    let fix = "use another snapshot (zone-etcd snapshot list), or copy this one again from where it was saved";
    let (size, sha256) = integrity
        .finish()
        .map_err(|problem| Error::new(problem).file(from).fix(fix))?;
    if sha256 != manifest.sha256 || size != manifest.size {
        return Err(Error::new(format!(
            "the file ({size} bytes) does not match its manifest ({} bytes, sha256 {}…): it was changed or replaced",
            manifest.size,
            &manifest.sha256[..manifest.sha256.len().min(16)]
        ))
        .file(from)
        .fix(fix));
    }
    Ok(())
}

/// What tells a file from another, or from itself changed: device, inode, size, and the
/// modification and status-change times (a write or a rename over it changes one).
fn file_identity(file: &Path) -> Result<[i64; 7], Error> {
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(file).map_err(|e| Error::io("read the metadata of", file, &e))?;
    Ok([
        m.dev() as i64,
        m.ino() as i64,
        m.size() as i64,
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
    ])
}

/// Makes `etcdutl` end with this restore: killed when this process dies (a restore killed
/// mid-way, by its owner or the OOM killer, left it writing into its staging directory
/// while the next restore removed that directory: the leftover the recovery test found in
/// a busy suite), and holding the state lock while it lives (it inherits the lock's
/// descriptor), so the next restore, waiting on that lock, never clears a staging
/// directory a process still writes to, even in the moment the kill takes.
#[allow(unsafe_code)] // pre_exec: the child's death signal and lock descriptor
fn bound_to_this_restore(command: &mut Command, lock: &Flock<fs::File>) {
    let fd = lock.as_raw_fd();
    let restore = nix::unistd::getpid();
    // SAFETY: between fork and exec only async-signal-safe calls are made (prctl, getppid,
    // fcntl), nothing allocates (errors are errno values), and `fd` stays open in the
    // parent for the whole call (the lock lives until the restore returns).
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
            // Killed before the death signal was set: end now.
            if nix::unistd::getppid() != restore {
                return Err(std::io::Error::from(nix::errno::Errno::ESRCH));
            }
            let fd = std::os::fd::BorrowedFd::borrow_raw(fd);
            nix::fcntl::fcntl(
                fd,
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
            )?;
            Ok(())
        });
    }
}

/// Removes the staging directories (`.restore-*`) of restores that were killed.
fn remove_stale_staging(parent: &Path) -> Result<(), Error> {
    let entries = fs::read_dir(parent).map_err(|e| Error::io("read directory", parent, &e))?;
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(".restore-") {
            fs::remove_dir_all(entry.path())
                .map_err(|e| Error::io("remove the staging directory", &entry.path(), &e))?;
        }
    }
    Ok(())
}

/// `<data>.before-restore-<unix seconds>` (with `-2`, `-3`… when taken already).
fn aside_path(data_dir: &Path) -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let base = format!("{}.before-restore-{secs}", data_dir.display());
    let mut candidate = PathBuf::from(&base);
    let mut n = 1;
    while fs::symlink_metadata(&candidate).is_ok() {
        n += 1;
        candidate = PathBuf::from(format!("{base}-{n}"));
    }
    candidate
}

fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.replace_nanosecond(0)
        .unwrap_or(now)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
