//! Machines as network namespaces, for tests of a zone spread over several machines:
//! zone-testkit's [`zone_testkit::netns::Net`] (a switch, machines in 198.18.0.0/15 with
//! their own hosts files, homes behind routers, partitions inside the namespaces) with
//! this suite's names (`ze<tag>-<n>`), panicking where the kit fails: such tests fail,
//! they never pass (without root too).
//!
//! Invariants (the kit's): dropping the `Net` deletes every namespace it made and their
//! hosts files, also when the test failed, and a killed run's leftovers of the same tag
//! before a new one is made; the host's firewall is never touched. The processes are the
//! test's to kill first ([`super::Running`] does, by PID).
#![allow(dead_code)]

use std::process::Command;

use zone_testkit::netns;
pub use zone_testkit::netns::Machine;

/// A switch and the test's machines on it.
pub struct Net(netns::Net);

/// Panics with the kit's error line: the harness cannot go on.
fn ok<T>(result: Result<T, String>) -> T {
    result.unwrap_or_else(|e| panic!("{e}"))
}

/// Runs a command, panicking with its output when it fails: the harness cannot go on.
pub fn must(program: &str, args: &[&str]) {
    ok(netns::run(None, program, args));
}

impl Net {
    /// A switch for machines whose namespaces are named `ze<tag>-<n>` (`tag`: a few
    /// characters unique among the tests of the suite).
    pub fn new(tag: &str) -> Net {
        Net(ok(netns::Net::new(&format!("ze{tag}"))))
    }

    /// Adds machine `n` at `address` (a 198.18.0.0/16 address) with a hosts file mapping
    /// each (name, address) of `hosts`.
    pub fn machine(&mut self, n: usize, address: &str, hosts: &[(String, String)]) -> Machine {
        ok(self.0.machine(n, address, hosts))
    }

    /// Links the network namespace of process `pid` (a booted machine's PID 1, see
    /// sysroot.rs) to the switch as machine `n`, at `address` (198.18.0.0/16).
    pub fn attach(&mut self, n: usize, pid: u32, address: &str) {
        ok(self.0.attach(n, pid, address));
    }

    /// A home behind a router ([`netns::Net::home`]): (router, home machine).
    pub fn home(
        &mut self,
        n: usize,
        wan: &str,
        lan: u8,
        ports: &[u16],
        hosts: &[(String, String)],
    ) -> (Machine, Machine) {
        ok(self.0.home(n, wan, lan, ports, hosts))
    }

    /// `cmd` run inside `machine`'s namespace (same PID: `ip netns exec` execs it).
    pub fn inside(machine: &Machine, cmd: &Command) -> Command {
        netns::Net::inside(machine, cmd)
    }

    /// Moves the calling thread into `machine`'s network namespace, so a test's own
    /// clients (etcdctl, a [`super::WriteLoad`]) run there.
    pub fn enter(machine: &Machine) {
        ok(netns::Net::enter(machine));
    }

    /// Drops every packet to and from `machine` except on loopback.
    pub fn partition(&self, machine: &Machine) {
        ok(self.0.partition(machine));
    }

    /// Lets into `machine` only TCP to `ports` (and loopback, and replies).
    pub fn only_tcp_ports(&self, machine: &Machine, ports: &[u16]) {
        ok(self.0.only_tcp_ports(machine, ports));
    }

    /// Ends a partition.
    pub fn heal(&self, machine: &Machine) {
        ok(self.0.heal(machine));
    }
}
