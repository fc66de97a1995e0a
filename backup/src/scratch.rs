//! A scratch etcd for restore drills: a full snapshot restored with `etcdutl` into a
//! private temporary directory, served by a one-member etcd on loopback ports picked
//! below the kernel's ephemeral range ([`super::ports`]) with mutual TLS from a throwaway
//! CA (made here, gone with the directory), then the deltas replayed into it, one
//! transaction per revision.
//!
//! Invariants: the scratch member is never of the zone (its own CA, its own cluster),
//! listens on 127.0.0.1 only, and is killed by the PID this module started; a replayed
//! revision must land at the revision it had, or the replay stops and says where; no
//! lease expires in it while it replays (a thread of its own keeps every lease alive, so
//! an expiry can never add a revision the chain does not have, however long the replay or
//! a download between two segments takes).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use etcd_client::{Client, DeleteOptions, LeaseGrantOptions, PutOptions, Txn, TxnOp};
use zone_pki::{Authority, LeafKind, NodeIdentity};

use super::chain::{Kind, Plan, Verified};
use super::segment::{EventKind, Revision};
use zone_etcd_kit::cluster_api::{self, describe, within, Credentials};

/// A lease a replayed key was put with is granted again under its ID for this long (the
/// chain records no grant, so not its TTL): kept alive while the scratch member replays,
/// it expires this long after a zone restored from the result starts, unless its owner
/// renews it, as the full snapshot's own leases do after their TTL.
pub const REPLAY_LEASE_TTL: i64 = 60;
/// How often the scratch member's leases are renewed.
const KEEP_ALIVE_EVERY: Duration = Duration::from_secs(1);
const START_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Scratch {
    child: Child,
    /// The scratch etcd's own log (in the scratch directory).
    log: PathBuf,
    pub endpoint: String,
    pub creds: Arc<Credentials>,
    leases: BTreeSet<i64>,
    keeper: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
    _dir: tempfile::TempDir,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some((stop, thread)) = self.keeper.take() {
            stop.store(true, Ordering::Relaxed);
            let _ = thread.join();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Renews every lease of the member at `endpoint` every [`KEEP_ALIVE_EVERY`] until
/// `stop`; on a thread and a runtime of its own.
fn keep_alive(endpoint: String, creds: Arc<Credentials>, stop: Arc<AtomicBool>) {
    let Ok(runtime) = cluster_api::runtime() else {
        return;
    };
    runtime.block_on(async {
        let mut client = None;
        while !stop.load(Ordering::Relaxed) {
            if client.is_none() {
                client = cluster_api::connect(&endpoint, &creds).await.ok();
            }
            if let Some(c) = client.as_mut() {
                if renew_all(c).await.is_err() {
                    client = None;
                }
            }
            tokio::time::sleep(KEEP_ALIVE_EVERY).await;
        }
    });
}

async fn renew_all(client: &mut Client) -> Result<(), String> {
    let leases = within(async { client.leases().await.map_err(|e| describe(&e)) }).await?;
    for lease in leases.leases() {
        within(async {
            let (mut keeper, mut responses) = client
                .lease_keep_alive(lease.id())
                .await
                .map_err(|e| describe(&e))?;
            keeper.keep_alive().await.map_err(|e| describe(&e))?;
            responses.message().await.map_err(|e| describe(&e))?;
            Ok::<_, String>(())
        })
        .await?;
    }
    Ok(())
}

fn write(dir: &Path, name: &str, text: &str, mode: u32) -> Result<PathBuf, String> {
    let path = dir.join(name);
    zone_io::write_atomic(&path, text.as_bytes(), mode).map_err(|e| e.to_string())?;
    Ok(path)
}

impl Scratch {
    /// Restores `snapshot` (a whole Snapshot API stream) under `under` and serves it.
    pub fn restore(
        etcd: &Path,
        etcdutl: &Path,
        snapshot: &Path,
        under: &Path,
    ) -> Result<Scratch, String> {
        let dir = tempfile::Builder::new()
            .prefix("drill-")
            .tempdir_in(under)
            .map_err(|e| {
                format!(
                    "cannot make a scratch directory in {}: {e}",
                    under.display()
                )
            })?;
        let tls = dir.path().join("tls");
        zone_io::ensure_private_dir(&tls).map_err(|e| e.to_string())?;
        let node = NodeIdentity {
            zone: "drill.invalid".into(),
            node_name: "scratch.drill.invalid".into(),
            address: Some(zone_pki::Host::parse("127.0.0.1")),
            member: true,
            tunneled: false,
        };
        let root = Authority::new_root(&node.zone).map_err(|e| e.to_string())?;
        let node_ca = root.issue_node_ca(&node).map_err(|e| e.to_string())?;
        let ca = write(&tls, "ca.crt", root.chain_pem(), 0o644)?;
        let mut files = std::collections::HashMap::new();
        for kind in LeafKind::ALL {
            let leaf = node_ca
                // CN root: a snapshot of a zone that enforces least privilege has auth on,
                // and etcd's root (the zone's owner) may replay anything into it.
                .issue_leaf(kind, &node, (kind == LeafKind::Client).then_some("root"))
                .map_err(|e| e.to_string())?;
            let stem = kind.file_stem();
            let cert = write(&tls, &format!("{stem}.crt"), &leaf.chain_pem, 0o644)?;
            let key = write(&tls, &format!("{stem}.key"), &leaf.key_pem, 0o600)?;
            files.insert(stem, (cert, key));
        }
        // Below the kernel's ephemeral range: a port it hands out may be any outgoing
        // connection's source port before etcd binds it (a drill's etcd then exited with
        // "address already in use" on a busy machine).
        let client_port = super::ports::loopback_port(&[])?;
        let peer_port = super::ports::loopback_port(&[client_port])?;
        let metrics_port = super::ports::loopback_port(&[client_port, peer_port])?;
        let peer_url = format!("https://127.0.0.1:{peer_port}");
        let endpoint = format!("https://127.0.0.1:{client_port}");
        let data = dir.path().join("data");
        let out = Command::new(etcdutl)
            .args(["snapshot", "restore"])
            .arg(snapshot)
            .arg("--name=scratch")
            .arg(format!("--initial-cluster=scratch={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg("--initial-cluster-token=zone-etcd-drill")
            .arg(format!("--data-dir={}", data.display()))
            .output()
            .map_err(|e| format!("cannot run {}: {e}", etcdutl.display()))?;
        if !out.status.success() {
            let last = zone_etcd_kit::etcd::last_stderr_line(&out.stderr);
            return Err(format!("etcdutl snapshot restore failed: {last}"));
        }
        let (server, peer, client) = (&files["server"], &files["peer"], &files["client"]);
        // A throwaway member: what it holds is read back through its API (the snapshot
        // stream is consistent), so its disk writes need no fsync; replays go several
        // times faster where etcd takes the flag.
        let no_fsync = zone_etcd_kit::etcd::binary::ask_version(etcd)
            .ok()
            .and_then(|v| zone_etcd_kit::etcd::version::profile(v).ok())
            .is_some_and(|p| p.unsafe_no_fsync);
        let log_path = dir.path().join("etcd.log");
        let log = std::fs::File::create(&log_path)
            .map_err(|e| format!("cannot make the scratch log: {e}"))?;
        let child = Command::new(etcd)
            .arg("--name=scratch")
            .arg(format!("--data-dir={}", data.display()))
            .arg(format!("--listen-client-urls={endpoint}"))
            .arg(format!("--advertise-client-urls={endpoint}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!(
                "--listen-metrics-urls=http://127.0.0.1:{metrics_port}"
            ))
            .arg("--client-cert-auth")
            .arg(format!("--trusted-ca-file={}", ca.display()))
            .arg(format!("--cert-file={}", server.0.display()))
            .arg(format!("--key-file={}", server.1.display()))
            .arg("--peer-client-cert-auth")
            .arg(format!("--peer-trusted-ca-file={}", ca.display()))
            .arg(format!("--peer-cert-file={}", peer.0.display()))
            .arg(format!("--peer-key-file={}", peer.1.display()))
            .args(no_fsync.then_some("--unsafe-no-fsync"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", etcd.display()))?;
        let creds = Arc::new(Credentials::from_pem(
            root.chain_pem(),
            &std::fs::read_to_string(&client.0).map_err(|e| e.to_string())?,
            &std::fs::read_to_string(&client.1).map_err(|e| e.to_string())?,
        ));
        Ok(Scratch {
            child,
            log: log_path,
            endpoint,
            creds,
            leases: BTreeSet::new(),
            keeper: None,
            _dir: dir,
        })
    }

    /// Connects once the scratch member serves (its status answers), and from then on
    /// keeps its leases alive.
    pub async fn connect(&mut self) -> Result<Client, String> {
        let client = self.serving().await?;
        if self.keeper.is_none() {
            let stop = Arc::new(AtomicBool::new(false));
            let (endpoint, creds, flag) = (self.endpoint.clone(), self.creds.clone(), stop.clone());
            let thread = std::thread::spawn(move || keep_alive(endpoint, creds, flag));
            self.keeper = Some((stop, thread));
        }
        Ok(client)
    }

    async fn serving(&mut self) -> Result<Client, String> {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read(&self.log).unwrap_or_default();
                return Err(format!(
                    "the scratch etcd exited ({status}) before it served: {}",
                    zone_etcd_kit::etcd::binary::fatal_line(&log)
                ));
            }
            if let Ok(mut client) = cluster_api::connect(&self.endpoint, &self.creds).await {
                if within(async { client.status().await.map_err(|e| describe(&e)) })
                    .await
                    .is_ok()
                {
                    return Ok(client);
                }
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(format!(
                    "the scratch etcd did not serve within {START_TIMEOUT:?}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Replays the revisions after `after`, each as one transaction that must land at its
    /// own revision; returns the last revision replayed (or `after`).
    pub async fn replay(
        &mut self,
        client: &mut Client,
        revisions: &[Revision],
        after: i64,
    ) -> Result<i64, String> {
        self.replay_while(client, revisions, after, |_| true)
            .await
            .map(|(last, _)| last)
    }

    /// [`Scratch::replay`] up to the first revision `wanted` refuses; returns the last
    /// revision replayed and whether one was refused (the point is reached).
    pub async fn replay_while(
        &mut self,
        client: &mut Client,
        revisions: &[Revision],
        after: i64,
        wanted: impl Fn(&Revision) -> bool,
    ) -> Result<(i64, bool), String> {
        let mut last = after;
        for r in revisions.iter().filter(|r| r.revision > after) {
            if !wanted(r) {
                return Ok((last, true));
            }
            let mut ops = Vec::with_capacity(r.events.len());
            for e in &r.events {
                match e.kind {
                    EventKind::Put => {
                        let mut options = PutOptions::new();
                        if e.lease != 0 {
                            self.grant(client, e.lease).await?;
                            options = options.with_lease(e.lease);
                        }
                        ops.push(TxnOp::put(e.key.clone(), e.value.clone(), Some(options)));
                    }
                    EventKind::Delete => {
                        ops.push(TxnOp::delete(e.key.clone(), None::<DeleteOptions>))
                    }
                }
            }
            let resp = within(async {
                client
                    .txn(Txn::new().and_then(ops))
                    .await
                    .map_err(|e| describe(&e))
            })
            .await
            .map_err(|p| format!("replaying revision {}: {p}", r.revision))?;
            let landed = resp.header().map_or(0, |h| h.revision());
            if landed != r.revision {
                return Err(format!(
                    "revision {} landed at revision {landed} in the scratch member: the chain does not continue its full snapshot",
                    r.revision
                ));
            }
            last = r.revision;
        }
        Ok((last, false))
    }

    /// Replays the deltas of `plan` after its full snapshot (restored here), each
    /// segment's revisions given by `revisions`; a gap cannot be replayed past. Returns the
    /// last revision replayed.
    pub async fn replay_plan(
        &mut self,
        client: &mut Client,
        plan: &Plan<'_>,
        mut revisions: impl FnMut(&Verified) -> Result<Vec<Revision>, String>,
    ) -> Result<i64, String> {
        let mut revision = plan.full.link.last_revision;
        for v in &plan.deltas {
            if v.link.kind == Kind::Gap {
                return Err(format!(
                    "{}: revisions {}..{} were lost (a gap) after the newest full snapshot",
                    v.name, v.link.first_revision, v.link.last_revision
                ));
            }
            revision = self.replay(client, &revisions(v)?, revision).await?;
        }
        Ok(revision)
    }

    async fn grant(&mut self, client: &mut Client, id: i64) -> Result<(), String> {
        if self.leases.insert(id) {
            let _ = client
                .lease_grant(REPLAY_LEASE_TTL, Some(LeaseGrantOptions::new().with_id(id)))
                .await;
        }
        Ok(())
    }
}

/// etcd's HashKV of a member at `revision`: (hash, compact revision).
pub async fn hash_kv(client: &mut Client, revision: i64) -> Result<(u32, i64), String> {
    let resp = within(async {
        client
            .maintenance_client()
            .hash_kv(revision)
            .await
            .map_err(|e| describe(&e))
    })
    .await?;
    Ok((resp.hash(), resp.compact_version()))
}
