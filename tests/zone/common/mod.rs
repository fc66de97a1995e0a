//! Shared test harness: runs the real zone-etcd binary and the bundled etcd on loopback.
//! The local zone ([`zone`]: [`TestZone`], [`Running`]) and the machines ([`netns`]) are
//! zone-testkit's harness, the one the recorder and the bench use too, made to panic.
//!
//! Every test takes its own address blocks from the registry (`zone_testkit::addresses`,
//! checked by tests/module_circles/addresses.rs), so tests never collide on addresses; every
//! process a test starts is killed by its PID when the test ends, pass or fail.
#![allow(dead_code)]

pub mod backup;
pub mod grpc_load;
mod load;
pub mod netns;
pub mod revocation;
pub mod seaweed;
pub mod sysroot;
mod zone;
#[allow(unused_imports)]
pub use load::*;
pub use zone::*;

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{IpAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The bundled etcd tools (scripts/fetch-etcd.sh puts them in bin/).
pub fn bundled(tool: &str) -> PathBuf {
    let path = repo().join("bin").join(tool);
    assert!(
        path.exists(),
        "{} missing: run scripts/fetch-etcd.sh (scripts/test.sh does)",
        path.display()
    );
    path
}

/// The etcd binary of an older release the compatibility tests run (`scripts/fetch-etcd.sh
/// --compat` puts each in bin/etcd-<version>/); the bundle's for `None`.
pub fn etcd_release(version: Option<&str>) -> PathBuf {
    let Some(version) = version else {
        return bundled("etcd");
    };
    let path = repo()
        .join("bin")
        .join(format!("etcd-{version}"))
        .join("etcd");
    assert!(
        path.exists(),
        "{} missing: run scripts/fetch-etcd.sh --compat (scripts/test.sh does)",
        path.display()
    );
    path
}

/// The release of the bundled etcd (bin/etcd), as its `--version` prints it: "3.6.15".
pub fn bundled_version() -> String {
    let out = std::process::Command::new(bundled("etcd"))
        .arg("--version")
        .output()
        .expect("run bin/etcd --version");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("etcd Version: "))
        .map(|v| v.trim().to_string())
        .expect("bin/etcd --version names no version")
}

/// The (voters, learners) a `status --json` answer lists.
pub fn roles(status: &serde_json::Value) -> (usize, usize) {
    let members = status["members"].as_array().cloned().unwrap_or_default();
    let voters = members.iter().filter(|m| m["role"] == "voter").count();
    (voters, members.len() - voters)
}

/// A `zone-etcd` command with the bundle on PATH.
pub fn zone_etcd() -> Command {
    tools().command()
}

/// PATH with the bundle first, so `zone-etcd launch` finds etcd as an operator's would.
pub fn path_with_bundle() -> String {
    tools().path_with_bundle()
}

/// A finished command's (exit success, stdout, stderr).
pub fn outcome(out: Output) -> (bool, String, String) {
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs the one test `name` of this test binary in a process of its own (for what a test
/// must not share with the others: the process environment, its peak memory), with the
/// environment `set` gives it; panics unless it passed. Its stdout.
pub fn child_test(name: &str, set: impl FnOnce(&mut Command)) -> String {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", name, "--nocapture"]);
    set(&mut cmd);
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{name}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Runs zone-etcd with `args`; returns (exit success, stdout, stderr).
pub fn run<S: AsRef<str>>(args: &[S]) -> (bool, String, String) {
    let out: Output = zone_etcd()
        .args(args.iter().map(AsRef::as_ref))
        .output()
        .expect("zone-etcd runs");
    outcome(out)
}

/// Runs zone-etcd and insists it succeeds.
pub fn run_ok<S: AsRef<str>>(args: &[S]) -> String {
    let (ok, stdout, stderr) = run(args);
    let shown: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
    assert!(ok, "zone-etcd {shown:?} failed:\n{stderr}");
    stdout
}

fn owned(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// `zone-etcd ca init --zone ZONE --out OUT`.
pub fn ca_init_args(zone: &str, out: &str) -> Vec<String> {
    owned(&["ca", "init", "--zone", zone, "--out", out])
}

/// `zone-etcd ca init` of a zone *of the previous kind*: its CA directory without
/// [`ZONE_DEFAULTS`], as every CA made before zone-etcd 0.2, so a zone file without
/// `[access]` keeps meaning every client root. The tests whose subject is not access
/// (backups, membership, upgrades, …) were written against that kind and still run on
/// it; least privilege by default is proven by tests/zone/quickstart.rs, tests/zone/demo.rs,
/// tests/zone/activate_request.rs, tests/zone/least_privilege.rs and the `*_by_default` tests.
pub fn ca_init_previous_kind(zone: &str, out: &str) {
    run_ok(&ca_init_args(zone, out));
    let defaults = Path::new(out).join(ZONE_DEFAULTS);
    fs::remove_file(&defaults)
        .unwrap_or_else(|e| panic!("{}: {e} (does ca init still write it?)", defaults.display()));
}

/// `zone-etcd bootstrap --ca CA --zone ZONE_FILE --out OUT`.
pub fn bootstrap_args(ca: &str, zone_file: &str, out: &str) -> Vec<String> {
    owned(&["bootstrap", "--ca", ca, "--zone", zone_file, "--out", out])
}

/// `zone-etcd activate --ca CA --zone ZONE_FILE --node NODE --out OUT`.
pub fn activate_args(ca: &str, zone_file: &str, node: &str, out: &str) -> Vec<String> {
    owned(&[
        "activate", "--ca", ca, "--zone", zone_file, "--node", node, "--out", out,
    ])
}

/// `zone-etcd issue-client` for `name` on the node of `config`, into `out`.
pub fn issue_client(config: &Path, name: &str, out: &Path) -> (bool, String, String) {
    run(&[
        "issue-client",
        "--config",
        config.to_str().unwrap(),
        "--name",
        name,
        "--out",
        out.to_str().unwrap(),
    ])
}

/// Polls `done` until it returns true; panics after `limit` with `what`. The pause
/// between two looks grows with the wait ([`next_look`]).
pub fn wait_for(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    let deadline = started + limit;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(next_look(started.elapsed()));
    }
}

pub use zone_testkit::next_look;

/// A running 3-member zone of `kind` on 127.0.`subnet`.1-3 whose zone file ends with
/// `access` (an `[access]` table), with `nodes` (not members) activated beside it into
/// `nodes/<name>/`.
pub fn access_zone(
    kind: Kind,
    zone: &str,
    subnet: u8,
    access: &str,
    nodes: &[&str],
) -> (TestZone, Vec<Running>) {
    let (test_zone, mut running) = access_zone_launched(kind, zone, subnet, access, nodes);
    test_zone.wait_healthy(&mut running);
    (test_zone, running)
}

/// [`access_zone`] launched, not waited for: the members may not have formed the cluster
/// yet, and their keepers not turned auth on.
pub fn access_zone_launched(
    kind: Kind,
    zone: &str,
    subnet: u8,
    access: &str,
    nodes: &[&str],
) -> (TestZone, Vec<Running>) {
    let members = loopback_members(zone, subnet, 3);
    let pairs: Vec<(&str, &str)> = members
        .iter()
        .map(|(n, a)| (n.as_str(), a.as_str()))
        .collect();
    let text = zone_toml(zone, &pairs) + access;
    let test_zone = TestZone::of_kind(kind, zone, &text, members, 2380, 2379);
    for node in nodes {
        run_ok(&activate_args(
            test_zone.path("ca").to_str().unwrap(),
            test_zone.path("zone.toml").to_str().unwrap(),
            node,
            test_zone.path("nodes").join(node).to_str().unwrap(),
        ));
    }
    let running = test_zone.launch_all();
    (test_zone, running)
}

/// The one `zone-etcd: error: ...` line of a refusal on stderr (asserting there is one).
pub fn one_error_line(err: &str) -> String {
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("zone-etcd: error:"))
        .collect();
    assert_eq!(lines.len(), 1, "{err}");
    lines[0].to_string()
}

/// The bundled etcdctl as `who` through `endpoints` (comma-separated URLs), verifying the
/// servers with `cacert`: (success, stdout + stderr; an "Error" in it is a failure).
pub fn etcdctl_said(
    endpoints: &str,
    cacert: &Path,
    who: &Identity,
    args: &[&str],
) -> (bool, String) {
    let out = Command::new(bundled("etcdctl"))
        .arg(format!("--endpoints={endpoints}"))
        .arg(format!("--cacert={}", cacert.display()))
        .arg(format!("--cert={}", who.chain.display()))
        .arg(format!("--key={}", who.key.display()))
        .args(["--dial-timeout=2s", "--command-timeout=5s"])
        .args(args)
        .output()
        .expect("etcdctl runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success() && !text.contains("Error"), text)
}

/// A TLS client identity (certificate chain PEM and key PEM files), or none.
pub struct Identity {
    pub chain: PathBuf,
    pub key: PathBuf,
}

/// An administrative identity of the owner's (`ca admin --ca CA --out DIR`), made when
/// `dir` does not exist yet.
pub fn admin_identity(ca: &Path, dir: &Path) -> Identity {
    if !dir.exists() {
        run_ok(&[
            "ca",
            "admin",
            "--ca",
            ca.to_str().unwrap(),
            "--out",
            dir.to_str().unwrap(),
        ]);
    }
    Identity {
        chain: dir.join("client.crt"),
        key: dir.join("client.key"),
    }
}

/// An HTTPS GET over rustls with the zone CA as the only trust anchor. Ok(status line)
/// when the server answered, Err(reason) when the TLS handshake or request was refused.
pub fn https_get(
    addr: &str,
    ca: &Path,
    identity: Option<&Identity>,
    path: &str,
) -> Result<String, String> {
    https_request(addr, ca, identity, "GET", path, "").map(|r| r.status_line)
}

/// `openssl s_client` against `addr` with a client identity; returns (handshake done,
/// everything it printed).
pub fn s_client(
    addr: &str,
    ca: &Path,
    cert: &Path,
    key: &Path,
    options: &[&str],
) -> (bool, String) {
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            addr,
            "-servername",
            addr.rsplit_once(':').map_or(addr, |(host, _)| host),
            "-brief",
        ])
        .arg("-CAfile")
        .arg(ca)
        .arg("-cert")
        .arg(cert)
        // The file holds the leaf and its node CA: send both, as etcd's clients do.
        .arg("-cert_chain")
        .arg(cert)
        .arg("-key")
        .arg(key)
        .args(options)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl runs (scripts/test.sh installs it)");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let done = text.contains("Protocol version: TLSv1") && text.contains("Verification: OK");
    (done, text)
}

/// What one HTTPS exchange gave: the status line, the body, and the serial number (hex)
/// of the certificate the server presented.
pub struct HttpsResponse {
    pub status_line: String,
    pub body: String,
    pub server_serial: String,
}

/// Loads a client identity for rustls.
fn client_config(ca: &Path, identity: Option<&Identity>) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    Arc::new(match identity {
        Some(id) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&id.chain)
                .unwrap()
                .map(|c| c.unwrap())
                .collect();
            let key = PrivateKeyDer::from_pem_file(&id.key).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    })
}

/// One request on a new TCP connection and a new TLS session (no resumption): every
/// call makes the server load its certificate again.
pub fn https_request(
    addr: &str,
    ca: &Path,
    identity: Option<&Identity>,
    method: &str,
    path: &str,
    body: &str,
) -> Result<HttpsResponse, String> {
    use rustls::pki_types::ServerName;
    let config = client_config(ca, identity);
    let host = ip_of(addr);
    let mut conn = rustls::ClientConnection::new(config, ServerName::IpAddress(host.into()))
        .map_err(|e| format!("tls: {e}"))?;
    let mut sock = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tls.write_all(request.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    // Read until the answer is whole, not until the server closes: etcd's peer port
    // often keeps the connection despite `Connection: close` until its own 5 s read
    // timeout, which raced the 5 s this had (a red clean run, and 5 s per request).
    let mut response = Vec::new();
    let mut buf = [0u8; 16 << 10];
    while !http_answer_complete(&response) {
        match tls.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => response.extend_from_slice(&buf[..n]),
            // etcd may close without close_notify once it has answered.
            Err(e) if !response.is_empty() && e.kind() == std::io::ErrorKind::UnexpectedEof => {
                break
            }
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    let server_serial = conn
        .peer_certificates()
        .and_then(|certs| certs.first())
        .map(|der| {
            zone_pki::CertInfo::parse(der)
                .map(|info| info.serial_hex)
                .unwrap_or_default()
        })
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status_line = head
        .lines()
        .next()
        .map(str::to_string)
        .ok_or_else(|| "empty response".to_string())?;
    Ok(HttpsResponse {
        status_line,
        body: body.to_string(),
        server_serial,
    })
}

/// Whether `response` holds a whole HTTP/1.1 answer: its head, and a body as long as its
/// Content-Length or a chunked body's last chunk. Without either, only the close ends it.
fn http_answer_complete(response: &[u8]) -> bool {
    let Some(end) = response.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&response[..end]).to_ascii_lowercase();
    let body = &response[end + 4..];
    let header = |name: &str| {
        head.lines()
            .find_map(|line| line.strip_prefix(name).map(|v| v.trim().to_string()))
    };
    if let Some(length) = header("content-length:").and_then(|v| v.parse::<usize>().ok()) {
        return body.len() >= length;
    }
    if header("transfer-encoding:").is_some_and(|v| v.contains("chunked")) {
        return body.ends_with(b"0\r\n\r\n");
    }
    false
}

/// The serial (hex) of the certificate a TLS server at `addr` presents to `identity`.
pub fn served_serial(addr: &str, ca: &Path, identity: &Identity) -> String {
    use rustls::pki_types::ServerName;
    let host = ip_of(addr);
    let mut conn = rustls::ClientConnection::new(
        client_config(ca, Some(identity)),
        ServerName::IpAddress(host.into()),
    )
    .unwrap();
    let mut sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).expect("handshake");
    }
    let der = conn.peer_certificates().unwrap().first().unwrap().clone();
    zone_pki::CertInfo::parse(&der).unwrap().serial_hex
}

/// Everything under `dir`: relative path → (mode, contents), for "nothing changed" checks.
/// A symbolic link is recorded by its target, a FIFO or device by its mode only.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, (u32, Vec<u8>)>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            let mode = meta.permissions().mode();
            if meta.is_dir() {
                out.insert(rel, (mode, Vec::new()));
                walk(root, &path, out);
            } else if meta.is_symlink() {
                // The link itself (a FIFO or /dev/zero behind it must not be read).
                let target = fs::read_link(&path).unwrap_or_default();
                out.insert(rel, (mode, target.into_os_string().into_encoded_bytes()));
            } else if meta.is_file() {
                out.insert(rel, (mode, fs::read(&path).unwrap_or_default()));
            } else {
                out.insert(rel, (mode, Vec::new()));
            }
        }
    }
    walk(dir, dir, &mut out);
    out
}

/// A stand-in for the zone's nameservice: answers `GET /resolve?name=<zone>` with whatever
/// the test sets (a document, or an HTTP error), counts requests, and stops when dropped.
pub struct TestNameservice {
    pub url: String,
    addr: std::net::SocketAddr,
    state: Arc<std::sync::Mutex<NameserviceState>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct NameserviceState {
    status: u16,
    body: Vec<u8>,
    requests: usize,
}

impl TestNameservice {
    /// Listens on `ip` (a port the kernel picks) for zone `zone`; answers 503 until told.
    pub fn start(ip: &str, zone: &str) -> TestNameservice {
        Self::start_with(ip, zone, None)
    }

    /// Like [`TestNameservice::start`], over HTTPS with this certificate chain and key.
    pub fn start_tls(ip: &str, zone: &str, chain: &Path, key: &Path) -> TestNameservice {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(chain)
            .unwrap()
            .map(|c| c.unwrap())
            .collect();
        let key = PrivateKeyDer::from_pem_file(key).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        Self::start_with(ip, zone, Some(Arc::new(config)))
    }

    fn start_with(ip: &str, zone: &str, tls: Option<Arc<rustls::ServerConfig>>) -> TestNameservice {
        use std::sync::atomic::{AtomicBool, Ordering};
        let listener = std::net::TcpListener::bind((ip, 0)).expect("nameservice binds");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(std::sync::Mutex::new(NameserviceState {
            status: 503,
            body: Vec::new(),
            requests: 0,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let want = format!("GET /resolve?name={zone} ");
        let scheme = if tls.is_some() { "https" } else { "http" };
        let thread = {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(mut stream) = stream else { continue };
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                    let answer = |io: &mut dyn ReadWrite| {
                        let mut head = Vec::new();
                        let mut buf = [0u8; 1024];
                        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16384 {
                            match io.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => head.extend_from_slice(&buf[..n]),
                            }
                        }
                        let (status, body) = {
                            let mut s = state.lock().unwrap();
                            s.requests += 1;
                            if String::from_utf8_lossy(&head).starts_with(&want) {
                                (s.status, s.body.clone())
                            } else {
                                (404, b"unknown name".to_vec())
                            }
                        };
                        let header = format!(
                            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = io.write_all(header.as_bytes());
                        let _ = io.write_all(&body);
                        let _ = io.flush();
                    };
                    match &tls {
                        None => answer(&mut stream),
                        Some(config) => {
                            let Ok(mut conn) = rustls::ServerConnection::new(config.clone()) else {
                                continue;
                            };
                            let mut io = rustls::Stream::new(&mut conn, &mut stream);
                            answer(&mut io);
                            io.conn.send_close_notify();
                            let _ = io.flush();
                        }
                    }
                }
            })
        };
        TestNameservice {
            url: format!("{scheme}://{addr}"),
            addr,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// Serves `body` with 200 from now on.
    pub fn serve(&self, body: &[u8]) {
        let mut s = self.state.lock().unwrap();
        s.status = 200;
        s.body = body.to_vec();
    }

    /// Answers every request with `status` and an empty body.
    pub fn fail_with(&self, status: u16) {
        let mut s = self.state.lock().unwrap();
        s.status = status;
        s.body.clear();
    }

    /// How many requests arrived so far.
    pub fn requests(&self) -> usize {
        self.state.lock().unwrap().requests
    }
}

impl Drop for TestNameservice {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What the test nameservice talks over: a TCP stream, or TLS on one.
pub trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// A URL where nothing listens: a port the kernel handed out and took back.
pub fn closed_url(ip: &str) -> String {
    let listener = std::net::TcpListener::bind((ip, 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

/// Rewrites a bundle's node.toml into the seed's local JSON form (`name`, `ca`, `cert`,
/// `key` as inline PEM, plus `extra` fields), mode 0600 as it holds the key.
pub fn seed_json_config(node_dir: &Path, extra: &[(&str, &str)]) -> PathBuf {
    let pem = |f: &str| fs::read_to_string(node_dir.join("pki").join(f)).unwrap();
    let toml_text = fs::read_to_string(node_dir.join("node.toml")).unwrap();
    let table: toml::Table = toml_text.parse().unwrap();
    let mut json = serde_json::json!({
        "name": table["name"].as_str().unwrap(),
        "ca": pem("ca.crt"),
        "cert": pem("node.crt"),
        "key": pem("node.key"),
    });
    for (k, v) in extra {
        json[*k] = serde_json::Value::String(v.to_string());
    }
    let path = node_dir.join("node.json");
    fs::write(&path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// A stand-in for etcd: answers `--version` as etcd 3.6.15, else exits 0 like /bin/true.
pub fn stand_in_etcd() -> PathBuf {
    repo().join("tests/zone/common/etcd-stand-in")
}

/// Puts `etcd_bin = <the stand-in>` at the top of a node config.
pub fn use_stand_in_etcd(config: &Path) {
    let text = fs::read_to_string(config).unwrap();
    let line = format!("etcd_bin = \"{}\"\n", stand_in_etcd().display());
    fs::write(config, line + &text).unwrap();
}

/// A one-member zone on 127.0.<subnet>.1 whose launch execs the stand-in instead of etcd:
/// for tests of what launch and rotate write, with no server.
pub fn zone_with_true_etcd(subnet: u8) -> TestZone {
    let zone = TestZone::bootstrap("leaves.zone", subnet, 1);
    use_stand_in_etcd(&zone.config(0));
    zone
}

/// [`zone_with_true_etcd`] in a directory on a disk ([`ON_DISK`]): for a test of the disk.
pub fn zone_with_true_etcd_on_disk(subnet: u8) -> TestZone {
    let zone = TestZone::bootstrap_on_disk("leaves.zone", subnet, 1);
    use_stand_in_etcd(&zone.config(0));
    zone
}

/// Where a test of the disk itself makes its directories: TMPDIR may be in memory (Debian 13
/// mounts /tmp as tmpfs; a TMPDIR in /dev/shm), where a sync costs nothing and `check`
/// warns of a data directory that a restart of the machine empties.
pub const ON_DISK: &str = "/var/tmp";

/// The serial (hex) of the first certificate in a PEM file.
pub fn serial(path: &Path) -> String {
    zone_pki::CertInfo::parse_pem(&fs::read_to_string(path).unwrap())
        .unwrap()
        .serial_hex
}

/// Every leaf of member 0's current set is whole: its key matches, and it chains to the
/// node CA.
pub fn assert_whole_set(zone: &TestZone) {
    let node_dir = zone.node_dir(0);
    assert_whole_set_at(
        &node_dir.join("state/tls/current"),
        &node_dir.join("pki/node.crt"),
    );
}

/// The mode bits (permissions only) of `path`, not following a final symlink.
pub fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
}

/// A leaf set directory is whole: a private directory with the zone CA and, for each
/// leaf, a certificate issued by the node CA in `node_ca` (the client leaf of a member
/// with a signer beside it, `signer.crt`, as every member of a zone of least privilege
/// has: by that signer) and a 0600 key matching it.
pub fn assert_whole_set_at(set: &Path, node_ca: &Path) {
    use zone_pki::{CertInfo, LeafKind};
    let signer = node_ca.with_file_name("signer.crt");
    let signer = signer
        .exists()
        .then(|| CertInfo::parse_pem(&fs::read_to_string(&signer).unwrap()).unwrap());
    let node_ca = CertInfo::parse_pem(&fs::read_to_string(node_ca).unwrap()).unwrap();
    assert_eq!(
        mode(&set.canonicalize().unwrap()),
        0o700,
        "{}",
        set.display()
    );
    assert!(set.join("ca.crt").is_file(), "{}: ca.crt", set.display());
    for kind in LeafKind::ALL {
        let stem = kind.file_stem();
        let (cert, key) = (
            set.join(format!("{stem}.crt")),
            set.join(format!("{stem}.key")),
        );
        let info = CertInfo::parse_pem(&fs::read_to_string(&cert).unwrap()).unwrap();
        let key_pair = zone_pki::key::load_key(&key).unwrap();
        assert!(
            info.public_key_matches(&key_pair),
            "{}: key matches",
            cert.display()
        );
        let issuer = match (&signer, kind) {
            (Some(signer), LeafKind::Client) => signer,
            _ => &node_ca,
        };
        assert!(
            info.is_signed_by(issuer),
            "{}: issued by {}",
            cert.display(),
            issuer.subject_cn
        );
        assert_eq!(mode(&key), 0o600, "{}", key.display());
        assert_eq!(mode(&cert), 0o644, "{}", cert.display());
    }
}

/// Copies member `index`'s current leaf `stem` and its key into `into`, so a probe keeps
/// a fixed identity while the node rotates its own.
pub fn fixed_identity(zone: &TestZone, index: usize, stem: &str, into: &Path) -> Identity {
    let chain = into.join(format!("{stem}.crt"));
    let key = into.join(format!("{stem}.key"));
    fs::copy(zone.tls(index, &format!("{stem}.crt")), &chain).unwrap();
    fs::copy(zone.tls(index, &format!("{stem}.key")), &key).unwrap();
    Identity { chain, key }
}

/// Member `index`'s node CA, from its bundle.
pub fn node_authority(zone: &TestZone, index: usize) -> zone_pki::Authority {
    let dir = zone.node_dir(index);
    zone_pki::Authority::from_pem(
        &fs::read_to_string(dir.join("pki/node.crt")).unwrap(),
        &fs::read_to_string(dir.join("pki/node.key")).unwrap(),
    )
    .unwrap()
}

/// Member `index` as its certificates describe it.
pub fn member_identity(zone: &TestZone, index: usize) -> zone_pki::NodeIdentity {
    zone_pki::NodeIdentity {
        zone: zone.name.clone(),
        node_name: zone.members[index].0.clone(),
        address: Some(zone_pki::Host::parse(&zone.members[index].1)),
        member: true,
        tunneled: false,
    }
}

/// Overwrites a leaf of member 0's current set in place (through the `current` link), as
/// a test that breaks things on purpose does.
pub fn put_leaf(zone: &TestZone, stem: &str, issued: &zone_pki::Issued) {
    fs::write(zone.tls(0, &format!("{stem}.crt")), &issued.chain_pem).unwrap();
    fs::write(zone.tls(0, &format!("{stem}.key")), &issued.key_pem).unwrap();
}

/// The IP address of a `host:port` (IPv6 in brackets).
fn ip_of(addr: &str) -> IpAddr {
    addr.rsplit_once(':')
        .unwrap()
        .0
        .trim_matches(['[', ']'])
        .parse()
        .unwrap()
}

/// Runs a bash script and insists it succeeds; returns its standard output.
pub fn bash(script: &str) -> String {
    let out = Command::new("bash").arg("-c").arg(script).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The base64 body lines of the private keys in a PEM text (inline PEM in JSON too):
/// what must never appear in any output.
pub fn key_body_lines(text: &str) -> Vec<String> {
    let text = text.replace("\\n", "\n");
    let mut inside = false;
    let mut lines = Vec::new();
    for line in text.lines() {
        if line.contains("-----BEGIN") && line.contains("PRIVATE KEY") {
            inside = true;
        } else if line.contains("-----END") {
            inside = false;
        } else if inside && line.trim().len() >= 16 {
            lines.push(line.trim().to_string());
        }
    }
    lines
}
