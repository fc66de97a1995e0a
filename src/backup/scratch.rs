//! A scratch etcd for restore drills: a full snapshot restored with `etcdutl` into a
//! private temporary directory, served by a one-member etcd on ephemeral loopback ports
//! with mutual TLS from a throwaway CA (made here, gone with the directory), then the
//! deltas replayed into it, one transaction per revision.
//!
//! Invariants: the scratch member is never of the zone (its own CA, its own cluster),
//! listens on 127.0.0.1 only, and is killed by the PID this module started; a replayed
//! revision must land at the revision it had, or the replay stops and says where.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::{Client, DeleteOptions, LeaseGrantOptions, PutOptions, Txn, TxnOp};
use zone_pki::{Authority, LeafKind, NodeIdentity};

use super::chain::{Kind, Plan, Verified};
use super::segment::{EventKind, Revision};
use crate::cluster_api::{self, describe, within, Credentials};

/// Leases of replayed keys are granted for this long: the drill ends well before.
const REPLAY_LEASE_TTL: i64 = 3600;
const START_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Scratch {
    child: Child,
    pub endpoint: String,
    pub creds: Arc<Credentials>,
    leases: BTreeSet<i64>,
    _dir: tempfile::TempDir,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free loopback port: {e}"))
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
        };
        let root = Authority::new_root(&node.zone).map_err(|e| e.to_string())?;
        let node_ca = root.issue_node_ca(&node).map_err(|e| e.to_string())?;
        let ca = write(&tls, "ca.crt", root.chain_pem(), 0o644)?;
        let mut files = std::collections::HashMap::new();
        for kind in LeafKind::ALL {
            let leaf = node_ca
                .issue_leaf(kind, &node, None)
                .map_err(|e| e.to_string())?;
            let stem = kind.file_stem();
            let cert = write(&tls, &format!("{stem}.crt"), &leaf.chain_pem, 0o644)?;
            let key = write(&tls, &format!("{stem}.key"), &leaf.key_pem, 0o600)?;
            files.insert(stem, (cert, key));
        }
        let (client_port, peer_port) = (free_port()?, free_port()?);
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
            let last = crate::etcd::last_stderr_line(&out.stderr);
            return Err(format!("etcdutl snapshot restore failed: {last}"));
        }
        let (server, peer, client) = (&files["server"], &files["peer"], &files["client"]);
        let log = std::fs::File::create(dir.path().join("etcd.log"))
            .map_err(|e| format!("cannot make the scratch log: {e}"))?;
        let child = Command::new(etcd)
            .arg("--name=scratch")
            .arg(format!("--data-dir={}", data.display()))
            .arg(format!("--listen-client-urls={endpoint}"))
            .arg(format!("--advertise-client-urls={endpoint}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!(
                "--listen-metrics-urls=http://127.0.0.1:{}",
                free_port()?
            ))
            .arg("--client-cert-auth")
            .arg(format!("--trusted-ca-file={}", ca.display()))
            .arg(format!("--cert-file={}", server.0.display()))
            .arg(format!("--key-file={}", server.1.display()))
            .arg("--peer-client-cert-auth")
            .arg(format!("--peer-trusted-ca-file={}", ca.display()))
            .arg(format!("--peer-cert-file={}", peer.0.display()))
            .arg(format!("--peer-key-file={}", peer.1.display()))
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
            endpoint,
            creds,
            leases: BTreeSet::new(),
            _dir: dir,
        })
    }

    /// Connects once the scratch member serves (its status answers).
    pub async fn connect(&mut self) -> Result<Client, String> {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "the scratch etcd exited ({status}) before it served"
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
        let mut last = after;
        for r in revisions.iter().filter(|r| r.revision > after) {
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
        Ok(last)
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
