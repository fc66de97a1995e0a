//! Machines as network namespaces, for the partition scenario: a switch (a namespace
//! holding a bridge), one machine per member and one for the recorder's clients, each its
//! own network namespace with one veth link to the bridge and an address
//! `198.19.<subnet>.<n>/24` that exists only inside these namespaces.
//!
//! Invariants:
//! - Every namespace this module makes is named `zr<subnet>-*` and deleted when the
//!   [`Net`] is dropped, pass or fail (their links go with them); leftovers of a killed
//!   run with the same subnet are deleted before a new one is made.
//! - A partition is iptables rules in the members' own namespaces, never in the machine's:
//!   the host's firewall is never touched.
//! - Without root, or without `ip` and `iptables`, [`Net::new`] fails: the scenario fails
//!   loudly, it never records a history without its fault.

use std::fs::File;
use std::process::Command;

use nix::sched::CloneFlags;

/// The machines of one partition scenario.
pub struct Net {
    prefix: String,
    subnet: u8,
    /// Every namespace made, the switch first.
    namespaces: Vec<String>,
    count: usize,
}

/// Runs `ip ARGS` or `iptables ARGS` (in a namespace when `ns` is given): an error naming
/// the command and its stderr when it fails.
fn run(ns: Option<&str>, program: &str, args: &[&str]) -> Result<(), String> {
    let mut cmd = match ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, program]);
            c
        }
        None => Command::new(program),
    };
    let out = cmd
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{program} {}: {}",
            ns.map(|n| format!("(in {n}) ")).unwrap_or_default(),
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Net {
    /// A switch and `count` member machines (`198.19.<subnet>.1..=count`) plus the clients'
    /// machine (`198.19.<subnet>.100`).
    pub fn new(subnet: u8, count: usize) -> Result<Net, String> {
        if !nix::unistd::geteuid().is_root() {
            return Err("the partition scenario makes network namespaces and needs root".into());
        }
        let prefix = format!("zr{subnet}");
        for n in (1..=count)
            .map(|n| n.to_string())
            .chain(["c".into(), "sw".into()])
        {
            // A killed run's leftovers; absent ones are no error.
            let _ = run(None, "ip", &["netns", "del", &format!("{prefix}-{n}")]);
        }
        let switch = format!("{prefix}-sw");
        let mut net = Net {
            prefix,
            subnet,
            namespaces: Vec::new(),
            count,
        };
        run(None, "ip", &["netns", "add", &switch])?;
        net.namespaces.push(switch.clone());
        run(
            Some(&switch),
            "ip",
            &["link", "add", "br0", "type", "bridge"],
        )?;
        run(Some(&switch), "ip", &["link", "set", "br0", "up"])?;
        let machines: Vec<(String, u8)> = (1..=count)
            .map(|n| (n.to_string(), n as u8))
            .chain([("c".to_string(), 100)])
            .collect();
        for (n, host) in machines {
            let ns = format!("{}-{n}", net.prefix);
            run(None, "ip", &["netns", "add", &ns])?;
            net.namespaces.push(ns.clone());
            let (inner, outer) = ("eth0", format!("v{n}"));
            run(
                Some(&switch),
                "ip",
                &[
                    "link", "add", &outer, "type", "veth", "peer", "name", inner, "netns", &ns,
                ],
            )?;
            run(
                Some(&switch),
                "ip",
                &["link", "set", &outer, "master", "br0"],
            )?;
            run(Some(&switch), "ip", &["link", "set", &outer, "up"])?;
            let cidr = format!("198.19.{subnet}.{host}/24");
            run(Some(&ns), "ip", &["addr", "add", &cidr, "dev", inner])?;
            run(Some(&ns), "ip", &["link", "set", inner, "up"])?;
            run(Some(&ns), "ip", &["link", "set", "lo", "up"])?;
        }
        Ok(net)
    }

    /// Member `i`'s address (index from 0).
    pub fn address(&self, i: usize) -> String {
        format!("198.19.{}.{}", self.subnet, i + 1)
    }

    /// Member `i`'s namespace.
    pub fn namespace(&self, i: usize) -> String {
        format!("{}-{}", self.prefix, i + 1)
    }

    /// Moves the calling thread into the clients' machine: every thread it starts from now
    /// on, and every process those start, is there too (a network namespace is a
    /// thread's, inherited). Call it before any other thread starts.
    pub fn enter_clients(&self) -> Result<(), String> {
        let path = format!("/run/netns/{}-c", self.prefix);
        let file = File::open(&path).map_err(|e| format!("{path}: {e}"))?;
        nix::sched::setns(&file, CloneFlags::CLONE_NEWNET)
            .map_err(|e| format!("entering {path}: {e}"))
    }

    /// Cuts members `a` and `b` apart, both ways (each drops the other's packets); the
    /// clients' machine still reaches both.
    pub fn cut(&self, a: usize, b: usize) -> Result<(), String> {
        for (me, other) in [(a, b), (b, a)] {
            let ns = self.namespace(me);
            let from = self.address(other);
            run(
                Some(&ns),
                "iptables",
                &["-A", "INPUT", "-s", &from, "-j", "DROP"],
            )?;
            run(
                Some(&ns),
                "iptables",
                &["-A", "OUTPUT", "-d", &from, "-j", "DROP"],
            )?;
        }
        Ok(())
    }

    /// Cuts member `i` from every other member.
    pub fn isolate(&self, i: usize) -> Result<(), String> {
        (0..self.count)
            .filter(|&j| j != i)
            .try_for_each(|j| self.cut(i, j))
    }

    /// Member `i`'s namespace, open (for `setns`).
    pub fn namespace_file(&self, i: usize) -> Result<File, String> {
        let path = format!("/run/netns/{}", self.namespace(i));
        File::open(&path).map_err(|e| format!("{path}: {e}"))
    }

    /// On member `a`'s machine, sends every new TCP connection to `address:port` to
    /// `a`'s own address at `to_port` instead, except connections carrying socket mark
    /// `mark` (the relay's own, [`crate::proxy`]).
    pub fn redirect(
        &self,
        a: usize,
        address: &str,
        port: u16,
        to_port: u16,
        mark: u32,
    ) -> Result<(), String> {
        let to = format!("{}:{to_port}", self.address(a));
        run(
            Some(&self.namespace(a)),
            "iptables",
            &[
                "-t",
                "nat",
                "-A",
                "OUTPUT",
                "-p",
                "tcp",
                "-d",
                address,
                "--dport",
                &port.to_string(),
                "-m",
                "mark",
                "!",
                "--mark",
                &mark.to_string(),
                "-j",
                "DNAT",
                "--to-destination",
                &to,
            ],
        )
    }

    /// Whether member `a`'s machine opens a TCP connection to `port` on member `b`'s
    /// within a second (asked from a thread moved into `a`'s namespace): how a scenario
    /// proves a cut, and a heal, happened.
    pub fn reaches(&self, a: usize, b: usize, port: u16) -> Result<bool, String> {
        let file = self.namespace_file(a)?;
        let to: std::net::SocketAddr = format!("{}:{port}", self.address(b))
            .parse()
            .map_err(|e| format!("{e}"))?;
        std::thread::spawn(move || {
            nix::sched::setns(&file, CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("entering member {a}'s machine: {e}"))?;
            Ok(
                std::net::TcpStream::connect_timeout(&to, std::time::Duration::from_secs(1))
                    .is_ok(),
            )
        })
        .join()
        .map_err(|_| "the reachability probe panicked".to_string())?
    }

    /// Removes every cut.
    pub fn heal(&self) -> Result<(), String> {
        (0..self.count).try_for_each(|i| {
            let ns = self.namespace(i);
            run(Some(&ns), "iptables", &["-F", "INPUT"])?;
            run(Some(&ns), "iptables", &["-F", "OUTPUT"])
        })
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            let _ = run(None, "ip", &["netns", "del", ns]);
        }
    }
}
