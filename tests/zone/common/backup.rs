//! A zone with backups for the tests: three members on loopback, SeaweedFS as the S3
//! target (plus a directory target), the owner's age identity made with Debian's
//! `age-keygen`, and `backup run` processes with the store's credentials.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::seaweed::{Seaweed, BUCKET};
use super::{loopback_members, wait_for, zone_etcd, zone_toml, Running, TestZone};

pub struct BackupZone {
    pub zone: TestZone,
    pub weed: Seaweed,
    pub aux: tempfile::TempDir,
    pub members: Vec<Running>,
    pub s3_url: String,
}

/// Runs a tool that must be installed (scripts/test.sh installs Debian's age).
pub fn tool(name: &str) -> Command {
    which::which(name).unwrap_or_else(|_| {
        panic!(
            "{name} is missing: install Debian's age (./scripts/need.sh age; scripts/test.sh does)"
        )
    });
    Command::new(name)
}

impl BackupZone {
    /// A running 3-member zone on 127.0.<subnet>.1-3 with `[backup]` (`policy` holds its
    /// extra keys, e.g. `delta_every = "1s"`), its S3 store on `weed_ip`.
    pub fn start(zone_name: &str, subnet: u8, weed_ip: &str, policy: &str) -> BackupZone {
        Self::start_of(
            super::Kind::LeastPrivilege,
            zone_name,
            subnet,
            weed_ip,
            policy,
        )
    }

    /// [`BackupZone::start`], a zone of `kind`.
    pub fn start_of(
        kind: super::Kind,
        zone_name: &str,
        subnet: u8,
        weed_ip: &str,
        policy: &str,
    ) -> BackupZone {
        let aux = tempfile::tempdir().unwrap();
        let key = aux.path().join("owner.key");
        let out = tool("age-keygen").arg("-o").arg(&key).output().unwrap();
        assert!(
            out.status.success(),
            "age-keygen: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = tool("age-keygen").arg("-y").arg(&key).output().unwrap();
        let recipient = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(
            recipient.starts_with("age1"),
            "no recipient from age-keygen -y: {recipient:?}"
        );
        let weed = Seaweed::start(&aux.path().join("weed"), weed_ip).unwrap();
        let members = loopback_members(zone_name, subnet, 3);
        let pairs: Vec<(&str, &str)> = members
            .iter()
            .map(|(n, a)| (n.as_str(), a.as_str()))
            .collect();
        let usb = aux.path().join("usb");
        fs::create_dir_all(&usb).unwrap();
        let s3_url = format!("s3://{BUCKET}/zones/{zone_name}");
        let text = format!(
            "{}\n[backup]\nrecipients = [\"{recipient}\"]\n{policy}\n\n[[backup.target]]\nurl = \"{s3_url}\"\nendpoint = \"{}\"\n\n[[backup.target]]\nurl = \"file://{}\"\n",
            zone_toml(zone_name, &pairs),
            weed.endpoint(),
            usb.display()
        );
        let zone = TestZone::of_kind(kind, zone_name, &text, members, 2380, 2379);
        let mut running = zone.launch_all();
        zone.wait_healthy(&mut running);
        BackupZone {
            zone,
            weed,
            aux,
            members: running,
            s3_url,
        }
    }

    /// The zone's S3 target, as `backup run` reaches it.
    pub fn s3_target(&self) -> zone_backup::destination::s3::S3Target {
        let prefix = format!("zones/{}", self.zone.name);
        self.weed
            .target(BUCKET, &prefix, self.weed.secret_key(), Default::default())
            .unwrap()
    }

    pub fn owner_key(&self) -> PathBuf {
        self.aux.path().join("owner.key")
    }

    pub fn usb(&self) -> PathBuf {
        self.aux.path().join("usb")
    }

    pub fn file_url(&self) -> String {
        format!("file://{}", self.usb().display())
    }

    /// A zone-etcd command with this store's credentials.
    pub fn command(&self) -> Command {
        let mut cmd = zone_etcd();
        cmd.env("AWS_ACCESS_KEY_ID", self.weed.access_key())
            .env("AWS_SECRET_ACCESS_KEY", self.weed.secret_key())
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SHARED_CREDENTIALS_FILE");
        cmd
    }

    /// `backup run` on member `index`.
    pub fn backup_run(&self, index: usize) -> Running {
        let mut cmd = self.command();
        cmd.args(["backup", "run", "--config"])
            .arg(self.zone.config(index));
        let log = self.zone.path(&format!(
            "{}.backup-run.{}.log",
            self.zone.members[index].0,
            now_ms()
        ));
        Running::spawn(cmd, &log)
    }

    /// `backup run` on every member, once one of them is the active writer (each in a
    /// slot, to be killed by taking it out).
    pub fn backup_runs_with_a_writer(&self) -> Vec<Option<Running>> {
        let runs = (0..self.zone.members.len())
            .map(|i| Some(self.backup_run(i)))
            .collect();
        wait_for(Duration::from_secs(60), "an active writer", || {
            self.active().is_some()
        });
        runs
    }

    /// `backup status --json` on member `index`: (exit success, JSON, stderr).
    pub fn status(&self, index: usize) -> (bool, serde_json::Value, String) {
        let out = self
            .command()
            .args(["backup", "status", "--json", "--config"])
            .arg(self.zone.config(index))
            .output()
            .unwrap();
        let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
        (
            out.status.success(),
            json,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The active writer's index, as `status` names it.
    pub fn active(&self) -> Option<usize> {
        let (_, json, _) = self.status(0);
        let node = json["active_node"].as_str()?.to_string();
        self.zone.members.iter().position(|(n, _)| *n == node)
    }

    /// Waits until every target's newest delta is at `revision` or later; panics with
    /// the status and the `backup run` logs if not.
    pub fn wait_shipped(&self, revision: i64, limit: Duration) {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let (_, json, stderr) = self.status(0);
            let done = json["targets"].as_array().is_some_and(|targets| {
                targets.len() == 2
                    && targets
                        .iter()
                        .all(|t| t["newest_delta"]["revision"].as_i64().unwrap_or(0) >= revision)
            });
            if done {
                return;
            }
            if std::time::Instant::now() > deadline {
                panic!(
                    "no deltas up to revision {revision} on every target after {limit:?}:\n{json:#}\n{stderr}\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// The `backup run` logs, last lines of each.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        let mut paths: Vec<_> = fs::read_dir(self.zone.path(""))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().contains(".backup-run."))
            .collect();
        paths.sort();
        for p in paths {
            let text = fs::read_to_string(&p).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            out += &format!(
                "---- {}\n{}\n",
                p.display(),
                lines[lines.len().saturating_sub(30)..].join("\n")
            );
        }
        out
    }

    /// The store's current revision (etcdctl's header).
    pub fn revision(&self) -> i64 {
        let (ok, out, err) =
            self.zone
                .etcdctl(0, &self.zone.endpoints(), &["get", "x", "-w", "json"]);
        assert!(ok, "etcdctl get: {err}");
        let json: serde_json::Value = serde_json::from_str(&out).unwrap();
        json["header"]["revision"].as_i64().unwrap()
    }

    /// `backup drill` of member `index` (the active writer's drill against the live
    /// cluster): (exit success, stdout, stderr).
    pub fn member_drill(&self, index: usize) -> (bool, String, String) {
        let out = self
            .command()
            .args(["backup", "drill", "--config"])
            .arg(self.zone.config(index))
            .output()
            .unwrap();
        super::outcome(out)
    }

    /// `backup drill --from URL --ca --identity`: (exit success, stdout, stderr).
    pub fn owner_drill(&self, url: &str) -> (bool, String, String) {
        let mut cmd = self.command();
        cmd.args(["backup", "drill", "--from", url, "--ca"])
            .arg(self.zone.path("ca"))
            .arg("--identity")
            .arg(self.owner_key());
        if url.starts_with("s3://") {
            cmd.args(["--endpoint", &self.weed.endpoint()]);
        }
        let out = cmd.output().unwrap();
        super::outcome(out)
    }
}

pub fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

/// The objects the manifests under `dir` (a directory target) name, by kind.
pub fn named_objects(dir: &Path) -> Vec<(String, String)> {
    manifest_bodies(dir)
        .iter()
        .filter_map(|body| {
            Some((
                body["kind"].as_str()?.to_string(),
                body["object"].as_str()?.to_string(),
            ))
        })
        .collect()
}

/// The bodies of the manifests under `dir` (a directory target or a local chain), in
/// chain order, unverified.
pub fn manifest_bodies(dir: &Path) -> Vec<serde_json::Value> {
    let mut manifests: Vec<PathBuf> = fs::read_dir(dir.join("chain"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    manifests.retain(|p| p.extension().is_some_and(|e| e == "json"));
    manifests.sort();
    // A manifest listed may be pruned before it is read (a writer that runs on): gone is
    // skipped, anything else unreadable fails the caller.
    manifests
        .iter()
        .filter_map(|path| match fs::read(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            read => Some(read.unwrap()),
        })
        .map(|bytes| {
            let envelope: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            serde_json::from_str(envelope["body"].as_str().unwrap()).unwrap()
        })
        .collect()
}

/// Every revision line of the delta segments the manifests under `dir` (a directory
/// target) name, decrypted with Debian's `age` and the owner's identity, in chain order.
pub fn delta_lines(dir: &Path, identity: &Path) -> Vec<serde_json::Value> {
    use std::io::Read;
    let mut out = Vec::new();
    for (_, object) in named_objects(dir).into_iter().filter(|(k, _)| k == "delta") {
        let path = dir.join(object);
        let plain = tool("age")
            .arg("-d")
            .arg("-i")
            .arg(identity)
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            plain.status.success(),
            "age -d {}: {}",
            path.display(),
            String::from_utf8_lossy(&plain.stderr)
        );
        let mut text = String::new();
        flate2::read::GzDecoder::new(&plain.stdout[..])
            .read_to_string(&mut text)
            .unwrap();
        // The first line is the segment's header; then one line per revision.
        for line in text.lines().skip(1) {
            out.push(serde_json::from_str(line).unwrap());
        }
    }
    out
}

/// Every revision the delta segments under `dir` hold, with the keys put in each:
/// (revision, keys).
pub fn delta_revisions(dir: &Path, identity: &Path) -> Vec<(i64, Vec<String>)> {
    delta_lines(dir, identity)
        .iter()
        .map(|v| {
            let keys = v["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    use base64::Engine;
                    let raw = base64::engine::general_purpose::STANDARD
                        .decode(e["key"].as_str().unwrap())
                        .unwrap();
                    String::from_utf8_lossy(&raw).into_owned()
                })
                .collect();
            (v["revision"].as_i64().unwrap(), keys)
        })
        .collect()
}

/// A link as a test reads it from a manifest under `root` (a directory target or a local
/// chain), unverified.
#[derive(Debug, Clone)]
pub struct TestLink {
    pub seq: u64,
    pub kind: String,
    pub time_ms: i64,
    pub object: Option<String>,
}

/// The links under `root`, in chain order.
pub fn links(root: &Path) -> Vec<TestLink> {
    let mut manifests: Vec<PathBuf> = fs::read_dir(root.join("chain"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    manifests.retain(|p| p.extension().is_some_and(|e| e == "json"));
    manifests.sort();
    // A manifest listed may be pruned before it is read (a writer that runs on): gone is
    // skipped, anything else unreadable fails the caller.
    manifests
        .iter()
        .filter_map(|path| match fs::read(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            read => Some(read.unwrap()),
        })
        .map(|bytes| {
            let envelope: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            let body: serde_json::Value =
                serde_json::from_str(envelope["body"].as_str().unwrap()).unwrap();
            TestLink {
                seq: body["seq"].as_u64().unwrap(),
                kind: body["kind"].as_str().unwrap().to_string(),
                time_ms: body["last_time_ms"].as_i64().unwrap(),
                object: body["object"].as_str().map(String::from),
            }
        })
        .collect()
}

/// The guide's block after `<!-- recipe: NAME -->` in docs/src/backups.md, its commands
/// one a line (a line ending in `\` continues on the next).
pub fn guide_recipe(name: &str) -> Vec<String> {
    let guide = fs::read_to_string(super::repo().join("docs/src/backups.md")).unwrap();
    let block = guide
        .split(&format!("<!-- recipe: {name} -->"))
        .nth(1)
        .and_then(|r| r.split("```sh\n").nth(1))
        .and_then(|r| r.split("```").next())
        .unwrap_or_else(|| panic!("the guide's backups page has no recipe {name:?}"));
    let joined = block.replace("\\\n", " ");
    let commands: Vec<String> = joined
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect();
    assert!(commands.len() >= 2, "the recipe {name:?} is empty");
    commands
}

/// A restored data directory read as the guide says (`read-restored`: in a zone of least
/// privilege etcd's auth stays on in its snapshots), as written but for the address
/// (127.0.0.1 there, `ip` here): the certificates made in `work` with OpenSSL from
/// `ca_dir`'s client CA, etcd started over `data` (killed by its PID when the process is
/// dropped), and the recipe's etcdctl as root, run with the arguments given in place of
/// the recipe's `get ...`.
pub fn read_restored(
    data: &Path,
    ip: &str,
    ca_dir: &Path,
    work: &Path,
) -> (Running, impl Fn(&[&str]) -> std::process::Output) {
    let recipe: Vec<String> = guide_recipe("read-restored")
        .iter()
        .map(|c| c.replace("127.0.0.1", ip))
        .collect();
    let (work, ca_dir, data) = (work.to_path_buf(), ca_dir.to_path_buf(), data.to_path_buf());
    let env = move |c: &mut Command| {
        c.current_dir(&work)
            .env("PATH", super::path_with_bundle())
            .env("CA_DIR", &ca_dir)
            .env("RESTORED", &data);
    };
    let mut etcd = None;
    let mut etcdctl = None;
    for command in &recipe {
        if let Some(line) = command.strip_prefix("etcd ") {
            let line = line
                .strip_suffix(" &")
                .expect("the recipe starts etcd in the background");
            let mut c = Command::new("bash");
            c.arg("-c").arg(format!("exec etcd {line}"));
            env(&mut c);
            let log = c.get_current_dir().unwrap().join("restored.etcd.log");
            etcd = Some(Running::spawn(c, &log));
        } else if let Some(line) = command.strip_prefix("etcdctl ") {
            let args: Vec<String> = line
                .split(' ')
                .take_while(|a| *a != "get")
                .map(str::to_string)
                .collect();
            etcdctl = Some(args);
        } else {
            let mut c = Command::new("bash");
            c.args(["-euo", "pipefail", "-c", command]);
            env(&mut c);
            let out = c.output().unwrap();
            assert!(
                out.status.success(),
                "the guide's step {command:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    let base = etcdctl.expect("the recipe reads with etcdctl");
    let run = move |args: &[&str]| {
        let mut c = Command::new(super::bundled("etcdctl"));
        c.args(&base).arg("--command-timeout=5s").args(args);
        env(&mut c);
        c.output().unwrap()
    };
    (etcd.expect("the recipe starts etcd"), run)
}
