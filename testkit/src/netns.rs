//! Machines as network namespaces, for zones spread over several machines (the tests'
//! multi-machine zones, the recorder's partition and latency scenarios).
//!
//! A [`Net`] is a switch (a namespace `<prefix>-sw` holding a bridge) and machines: each
//! its own network namespace `<prefix>-<n>` with one veth link to the bridge, an address
//! and its own hosts file (`/etc/netns/<ns>/hosts`, which `ip netns exec` puts over
//! /etc/hosts); or the namespace of a process (a booted machine's PID 1), linked the same
//! way. Processes run inside with [`Net::inside`]; a thread moves in with [`Net::enter`].
//!
//! Invariants:
//! - Addresses are only ever in 198.18.0.0/15 ([`cidr`]: 198.18.0.0/16 is the switch's
//!   one network, each 198.19.X.0/24 one of its own), and exist only inside the
//!   namespaces.
//! - Every namespace a `Net` makes is deleted when it is dropped, pass or fail (their
//!   links go with them), with its hosts file; the leftovers of a killed run with the same
//!   prefix (every namespace named `<prefix>-*`) are deleted before a new one is made.
//! - Partitions and port filters are iptables rules inside the machines' own namespaces:
//!   the host's firewall is never touched.
//! - Without root, or without `ip` and `iptables`, [`Net::new`] fails: a test fails, a
//!   scenario never records a history without its fault. The processes inside are their
//!   starter's to kill first (a [`crate::Process`] does, by PID).

use std::fmt::Display;
use std::fs::{self, File};
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

type Result<T> = std::result::Result<T, String>;

/// One machine: its namespace and address.
#[derive(Debug, Clone)]
pub struct Machine {
    pub ns: String,
    pub address: String,
}

/// Runs `program ARGS`, in namespace `ns` when given: an error naming the command and its
/// stderr when it fails.
pub fn run(ns: Option<&str>, program: &str, args: &[&str]) -> Result<()> {
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

/// `address` with its network's prefix length: /16 in 198.18.0.0/16, /24 in 198.19.X.0/24;
/// refused anywhere else.
pub fn cidr(address: &str) -> Result<String> {
    if address.starts_with("198.18.") {
        Ok(format!("{address}/16"))
    } else if address.starts_with("198.19.") {
        Ok(format!("{address}/24"))
    } else {
        Err(format!("{address}: test addresses stay in 198.18.0.0/15"))
    }
}

/// Where a link goes: a namespace by name, or the namespace of a process.
enum Target<'a> {
    Named(&'a str),
    Process(u32),
}

impl Target<'_> {
    /// Runs `program ARGS` inside it.
    fn run(&self, program: &str, args: &[&str]) -> Result<()> {
        match self {
            Target::Named(ns) => run(Some(ns), program, args),
            Target::Process(pid) => {
                let net = format!("--net=/proc/{pid}/ns/net");
                run(None, "nsenter", &[&[net.as_str(), program], args].concat())
            }
        }
    }

    /// Gives `link` in it the address `cidr` and brings it and loopback up.
    fn address_link(&self, link: &str, cidr: &str) -> Result<()> {
        self.run("ip", &["addr", "add", cidr, "dev", link])?;
        self.run("ip", &["link", "set", link, "up"])?;
        self.run("ip", &["link", "set", "lo", "up"])
    }
}

/// A switch and the machines on it.
pub struct Net {
    prefix: String,
    switch: String,
    /// Every namespace made, the switch first.
    namespaces: Vec<String>,
}

impl Net {
    /// A switch for machines whose namespaces are named `<prefix>-<n>` (`prefix`: a few
    /// characters unique among the users that run at once), after deleting a killed
    /// run's.
    pub fn new(prefix: &str) -> Result<Net> {
        if !nix::unistd::geteuid().is_root() {
            return Err("machines as network namespaces need root".into());
        }
        let listed = Command::new("ip")
            .args(["netns", "list"])
            .output()
            .map_err(|e| format!("cannot run ip: {e}"))?;
        let mine = format!("{prefix}-");
        for line in String::from_utf8_lossy(&listed.stdout).lines() {
            let name = line.split_whitespace().next().unwrap_or_default();
            if name.starts_with(&mine) {
                let _ = run(None, "ip", &["netns", "del", name]);
                let _ = fs::remove_dir_all(format!("/etc/netns/{name}"));
            }
        }
        let switch = format!("{prefix}-sw");
        let mut net = Net {
            prefix: prefix.to_string(),
            switch: switch.clone(),
            namespaces: Vec::new(),
        };
        net.add_namespace(&switch)?;
        run(
            Some(&switch),
            "ip",
            &["link", "add", "br0", "type", "bridge"],
        )?;
        run(Some(&switch), "ip", &["link", "set", "br0", "up"])?;
        Ok(net)
    }

    fn add_namespace(&mut self, ns: &str) -> Result<()> {
        run(None, "ip", &["netns", "add", ns])?;
        self.namespaces.push(ns.to_string());
        Ok(())
    }

    /// Adds machine `n` at `address` (see [`cidr`]) with a hosts file mapping each
    /// (name, address) of `hosts` (and localhost).
    pub fn machine(
        &mut self,
        n: impl Display,
        address: &str,
        hosts: &[(String, String)],
    ) -> Result<Machine> {
        let ns = format!("{}-{n}", self.prefix);
        self.add_namespace(&ns)?;
        self.plug(&n, &Target::Named(&ns), address)?;
        write_hosts(&ns, hosts)?;
        Ok(Machine {
            ns,
            address: address.to_string(),
        })
    }

    /// Links the network namespace of process `pid` to the switch as machine `n`, at
    /// `address`. Its link goes with its namespace.
    pub fn attach(&mut self, n: impl Display, pid: u32, address: &str) -> Result<()> {
        self.plug(&n, &Target::Process(pid), address)
    }

    /// A veth link from the switch's bridge into `target` as machine `n`, its inner end
    /// at `address`, up with the target's loopback.
    fn plug(&self, n: &dyn Display, target: &Target, address: &str) -> Result<()> {
        let cidr = cidr(address)?;
        let (inner, outer) = (
            format!("{}i{n}", self.prefix),
            format!("{}o{n}", self.prefix),
        );
        let netns = match target {
            Target::Named(ns) => ns.to_string(),
            Target::Process(pid) => pid.to_string(),
        };
        run(
            None,
            "ip",
            &[
                "link",
                "add",
                &inner,
                "netns",
                &netns,
                "type",
                "veth",
                "peer",
                "name",
                &outer,
                "netns",
                &self.switch,
            ],
        )?;
        let to_bridge = ["link", "set", &outer, "master", "br0", "up"];
        run(Some(&self.switch), "ip", &to_bridge)?;
        target.address_link(&inner, &cidr)
    }

    /// A home behind a router: the router's WAN side on the switch at `wan` (its public
    /// address), a LAN `198.19.<lan>.0/24` of its own with one machine at .2 (the router at
    /// .1, its default route), TCP `ports` forwarded from `wan` to that machine, and the
    /// LAN masqueraded on its way out, as a home router with port forwards does. Returns
    /// (router, home machine).
    pub fn home(
        &mut self,
        n: usize,
        wan: &str,
        lan: u8,
        ports: &[u16],
        hosts: &[(String, String)],
    ) -> Result<(Machine, Machine)> {
        let router = self.machine(n, wan, hosts)?;
        let home_ns = format!("{}-h{n}", self.prefix);
        self.add_namespace(&home_ns)?;
        let (router_if, home_if) = (
            format!("{}l{n}", self.prefix),
            format!("{}h{n}", self.prefix),
        );
        run(
            None,
            "ip",
            &[
                "link", "add", &router_if, "netns", &router.ns, "type", "veth", "peer", "name",
                &home_if, "netns", &home_ns,
            ],
        )?;
        let (gateway, address) = (format!("198.19.{lan}.1"), format!("198.19.{lan}.2"));
        Target::Named(&router.ns).address_link(&router_if, &cidr(&gateway)?)?;
        run(
            Some(&router.ns),
            "sysctl",
            &["-qw", "net.ipv4.ip_forward=1"],
        )?;
        for port in ports {
            let (port, to) = (port.to_string(), format!("{address}:{port}"));
            let forward = [
                "-t",
                "nat",
                "-A",
                "PREROUTING",
                "-d",
                wan,
                "-p",
                "tcp",
                "--dport",
                &port,
                "-j",
                "DNAT",
                "--to-destination",
                &to,
            ];
            run(Some(&router.ns), "iptables", &forward)?;
        }
        let lan_net = format!("198.19.{lan}.0/24");
        let masquerade = [
            "-t",
            "nat",
            "-A",
            "POSTROUTING",
            "-s",
            &lan_net,
            "!",
            "-o",
            &router_if,
            "-j",
            "MASQUERADE",
        ];
        run(Some(&router.ns), "iptables", &masquerade)?;
        Target::Named(&home_ns).address_link(&home_if, &cidr(&address)?)?;
        run(
            Some(&home_ns),
            "ip",
            &["route", "add", "default", "via", &gateway],
        )?;
        write_hosts(&home_ns, hosts)?;
        let home = Machine {
            ns: home_ns,
            address,
        };
        Ok((router, home))
    }

    /// `cmd` run inside `machine`'s namespace (same PID: `ip netns exec` execs it).
    pub fn inside(machine: &Machine, cmd: &Command) -> Command {
        let mut wrapped = Command::new("ip");
        wrapped
            .args(["netns", "exec", &machine.ns])
            .arg(cmd.get_program())
            .args(cmd.get_args());
        for (key, value) in cmd.get_envs() {
            match value {
                Some(value) => wrapped.env(key, value),
                None => wrapped.env_remove(key),
            };
        }
        wrapped
    }

    /// `machine`'s namespace, open (for `setns`).
    pub fn open(machine: &Machine) -> Result<File> {
        let path = format!("/run/netns/{}", machine.ns);
        File::open(&path).map_err(|e| format!("{path}: {e}"))
    }

    /// Moves the calling thread into `machine`'s network namespace: every thread and
    /// process it starts from then on is on that machine too (a namespace is a thread's,
    /// inherited). Call it before any other thread starts.
    pub fn enter(machine: &Machine) -> Result<()> {
        let file = Net::open(machine)?;
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| format!("entering {}: {e}", machine.ns))
    }

    /// Whether `machine` opens a TCP connection to `to` within a second (asked from a
    /// thread moved into its namespace).
    pub fn reaches(machine: &Machine, to: SocketAddr) -> Result<bool> {
        let file = Net::open(machine)?;
        let ns = machine.ns.clone();
        std::thread::spawn(move || {
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("entering {ns}: {e}"))?;
            Ok(std::net::TcpStream::connect_timeout(&to, Duration::from_secs(1)).is_ok())
        })
        .join()
        .map_err(|_| "the reachability probe panicked".to_string())?
    }

    /// Drops every packet to and from `machine` except on loopback.
    pub fn partition(&self, machine: &Machine) -> Result<()> {
        for chain in [["-A", "INPUT", "!", "-i"], ["-A", "OUTPUT", "!", "-o"]] {
            let rule = [&chain[..], &["lo", "-j", "DROP"]].concat();
            run(Some(&machine.ns), "iptables", &rule)?;
        }
        Ok(())
    }

    /// Drops, on `machine`, every packet from and to `address`.
    pub fn cut(&self, machine: &Machine, address: &str) -> Result<()> {
        run(
            Some(&machine.ns),
            "iptables",
            &["-A", "INPUT", "-s", address, "-j", "DROP"],
        )?;
        run(
            Some(&machine.ns),
            "iptables",
            &["-A", "OUTPUT", "-d", address, "-j", "DROP"],
        )
    }

    /// Lets into `machine` only TCP to `ports` (and loopback, and replies to its own
    /// connections): every other port of it is unreachable from the other machines.
    pub fn only_tcp_ports(&self, machine: &Machine, ports: &[u16]) -> Result<()> {
        let ns = Some(machine.ns.as_str());
        run(ns, "iptables", &["-A", "INPUT", "-i", "lo", "-j", "ACCEPT"])?;
        let replies = ["-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED"];
        let rule = [&["-A", "INPUT"], &replies[..], &["-j", "ACCEPT"]].concat();
        run(ns, "iptables", &rule)?;
        for port in ports {
            let port = port.to_string();
            let rule = ["-A", "INPUT", "-p", "tcp", "--dport", &port, "-j", "ACCEPT"];
            run(ns, "iptables", &rule)?;
        }
        run(ns, "iptables", &["-A", "INPUT", "-j", "DROP"])
    }

    /// Ends a partition, a cut or a port filter on `machine` (its filter table emptied;
    /// its nat rules stay).
    pub fn heal(&self, machine: &Machine) -> Result<()> {
        run(Some(&machine.ns), "iptables", &["-F"])
    }
}

/// `/etc/netns/<ns>/hosts`: localhost and each (name, address).
fn write_hosts(ns: &str, hosts: &[(String, String)]) -> Result<()> {
    let dir = format!("/etc/netns/{ns}");
    fs::create_dir_all(&dir).map_err(|e| format!("{dir}: {e}"))?;
    let mut text = String::from("127.0.0.1 localhost\n");
    for (name, addr) in hosts {
        text += &format!("{addr} {name}\n");
    }
    fs::write(format!("{dir}/hosts"), text).map_err(|e| format!("{dir}/hosts: {e}"))
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            let _ = run(None, "ip", &["netns", "del", ns]);
            let _ = fs::remove_dir_all(format!("/etc/netns/{ns}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_stay_in_the_benchmarking_block() {
        assert_eq!(cidr("198.18.9.1").unwrap(), "198.18.9.1/16");
        assert_eq!(cidr("198.19.115.100").unwrap(), "198.19.115.100/24");
        for outside in ["127.0.0.1", "10.0.0.1", "198.20.0.1", "198.1.0.1"] {
            assert!(cidr(outside).is_err(), "{outside}");
        }
    }
}
