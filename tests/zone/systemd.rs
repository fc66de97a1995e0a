//! The units of the Debian package under a real systemd: Debian's systemd boots as PID 1
//! of a throwaway machine over this one (tests/zone/common/sysroot.rs: its own mount, PID,
//! network, UTS, IPC and cgroup namespaces, an overlay of `/`, tmpfs on /tmp, /var/tmp,
//! /run and /var/log, tmpfiles and every other boot service that reaches outside masked),
//! the package installed with dpkg. A marker file in this machine's /tmp must survive.
//!
//! Shown: `systemctl start` of a member returns once etcd said it is ready (Type=notify
//! through the exec; a member alone at the zone's first start stays "activating"), and
//! its MainPID is etcd's; the renewal service runs `rotate --if-due` while etcd serves and
//! renews leaves that are due; a launch that refuses for good (a removed member) exits 78
//! and is not restarted; the member's files are private (UMask); several members of one
//! zone run side by side as zone-etcd@<bundle directory> instances.

use crate::common;

use std::fs;
use std::time::{Duration, Instant};

use common::sysroot::{self, Machine};

/// One property of a unit (`systemctl show -p NAME --value`).
fn property(machine: &Machine, unit: &str, name: &str) -> String {
    machine
        .sh(&format!("systemctl show -p {name} --value '{unit}'"))
        .trim()
        .to_string()
}

/// The template instance of the bundle in `dir`.
fn instance(machine: &Machine, dir: &str) -> String {
    machine
        .sh(&format!(
            "echo \"zone-etcd@$(systemd-escape --path {dir}).service\""
        ))
        .trim()
        .to_string()
}

/// The MainPID of `unit` runs the packaged etcd.
fn assert_main_pid_is_etcd(machine: &Machine, unit: &str) -> String {
    let pid = property(machine, unit, "MainPID");
    assert!(pid != "0" && !pid.is_empty(), "{unit} has no MainPID");
    let exe = machine.sh(&format!("readlink /proc/{pid}/exe"));
    assert_eq!(
        exe.trim(),
        "/usr/lib/zone-etcd/etcd",
        "{unit}'s MainPID {pid} runs {exe}"
    );
    pid
}

const SETUP: &str = r#"
set -euo pipefail
zone-etcd ca init --zone one.zone --out /root/ca-one
cat >/root/one.toml <<'TOML'
name = "one.zone"
[[etcd]]
node_name = "node21.one.zone"
protocol = "https"
address = "127.0.0.21"
peer_port = 2380
client_port = 2379
TOML
zone-etcd bootstrap --ca /root/ca-one --zone /root/one.toml --out /root/one
cp -a /root/one/node21.one.zone/. /etc/zone-etcd/
sed -i '1i state_dir = "/var/lib/zone-etcd"' /etc/zone-etcd/node.toml
zone-etcd ca init --zone lab.zone --out /root/ca-lab
{ echo 'name = "lab.zone"'
  for n in 11 12 13; do printf '[[etcd]]\nnode_name = "node%s.lab.zone"\nprotocol = "https"\naddress = "127.0.0.%s"\npeer_port = 2380\nclient_port = 2379\n' $n $n; done
} >/root/lab.toml
zone-etcd bootstrap --ca /root/ca-lab --zone /root/lab.toml --out /srv/lab
"#;

#[test]
fn the_packaged_units_under_systemd_as_pid_1() {
    let marker = Marker(
        std::env::temp_dir().join(format!("zone-etcd-systemd-marker-{}", std::process::id())),
    );
    fs::write(&marker.0, "this machine's /tmp must survive systemd's boot").unwrap();
    let deb = sysroot::package();
    {
        let machine = Machine::boot(&deb);
        machine.sh(SETUP);
        the_member_unit(&machine);
        the_renewal_service(&machine);
        several_members_and_a_removed_one(&machine);
    }
    assert_eq!(
        fs::read_to_string(&marker.0).ok().as_deref(),
        Some("this machine's /tmp must survive systemd's boot"),
        "the marker in this machine's /tmp did not survive"
    );
}

/// A file in this machine's /tmp, removed when the test ends, pass or fail.
struct Marker(std::path::PathBuf);

impl Drop for Marker {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// zone-etcd.service over the bundle in /etc/zone-etcd: ready means etcd serves; its
/// MainPID is etcd; its files are private.
fn the_member_unit(machine: &Machine) {
    machine
        .sh("systemctl enable zone-etcd.service && systemctl enable --now zone-etcd-rotate.timer");
    machine.sh("systemctl start zone-etcd.service");
    assert_eq!(
        property(machine, "zone-etcd.service", "ActiveState"),
        "active"
    );
    let pid = assert_main_pid_is_etcd(machine, "zone-etcd.service");
    // Ready means serving: status asks the member over mutual TLS at once.
    let status = machine.sh("zone-etcd status --config /etc/zone-etcd/node.toml");
    assert!(
        status.contains("quorum: yes (1 of 1 voters healthy"),
        "{status}"
    );
    // UMask=0077: the process's mask, and a file launch wrote (0644 without the mask).
    let umask = machine.sh(&format!("grep Umask /proc/{pid}/status"));
    assert!(umask.contains("0077"), "etcd runs with {umask}");
    let mode = machine.sh("stat -c %a /var/lib/zone-etcd/peer-url");
    assert_eq!(mode.trim(), "600", "state/peer-url is {mode}");
    let timer = property(machine, "zone-etcd-rotate.timer", "ActiveState");
    assert_eq!(timer, "active", "the renewal timer is not active");
    // The keeper moves a member to the zone's etcd release (upgrade-etcd) by stopping
    // etcd with SIGTERM, which etcd ends by dying of that signal: the unit starts it again
    // (RestartForceExitStatus=SIGTERM; Restart=on-failure alone counts it clean).
    machine.sh(&format!("kill -TERM {pid}"));
    machine.sh(&format!(
        "for _ in $(seq 1 300); do p=$(systemctl show -P MainPID zone-etcd.service); \
         [ \"$(systemctl show -P ActiveState zone-etcd.service)\" = active ] && [ \"$p\" != 0 ] && [ \"$p\" != {pid} ] && exit 0; sleep 0.1; done; \
         systemctl status zone-etcd.service; exit 1"
    ));
    assert_eq!(property(machine, "zone-etcd.service", "NRestarts"), "1");
    assert_main_pid_is_etcd(machine, "zone-etcd.service");
}

/// The renewal timer's service: nothing due, then due (the node's CA was renewed, so the
/// leaves are no longer issued by it): renewed while etcd serves, with the same PID.
fn the_renewal_service(machine: &Machine) {
    let pid = property(machine, "zone-etcd.service", "MainPID");
    let server = "/var/lib/zone-etcd/tls/current/server.crt";
    // One run of the renewal service, as its timer starts it: the server leaf after it.
    let renew = || {
        machine.sh("systemctl start zone-etcd-rotate.service");
        assert_eq!(
            property(machine, "zone-etcd-rotate.service", "Result"),
            "success"
        );
        machine.sh(&format!("sha256sum {server}"))
    };
    let before = machine.sh(&format!("sha256sum {server}"));
    assert_eq!(renew(), before, "renewed although nothing was due");
    // A new node CA for node21 (as `activate` gives a node again): the leaves are due.
    machine.sh(
        "zone-etcd activate --ca /root/ca-one --zone /root/one.toml --node node21.one.zone --out /root/again \
         && cp /root/again/pki/node.crt /root/again/pki/node.key /etc/zone-etcd/pki/",
    );
    assert_ne!(renew(), before, "the due leaves were not renewed");
    let journal = machine.sh("journalctl -u zone-etcd-rotate.service --no-pager -o cat");
    assert!(
        journal.contains("not issued by this node's CA"),
        "{journal}"
    );
    assert_eq!(
        property(machine, "zone-etcd.service", "MainPID"),
        pid,
        "etcd was restarted"
    );
    let status = machine.sh("zone-etcd status --config /etc/zone-etcd/node.toml");
    assert!(
        status.contains("quorum: yes (1 of 1 voters healthy"),
        "{status}"
    );
}

/// Three members of lab.zone as zone-etcd@ instances: one alone stays activating while
/// it waits for the others (the zone's first start: not ready); with the others all three
/// are active. Then node13 is removed: its launch refuses with 78 and systemd leaves it
/// failed.
fn several_members_and_a_removed_one(machine: &Machine) {
    let units: Vec<String> = ["11", "12", "13"]
        .iter()
        .map(|n| instance(machine, &format!("/srv/lab/node{n}.lab.zone")))
        .collect();
    machine.sh(&format!("systemctl start --no-block '{}'", units[0]));
    let deadline = Instant::now() + Duration::from_secs(30);
    // Alone, its launch waits for the zone's first start, answering on the peer port.
    while !machine.sh("ss -Hltn").contains("127.0.0.11:2380") {
        assert!(Instant::now() < deadline, "node11's launch never listened");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        property(machine, &units[0], "ActiveState"),
        "activating",
        "a member without quorum must not be reported ready"
    );
    machine.sh(&format!("systemctl start '{}' '{}'", units[1], units[2]));
    let deadline = Instant::now() + Duration::from_secs(30);
    while property(machine, &units[0], "ActiveState") != "active" {
        assert!(Instant::now() < deadline, "node11 never became active");
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut pids = Vec::new();
    for unit in &units {
        assert_eq!(property(machine, unit, "ActiveState"), "active", "{unit}");
        pids.push(assert_main_pid_is_etcd(machine, unit));
    }
    pids.sort();
    pids.dedup();
    assert_eq!(pids.len(), 3, "three etcd processes side by side");
    let status = machine.sh("zone-etcd status --config /srv/lab/node11.lab.zone/node.toml");
    assert!(
        status.contains("quorum: yes (3 of 3 voters healthy"),
        "{status}"
    );

    // Removed from the cluster: etcd stops, launch then refuses for good.
    machine.sh("zone-etcd leave --config /srv/lab/node11.lab.zone/node.toml --node node13.lab.zone --force");
    let removed = &units[2];
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = property(machine, removed, "ExecMainStatus");
        let state = property(machine, removed, "ActiveState");
        if status == "78" && state == "failed" {
            break;
        }
        if state == "inactive" && status == "0" {
            // etcd ended cleanly on its removal: the next start is the refused launch.
            machine.try_sh(&format!("systemctl start '{removed}'"));
        }
        assert!(
            Instant::now() < deadline,
            "{removed} did not fail with 78: {state} {status}\n{}",
            machine.sh(&format!(
                "journalctl -u '{removed}' --no-pager -o cat | tail -20"
            ))
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let restarts = property(machine, removed, "NRestarts");
    // RestartSec=5s: a restart would have come twice over by now.
    std::thread::sleep(Duration::from_secs(12));
    assert_eq!(property(machine, removed, "ActiveState"), "failed");
    assert_eq!(
        property(machine, removed, "NRestarts"),
        restarts,
        "{removed} was restarted after exit 78"
    );
    let journal = machine.sh(&format!("journalctl -u '{removed}' --no-pager -o cat"));
    assert!(
        journal.contains("was removed from the cluster"),
        "{journal}"
    );
    for unit in &units[..2] {
        assert_eq!(property(machine, unit, "ActiveState"), "active", "{unit}");
    }
}
