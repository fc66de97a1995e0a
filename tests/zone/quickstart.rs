//! The README's quick start, followed word for word on three machines: each a throwaway
//! machine over this one with Debian's systemd as its PID 1 (tests/zone/common/sysroot.rs), in
//! its own network namespace linked to a switch at `addresses::QUICKSTART` .1-3
//! (tests/zone/common/netns.rs), with the built .deb. The owner's block runs on node1 (the package
//! is installed there too); each member's block runs on its machine, with its own bundle copied
//! over (node1's name changed for each, as the README says); then the README's checks pass on a
//! member that need not be the backup writer: every member healthy, and the backups on (the
//! file:// target is one directory of this machine mounted in each, as a share would be).
//! Then least privilege by default, as the README shows it: the owner's identity is root;
//! nas, a fourth machine that is not a member, gets its identity from a member and writes
//! under its own prefix, and is refused everything else (read, delete, snapshot, users).
//!
//! Everything it makes goes with it, pass or fail: the machines are killed by their PIDs
//! (their namespaces, links and mounts with them) and the switch namespace is deleted.

use crate::common;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::netns::Net;
use common::sysroot::{self, Machine};
use zone_testkit::addresses;

/// The README's block after `<!-- quickstart: NAME -->`.
fn block(readme: &str, name: &str) -> String {
    let marker = format!("<!-- quickstart: {name} -->\n```sh\n");
    let start = readme
        .find(&marker)
        .unwrap_or_else(|| panic!("the README has no quick start block {name:?}"))
        + marker.len();
    let end = readme[start..].find("```").expect("the block ends") + start;
    let block = readme[start..end].to_string();
    assert!(
        block.lines().count() >= 2,
        "the quick start block {name:?} is empty"
    );
    block
}

fn copy(from: &Path, to: &Path) {
    let out = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .output()
        .expect("cp runs");
    assert!(
        out.status.success(),
        "cp -a {} {}: {}",
        from.display(),
        to.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `script` in /root/quickstart of `machine` (bash, stopping at the first failure).
fn run(machine: &Machine, script: &str) -> String {
    machine.sh(&format!(
        "set -euo pipefail\nmkdir -p /root/quickstart\ncd /root/quickstart\n{script}"
    ))
}

#[test]
fn the_readme_quick_start_on_three_machines_gives_a_healthy_zone_with_backups() {
    let readme = fs::read_to_string(common::repo().join("README.md")).unwrap();
    let (owner, member, check, owner_identity, node_block) = (
        block(&readme, "owner"),
        block(&readme, "member"),
        block(&readme, "check"),
        block(&readme, "owner-identity"),
        block(&readme, "node"),
    );
    let started = Instant::now();
    let took = |what: &str| {
        eprintln!(
            "quickstart: {what} at {:.1}s",
            started.elapsed().as_secs_f64()
        )
    };
    let deb = sysroot::package();
    took("the package found");
    let deb_name = deb.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        member.contains(&format!("dpkg -i {deb_name}")),
        "the README's quick start installs another package than {deb_name}:\n{member}"
    );

    // The file:// target is one share every member mounts at /var/backups/zone-etcd, as
    // the README asks (a directory of this machine, bound into each).
    let share = tempfile::Builder::new()
        .prefix("zone-etcd-quickstart-share-")
        .tempdir_in("/var/tmp")
        .unwrap();
    // node1-3, the members, and nas, a node that is not one (fourth).
    let machines: Vec<Machine> = (0..4)
        .map(|_| Machine::boot_sharing(&deb, Some((share.path(), "/var/backups/zone-etcd"))))
        .collect();
    let mut net = Net::new("qs");
    for (i, machine) in machines.iter().enumerate() {
        let host = u8::try_from(i + 1).expect("a machine's number");
        net.attach(i + 1, machine.pid(), &addresses::QUICKSTART.ip(host));
    }

    took("four machines booted");
    // The owner's block, on node1.
    run(&machines[0], &owner);
    took("the owner's block run");
    let root =
        |m: &Machine| Path::new(&format!("/proc/{}/root/root/quickstart", m.pid())).to_path_buf();
    let bundles = root(&machines[0]).join("bundles");

    // Each member's block, on its machine, with its bundle and the package beside it.
    for (i, machine) in machines[..3].iter().enumerate() {
        let node = format!("node{}.example.zone", i + 1);
        let here = root(machine);
        fs::create_dir_all(&here).unwrap();
        copy(&bundles.join(&node), &here.join(&node));
        copy(&deb, &here.join(&deb_name));
        run(machine, &member.replace("node1.example.zone", &node));
    }
    took("the members' blocks run");

    // The README's checks, on node2, until they pass: the members wait for each other at
    // the zone's first start, and the backup writer ships its first full snapshot.
    let deadline = Instant::now() + Duration::from_secs(180);
    let commands: Vec<&str> = check
        .lines()
        .map(|l| l.split('#').next().unwrap().trim())
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(commands.len(), 2, "the README's checks: {check}");
    for command in commands {
        loop {
            let out = machines[1].try_sh(&format!("cd /root/quickstart && {command}"));
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            // `status` passes once every member shows and etcd's auth is on (the leader's
            // keeper turns it on once every member's client port takes identities only).
            let is_status = command.contains(" status ") && !command.contains("backup");
            let complete = !is_status || text.contains(", enforced;");
            if out.status.success() && complete {
                if is_status {
                    for n in 1..=3 {
                        assert!(
                            text.contains(&format!("node{n}.example.zone")),
                            "status does not show node{n}:\n{text}"
                        );
                    }
                }
                took(&format!("`{command}` passed"));
                break;
            }
            if Instant::now() >= deadline {
                // Every machine's journal: the active backup writer may be any of them.
                let journals: String = machines
                    .iter()
                    .enumerate()
                    .map(|(i, m)| {
                        let out = m
                            .try_sh("journalctl -u zone-etcd -u zone-etcd-backup --no-pager -n 40");
                        format!(
                            "node{}'s journal:\n{}\n",
                            i + 1,
                            String::from_utf8_lossy(&out.stdout)
                        )
                    })
                    .collect();
                panic!("`{command}` did not pass within 180 s:\n{text}\n{journals}");
            }
            std::thread::sleep(Duration::from_secs(2));
        }
    }
    // The backups are on for real: objects on the share, seen from every member.
    for m in &machines[..3] {
        let found = m.sh("find /var/backups/zone-etcd/chain -type f | wc -l");
        assert!(
            found.trim().parse::<usize>().unwrap_or(0) > 0,
            "no backup link on the share, seen from a member: {found}"
        );
    }

    // Least privilege by default: the owner's identity is root, on the owner's machine;
    // nas, not a member, gets its own identity from a member and has its prefix only.
    let said = run(&machines[0], &owner_identity);
    assert!(
        (1..=3).all(|n| said.contains(&format!("node{n}.example.zone"))),
        "the owner's member list:\n{said}"
    );
    let nas = root(&machines[3]);
    fs::create_dir_all(&nas).unwrap();
    copy(
        &root(&machines[0]).join("nas.example.zone"),
        &nas.join("nas.example.zone"),
    );
    copy(&deb, &nas.join(&deb_name));
    let said = run(&machines[3], &node_block);
    assert!(
        said.contains("OK"),
        "nas's put under its own prefix:\n{said}"
    );
    // Each refused, as the tenant who wants more than his grant would try.
    let node1 = addresses::QUICKSTART.ip(1);
    let copy_the_database =
        format!("ETCDCTL_ENDPOINTS=https://{node1}:2379 $E snapshot save /root/stolen.db");
    let env =
        "eval \"$(zone-etcd env --config /etc/zone-etcd/node.toml)\"\nE=/usr/lib/zone-etcd/etcdctl";
    for (what, command) in [
        ("read outside its prefix", "$E get hello"),
        ("read the keyspace", "$E get '' --prefix --keys-only"),
        ("delete every key", "$E del '' --prefix"),
        (
            "copy the database",
            // etcdctl asks one member for a snapshot (the env and a flag may not both say it).
            copy_the_database.as_str(),
        ),
        (
            "read another node's prefix",
            "$E get nodes/node1.example.zone/ --prefix",
        ),
        ("make itself a user", "$E user add eve:pw"),
    ] {
        let out = machines[3].try_sh(&format!("{env}\n{command}"));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("permission denied"),
            "nas could {what} (`{command}`): {}{err}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    assert!(
        !Path::new(&format!("/proc/{}/root/root/stolen.db", machines[3].pid())).exists(),
        "nas saved a snapshot"
    );
    // The owner reads what nas wrote: root sees every prefix.
    let said = run(
        &machines[0],
        &format!("/usr/lib/zone-etcd/etcdctl --endpoints=https://{node1}:2379 --cacert admin/ca.crt --cert admin/client.crt --key admin/client.key get nodes/nas.example.zone/hello --print-value-only"),
    );
    assert_eq!(said.trim(), "world", "the owner reads nas's key");
    drop(net);
}
