//! A local zone: its files made with the real zone-etcd binary (`ca init`, `bootstrap`),
//! its members' directories, configs and URLs, and its members started with
//! `zone-etcd launch` as [`Process`]es. The tests (`tests/zone/common`), the recorder
//! (`recorder/src/zone.rs`) and the benchmark program (`bench/src/support.rs`) each wrap
//! this one harness with what only they need.
//!
//! Invariants:
//! - A zone's directory holds `zone.toml`, `ca/` and `nodes/<node name>/` (each member's
//!   bundle, `node.toml` its config) as `bootstrap` writes them, and each member's log as
//!   `<node name>.log`; member `i` is `members[i]`, in zone-file order.
//! - Every zone-etcd this module runs has the bundled etcd tools ([`Tools::bin_dir`])
//!   first on PATH and `ZONE_ETCD_LOG` unset, as an operator's would; the zone-etcd it
//!   runs is the one [`Tools`] names, never one found on PATH.
//! - Every process it starts is a [`Process`]: killed by its PID (SIGCONT, SIGKILL) and
//!   reaped when dropped. The directory is its user's (a temporary directory of theirs).
//! - It fails with `Err(String)` naming the command and its stderr, never a panic.

use std::borrow::BorrowMut;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::Process;

type Result<T> = std::result::Result<T, String>;

/// The ports every member listens on unless a zone says others.
pub const PEER_PORT: u16 = 2380;
pub const CLIENT_PORT: u16 = 2379;

/// The file `ca init` writes to say the zone enforces least privilege by default.
pub const ZONE_DEFAULTS: &str = "zone-defaults.json";

/// The zone-etcd binary and the directory holding the bundled etcd tools.
#[derive(Debug, Clone)]
pub struct Tools {
    pub zone_etcd: PathBuf,
    pub bin_dir: PathBuf,
}

impl Tools {
    /// PATH with the bundle first, so `zone-etcd launch` finds etcd as an operator's would.
    pub fn path_with_bundle(&self) -> String {
        format!(
            "{}:{}",
            self.bin_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }

    /// A `zone-etcd` command with the bundle on PATH.
    pub fn command(&self) -> Command {
        self.command_in(None)
    }

    /// [`Tools::command`] run in network namespace `ns` (`ip netns exec` execs it: the
    /// child's PID is zone-etcd's, and then etcd's).
    pub fn command_in(&self, ns: Option<&str>) -> Command {
        let mut cmd = match ns {
            None => Command::new(&self.zone_etcd),
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(&self.zone_etcd);
                c
            }
        };
        cmd.env("PATH", self.path_with_bundle())
            .env_remove("ZONE_ETCD_LOG");
        cmd
    }

    /// Runs `zone-etcd ARGS` to its end: its stdout, or an error naming its stderr.
    pub fn run<S: AsRef<str>>(&self, args: &[S]) -> Result<String> {
        let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
        let out = self
            .command()
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{}: {e}", self.zone_etcd.display()))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "zone-etcd {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// The bundled etcd tool `tool` (etcdctl, etcdutl, etcd).
    pub fn bundled(&self, tool: &str) -> PathBuf {
        self.bin_dir.join(tool)
    }
}

/// Which kind of zone to make. A test zone is of the kind `ca init` makes today
/// ([`Kind::LeastPrivilege`]) unless it says why not: every zone of the previous kind is
/// asked for as `Kind::Previous("why")`, so `grep -rn 'Kind::Previous(' --include=*.rs`
/// lists every test zone where each client certificate is root, with its reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// As `ca init` makes one now: a zone file without `[access]` enforces least
    /// privilege (each node its own prefix; the members and the owner's `ca admin`
    /// identity are root).
    LeastPrivilege,
    /// Made before least privilege was the default: its CA directory without
    /// [`ZONE_DEFAULTS`], as every CA made before zone-etcd 0.2, so a zone file without
    /// `[access]` keeps meaning every client root. The text says why the test needs it
    /// (a migration from it, the meaning kept for old zones, etcd 3.4, a benchmark's
    /// reference); an empty reason is refused.
    Previous(&'static str),
}

/// The `[[etcd]]` list of a zone file and node.toml: each (node name, address) on
/// `peer_port` and `client_port`.
pub fn members_toml<N: AsRef<str>, A: AsRef<str>>(
    members: &[(N, A)],
    peer_port: u16,
    client_port: u16,
) -> String {
    members
        .iter()
        .map(|(name, address)| {
            let (name, address) = (name.as_ref(), address.as_ref());
            format!(
                "\n[[etcd]]\nnode_name = \"{name}\"\nprotocol = \"https\"\naddress = \"{address}\"\npeer_port = {peer_port}\nclient_port = {client_port}\n"
            )
        })
        .collect()
}

/// A zone file for `zone` with `members` (node name, address) on the ports given.
pub fn zone_toml<N: AsRef<str>, A: AsRef<str>>(
    zone: &str,
    members: &[(N, A)],
    peer_port: u16,
    client_port: u16,
) -> String {
    format!(
        "name = \"{zone}\"\n{}",
        members_toml(members, peer_port, client_port)
    )
}

/// Members node1..=count of `zone` on `127.0.<subnet>.1..=count`, as (name, address).
pub fn loopback_members(zone: &str, subnet: u8, count: u8) -> Vec<(String, String)> {
    (1..=count)
        .map(|i| (format!("node{i}.{zone}"), format!("127.0.{subnet}.{i}")))
        .collect()
}

/// A zone's layout on disk and its members; [`Zone::make`] makes its files.
#[derive(Debug, Clone)]
pub struct Zone {
    pub tools: Tools,
    /// The zone's directory.
    pub root: PathBuf,
    pub name: String,
    /// (node name, address) in zone-file order; index = member index.
    pub members: Vec<(String, String)>,
    pub peer_port: u16,
    pub client_port: u16,
}

impl Zone {
    /// The zone `name` of `members` in `root`, on the default ports; nothing is made yet.
    pub fn new(tools: &Tools, root: &Path, name: &str, members: Vec<(String, String)>) -> Zone {
        Zone {
            tools: tools.clone(),
            root: root.to_path_buf(),
            name: name.to_string(),
            members,
            peer_port: PEER_PORT,
            client_port: CLIENT_PORT,
        }
    }

    /// The same zone with every member on `peer_port` and `client_port`.
    pub fn on_ports(mut self, peer_port: u16, client_port: u16) -> Zone {
        self.peer_port = peer_port;
        self.client_port = client_port;
        self
    }

    /// The zone file of its members, on its ports.
    pub fn zone_toml(&self) -> String {
        zone_toml(&self.name, &self.members, self.peer_port, self.client_port)
    }

    /// Writes `text` as its zone.toml, makes its CA of `kind` (`ca init`) and every
    /// member's bundle (`bootstrap`).
    pub fn make(&self, kind: Kind, text: &str) -> Result<()> {
        let zone_file = self.file("zone.toml");
        fs::write(&zone_file, text).map_err(|e| format!("{}: {e}", zone_file.display()))?;
        self.ca_init(kind)?;
        let s = |rel: &str| self.file(rel).display().to_string();
        self.tools.run(&[
            "bootstrap",
            "--ca",
            &s("ca"),
            "--zone",
            &s("zone.toml"),
            "--out",
            &s("nodes"),
        ])?;
        Ok(())
    }

    /// `zone-etcd ca init` into `ca/`, of `kind`.
    pub fn ca_init(&self, kind: Kind) -> Result<()> {
        if let Kind::Previous(why) = kind {
            if why.trim().is_empty() {
                return Err(format!(
                    "zone {}: a zone of the previous kind (every client root) must say why the test needs it",
                    self.name
                ));
            }
        }
        let ca = self.file("ca");
        let out = ca.display().to_string();
        self.tools
            .run(&["ca", "init", "--zone", &self.name, "--out", &out])?;
        if let Kind::Previous(_) = kind {
            let defaults = ca.join(ZONE_DEFAULTS);
            fs::remove_file(&defaults).map_err(|e| {
                format!("{}: {e} (does ca init still write it?)", defaults.display())
            })?;
        }
        Ok(())
    }

    /// `rel` in the zone's directory.
    pub fn file(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub fn node_dir(&self, i: usize) -> PathBuf {
        self.root.join("nodes").join(&self.members[i].0)
    }

    pub fn config(&self, i: usize) -> PathBuf {
        self.node_dir(i).join("node.toml")
    }

    /// Member `i`'s current TLS file `file` (issued by its launch).
    pub fn tls(&self, i: usize, file: &str) -> PathBuf {
        self.node_dir(i).join("state/tls/current").join(file)
    }

    /// Member `i`'s address as a URL's host (an IPv6 one in brackets).
    pub fn url_host(&self, i: usize) -> String {
        let address = &self.members[i].1;
        if address.contains(':') {
            format!("[{address}]")
        } else {
            address.clone()
        }
    }

    pub fn client_url(&self, i: usize) -> String {
        format!("https://{}", self.client_addr(i))
    }

    /// host:port of member `i`'s client port.
    pub fn client_addr(&self, i: usize) -> String {
        format!("{}:{}", self.url_host(i), self.client_port)
    }

    pub fn peer_addr(&self, i: usize) -> String {
        format!("{}:{}", self.url_host(i), self.peer_port)
    }

    /// Every member's client URL, in member order.
    pub fn client_urls(&self) -> Vec<String> {
        (0..self.members.len())
            .map(|i| self.client_url(i))
            .collect()
    }

    /// [`Zone::client_urls`] as etcdctl's `--endpoints` takes them (comma-separated).
    pub fn endpoints(&self) -> String {
        self.client_urls().join(",")
    }

    /// Points member `i`'s node.toml at another etcd binary (`etcd_bin`, its first line).
    pub fn set_etcd_bin(&self, i: usize, etcd: &Path) -> Result<()> {
        let config = self.config(i);
        let text = fs::read_to_string(&config).map_err(|e| format!("{}: {e}", config.display()))?;
        let rest: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with("etcd_bin"))
            .collect();
        let line = format!("etcd_bin = \"{}\"", etcd.display());
        fs::write(&config, format!("{line}\n{}\n", rest.join("\n")))
            .map_err(|e| format!("{}: {e}", config.display()))
    }

    /// `zone-etcd ARGS --config <member i's node.toml>`, in network namespace `ns` when
    /// given, stdin closed.
    pub fn member_command(&self, i: usize, ns: Option<&str>, args: &[&str]) -> Command {
        let mut cmd = self.tools.command_in(ns);
        cmd.args(args)
            .arg("--config")
            .arg(self.config(i))
            .stdin(Stdio::null());
        cmd
    }

    /// Member `i`'s log: `<node name>.log` in the zone's directory.
    pub fn log_path(&self, i: usize) -> PathBuf {
        self.file(&format!("{}.log", self.members[i].0))
    }

    /// Starts `zone-etcd launch` for member `i` (etcd after its exec), its log made anew.
    pub fn launch(&self, i: usize) -> Result<Process> {
        Process::spawn(self.member_command(i, None, &["launch"]), &self.log_path(i))
    }

    /// Starts `zone-etcd launch` for every member.
    pub fn launch_all(&self) -> Result<Vec<Process>> {
        (0..self.members.len()).map(|i| self.launch(i)).collect()
    }

    /// The bundled etcdctl aimed at `endpoints` with member `i`'s client certificate.
    pub fn etcdctl_command(&self, i: usize, endpoints: &str) -> Command {
        let mut cmd = Command::new(self.tools.bundled("etcdctl"));
        cmd.arg(format!("--endpoints={endpoints}"))
            .arg(format!("--cacert={}", self.tls(i, "ca.crt").display()))
            .arg(format!("--cert={}", self.tls(i, "client.crt").display()))
            .arg(format!("--key={}", self.tls(i, "client.key").display()));
        cmd
    }

    /// Waits up to `limit` until every member answers etcdctl's `endpoint health` (asked
    /// with member 0's client certificate). Fails at once when one of `running` has
    /// exited, and at the limit, with their logs.
    pub fn wait_healthy<P: BorrowMut<Process>>(
        &self,
        running: &mut [P],
        limit: Duration,
    ) -> Result<()> {
        let started = Instant::now();
        let deadline = started + limit;
        loop {
            for member in running.iter_mut().map(BorrowMut::borrow_mut) {
                if let Some(status) = member.exit_status() {
                    return Err(format!("member exited early ({status}):\n{}", member.log()));
                }
            }
            let healthy = self
                .etcdctl_command(0, &self.endpoints())
                .args(["--command-timeout=5s", "endpoint", "health"])
                .output()
                .is_ok_and(|out| out.status.success());
            if healthy {
                return Ok(());
            }
            if Instant::now() > deadline {
                let logs: Vec<String> = running.iter().map(|p| p.borrow().log()).collect();
                return Err(format!(
                    "zone not healthy after {limit:?}:\n{}",
                    logs.join("\n----\n")
                ));
            }
            std::thread::sleep(crate::next_look(started.elapsed()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zone_lays_out_its_members_as_bootstrap_does() {
        let tools = Tools {
            zone_etcd: PathBuf::from("/nonexistent/zone-etcd"),
            bin_dir: PathBuf::from("/nonexistent/bin"),
        };
        let members = loopback_members("t.zone", 200, 2);
        let zone = Zone::new(&tools, Path::new("/z"), "t.zone", members).on_ports(12380, 12379);
        assert_eq!(zone.config(1), Path::new("/z/nodes/node2.t.zone/node.toml"));
        assert_eq!(
            zone.endpoints(),
            "https://127.0.200.1:12379,https://127.0.200.2:12379"
        );
        assert_eq!(zone.peer_addr(0), "127.0.200.1:12380");
        let text = zone.zone_toml();
        assert!(text.starts_with("name = \"t.zone\"\n\n[[etcd]]\nnode_name = \"node1.t.zone\"\n"));
        assert_eq!(
            text.matches("peer_port = 12380\nclient_port = 12379\n")
                .count(),
            2
        );
        // The kit fails with a line, never a panic.
        assert!(zone.make(Kind::LeastPrivilege, &text).is_err());
        assert!(zone
            .ca_init(Kind::Previous(" "))
            .unwrap_err()
            .contains("must say why"));
    }
}
