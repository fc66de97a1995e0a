//! Probes of a revoked node's access, shared by tests/zone/revocation.rs and
//! tests/zone/zone_cluster.rs: whether an identity still reads through a member (gRPC with
//! etcdctl, the HTTP gateway over a new TLS connection), and how long after `revoke`
//! every member refused it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::{bundled, https_request, Identity};

/// The promise: every member refuses within this long after `revoke` returns.
pub const PROMISE: Duration = Duration::from_secs(10);

/// etcdctl with a given identity (`dir/{ca,client}.crt`, `client.key`).
pub fn etcdctl_as(ca: &Path, cert: &Path, key: &Path, endpoints: &str) -> Command {
    let mut cmd = Command::new(bundled("etcdctl"));
    cmd.arg(format!("--endpoints={endpoints}"))
        .arg(format!("--cacert={}", ca.display()))
        .arg(format!("--cert={}", cert.display()))
        .arg(format!("--key={}", key.display()))
        .arg("--dial-timeout=1s")
        .arg("--command-timeout=3s");
    cmd
}

/// Whether `identity` can read through member `addr`'s gRPC API (etcdctl), a key of its
/// own node's prefix (`nodes/<its CN>/`: in a zone of least privilege a node reads there
/// only).
pub fn grpc_reads(addr: &str, ca: &Path, identity: &Identity) -> bool {
    let cn = zone_pki::CertInfo::parse_pem(&std::fs::read_to_string(&identity.chain).unwrap())
        .unwrap()
        .subject_cn;
    etcdctl_as(
        ca,
        &identity.chain,
        &identity.key,
        &format!("https://{addr}"),
    )
    .args(["get", &format!("nodes/{cn}/probe")])
    .output()
    .map(|o| o.status.success())
    .unwrap_or(false)
}

/// Whether any of `addrs` serves `identity` over gRPC (asked of all at once: a refused
/// etcdctl retries until its dial timeout).
pub fn any_grpc_reads(addrs: &[String], ca: &Path, identity: &Identity) -> bool {
    std::thread::scope(|scope| {
        let handles: Vec<_> = addrs
            .iter()
            .map(|addr| scope.spawn(move || grpc_reads(addr, ca, identity)))
            .collect();
        handles.into_iter().any(|h| h.join().unwrap())
    })
}

/// Whether member `addr` takes `identity` on a new connection and its HTTP gateway
/// answers: 200, or, in a zone of least privilege, etcd's 400 for a certificate with a
/// name (its gateway serves passwords only, `env --gateway`): the handshake, where a
/// revoked certificate is refused, went through.
pub fn http_reads(addr: &str, ca: &Path, identity: &Identity) -> bool {
    https_request(
        addr,
        ca,
        Some(identity),
        "POST",
        "/v3/kv/range",
        "{\"key\":\"cHJvYmU=\"}",
    )
    .is_ok_and(|r| {
        r.status_line.contains(" 200")
            || (r.status_line.contains(" 400") && r.body.contains("CommonName of client"))
    })
}

/// Polls `probe` on each address at once until it says refused; returns how long after
/// `since` each first did (panics past the promise).
pub fn refused_times(
    addrs: &[String],
    since: Instant,
    probe: impl Fn(&str) -> bool + Sync,
) -> Vec<Duration> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = addrs
            .iter()
            .map(|addr| {
                let probe = &probe;
                scope.spawn(move || loop {
                    if !probe(addr) {
                        return since.elapsed();
                    }
                    assert!(
                        since.elapsed() < PROMISE,
                        "{addr} still accepts {PROMISE:?} after revoke returned"
                    );
                    std::thread::sleep(Duration::from_millis(50));
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// A node's trusted roots and its client identity, as its `env` or `launch` issued them.
pub fn client_identity(node_dir: &Path) -> (PathBuf, Identity) {
    let tls = node_dir.join("state/tls/current");
    let identity = Identity {
        chain: tls.join("client.crt"),
        key: tls.join("client.key"),
    };
    (tls.join("ca.crt"), identity)
}

/// The established connections of process `pid` to `ports` (as `ss -tnp` sees them).
pub fn connections_of(pid: u32, ports: &[u16]) -> Vec<String> {
    let out = Command::new("ss")
        .args(["-Htnp", "state", "established"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&format!("pid={pid},")))
        .filter(|l| {
            ports.iter().any(|p| {
                l.split_whitespace()
                    .nth(3)
                    .is_some_and(|peer| peer.ends_with(&format!(":{p}")))
            })
        })
        .map(str::to_string)
        .collect()
}
