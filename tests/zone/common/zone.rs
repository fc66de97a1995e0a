//! The tests' local zone: zone-testkit's harness ([`zone_testkit::zone`]) in a temporary
//! directory of the test's own, with the zone-etcd this test binary was built with, and
//! panicking where the kit returns an error (a test fails, it never passes).
//!
//! Invariants: every process a test starts through [`TestZone`] or [`Running`] is a
//! [`zone_testkit::Process`], killed by its PID and reaped when dropped, pass or fail;
//! the zone's directory is removed when the [`TestZone`] is dropped.
#![allow(dead_code)]

use std::borrow::{Borrow, BorrowMut};
use std::fs;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use zone_testkit::{Process, Tools, Zone};

pub use zone_testkit::zone::{loopback_members, Kind, ZONE_DEFAULTS};

use super::{activate_args, outcome, repo, run, run_ok, wait_for};

/// The zone-etcd this test binary was built with, and the bundle in bin/.
pub fn tools() -> Tools {
    Tools {
        zone_etcd: PathBuf::from(env!("CARGO_BIN_EXE_zone-etcd")),
        bin_dir: repo().join("bin"),
    }
}

/// Panics with the kit's error line.
fn must<T>(result: Result<T, String>) -> T {
    result.unwrap_or_else(|e| panic!("{e}"))
}

/// Writes a zone file for `zone` with members (node name, address) on default ports.
pub fn zone_toml(zone: &str, members: &[(&str, &str)]) -> String {
    zone_toml_on(zone, members, 2380, 2379)
}

/// A zone file with every member on `peer_port` and `client_port`.
pub fn zone_toml_on(
    zone: &str,
    members: &[(&str, &str)],
    peer_port: u16,
    client_port: u16,
) -> String {
    zone_testkit::zone::zone_toml(zone, members, peer_port, client_port)
}

/// A zone made on disk with `ca init` and `bootstrap`, members on 127.0.<subnet>.1..=n:
/// the kit's [`Zone`] (its members, ports and paths) in a temporary directory.
pub struct TestZone {
    pub dir: tempfile::TempDir,
    zone: Zone,
}

impl Deref for TestZone {
    type Target = Zone;
    fn deref(&self) -> &Zone {
        &self.zone
    }
}

impl DerefMut for TestZone {
    fn deref_mut(&mut self) -> &mut Zone {
        &mut self.zone
    }
}

impl TestZone {
    /// A zone of `members` in a new temporary directory; nothing made in it yet.
    pub fn unmade(zone: &str, members: Vec<(String, String)>) -> TestZone {
        Self::unmade_in(tempfile::tempdir().expect("temp dir"), zone, members)
    }

    fn unmade_in(dir: tempfile::TempDir, zone: &str, members: Vec<(String, String)>) -> TestZone {
        let zone = Zone::new(&tools(), dir.path(), zone, members);
        TestZone { dir, zone }
    }

    /// [`TestZone::bootstrap`] in a directory on a disk ([`super::ON_DISK`]), not in TMPDIR
    /// (which may be in memory): for a test of the disk itself (its measured syncs, the
    /// warning about a data directory in memory).
    pub fn bootstrap_on_disk(zone: &str, subnet: u8, count: u8) -> TestZone {
        let dir = tempfile::tempdir_in(super::ON_DISK).expect("a directory on disk");
        Self::bootstrap_in(dir, Kind::LeastPrivilege, zone, subnet, count)
    }

    /// A zone of `count` members on 127.0.<subnet>.1..=count, of the kind `ca init` makes
    /// today (least privilege enforced).
    pub fn bootstrap(zone: &str, subnet: u8, count: u8) -> TestZone {
        Self::bootstrap_on(zone, loopback_members(zone, subnet, count), 2380, 2379)
    }

    /// [`TestZone::bootstrap`], of the `kind` asked for.
    pub fn bootstrap_of(kind: Kind, zone: &str, subnet: u8, count: u8) -> TestZone {
        Self::bootstrap_in(
            tempfile::tempdir().expect("temp dir"),
            kind,
            zone,
            subnet,
            count,
        )
    }

    /// [`TestZone::bootstrap_of`] in `dir`.
    fn bootstrap_in(
        dir: tempfile::TempDir,
        kind: Kind,
        zone: &str,
        subnet: u8,
        count: u8,
    ) -> TestZone {
        let members = loopback_members(zone, subnet, count);
        let text = zone_testkit::zone::zone_toml(zone, &members, 2380, 2379);
        let test_zone = Self::unmade_in(dir, zone, members);
        must(test_zone.make(kind, &text));
        test_zone
    }

    /// Like [`TestZone::bootstrap`], on the given addresses and ports.
    pub fn bootstrap_on(
        zone: &str,
        members: Vec<(String, String)>,
        peer_port: u16,
        client_port: u16,
    ) -> TestZone {
        let text = zone_testkit::zone::zone_toml(zone, &members, peer_port, client_port);
        Self::from_zone_file(zone, &text, members, peer_port, client_port)
    }

    /// Bootstraps a zone from zone file `text` with a CA as `ca init` makes one today (a
    /// zone file without `[access]` enforces least privilege); `members` are (name,
    /// address) as the file lists them, all on `peer_port` and `client_port`.
    pub fn from_zone_file(
        zone: &str,
        text: &str,
        members: Vec<(String, String)>,
        peer_port: u16,
        client_port: u16,
    ) -> TestZone {
        Self::of_kind(
            Kind::LeastPrivilege,
            zone,
            text,
            members,
            peer_port,
            client_port,
        )
    }

    /// [`TestZone::from_zone_file`], of the `kind` asked for.
    pub fn of_kind(
        kind: Kind,
        zone: &str,
        text: &str,
        members: Vec<(String, String)>,
        peer_port: u16,
        client_port: u16,
    ) -> TestZone {
        let mut test_zone = TestZone::unmade(zone, members);
        test_zone.zone = test_zone.zone.clone().on_ports(peer_port, client_port);
        must(test_zone.make(kind, text));
        test_zone
    }

    /// The owner adds a member: the zone file gains it, and it is activated into
    /// nodes/<name>/ (the other bundles keep their old member list). Returns its index.
    pub fn add_member(&mut self, name: &str, address: &str) -> usize {
        self.members.push((name.to_string(), address.to_string()));
        let file = self.path("zone-grown.toml");
        fs::write(&file, self.zone_toml()).unwrap();
        run_ok(&activate_args(
            self.path("ca").to_str().unwrap(),
            file.to_str().unwrap(),
            name,
            self.node_dir(self.members.len() - 1).to_str().unwrap(),
        ));
        self.members.len() - 1
    }

    /// The owner publishes the zone file [`TestZone::add_member`] wrote, with member
    /// `index`'s node.toml (the new member's will do), as the guide's growing steps say:
    /// the keepers make the new member's etcd user. Asserts it exits 0; its stderr.
    pub fn publish_grown(&self, index: usize) -> String {
        self.publish(&self.path("zone-grown.toml"), index)
    }

    /// `zone publish` of `zone_file` by the owner (the zone's `ca/`) with member
    /// `index`'s node.toml. Asserts it exits 0; its stderr.
    pub fn publish(&self, zone_file: &Path, index: usize) -> String {
        let (ok, _, err) = run(&[
            "zone",
            "publish",
            "--ca",
            self.path("ca").to_str().unwrap(),
            "--zone",
            zone_file.to_str().unwrap(),
            "--config",
            self.config(index).to_str().unwrap(),
        ]);
        assert!(ok, "zone publish of {} failed:\n{err}", zone_file.display());
        err
    }

    /// Points member `index`'s node.toml at another etcd binary (`etcd_bin`).
    pub fn set_etcd_bin(&self, index: usize, etcd: &Path) {
        must(self.zone.set_etcd_bin(index, etcd));
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.file(rel)
    }

    /// `zone-etcd <command> --config <member index's node.toml>` in the background.
    pub fn spawn(&self, command: &str, index: usize) -> Running {
        let log = self.path(&format!("{}.{command}.log", self.members[index].0));
        Running::spawn(self.member_command(index, None, &[command]), &log)
    }

    /// Starts `zone-etcd launch` for every member.
    pub fn launch_all(&self) -> Vec<Running> {
        (0..self.members.len()).map(|i| self.launch(i)).collect()
    }

    pub fn launch(&self, index: usize) -> Running {
        Running(must(self.zone.launch(index)))
    }

    /// `zone-etcd status --json` from member `index`: (exit success, the JSON, stderr).
    pub fn status(&self, index: usize) -> (bool, serde_json::Value, String) {
        let config = self.config(index);
        let (ok, stdout, stderr) = run(&["status", "--json", "--config", config.to_str().unwrap()]);
        let json = serde_json::from_str(&stdout).unwrap_or(serde_json::Value::Null);
        (ok, json, stderr)
    }

    /// `status --json` from member `index` once every member's keeper has recorded the
    /// zone-etcd release it runs (a second or two after its start; at most 30 s).
    pub fn status_recorded(&self, index: usize) -> serde_json::Value {
        let mut json = serde_json::Value::Null;
        wait_for(
            Duration::from_secs(30),
            "every member's zone-etcd release recorded",
            || {
                json = self.status(index).1;
                json["members"]
                    .as_array()
                    .is_some_and(|m| m.iter().all(|m| !m["zone_etcd"].is_null()))
            },
        );
        json
    }

    /// etcdctl against `endpoints` with member `index`'s client certificate.
    pub fn etcdctl(&self, index: usize, endpoints: &str, args: &[&str]) -> (bool, String, String) {
        let out = self
            .etcdctl_command(index, endpoints)
            .arg("--command-timeout=5s")
            .args(args)
            .output()
            .expect("etcdctl runs");
        outcome(out)
    }

    /// `etcdctl txn` through `endpoints` with member `index`'s client certificate, with
    /// `ops` (one `put key value` a line) as the success branch of a transaction without
    /// compares: (success, stderr).
    pub fn txn(&self, index: usize, endpoints: &str, ops: &str) -> (bool, String) {
        use std::io::Write;
        let mut child = self
            .etcdctl_command(index, endpoints)
            .arg("txn")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("etcdctl runs");
        let mut stdin = child.stdin.take().expect("stdin");
        // etcdctl txn reads: compares, a blank line, the success ops, a blank line.
        write!(stdin, "\n{ops}\n\n").expect("write the transaction");
        drop(stdin);
        let out = child.wait_with_output().expect("etcdctl ends");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// A writer per member endpoint (and per `extra` host:port), each failing over to the
    /// others, with member 0's client certificate: a client that knows every endpoint.
    pub fn failover_load(&self, extra: &[&str], prefix: &str, pause: Duration) -> super::WriteLoad {
        let mut addrs: Vec<String> = (0..self.members.len())
            .map(|i| self.client_addr(i))
            .collect();
        addrs.extend(extra.iter().map(|a| a.to_string()));
        let identity = super::Identity {
            chain: self.tls(0, "client.crt"),
            key: self.tls(0, "client.key"),
        };
        super::WriteLoad::start_failover(&addrs, &self.tls(0, "ca.crt"), &identity, prefix, pause)
    }

    /// Waits until every member answers `endpoint health`; panics with the logs if not.
    pub fn wait_healthy(&self, running: &mut [Running]) {
        self.wait_healthy_within(running, Duration::from_secs(60));
    }

    /// [`TestZone::wait_healthy`] with another limit (an emulated member starts slower).
    pub fn wait_healthy_within(&self, running: &mut [Running], limit: Duration) {
        must(self.zone.wait_healthy(running, limit));
        let count = running.len().min(self.members.len());
        self.wait_recorded(count);
        self.wait_enforced(count);
    }

    /// Waits (at most 10 s; a learner's keeper records through the voters) until `count`
    /// members' keepers have recorded their zone-etcd release: a keeper puts it a moment
    /// after its etcd serves, so a test's first write lands after them and its revisions
    /// are the same from run to run.
    fn wait_recorded(&self, count: usize) {
        let started = Instant::now();
        let deadline = started + Duration::from_secs(10);
        // `--count-only` is etcdctl's for `-w fields` alone: with `-w json` it fails every
        // time (this wait then took its whole 10 s at each zone start).
        let args = [
            "get",
            "zone-etcd/releases/",
            "--prefix",
            "--keys-only",
            "-w",
            "json",
        ];
        let mut last = String::new();
        while Instant::now() < deadline {
            let (ok, out, err) = self.etcdctl(0, &self.endpoints(), &args);
            let recorded = serde_json::from_str::<serde_json::Value>(&out)
                .ok()
                .map(|v| v["count"].as_u64().unwrap_or(0));
            match recorded {
                Some(n) if ok && n as usize >= count => return,
                Some(n) if ok => last = format!("{n} of {count} recorded"),
                _ => last = format!("etcdctl get zone-etcd/releases/ failed: {err}{out}"),
            }
            std::thread::sleep(super::next_look(started.elapsed()));
        }
        eprintln!("wait_healthy: the members' release records not all seen within 10 s ({last})");
    }

    /// In a zone that enforces least privilege (by its CA's default, or its zone file's
    /// `enforce = true`): waits (at most 20 s) until `count` members' keepers recorded
    /// the policy as enforced (etcd's auth on), as a zone is once it settled: the
    /// keepers' records and auth changes of the first seconds land before a test's first
    /// write, so its revisions are the same from run to run, and a test's client acts
    /// under the policy from its first request. Other zones are not waited for.
    fn wait_enforced(&self, count: usize) {
        let zone_file = fs::read_to_string(self.path("zone.toml")).unwrap_or_default();
        let by_default =
            self.path("ca").join(ZONE_DEFAULTS).exists() && !zone_file.contains("enforce = false");
        if !(by_default || zone_file.contains("enforce = true")) {
            return;
        }
        let started = Instant::now();
        let deadline = started + Duration::from_secs(20);
        let args = ["get", "zone-etcd/access/applied/", "--prefix", "-w", "json"];
        let mut last = String::new();
        while Instant::now() < deadline {
            let (ok, out, err) = self.etcdctl(0, &self.endpoints(), &args);
            let records: Vec<serde_json::Value> = serde_json::from_str::<serde_json::Value>(&out)
                .ok()
                .and_then(|v| v["kvs"].as_array().cloned())
                .unwrap_or_default()
                .iter()
                .filter_map(|kv| {
                    let value = kv["value"].as_str()?;
                    let bytes =
                        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, value)
                            .ok()?;
                    serde_json::from_slice(&bytes).ok()
                })
                .collect();
            let enforced = records.iter().filter(|r| r["enforced"] == true).count();
            if ok && enforced >= count {
                return;
            }
            last = if ok {
                format!("{enforced} of {count} members record auth on")
            } else {
                format!("etcdctl get zone-etcd/access/applied/ failed: {err}")
            };
            std::thread::sleep(super::next_look(started.elapsed()));
        }
        eprintln!("wait_healthy: the access policy not seen enforced by every member within 20 s ({last})");
    }

    /// The zone's revision now, as member 0 answers it.
    pub fn revision(&self) -> i64 {
        let (ok, out, err) = self.etcdctl(0, &self.endpoints(), &["get", "/", "-w", "json"]);
        assert!(ok, "{err}");
        let json: serde_json::Value = serde_json::from_str(&out).unwrap();
        json["header"]["revision"].as_i64().expect("a revision")
    }
}

/// A process a test started (`zone-etcd launch`, etcd after its exec; or any command):
/// the kit's [`Process`], stdin closed, panicking where the kit fails.
pub struct Running(Process);

impl Running {
    /// `zone-etcd launch --config <config>`, its output in `log_path`.
    pub fn start(config: &Path, log_path: &Path) -> Running {
        let mut cmd = tools().command();
        cmd.args(["launch", "--config", config.to_str().unwrap()]);
        Running::spawn(cmd, log_path)
    }

    /// Starts any command (etcd itself, say) with its output in `log_path`.
    pub fn spawn(mut cmd: Command, log_path: &Path) -> Running {
        cmd.stdin(Stdio::null());
        Running(Process::spawn(cmd, log_path).expect("the command starts"))
    }

    pub fn pid(&self) -> u32 {
        self.0.pid()
    }

    pub fn log(&self) -> String {
        self.0.log()
    }

    /// Stops the member with SIGTERM, as a supervisor would, and waits for it (10 s).
    pub fn stop(mut self) {
        self.0.stop(Duration::from_secs(10));
    }
}

impl Deref for Running {
    type Target = Process;
    fn deref(&self) -> &Process {
        &self.0
    }
}

impl DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Process {
        &mut self.0
    }
}

impl Borrow<Process> for Running {
    fn borrow(&self) -> &Process {
        &self.0
    }
}

impl BorrowMut<Process> for Running {
    fn borrow_mut(&mut self) -> &mut Process {
        &mut self.0
    }
}
