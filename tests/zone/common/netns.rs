//! Machines as network namespaces, for tests of a zone spread over several machines.
//!
//! A [`Net`] is a switch (a namespace holding a bridge) and machines: each its own network
//! namespace with one veth link to the bridge, an address in 198.18.0.0/15 and its own
//! hosts file (`/etc/netns/<ns>/hosts`, which `ip netns exec` puts over /etc/hosts). These
//! addresses exist only inside the namespaces. Processes run inside with [`Net::inside`];
//! a partition drops every packet of a machine but loopback (iptables in its namespace).
//! Dropping the `Net` deletes every namespace it made (their links go with them) and their
//! hosts files, also when the test failed; the processes are the test's to kill first
//! ([`super::Running`] does, by PID). Without root, [`Net::new`] panics: such tests fail,
//! they never pass.
#![allow(dead_code)]

use std::fs;
use std::process::Command;

/// One machine: its namespace and address.
#[derive(Debug, Clone)]
pub struct Machine {
    pub ns: String,
    pub address: String,
}

/// Where a link goes: a namespace this `Net` named, or the namespace of a process.
enum Target<'a> {
    Named(&'a str),
    Process(u32),
}

impl Target<'_> {
    /// What `ip link ... netns` takes for it.
    fn netns(&self) -> String {
        match self {
            Target::Named(ns) => ns.to_string(),
            Target::Process(pid) => pid.to_string(),
        }
    }

    /// Runs `program args` inside it.
    fn run(&self, program: &str, args: &[&str]) {
        let mut full = match self {
            Target::Named(ns) => vec!["netns".to_string(), "exec".into(), ns.to_string()],
            Target::Process(pid) => vec![format!("--net=/proc/{pid}/ns/net")],
        };
        full.push(program.into());
        full.extend(args.iter().map(|a| a.to_string()));
        let full: Vec<&str> = full.iter().map(String::as_str).collect();
        match self {
            Target::Named(_) => must("ip", &full),
            Target::Process(_) => must("nsenter", &full),
        }
    }
}

pub struct Net {
    tag: String,
    switch: String,
    namespaces: Vec<String>,
}

/// Runs a command, panicking with its output when it fails: the harness cannot go on.
pub fn must(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Net {
    /// A switch for machines whose namespaces are named `ze<tag>-<n>` (`tag`: a few
    /// characters unique among the tests of the suite).
    pub fn new(tag: &str) -> Net {
        assert!(
            nix::unistd::geteuid().is_root(),
            "multi-machine tests make network namespaces and need root"
        );
        let switch = format!("ze{tag}-sw");
        let net = Net {
            tag: tag.to_string(),
            switch: switch.clone(),
            namespaces: Vec::new(),
        };
        // Leftovers of a killed run of this very test.
        for n in 0..16 {
            for name in [format!("ze{tag}-{n}"), format!("ze{tag}-h{n}")] {
                let _ = Command::new("ip").args(["netns", "del", &name]).output();
            }
        }
        let _ = Command::new("ip").args(["netns", "del", &switch]).output();
        let mut net = net;
        must("ip", &["netns", "add", &switch]);
        net.namespaces.push(switch.clone());
        net.run_in(&switch, "ip", &["link", "add", "br0", "type", "bridge"]);
        net.run_in(&switch, "ip", &["link", "set", "br0", "up"]);
        net
    }

    /// Adds machine `n` at `address` (a 198.18.0.0/16 address) with a hosts file mapping
    /// each (name, address) of `hosts`.
    pub fn machine(&mut self, n: usize, address: &str, hosts: &[(String, String)]) -> Machine {
        let ns = format!("ze{}-{n}", self.tag);
        must("ip", &["netns", "add", &ns]);
        self.namespaces.push(ns.clone());
        self.plug(n, &Target::Named(&ns), address);
        write_hosts(&ns, hosts);
        Machine {
            ns,
            address: address.to_string(),
        }
    }

    /// Links the network namespace of process `pid` (a booted machine's PID 1, see
    /// sysroot.rs) to the switch as machine `n`, at `address` (198.18.0.0/16). Its link goes
    /// with its namespace.
    pub fn attach(&mut self, n: usize, pid: u32, address: &str) {
        self.plug(n, &Target::Process(pid), address);
    }

    /// A veth link from the switch's bridge into `target` as machine `n`, its inner end
    /// at `address`/16, up with the target's loopback.
    fn plug(&self, n: usize, target: &Target, address: &str) {
        assert!(
            address.starts_with("198.18."),
            "test addresses stay in 198.18.0.0/15"
        );
        let (inner, outer) = (format!("ze{}i{n}", self.tag), format!("ze{}o{n}", self.tag));
        let netns = target.netns();
        must(
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
        );
        self.run_in(
            &self.switch,
            "ip",
            &["link", "set", &outer, "master", "br0", "up"],
        );
        address_link(target, &inner, &format!("{address}/16"));
    }

    /// A home behind a router: the router's WAN side on the switch at `wan` (its public
    /// address), a LAN 198.19.<lan>.0/24 of its own with one machine at .2 (the router at
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
    ) -> (Machine, Machine) {
        let router = self.machine(n, wan, hosts);
        let home_ns = format!("ze{}-h{n}", self.tag);
        must("ip", &["netns", "add", &home_ns]);
        self.namespaces.push(home_ns.clone());
        let (router_if, home_if) = (format!("ze{}l{n}", self.tag), format!("ze{}h{n}", self.tag));
        must(
            "ip",
            &[
                "link", "add", &router_if, "netns", &router.ns, "type", "veth", "peer", "name",
                &home_if, "netns", &home_ns,
            ],
        );
        let (gateway, address) = (format!("198.19.{lan}.1"), format!("198.19.{lan}.2"));
        self.run_in(
            &router.ns,
            "ip",
            &["addr", "add", &format!("{gateway}/24"), "dev", &router_if],
        );
        self.run_in(&router.ns, "ip", &["link", "set", &router_if, "up"]);
        self.run_in(&router.ns, "sysctl", &["-qw", "net.ipv4.ip_forward=1"]);
        for port in ports {
            let port = port.to_string();
            self.nat_rule(
                &router.ns,
                &[
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
                    &format!("{address}:{port}"),
                ],
            );
        }
        self.nat_rule(
            &router.ns,
            &[
                "POSTROUTING",
                "-s",
                &format!("198.19.{lan}.0/24"),
                "!",
                "-o",
                &router_if,
                "-j",
                "MASQUERADE",
            ],
        );
        address_link(&Target::Named(&home_ns), &home_if, &format!("{address}/24"));
        self.run_in(
            &home_ns,
            "ip",
            &["route", "add", "default", "via", &gateway],
        );
        write_hosts(&home_ns, hosts);
        (
            router,
            Machine {
                ns: home_ns,
                address,
            },
        )
    }

    /// Appends `rule` (chain first) to the nat table of namespace `ns`.
    fn nat_rule(&self, ns: &str, rule: &[&str]) {
        let mut args = vec!["-t", "nat", "-A"];
        args.extend_from_slice(rule);
        self.run_in(ns, "iptables", &args);
    }

    fn run_in(&self, ns: &str, program: &str, args: &[&str]) {
        let mut full = vec!["netns", "exec", ns, program];
        full.extend_from_slice(args);
        must("ip", &full);
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

    /// Moves the calling thread into `machine`'s network namespace: every thread and
    /// process it starts from then on is on that machine too (a namespace is a thread's,
    /// inherited), so a test's own clients (etcdctl, a [`super::WriteLoad`]) run there.
    pub fn enter(machine: &Machine) {
        let path = format!("/run/netns/{}", machine.ns);
        let file = fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
            .unwrap_or_else(|e| panic!("entering {path}: {e}"));
    }

    /// Drops every packet to and from `machine` except on loopback.
    pub fn partition(&self, machine: &Machine) {
        for rule in [
            ["-A", "INPUT", "!", "-i", "lo"],
            ["-A", "OUTPUT", "!", "-o", "lo"],
        ] {
            let mut args: Vec<&str> = rule.to_vec();
            args.extend(["-j", "DROP"]);
            self.run_in(&machine.ns, "iptables", &args);
        }
    }

    /// Lets into `machine` only TCP to `ports` (and loopback, and replies to its own
    /// connections): every other port of it is unreachable from the other machines.
    pub fn only_tcp_ports(&self, machine: &Machine, ports: &[u16]) {
        self.run_in(
            &machine.ns,
            "iptables",
            &["-A", "INPUT", "-i", "lo", "-j", "ACCEPT"],
        );
        self.run_in(
            &machine.ns,
            "iptables",
            &[
                "-A",
                "INPUT",
                "-m",
                "conntrack",
                "--ctstate",
                "ESTABLISHED,RELATED",
                "-j",
                "ACCEPT",
            ],
        );
        for port in ports {
            let port = port.to_string();
            self.run_in(
                &machine.ns,
                "iptables",
                &["-A", "INPUT", "-p", "tcp", "--dport", &port, "-j", "ACCEPT"],
            );
        }
        self.run_in(&machine.ns, "iptables", &["-A", "INPUT", "-j", "DROP"]);
    }

    /// Ends a partition.
    pub fn heal(&self, machine: &Machine) {
        self.run_in(&machine.ns, "iptables", &["-F"]);
    }
}

/// Gives `link` in `target` the address `cidr` and brings it and loopback up.
fn address_link(target: &Target, link: &str, cidr: &str) {
    target.run("ip", &["addr", "add", cidr, "dev", link]);
    target.run("ip", &["link", "set", link, "up"]);
    target.run("ip", &["link", "set", "lo", "up"]);
}

/// `/etc/netns/<ns>/hosts`: localhost and each (name, address).
fn write_hosts(ns: &str, hosts: &[(String, String)]) {
    let dir = format!("/etc/netns/{ns}");
    fs::create_dir_all(&dir).unwrap();
    let mut text = String::from("127.0.0.1 localhost\n");
    for (name, addr) in hosts {
        text += &format!("{addr} {name}\n");
    }
    fs::write(format!("{dir}/hosts"), text).unwrap();
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
            let _ = fs::remove_dir_all(format!("/etc/netns/{ns}"));
        }
    }
}
