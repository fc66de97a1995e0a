//! What every section of the benchmark uses: the release binaries, timed commands,
//! medians, loopback zones made with the real `zone-etcd` (zone-testkit's harness, with
//! the timed wait for health the figures need), etcd processes killed by PID (the kit's
//! [`Process`]), and an HTTPS client that opens a new TLS session per request.

use std::fs;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
pub use zone_testkit::Process;
use zone_testkit::{Kind, Tools};

pub type Result<T> = std::result::Result<T, String>;

/// The repository root (the bench crate sits in bench/).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The `zone-etcd` binary built with this program (same target directory and profile).
pub fn zone_etcd_bin() -> Result<PathBuf> {
    zone_testkit::process::built_binary(
        "zone-etcd",
        "cargo build --release --workspace, or run scripts/bench.sh",
    )
}

/// The release `zone-etcd` and the bundled etcd tools (bin/).
pub fn tools() -> Result<Tools> {
    Ok(Tools {
        zone_etcd: zone_etcd_bin()?,
        bin_dir: repo().join("bin"),
    })
}

/// A `zone-etcd` command with the bundled etcd (bin/) first on PATH, output discarded.
pub fn zone_etcd<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Result<Command> {
    let mut cmd = tools()?.command();
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Ok(cmd)
}

/// Runs `cmd` to completion and insists it succeeds; returns its stdout.
pub fn output(mut cmd: Command) -> Result<String> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("{shown}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{shown} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Wall time of `cmd` from spawn to exit; it must succeed.
pub fn timed(mut cmd: Command) -> Result<Duration> {
    let started = Instant::now();
    let status = cmd.status().map_err(|e| format!("{cmd:?}: {e}"))?;
    let took = started.elapsed();
    if !status.success() {
        return Err(format!("{cmd:?} failed ({status})"));
    }
    Ok(took)
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The median of `values` (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Median, minimum, maximum and count, for the JSON results.
pub fn summary(values: &[f64]) -> Value {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    json!({ "median": round(median(values)), "min": round(min), "max": round(max), "n": values.len() })
}

/// The nearest-rank percentile `p` (0-100) of `sorted` (ascending).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Count, p50, p99, max and min of `values`, each key ending in `unit` (e.g. "_ms").
pub fn spread(values: &[f64], unit: &str) -> Value {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mut out = serde_json::Map::new();
    out.insert("n".into(), json!(v.len()));
    for (name, x) in [
        ("p50", percentile(&v, 50.0)),
        ("p99", percentile(&v, 99.0)),
        ("max", v.last().copied().unwrap_or(f64::NAN)),
        ("min", v.first().copied().unwrap_or(f64::NAN)),
    ] {
        out.insert(format!("{name}{unit}"), json!(round(x)));
    }
    Value::Object(out)
}

/// Puts `key` = `value` through etcd's gateway at `base`; the revision etcd gave it.
pub fn put(agent: &ureq::Agent, base: &str, key: &str, value: &[u8]) -> Result<i64> {
    use base64::Engine as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let body = format!(
        "{{\"key\":\"{}\",\"value\":\"{}\"}}",
        b64(key.as_bytes()),
        b64(value)
    );
    let mut response = agent
        .post(&format!("{base}/v3/kv/put"))
        .content_type("application/json")
        .send(&body)
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let text = response
        .body_mut()
        .read_to_string()
        .map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("HTTP {status}: {text}"));
    }
    serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v["header"]["revision"].as_str()?.parse().ok())
        .ok_or_else(|| format!("a put answer without a revision: {text}"))
}

/// Three significant decimals are plenty for milliseconds and ratios.
pub fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The machine and its load, for the record.
pub fn machine() -> Value {
    let read = |p: &str| fs::read_to_string(p).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    let mem_kb = read("/proc/meminfo")
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or_default();
    let openssl = Command::new("openssl")
        .arg("version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(repo())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    json!({
        "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu": cpu,
        "memory_gib": round(mem_kb as f64 / 1024.0 / 1024.0),
        "kernel": read("/proc/sys/kernel/osrelease").trim(),
        "openssl": openssl,
        "commit": commit,
    })
}

/// The 1, 5 and 15 minute load averages now.
pub fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A zone of `count` members on `127.0.<subnet>.1..=count` (ports 2379/2380), made on disk
/// with `zone-etcd ca init` and `bootstrap` under `dir`: the kit's [`zone_testkit::Zone`]
/// (its members, paths and launches, through `Deref`).
pub struct Zone(zone_testkit::Zone);

impl Deref for Zone {
    type Target = zone_testkit::Zone;
    fn deref(&self) -> &zone_testkit::Zone {
        &self.0
    }
}

impl Zone {
    pub fn bootstrap(dir: &Path, zone: &str, subnet: u8, count: u8) -> Result<Zone> {
        Zone::bootstrap_with(dir, zone, subnet, count, "")
    }

    /// The same, with `extra` appended to the zone file (e.g. a `[backup]` table). A zone
    /// of the previous kind (every client root unless `extra` says `[access]`): the figures
    /// compare against the ones measured before least privilege was the default, and the
    /// access section writes its own `[access]`.
    pub fn bootstrap_with(
        dir: &Path,
        zone: &str,
        subnet: u8,
        count: u8,
        extra: &str,
    ) -> Result<Zone> {
        let members = zone_testkit::zone::loopback_members(zone, subnet, count);
        fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let made = zone_testkit::Zone::new(&tools()?, dir, zone, members);
        made.make(
            Kind::Previous("the benchmark's reference: its figures compare with those measured before least privilege was the default"),
            &format!("{}{extra}", made.zone_toml()),
        )?;
        Ok(Zone(made))
    }

    /// A client of the zone with member `i`'s current client certificate.
    pub fn client(&self, i: usize) -> Result<TlsClient> {
        TlsClient::new(
            &self.tls(i, "ca.crt"),
            &self.tls(i, "client.crt"),
            &self.tls(i, "client.key"),
        )
    }

    /// Launches every member, waits for the first start's client leaf and for a healthy
    /// zone; the members (killed by PID when dropped) and a client of member 0.
    pub fn launch_all(&self) -> Result<(Vec<Process>, TlsClient)> {
        let members = self.0.launch_all()?;
        let current = self.node_dir(0).join("state/tls/current/client.key");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !current.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let client = self.client(0)?;
        self.wait_healthy(&client, Instant::now())?;
        Ok((members, client))
    }

    /// The etcd command line `launch --dry-run` prints for member `i`: binary, then args.
    pub fn etcd_argv(&self, i: usize) -> Result<Vec<String>> {
        let config = self.config(i);
        let text = output(zone_etcd(&[
            "launch",
            "--config",
            &config.to_string_lossy(),
            "--dry-run",
        ])?)?;
        Ok(text.lines().map(str::to_string).collect())
    }

    /// Waits until every member answers /health with "true". Returns the time until all
    /// listened on their peer port (etcd opens it first, before any election) and until
    /// all were healthy (a leader elected: etcd serves clients only then).
    pub fn wait_healthy(&self, client: &TlsClient, since: Instant) -> Result<(Duration, Duration)> {
        let deadline = since + Duration::from_secs(90);
        let n = self.members.len();
        // When each member was first seen listening on its client port: etcd itself (a
        // launch waiting for the zone's first start answers only on the peer port).
        let mut listening: Vec<Option<Duration>> = vec![None; n];
        let mut healthy = vec![false; n];
        loop {
            for (slot, (_, address)) in listening.iter_mut().zip(&self.members) {
                if slot.is_none() {
                    let open = format!("{address}:2379").parse().is_ok_and(|addr| {
                        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
                    });
                    *slot = open.then(|| since.elapsed());
                }
            }
            // Health only once all listen: a request may block until etcd is ready.
            if listening.iter().all(Option::is_some) {
                for (i, ok) in healthy.iter_mut().enumerate().filter(|(_, ok)| !**ok) {
                    *ok = client
                        .get(&format!("{}/health", self.client_url(i)))
                        .is_ok_and(|body| body.contains("\"health\":\"true\""));
                }
            }
            if healthy.iter().all(|ok| *ok) {
                let all_healthy = since.elapsed();
                let all_listening = listening.iter().flatten().max().copied();
                return Ok((all_listening.unwrap_or(all_healthy), all_healthy));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "zone in {} not healthy after 90 s: see the logs there",
                    self.root.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// A zone file with `members` (name, address) on the default ports.
pub fn zone_toml(zone: &str, members: &[(String, String)]) -> String {
    zone_testkit::zone::zone_toml(zone, members, 2380, 2379)
}

/// The `[[etcd]]` list as zone files and node.toml carry it.
pub fn members_toml(members: &[(String, String)]) -> String {
    zone_testkit::zone::members_toml(members, 2380, 2379)
}

pub fn write(path: &Path, text: &str) -> Result<()> {
    fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// A field of `/proc/<pid>/status` given in kB (VmRSS, VmHWM, RssAnon, RssFile), in KiB.
pub fn status_kib(pid: u32, field: &str) -> Option<f64> {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|l| l.split_once(':').is_some_and(|(name, _)| name == field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// CPU time (user + system) a process has used, in seconds.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    Some(ticks / hz)
}

/// An HTTPS client with a zone client certificate. Each request gets a new agent, so a
/// new TCP connection and a full TLS handshake: the server loads its certificate again.
pub struct TlsClient {
    tls: ureq::tls::TlsConfig,
}

impl TlsClient {
    pub fn new(ca: &Path, chain: &Path, key: &Path) -> Result<TlsClient> {
        use std::sync::Arc;
        use ureq::tls::{parse_pem, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};
        let read = |p: &Path| fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
        let certs = |p: &Path| -> Result<Vec<_>> {
            Ok(parse_pem(&read(p)?)
                .filter_map(|item| match item {
                    Ok(PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect())
        };
        let key =
            PrivateKey::from_pem(&read(key)?).map_err(|e| format!("{}: {e}", key.display()))?;
        let tls = TlsConfig::builder()
            .root_certs(RootCerts::Specific(Arc::new(certs(ca)?)))
            .client_cert(Some(ClientCert::new_with_certs(&certs(chain)?, key)))
            .build();
        Ok(TlsClient { tls })
    }

    /// An agent of its own: requests through it reuse one TLS connection (keep-alive).
    pub fn agent(&self) -> ureq::Agent {
        ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(5)))
            .http_status_as_error(false)
            .proxy(None)
            .tls_config(self.tls.clone())
            .build()
            .into()
    }

    pub fn get(&self, url: &str) -> Result<String> {
        let mut response = self.agent().get(url).call().map_err(|e| e.to_string())?;
        body_if_ok(&mut response)
    }

    pub fn post(&self, url: &str, body: &str) -> Result<String> {
        let mut response = self
            .agent()
            .post(url)
            .content_type("application/json")
            .send(body)
            .map_err(|e| e.to_string())?;
        body_if_ok(&mut response)
    }
}

fn body_if_ok(response: &mut ureq::http::Response<ureq::Body>) -> Result<String> {
    let status = response.status();
    let body = response
        .body_mut()
        .read_to_string()
        .map_err(|e| e.to_string())?;
    if status.is_success() {
        Ok(body)
    } else {
        Err(format!("HTTP {status}: {body}"))
    }
}
