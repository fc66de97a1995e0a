//! A local zone for a scenario: zone-testkit's harness ([`zone_testkit::zone`]: made with
//! the zone-etcd binary, `ca init` and `bootstrap`) in a temporary directory, its members
//! started with `zone-etcd launch` on `127.0.<subnet>.<i>` or on network-namespace
//! machines, and the few things faults do to them.
//!
//! Invariants: every process this module starts is a [`Process`] held by PID; dropping the
//! zone sends each SIGCONT then SIGKILL and reaps it, so a failing scenario leaves no etcd
//! behind; nothing is ever killed by name. The zone's directory is a temporary directory
//! removed on drop (kept when `ZONE_RECORDER_KEEP` is set, for a post-mortem).

use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use zone_testkit::addresses::Block;
use zone_testkit::{Kind, Process, Zone};

pub use zone_testkit::zone::{Tools, CLIENT_PORT, PEER_PORT};

use crate::connect::CredFiles;
use crate::net::Net;
use crate::proxy::Relays;

/// A scenario's zone: the kit's [`Zone`] (its tools, members, paths and URLs, through
/// `Deref`) and the processes of its members.
pub struct LocalZone {
    dir: Option<tempfile::TempDir>,
    zone: Zone,
    /// The network namespace each member's processes run in (`None`: this one).
    netns: Vec<Option<String>>,
    procs: Vec<Option<Process>>,
    /// Processes beside the members (`backup run`), killed by PID on drop.
    beside: Vec<Option<Process>>,
    /// The relays on the peer path, when installed ([`LocalZone::install_relays`]).
    pub relays: Option<Relays>,
    /// The machines the members run on, when they are network namespaces (dropped after
    /// the processes are killed and the relays stopped).
    pub net: Option<Net>,
}

impl Deref for LocalZone {
    type Target = Zone;
    fn deref(&self) -> &Zone {
        &self.zone
    }
}

impl DerefMut for LocalZone {
    fn deref_mut(&mut self) -> &mut Zone {
        &mut self.zone
    }
}

impl LocalZone {
    /// Bootstraps a zone of `count` members on `127.0.<subnet>.1..=count` (`extra`: more
    /// zone-file text, such as a `[settings]` or `[backup]` table, or empty). Nothing runs
    /// yet.
    pub fn create(
        tools: &Tools,
        kind: Kind,
        subnet: u8,
        count: u8,
        extra: &str,
    ) -> Result<LocalZone, String> {
        let addresses = (1..=count).map(|i| Block::loopback(subnet).ip(i)).collect();
        Self::create_on(tools, kind, addresses, None, extra)
    }

    /// Bootstraps a zone with one member on each of `net`'s machines; the calling thread
    /// moves to the clients' machine ([`Net::enter_clients`]).
    pub fn create_networked(
        tools: &Tools,
        kind: Kind,
        net: Net,
        count: usize,
        extra: &str,
    ) -> Result<LocalZone, String> {
        net.enter_clients()?;
        let addresses = (0..count).map(|i| net.address(i)).collect();
        Self::create_on(tools, kind, addresses, Some(net), extra)
    }

    /// Bootstraps a zone whose member `i` is at `addresses[i]`, on `net`'s machine `i`
    /// when a `net` is given, of `kind` (the scenarios' zones are of the kind `ca init`
    /// makes today, except those whose subject needs the previous one).
    fn create_on(
        tools: &Tools,
        kind: Kind,
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
        let name = "cz.zone";
        let members: Vec<(String, String)> = addresses
            .into_iter()
            .enumerate()
            .map(|(i, address)| (format!("node{}.{name}", i + 1), address))
            .collect();
        let zone = Zone::new(tools, dir.path(), name, members);
        let dir = if std::env::var_os("ZONE_RECORDER_KEEP").is_some() {
            eprintln!("zone-recorder: keeping {}", zone.root.display());
            let _ = dir.keep();
            None
        } else {
            Some(dir)
        };
        let mut text = zone.zone_toml();
        if !extra.is_empty() {
            text += &format!("\n{extra}\n");
        }
        zone.make(kind, &text)?;
        Ok(LocalZone {
            dir,
            procs: zone.members.iter().map(|_| None).collect(),
            zone,
            netns,
            beside: Vec::new(),
            relays: None,
            net,
        })
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
        &self.root
    }

    /// Member `i`'s current client credentials (issued by its launch).
    pub fn creds(&self, i: usize) -> CredFiles {
        CredFiles {
            ca: self.tls(i, "ca.crt"),
            cert: self.tls(i, "client.crt"),
            key: self.tls(i, "client.key"),
        }
    }

    /// Runs `zone-etcd ARGS` to its end: its stdout, or an error naming its stderr.
    pub fn zone_etcd(&self, args: &[&str]) -> Result<String, String> {
        self.tools.run(args)
    }

    /// `zone-etcd COMMAND... --config <member i's node.toml>`, whatever its exit: (exit
    /// 0, stdout).
    pub fn on_any(&self, i: usize, args: &[&str]) -> Result<(bool, String), String> {
        let out = self
            .member_command(i, None, args)
            .output()
            .map_err(|e| format!("{}: {e}", self.tools.zone_etcd.display()))?;
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
        let process = self.spawn_logged(i, args, &format!("{}.log", self.members[i].0))?;
        self.procs[i] = Some(process);
        Ok(())
    }

    /// Starts `zone-etcd ARGS --config <member i's node.toml>` beside member `i`'s etcd
    /// (`backup run`), in its machine, its log in the zone's directory (`<node>.<tag>.log`);
    /// returns its handle for [`LocalZone::kill_beside`].
    pub fn start_beside(&mut self, i: usize, args: &[&str], tag: &str) -> Result<usize, String> {
        let process = self.spawn_logged(i, args, &format!("{}.{tag}.log", self.members[i].0))?;
        self.beside.push(Some(process));
        Ok(self.beside.len() - 1)
    }

    /// Spawns `zone-etcd ARGS --config <member i's node.toml>` in member `i`'s machine,
    /// stdout and stderr appended to `log` in the zone's directory.
    fn spawn_logged(&self, i: usize, args: &[&str], log: &str) -> Result<Process, String> {
        let cmd = self.member_command(i, self.netns[i].as_deref(), args);
        Process::spawn_appending(cmd, &self.file(log))
    }

    /// Sends `signal` to a process started by [`LocalZone::start_beside`].
    pub fn signal_beside(&mut self, handle: usize, signal: Signal) -> Result<(), String> {
        self.beside
            .get_mut(handle)
            .and_then(Option::as_mut)
            .ok_or_else(|| format!("process {handle} beside the members is not running"))?
            .signal(signal)
    }

    /// SIGKILLs a process started by [`LocalZone::start_beside`] and reaps it.
    pub fn kill_beside(&mut self, handle: usize) {
        if let Some(slot) = self.beside.get_mut(handle) {
            drop(slot.take());
        }
    }

    /// Waits up to `limit` for member `i`'s process to exit by itself (then reaps it).
    pub fn wait_exit(&mut self, i: usize, limit: Duration) -> Result<(), String> {
        if let Some(process) = &mut self.procs[i] {
            if !process.wait_exit(limit) {
                return Err(format!("{} still runs after {limit:?}", self.members[i].0));
            }
        }
        self.kill(i);
        Ok(())
    }

    /// SIGTERM, as a supervisor stops a member, and waits for it (SIGKILL after 10 s).
    pub fn terminate(&mut self, i: usize) -> Result<(), String> {
        self.signal(i, Signal::SIGTERM)?;
        let _ = self.wait_exit(i, Duration::from_secs(10));
        self.kill(i);
        Ok(())
    }

    pub fn launch_all(&mut self) -> Result<(), String> {
        (0..self.members.len()).try_for_each(|i| self.launch(i))
    }

    /// The tail of member `i`'s log, for an error message.
    pub fn log_tail(&self, i: usize) -> String {
        let text = std::fs::read_to_string(self.log_path(i)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(5)..].join("\n")
    }

    pub fn pid(&self, i: usize) -> Option<Pid> {
        self.procs[i]
            .as_ref()
            .map(|p| Pid::from_raw(p.pid() as i32))
    }

    /// Sends `signal` to member `i`'s process (etcd, after launch's exec).
    pub fn signal(&mut self, i: usize, signal: Signal) -> Result<(), String> {
        self.procs[i]
            .as_mut()
            .ok_or_else(|| format!("member {i} is not running"))?
            .signal(signal)
    }

    /// SIGKILLs member `i` (if it runs) and reaps it.
    pub fn kill(&mut self, i: usize) {
        drop(self.procs[i].take());
    }

    /// Whether member `i`'s process has exited (or was never started).
    pub fn exited(&mut self, i: usize) -> bool {
        self.procs[i].as_mut().is_none_or(|p| !p.is_running())
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
