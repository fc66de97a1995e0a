//! A local zone for a scenario: made with the zone-etcd binary (`ca init`, `bootstrap`),
//! its members started with `zone-etcd launch` on `127.0.<subnet>.<i>`, and the few things
//! faults do to them.
//!
//! Invariants: every process this module starts is a child it holds by PID; dropping the
//! zone sends each SIGCONT then SIGKILL and reaps it, so a failing scenario leaves no etcd
//! behind; nothing is ever killed by name. The zone's directory is a temporary directory
//! removed on drop (kept when `ZONE_RECORDER_KEEP` is set, for a post-mortem).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::connect::CredFiles;
use crate::net::Net;
use crate::proxy::Relays;

/// The zone-etcd binary and the directory holding the bundled etcd.
#[derive(Debug, Clone)]
pub struct Tools {
    pub zone_etcd: PathBuf,
    pub bin_dir: PathBuf,
}

pub struct LocalZone {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
    pub tools: Tools,
    pub name: String,
    /// (node name, address) in zone-file order; index = member index.
    pub members: Vec<(String, String)>,
    /// The network namespace each member's processes run in (`None`: this one).
    netns: Vec<Option<String>>,
    procs: Vec<Option<Child>>,
    /// Processes beside the members (`backup run`), killed by PID on drop.
    beside: Vec<Option<Child>>,
    /// The relays on the peer path, when installed ([`LocalZone::install_relays`]).
    pub relays: Option<Relays>,
    /// The machines the members run on, when they are network namespaces (dropped after
    /// the processes are killed and the relays stopped).
    pub net: Option<Net>,
}

pub const CLIENT_PORT: u16 = 2379;
pub const PEER_PORT: u16 = 2380;

fn zone_file(name: &str, members: &[(String, String)], extra: &str) -> String {
    let mut text = format!("name = \"{name}\"\n");
    for (node, address) in members {
        text += &format!(
            "\n[[etcd]]\nnode_name = \"{node}\"\nprotocol = \"https\"\naddress = \"{address}\"\npeer_port = {PEER_PORT}\nclient_port = {CLIENT_PORT}\n"
        );
    }
    if !extra.is_empty() {
        text += &format!("\n{extra}\n");
    }
    text
}

impl LocalZone {
    /// Bootstraps a zone of `count` members on `127.0.<subnet>.1..=count` (`extra`: more
    /// zone-file text, such as a `[settings]` or `[backup]` table, or empty). Nothing runs
    /// yet.
    pub fn create(tools: &Tools, subnet: u8, count: u8, extra: &str) -> Result<LocalZone, String> {
        let addresses = (1..=count).map(|i| format!("127.0.{subnet}.{i}")).collect();
        Self::create_on(tools, addresses, None, extra)
    }

    /// Bootstraps a zone with one member on each of `net`'s machines; the calling thread
    /// moves to the clients' machine ([`Net::enter_clients`]).
    pub fn create_networked(
        tools: &Tools,
        net: Net,
        count: usize,
        extra: &str,
    ) -> Result<LocalZone, String> {
        net.enter_clients()?;
        let addresses = (0..count).map(|i| net.address(i)).collect();
        Self::create_on(tools, addresses, Some(net), extra)
    }

    /// Bootstraps a zone whose member `i` is at `addresses[i]`, on `net`'s machine `i`
    /// when a `net` is given.
    fn create_on(
        tools: &Tools,
        addresses: Vec<String>,
        net: Option<Net>,
        extra: &str,
    ) -> Result<LocalZone, String> {
        let count = addresses.len();
        let netns = (0..count)
            .map(|i| net.as_ref().map(|n| n.namespace(i)))
            .collect();
        let dir = tempfile::Builder::new()
            .prefix("zone-recorder.")
            .tempdir()
            .map_err(|e| format!("a temporary directory: {e}"))?;
        let path = dir.path().to_path_buf();
        let name = "cz.zone".to_string();
        let members: Vec<(String, String)> = addresses
            .into_iter()
            .enumerate()
            .map(|(i, address)| (format!("node{}.{name}", i + 1), address))
            .collect();
        std::fs::write(path.join("zone.toml"), zone_file(&name, &members, extra))
            .map_err(|e| format!("zone.toml: {e}"))?;
        let (dir, path) = if std::env::var_os("ZONE_RECORDER_KEEP").is_some() {
            eprintln!("zone-recorder: keeping {}", path.display());
            (None, dir.keep())
        } else {
            (Some(dir), path)
        };
        let zone = LocalZone {
            dir,
            path,
            tools: tools.clone(),
            name,
            procs: members.iter().map(|_| None).collect(),
            netns,
            beside: Vec::new(),
            relays: None,
            net,
            members,
        };
        let p = |s: &str| zone.path.join(s).display().to_string();
        zone.zone_etcd(&["ca", "init", "--zone", &zone.name, "--out", &p("ca")])?;
        // A zone of the previous kind (made before least privilege was the default):
        // the scenarios were written for it, and `access-migrate` moves one over.
        let defaults = zone.path.join("ca/zone-defaults.json");
        std::fs::remove_file(&defaults).map_err(|e| format!("{}: {e}", defaults.display()))?;
        zone.zone_etcd(&[
            "bootstrap",
            "--ca",
            &p("ca"),
            "--zone",
            &p("zone.toml"),
            "--out",
            &p("nodes"),
        ])?;
        Ok(zone)
    }

    /// Puts a relay on every member's peer connections ([`crate::proxy`]); before the
    /// members start, or their open connections bypass it.
    pub fn install_relays(&mut self) -> Result<(), String> {
        let net = self
            .net
            .as_ref()
            .ok_or("relays need the zone on network-namespace machines")?;
        self.relays = Some(Relays::install(net, self.members.len(), PEER_PORT)?);
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn node_dir(&self, i: usize) -> PathBuf {
        self.path.join("nodes").join(&self.members[i].0)
    }

    pub fn config(&self, i: usize) -> PathBuf {
        self.node_dir(i).join("node.toml")
    }

    pub fn client_url(&self, i: usize) -> String {
        format!("https://{}:{CLIENT_PORT}", self.members[i].1)
    }

    pub fn endpoints(&self) -> Vec<String> {
        (0..self.members.len())
            .map(|i| self.client_url(i))
            .collect()
    }

    /// Member `i`'s current client credentials (issued by its launch).
    pub fn creds(&self, i: usize) -> CredFiles {
        let tls = self.node_dir(i).join("state/tls/current");
        CredFiles {
            ca: tls.join("ca.crt"),
            cert: tls.join("client.crt"),
            key: tls.join("client.key"),
        }
    }

    fn command(&self) -> Command {
        self.command_in(None)
    }

    /// zone-etcd, run in network namespace `ns` (`ip netns exec` execs it: the child's PID
    /// is zone-etcd's, and then etcd's).
    fn command_in(&self, ns: Option<&str>) -> Command {
        let path = format!(
            "{}:{}",
            self.tools.bin_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd = match ns {
            None => Command::new(&self.tools.zone_etcd),
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(&self.tools.zone_etcd);
                c
            }
        };
        cmd.env("PATH", path).env_remove("ZONE_ETCD_LOG");
        cmd
    }

    /// Runs `zone-etcd ARGS` to its end.
    fn output(&self, args: &[&str]) -> Result<std::process::Output, String> {
        self.command()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{}: {e}", self.tools.zone_etcd.display()))
    }

    /// Runs `zone-etcd ARGS` to its end: its stdout, or an error naming its stderr.
    pub fn zone_etcd(&self, args: &[&str]) -> Result<String, String> {
        let out = self.output(args)?;
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

    /// `zone-etcd COMMAND... --config <member i's node.toml>`, whatever its exit: (exit
    /// 0, stdout).
    pub fn on_any(&self, i: usize, args: &[&str]) -> Result<(bool, String), String> {
        let config = self.config(i).display().to_string();
        let out = self.output(&[args, &["--config", &config]].concat())?;
        Ok((
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        ))
    }

    /// `zone-etcd COMMAND... --config <member i's node.toml>`.
    pub fn on(&self, i: usize, args: &[&str]) -> Result<String, String> {
        let config = self.config(i).display().to_string();
        self.zone_etcd(&[args, &["--config", &config]].concat())
    }

    /// Starts `zone-etcd launch` for member `i` (its log in the zone's directory).
    pub fn launch(&mut self, i: usize) -> Result<(), String> {
        self.start(i, &["launch"])
    }

    /// Starts `zone-etcd ARGS --config <member i's node.toml>` as member `i`'s process
    /// (`launch`, `join`: they exec etcd), after killing the one it had.
    pub fn start(&mut self, i: usize, args: &[&str]) -> Result<(), String> {
        self.kill(i);
        let child = self.spawn_logged(i, args, &format!("{}.log", self.members[i].0))?;
        self.procs[i] = Some(child);
        Ok(())
    }

    /// Starts `zone-etcd ARGS --config <member i's node.toml>` beside member `i`'s etcd
    /// (`backup run`), in its machine, its log in the zone's directory (`<node>.<tag>.log`);
    /// returns its handle for [`LocalZone::kill_beside`].
    pub fn start_beside(&mut self, i: usize, args: &[&str], tag: &str) -> Result<usize, String> {
        let child = self.spawn_logged(i, args, &format!("{}.{tag}.log", self.members[i].0))?;
        self.beside.push(Some(child));
        Ok(self.beside.len() - 1)
    }

    /// Spawns `zone-etcd ARGS --config <member i's node.toml>` in member `i`'s machine,
    /// stdout and stderr appended to `log` in the zone's directory.
    fn spawn_logged(&self, i: usize, args: &[&str], log: &str) -> Result<Child, String> {
        let log_path = self.path.join(log);
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("{}: {e}", log_path.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        self.command_in(self.netns[i].as_deref())
            .args(args)
            .arg("--config")
            .arg(self.config(i))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("{}: {e}", args.join(" ")))
    }

    /// Sends `signal` to a process started by [`LocalZone::start_beside`].
    pub fn signal_beside(&self, handle: usize, signal: Signal) -> Result<(), String> {
        let pid = self
            .beside
            .get(handle)
            .and_then(Option::as_ref)
            .map(|c| Pid::from_raw(c.id() as i32))
            .ok_or_else(|| format!("process {handle} beside the members is not running"))?;
        kill(pid, signal).map_err(|e| format!("kill -{signal} {pid}: {e}"))
    }

    /// SIGKILLs a process started by [`LocalZone::start_beside`] and reaps it.
    pub fn kill_beside(&mut self, handle: usize) {
        if let Some(mut child) = self.beside.get_mut(handle).and_then(Option::take) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits up to `limit` for member `i`'s process to exit by itself (then reaps it).
    pub fn wait_exit(&mut self, i: usize, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        while !self.exited(i) {
            if Instant::now() > deadline {
                return Err(format!("{} still runs after {limit:?}", self.members[i].0));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.kill(i);
        Ok(())
    }

    /// SIGTERM, as a supervisor stops a member, and waits for it (SIGKILL after 10 s).
    pub fn terminate(&mut self, i: usize) -> Result<(), String> {
        self.signal(i, nix::sys::signal::Signal::SIGTERM)?;
        let _ = self.wait_exit(i, Duration::from_secs(10));
        self.kill(i);
        Ok(())
    }

    pub fn launch_all(&mut self) -> Result<(), String> {
        (0..self.members.len()).try_for_each(|i| self.launch(i))
    }

    /// The tail of member `i`'s log, for an error message.
    pub fn log_tail(&self, i: usize) -> String {
        let log = self.path.join(format!("{}.log", self.members[i].0));
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(5)..].join("\n")
    }

    pub fn pid(&self, i: usize) -> Option<Pid> {
        self.procs[i].as_ref().map(|c| Pid::from_raw(c.id() as i32))
    }

    /// Sends `signal` to member `i`'s process (etcd, after launch's exec).
    pub fn signal(&self, i: usize, signal: Signal) -> Result<(), String> {
        let pid = self
            .pid(i)
            .ok_or_else(|| format!("member {i} is not running"))?;
        kill(pid, signal).map_err(|e| format!("kill -{signal} {pid}: {e}"))
    }

    /// SIGKILLs member `i` (if it runs) and reaps it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.procs[i].take() {
            let pid = Pid::from_raw(child.id() as i32);
            let _ = kill(pid, Signal::SIGCONT);
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether member `i`'s process has exited (or was never started).
    pub fn exited(&mut self, i: usize) -> bool {
        match &mut self.procs[i] {
            None => true,
            Some(c) => !matches!(c.try_wait(), Ok(None)),
        }
    }

    /// Whether member `i` has a process (running or exited, not yet reaped).
    pub fn has_process(&self, i: usize) -> bool {
        self.procs[i].is_some()
    }
}

impl Drop for LocalZone {
    fn drop(&mut self) {
        for handle in 0..self.beside.len() {
            self.kill_beside(handle);
        }
        for i in 0..self.procs.len() {
            self.kill(i);
        }
        drop(self.dir.take());
    }
}
