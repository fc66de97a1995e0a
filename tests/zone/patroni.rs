//! Patroni (PostgreSQL high availability, from PyPI) with Debian's PostgreSQL 15 on an
//! enforced zone (issue 48, item 5): a real 3-member zone of the bundled etcd on
//! `addresses::PATRONI` .1-3, made by `ca init`'s default (least privilege), two database
//! nodes (db1, db2; Patroni's REST API and PostgreSQL on its .11 and .12), each Patroni
//! with its own service instance's credentials from `zone-etcd env --service patroni
//! --gateway` (a gateway certificate and a password: Patroni speaks etcd's JSON gateway
//! only). The cluster forms (a leader and a streaming replica), fails over when the
//! leader's Patroni and PostgreSQL are killed, and the credentials are refused outside
//! Patroni's prefix `/service/pg/`.
//!
//! Patroni runs as the `postgres` user (PostgreSQL refuses root) from the venv
//! scripts/test.sh installs ([`PATRONI`]); every process the test starts is killed by its
//! PID (Patroni's) or the PID PostgreSQL wrote (`postmaster.pid`), also on failure. A
//! PostgreSQL killed so leaves its shared memory behind: its dynamic segments are files in
//! its data directory (`dynamic_shared_memory_type: mmap`, not /dev/shm), removed with the
//! test's directory, and its System V segment is removed by the ID `postmaster.pid` names.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use common::{bundled, run_ok, wait_for, Kind};
use zone_testkit::addresses;

const ZONE: &str = "pg.zone";
const DBS: [&str; 2] = ["db1.pg.zone", "db2.pg.zone"];
/// Where scripts/test.sh installs Patroni (pinned, in a venv of Debian's Python).
const PATRONI: &str = "/opt/zone-etcd-tests/patroni-4.1.5/bin/patroni";
const BIN_DIR: &str = "/usr/lib/postgresql/15/bin";

const ACCESS: &str = r#"
[access]
enforce = true
nodes = ["*"]

[[access.service]]
name = "patroni"
nodes = ["db1.pg.zone", "db2.pg.zone"]
read_write = ["/service/pg/"]
"#;

/// One database node: its Patroni (a child of the test, running as postgres) and
/// where its PostgreSQL keeps its data.
struct Db {
    name: String,
    rest: String,
    patroni: Option<Child>,
    data: PathBuf,
    log: PathBuf,
}

impl Db {
    /// Kills this node's Patroni and its PostgreSQL (the PID PostgreSQL wrote), and removes
    /// the System V segment the killed postmaster leaves: its ID, when there was one.
    fn kill(&mut self) -> Option<i32> {
        if let Some(mut child) = self.patroni.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some((pid, segment)) = postmaster(&self.data) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            // Its backends leave when they see the postmaster gone.
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && Path::new(&format!("/proc/{pid}")).exists() {
                std::thread::sleep(Duration::from_millis(50));
            }
            // A killed postmaster cannot remove its System V segment; no process is
            // attached to it any more (a backend still attached keeps it until it leaves).
            if let Some(id) = segment {
                let _ = Command::new("ipcrm")
                    .args(["-m", &id.to_string()])
                    .stderr(Stdio::null())
                    .status();
            }
            // Gone with its postmaster: a second kill signals no PID the system may
            // since have given to another process.
            let _ = std::fs::remove_file(self.data.join("postmaster.pid"));
            return segment;
        }
        None
    }

    /// Patroni's view of the cluster (its REST API's `/cluster`).
    fn cluster(&self) -> Option<serde_json::Value> {
        let out = Command::new("curl")
            .args(["-s", "--max-time", "2"])
            .arg(format!("http://{}/cluster", self.rest))
            .output()
            .ok()?;
        serde_json::from_slice(&out.stdout).ok()
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// Whether System V shared memory segment `id` exists (`/proc/sysvipc/shm`'s second
/// column).
fn segment_exists(id: i32) -> bool {
    std::fs::read_to_string("/proc/sysvipc/shm")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .any(|l| l.split_whitespace().nth(1) == Some(&id.to_string()))
}

/// PostgreSQL's dynamic segments in /dev/shm changed since `since`.
fn shm_files_since(since: std::time::SystemTime) -> Vec<PathBuf> {
    std::fs::read_dir("/dev/shm")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("PostgreSQL."))
        .filter(|e| {
            e.metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t >= since)
        })
        .map(|e| e.path())
        .collect()
}

/// The postmaster's PID and the ID of its System V shared memory segment, from `data`'s
/// `postmaster.pid`: its first line, and the second number of its seventh (`<key> <id>`).
fn postmaster(data: &Path) -> Option<(i32, Option<i32>)> {
    let text = std::fs::read_to_string(data.join("postmaster.pid")).ok()?;
    let mut lines = text.lines();
    let pid = lines.next()?.trim().parse().ok()?;
    let segment = lines
        .nth(5)
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|id| id.parse().ok());
    Some((pid, segment))
}

/// `(name, role, state)` of each member `cluster` lists.
fn roles(cluster: &serde_json::Value) -> Vec<(String, String, String)> {
    cluster["members"]
        .as_array()
        .map(|members| {
            members
                .iter()
                .map(|m| {
                    let s = |k: &str| m[k].as_str().unwrap_or_default().to_string();
                    (s("name"), s("role"), s("state"))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn postgres_user() -> nix::unistd::User {
    nix::unistd::User::from_name("postgres")
        .ok()
        .flatten()
        .expect("the postgres user (Debian's postgresql-15; scripts/test.sh installs it)")
}

/// Gives `path` (and what is under it) to the postgres user.
fn give(path: &Path, user: &nix::unistd::User) {
    let status = Command::new("chown")
        .arg("-R")
        .arg(format!("{}:{}", user.uid, user.gid))
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "chown {}", path.display());
}

/// Database node `i`'s address (0 or 1: .11 or .12).
fn db_ip(i: usize) -> String {
    addresses::PATRONI.ip(11 + u8::try_from(i).expect("a database node's index"))
}

/// Patroni's YAML for database node `i` (0 or 1) with the service's credentials.
fn patroni_yaml(i: usize, dir: &Path, env: &serde_json::Value, password: &str) -> String {
    let ip = db_ip(i);
    let hosts: Vec<String> = env["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e.as_str()
                .unwrap()
                .trim_start_matches("https://")
                .to_string()
        })
        .collect();
    let d = dir.display();
    format!(
        r#"scope: pg
namespace: /service/
name: n{i}
log:
  level: INFO
restapi:
  listen: {ip}:8008
  connect_address: {ip}:8008
etcd3:
  hosts: {hosts}
  protocol: https
  cacert: {d}/ca.crt
  cert: {d}/client.crt
  key: {d}/client.key
  username: {user}
  password: {password}
bootstrap:
  dcs:
    ttl: 20
    loop_wait: 1
    retry_timeout: 3
    maximum_lag_on_failover: 1048576
    postgresql:
      use_pg_rewind: true
      parameters:
        wal_level: replica
        hot_standby: "on"
        max_wal_senders: 5
        max_replication_slots: 5
        wal_log_hints: "on"
  initdb:
    - encoding: UTF8
    - data-checksums
  pg_hba:
    - local all all trust
    - host replication replicator {net} scram-sha-256
    - host all all {net} scram-sha-256
postgresql:
  listen: {ip}:5432
  connect_address: {ip}:5432
  data_dir: {d}/data
  bin_dir: {BIN_DIR}
  pgpass: {d}/pgpass
  authentication:
    superuser:
      username: postgres
      password: superuser-of-the-test
    replication:
      username: replicator
      password: replicator-of-the-test
  parameters:
    unix_socket_directories: {d}
    dynamic_shared_memory_type: mmap
    shared_buffers: 32MB
    max_connections: 20
"#,
        hosts = hosts.join(","),
        user = env["user"].as_str().unwrap(),
        net = addresses::PATRONI.cidr(),
    )
}

/// curl's POST of `body` to etcd's gateway at `endpoint` as the node in `dir`.
fn gateway(dir: &Path, endpoint: &str, token: Option<&str>, path: &str, body: &str) -> String {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "10"])
        .arg("--cacert")
        .arg(dir.join("ca.crt"))
        .arg("--cert")
        .arg(dir.join("client.crt"))
        .arg("--key")
        .arg(dir.join("client.key"));
    if let Some(token) = token {
        cmd.args(["-H", &format!("Authorization: {token}")]);
    }
    let out = cmd
        .args(["-X", "POST", "--data-binary", body])
        .arg(format!("{endpoint}{path}"))
        .output()
        .expect("curl runs");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn patroni_forms_a_cluster_on_an_enforced_zone_fails_over_and_stays_in_its_prefix() {
    let started = std::time::SystemTime::now();
    assert!(
        Path::new(PATRONI).exists() && Path::new(BIN_DIR).join("postgres").exists(),
        "Patroni ({PATRONI}) and PostgreSQL 15 ({BIN_DIR}) are missing: scripts/test.sh installs them"
    );
    let postgres = postgres_user();
    let (zone, running) = common::access_zone(
        Kind::LeastPrivilege,
        ZONE,
        addresses::PATRONI.subnet(),
        ACCESS,
        &DBS,
    );
    // Each database node's credentials, as its owner would take them: env on the node,
    // then the files copied where the postgres user reads them.
    let pg_root = tempfile::tempdir().unwrap();
    std::fs::set_permissions(pg_root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut dbs = Vec::new();
    for (i, db) in DBS.iter().enumerate() {
        let config = zone.path("nodes").join(db).join("node.toml");
        let out = run_ok(&[
            "env",
            "--format",
            "json",
            "--config",
            config.to_str().unwrap(),
            "--service",
            "patroni",
            "--gateway",
        ]);
        let env: serde_json::Value = serde_json::from_str(&out).unwrap();
        let dir = pg_root.path().join(format!("n{i}"));
        std::fs::create_dir(&dir).unwrap();
        for (from, to) in [
            ("ca_file", "ca.crt"),
            ("cert_file", "client.crt"),
            ("key_file", "client.key"),
        ] {
            std::fs::copy(env[from].as_str().unwrap(), dir.join(to)).unwrap();
        }
        let password = std::fs::read_to_string(env["password_file"].as_str().unwrap())
            .unwrap()
            .trim()
            .to_string();
        let yaml = dir.join("patroni.yml");
        std::fs::write(&yaml, patroni_yaml(i, &dir, &env, &password)).unwrap();
        for file in ["client.key", "patroni.yml"] {
            std::fs::set_permissions(dir.join(file), std::fs::Permissions::from_mode(0o600))
                .unwrap();
        }
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        give(&dir, &postgres);
        let log = dir.join("patroni.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let child = Command::new(PATRONI)
            .arg(&yaml)
            .current_dir(&dir)
            .env_clear()
            .env("HOME", &dir)
            .env("PATH", "/usr/bin:/bin")
            .uid(postgres.uid.as_raw())
            .gid(postgres.gid.as_raw())
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .expect("Patroni starts");
        dbs.push(Db {
            name: format!("n{i}"),
            rest: format!("{}:8008", db_ip(i)),
            patroni: Some(child),
            data: dir.join("data"),
            log,
        });
        let _ = password;
    }
    let logs = |dbs: &[Db]| -> String {
        dbs.iter()
            .map(|d| {
                let text = std::fs::read_to_string(&d.log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(25).collect();
                format!(
                    "--- {} ---\n{}",
                    d.name,
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };

    // A leader and a streaming replica.
    let formed = |dbs: &[Db]| -> Option<(String, String)> {
        let cluster = dbs.iter().find_map(Db::cluster)?;
        let roles = roles(&cluster);
        let leader = roles
            .iter()
            .find(|(_, r, s)| r == "leader" && s == "running")?;
        let replica = roles
            .iter()
            .find(|(_, r, s)| r == "replica" && s == "streaming")?;
        Some((leader.0.clone(), replica.0.clone()))
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let (leader, replica) = loop {
        if let Some(pair) = formed(&dbs) {
            break pair;
        }
        assert!(
            Instant::now() < deadline,
            "Patroni formed no cluster in 120 s:\n{}",
            logs(&dbs)
        );
        std::thread::sleep(Duration::from_millis(500));
    };

    // Patroni's keys are in the zone, under its prefix (read with the owner's identity).
    let admin = zone.path("admin");
    common::admin_identity(&zone.path("ca"), &admin);
    let keys = Command::new(bundled("etcdctl"))
        .arg(format!("--endpoints=https://{}", zone.client_addr(0)))
        .arg(format!("--cacert={}", zone.tls(0, "ca.crt").display()))
        .arg(format!("--cert={}", admin.join("client.crt").display()))
        .arg(format!("--key={}", admin.join("client.key").display()))
        .args(["get", "/service/pg/", "--prefix", "--keys-only"])
        .output()
        .unwrap();
    let keys = String::from_utf8_lossy(&keys.stdout).into_owned();
    assert!(
        keys.contains("/service/pg/leader") && keys.contains("/service/pg/members/"),
        "{keys}"
    );

    // The leader killed, Patroni and PostgreSQL both: the replica takes over (Patroni's
    // leader key lives 20 s, its shortest ttl).
    let l = dbs.iter().position(|d| d.name == leader).unwrap();
    let killed = Instant::now();
    let mut segments: Vec<i32> = dbs[l].kill().into_iter().collect();
    let r = dbs.iter().position(|d| d.name == replica).unwrap();
    wait_for(Duration::from_secs(60), "the replica takes over", || {
        dbs[r].cluster().is_some_and(|c| {
            roles(&c)
                .iter()
                .any(|(n, role, s)| *n == replica && role == "leader" && s == "running")
        })
    });
    eprintln!("failover after {:.1} s", killed.elapsed().as_secs_f64());

    // Patroni's credentials through the gateway: refused outside its prefix.
    let dir = pg_root.path().join(&replica);
    let endpoint = format!("https://{}", zone.client_addr(1));
    let yaml = std::fs::read_to_string(dir.join("patroni.yml")).unwrap();
    let field = |k: &str| {
        yaml.lines()
            .find_map(|l| l.trim().strip_prefix(&format!("{k}: ")))
            .unwrap()
            .to_string()
    };
    let auth = serde_json::json!({"name": field("username"), "password": field("password")});
    let out = gateway(
        &dir,
        &endpoint,
        None,
        "/v3/auth/authenticate",
        &auth.to_string(),
    );
    let token: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|_| panic!("{out}"));
    let token = token["token"]
        .as_str()
        .unwrap_or_else(|| panic!("{out}"))
        .to_string();
    for key in [
        "/service/other/leader",
        "/service/pg0",
        "zone-etcd/probe",
        "other",
    ] {
        let put = serde_json::json!({"key": B64.encode(key), "value": B64.encode("x")});
        let out = gateway(
            &dir,
            &endpoint,
            Some(&token),
            "/v3/kv/put",
            &put.to_string(),
        );
        assert!(out.contains("permission denied"), "{key}: {out}");
    }
    let read = serde_json::json!({"key": B64.encode("/service/pg/leader")});
    let out = gateway(
        &dir,
        &endpoint,
        Some(&token),
        "/v3/kv/range",
        &read.to_string(),
    );
    assert!(out.contains(&B64.encode(&replica)), "{out}");
    for db in &mut dbs {
        segments.extend(db.kill());
    }
    // Nothing of the two PostgreSQL is left on the machine: their System V segments
    // removed, their dynamic segments in their data directories, not in /dev/shm.
    assert_eq!(
        segments.len(),
        2,
        "each PostgreSQL's segment ID: {segments:?}"
    );
    let left: Vec<i32> = segments
        .into_iter()
        .filter(|id| segment_exists(*id))
        .collect();
    assert!(left.is_empty(), "System V segments left: {left:?}");
    let files = shm_files_since(started);
    assert!(
        files.is_empty(),
        "PostgreSQL's segments left in /dev/shm: {files:?}"
    );
    drop(running);
}
