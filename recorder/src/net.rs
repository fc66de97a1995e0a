//! Machines as network namespaces, for the partition and latency scenarios: zone-testkit's
//! [`zone_testkit::netns::Net`] with one machine per member and one for the recorder's
//! clients, at `198.19.<subnet>.<n>/24` (member `i` at `.i+1`, the clients at `.100`),
//! addresses that exist only inside these namespaces.
//!
//! Invariants (the kit's, with this module's names):
//! - Every namespace this module makes is named `zr<subnet>-*` and deleted when the
//!   [`Net`] is dropped, pass or fail (their links go with them); leftovers of a killed
//!   run with the same subnet are deleted before a new one is made.
//! - A partition is iptables rules in the members' own namespaces, never in the machine's:
//!   the host's firewall is never touched.
//! - Without root, or without `ip` and `iptables`, [`Net::new`] fails: the scenario fails
//!   loudly, it never records a history without its fault.

use std::fs::File;

use zone_testkit::netns::{self, Machine};

/// The machines of one partition scenario.
pub struct Net {
    net: netns::Net,
    /// Member `i`'s machine is `members[i]`.
    members: Vec<Machine>,
    clients: Machine,
}

impl Net {
    /// A switch and `count` member machines (`198.19.<subnet>.1..=count`) plus the clients'
    /// machine (`198.19.<subnet>.100`).
    pub fn new(subnet: u8, count: usize) -> Result<Net, String> {
        let mut net = netns::Net::new(&format!("zr{subnet}"))?;
        let members = (1..=count)
            .map(|n| net.machine(n, &format!("198.19.{subnet}.{n}"), &[]))
            .collect::<Result<_, String>>()?;
        let clients = net.machine("c", &format!("198.19.{subnet}.100"), &[])?;
        Ok(Net {
            net,
            members,
            clients,
        })
    }

    /// Member `i`'s address (index from 0).
    pub fn address(&self, i: usize) -> String {
        self.members[i].address.clone()
    }

    /// Member `i`'s namespace.
    pub fn namespace(&self, i: usize) -> String {
        self.members[i].ns.clone()
    }

    /// Moves the calling thread into the clients' machine: every thread it starts from now
    /// on, and every process those start, is there too (a network namespace is a
    /// thread's, inherited). Call it before any other thread starts.
    pub fn enter_clients(&self) -> Result<(), String> {
        netns::Net::enter(&self.clients)
    }

    /// Cuts members `a` and `b` apart, both ways (each drops the other's packets); the
    /// clients' machine still reaches both.
    pub fn cut(&self, a: usize, b: usize) -> Result<(), String> {
        for (me, other) in [(a, b), (b, a)] {
            self.net
                .cut(&self.members[me], &self.members[other].address)?;
        }
        Ok(())
    }

    /// Cuts member `i` from every other member.
    pub fn isolate(&self, i: usize) -> Result<(), String> {
        (0..self.members.len())
            .filter(|&j| j != i)
            .try_for_each(|j| self.cut(i, j))
    }

    /// Member `i`'s namespace, open (for `setns`).
    pub fn namespace_file(&self, i: usize) -> Result<File, String> {
        netns::Net::open(&self.members[i])
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
        let (port, mark) = (port.to_string(), mark.to_string());
        let rule = [
            "-t",
            "nat",
            "-A",
            "OUTPUT",
            "-p",
            "tcp",
            "-d",
            address,
            "--dport",
            &port,
            "-m",
            "mark",
            "!",
            "--mark",
            &mark,
            "-j",
            "DNAT",
            "--to-destination",
            &to,
        ];
        netns::run(Some(&self.members[a].ns), "iptables", &rule)
    }

    /// Whether member `a`'s machine opens a TCP connection to `port` on member `b`'s
    /// within a second: how a scenario proves a cut, and a heal, happened.
    pub fn reaches(&self, a: usize, b: usize, port: u16) -> Result<bool, String> {
        let to = format!("{}:{port}", self.address(b))
            .parse()
            .map_err(|e| format!("{e}"))?;
        netns::Net::reaches(&self.members[a], to)
    }

    /// Removes every cut.
    pub fn heal(&self) -> Result<(), String> {
        self.members.iter().try_for_each(|m| self.net.heal(m))
    }
}
