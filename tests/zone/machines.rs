//! A zone over several machines, each a network namespace of its own (see
//! [`common::netns`]): members named by DNS only (the seed's empty `address`), resolved by
//! each machine's hosts file, on `addresses::MACHINES` .1-3; a partition of one member during
//! writes and its catch-up after healing; a non-member client machine writing through `env`.

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::netns::{Machine, Net};
use common::{run_ok, Running, TestZone};
use zone_testkit::addresses;

const ZONE: &str = "spread.zone";

fn member_names() -> Vec<(String, String)> {
    (1..=3)
        .map(|i| (format!("node{i}.{ZONE}"), addresses::MACHINES.ip(i)))
        .collect()
}

/// etcdctl inside `machine`, as member `index` (its client certificate), on `endpoints`.
fn etcdctl(
    zone: &TestZone,
    machine: &Machine,
    index: usize,
    endpoints: &str,
    args: &[&str],
) -> (bool, String, String) {
    let mut cmd = zone.etcdctl_command(index, endpoints);
    cmd.arg("--command-timeout=5s").args(args);
    let out = Net::inside(machine, &cmd).output().unwrap();
    common::outcome(out)
}

/// Waits until every endpoint of `endpoints` is healthy, asked from `machine`; panics
/// with a log when a member exits or after a minute.
fn wait_healthy(zone: &TestZone, machine: &Machine, endpoints: &str, running: &mut [Running]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !etcdctl(zone, machine, 0, endpoints, &["endpoint", "health"]).0 {
        for member in running.iter_mut() {
            if let Ok(Some(status)) = member.child.try_wait() {
                panic!("member exited ({status}):\n{}", member.log());
            }
        }
        if Instant::now() >= deadline {
            let logs: Vec<String> = running.iter().map(Running::log).collect();
            panic!("zone not healthy:\n{}", logs.join("\n----\n"));
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn url(i: usize) -> String {
    format!("https://node{}.{ZONE}:2379", i + 1)
}

#[test]
fn a_dns_named_zone_over_three_machines_survives_a_partition_and_serves_a_client_machine() {
    let names = member_names();
    let mut hosts = names.clone();
    hosts.push((format!("node4.{ZONE}"), addresses::MACHINES.ip(4)));
    // The zone file gives names only: every machine resolves them with its hosts file.
    let mut text = format!("name = \"{ZONE}\"\n");
    for (name, _) in &names {
        text += &format!("\n[[etcd]]\nnode_name = \"{name}\"\naddress = \"\"\n");
    }
    let zone = TestZone::from_zone_file(ZONE, &text, names.clone(), 2380, 2379);
    let mut net = Net::new("m1");
    let machines: Vec<Machine> = (0..4)
        .map(|i| net.machine(i + 1, &hosts[i].1, &hosts))
        .collect();

    let mut running: Vec<Running> = (0..3)
        .map(|i| {
            let mut launch = common::zone_etcd();
            launch.args(["launch", "--config", zone.config(i).to_str().unwrap()]);
            Running::spawn(
                Net::inside(&machines[i], &launch),
                &zone.path(&format!("node{}.log", i + 1)),
            )
        })
        .collect();
    let all = (0..3).map(url).collect::<Vec<_>>().join(",");
    wait_healthy(&zone, &machines[0], &all, &mut running);

    // node3 is cut off; writes go on through node1 and node2.
    net.partition(&machines[2]);
    let quorum = format!("{},{}", url(0), url(1));
    // If node3 led, the other two elect a new leader first (an election timeout): the
    // client retries, as an etcd client does.
    for i in 0..20 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (ok, _, err) = etcdctl(
                &zone,
                &machines[0],
                0,
                &quorum,
                &["put", &format!("p/{i:02}"), "during"],
            );
            if ok {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "write {i} during the partition: {err}"
            );
        }
    }
    let (ok, _, _) = etcdctl(&zone, &machines[2], 2, &url(2), &["get", "p/00"]);
    assert!(
        !ok,
        "a partitioned member must not serve a linearizable read"
    );
    net.heal(&machines[2]);
    // node3 catches up: its own (serializable) reads show every write.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (ok, out, _) = etcdctl(
            &zone,
            &machines[2],
            2,
            &url(2),
            &["get", "p/", "--prefix", "--keys-only", "--consistency=s"],
        );
        if ok && out.lines().filter(|l| !l.is_empty()).count() == 20 {
            break;
        }
        assert!(Instant::now() < deadline, "node3 did not catch up: {out}");
        std::thread::sleep(Duration::from_millis(300));
    }
    // ... and follows the leader again before the zone counts as healed: a member that
    // caught up over the leader's first messages can lose it again while the leader's
    // stream to it is still stuck on the connection the partition cut (cc25: node3 lost
    // its leader 2 s after catching up and sent pre-votes the others ignored, and the
    // client machine's put, balanced to node3, timed out on "no leader"). A serializable
    // read does not show that; a linearizable one does.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (ok, _, err) = etcdctl(&zone, &machines[2], 2, &url(2), &["get", "p/00"]);
        if ok {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node3 never followed a leader again: {err}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    // A client machine that is not a member: eval "$(zone-etcd env)", then etcdctl.
    let client_dir = zone.path("node4");
    run_ok(&common::activate_args(
        zone.path("ca").to_str().unwrap(),
        zone.path("zone.toml").to_str().unwrap(),
        &format!("node4.{ZONE}"),
        client_dir.to_str().unwrap(),
    ));
    let exe_dir = std::path::Path::new(env!("CARGO_BIN_EXE_zone-etcd"))
        .parent()
        .unwrap();
    let mut script = Command::new("bash");
    script
        .arg("-c")
        .arg(format!(
            "set -e; eval \"$(zone-etcd env --config '{}')\"; etcdctl put nodes/node4.{ZONE}/from-node4 hello >/dev/null; etcdctl get nodes/node4.{ZONE}/from-node4 --print-value-only",
            client_dir.join("node.toml").display()
        ))
        .env(
            "PATH",
            format!("{}:{}:/usr/bin:/bin", exe_dir.display(), common::repo().join("bin").display()),
        );
    let out = Net::inside(&machines[3], &script).output().unwrap();
    if !(out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "hello") {
        // Seen once in a full suite (cc20): the put timed out at node1 after 5 s. What the
        // members said of their leaders, should it come back.
        let (_, status, err) = etcdctl(
            &zone,
            &machines[0],
            0,
            &all,
            &["endpoint", "status", "-w", "table"],
        );
        let logs: Vec<String> = running
            .iter()
            .map(|r| {
                let log = r.log();
                let lines: Vec<&str> = log
                    .lines()
                    .filter(|l| l.contains("leader") || l.contains("term") || l.contains("slow"))
                    .collect();
                lines[lines.len().saturating_sub(15)..].join("\n")
            })
            .collect();
        panic!(
            "{}{}\nendpoint status: {status}{err}\nthe members' lines on leaders:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            logs.join("\n----\n")
        );
    }
    // node3, healed, serves it as a linearizable read: once it follows the leader again
    // (its first tries may time out while the CPU is saturated; each is one 5 s try).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (ok, out, err) = etcdctl(
            &zone,
            &machines[2],
            2,
            &url(2),
            &[
                "get",
                &format!("nodes/node4.{ZONE}/from-node4"),
                "--print-value-only",
            ],
        );
        if ok {
            assert_eq!(out.trim(), "hello", "{err}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node3 serves no linearizable read: {err}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    for member in running.drain(..) {
        member.stop();
    }
    drop(net);
}

#[test]
fn a_member_behind_a_home_router_listens_on_its_lan_address_and_serves_the_zone() {
    const NAT: &str = "home.zone";
    let names = vec![
        (format!("node1.{NAT}"), addresses::MACHINES_NAT.ip(1)),
        (format!("node2.{NAT}"), addresses::MACHINES_NAT.ip(2)),
        // The router's public address, as a home user with port forwards writes it.
        (format!("node3.{NAT}"), addresses::MACHINES_NAT.ip(254)),
    ];
    let pairs: Vec<(&str, &str)> = names
        .iter()
        .map(|(n, a)| (n.as_str(), a.as_str()))
        .collect();
    let zone = TestZone::from_zone_file(
        NAT,
        &common::zone_toml(NAT, &pairs),
        names.clone(),
        2380,
        2379,
    );
    let mut net = Net::new("m2");
    let m1 = net.machine(1, &addresses::MACHINES_NAT.ip(1), &names);
    let m2 = net.machine(2, &addresses::MACHINES_NAT.ip(2), &names);
    let (_router, home) = net.home(
        3,
        &addresses::MACHINES_NAT.ip(254),
        addresses::MACHINES_HOME.subnet(),
        &[2379, 2380],
        &names,
    );

    // Without listen_address etcd could not bind the public address: launch says so
    // before etcd starts. A listen_address the machine does not have is refused too.
    let config3 = zone.config(2);
    let original = std::fs::read_to_string(&config3).unwrap();
    let launch_in = |machine: &Machine, index: usize| {
        let mut launch = common::zone_etcd();
        launch.args(["launch", "--config", zone.config(index).to_str().unwrap()]);
        Net::inside(machine, &launch)
    };
    let (elsewhere, lan) = (
        addresses::MACHINES_HOME.ip(77),
        addresses::MACHINES_HOME.ip(2),
    );
    std::fs::write(
        &config3,
        format!("listen_address = \"{elsewhere}\"\n{original}"),
    )
    .unwrap();
    let before = common::snapshot(&zone.node_dir(2));
    let out = launch_in(&home, 2).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!(
            "listen_address: {elsewhere} is not an address of this machine"
        )) && err.contains(&lan),
        "{err}"
    );
    assert_eq!(common::snapshot(&zone.node_dir(2)), before);
    std::fs::write(&config3, format!("listen_address = \"{lan}\"\n{original}")).unwrap();

    let mut running = vec![
        Running::spawn(launch_in(&m1, 0), &zone.path("node1.log")),
        Running::spawn(launch_in(&m2, 1), &zone.path("node2.log")),
        Running::spawn(launch_in(&home, 2), &zone.path("node3.log")),
    ];
    let all = zone.endpoints();
    wait_healthy(&zone, &m1, &all, &mut running);

    // The member behind the router serves writes from outside, through the port forward,
    // and reads for its own machine's clients on loopback.
    let (ok, _, err) = etcdctl(
        &zone,
        &m1,
        0,
        &zone.client_url(2),
        &["put", "via-router", "yes"],
    );
    assert!(ok, "{err}");
    let (ok, out, err) = etcdctl(
        &zone,
        &home,
        2,
        "https://127.0.0.1:2379",
        &["get", "via-router", "--print-value-only"],
    );
    assert!(ok && out.trim() == "yes", "{err}");
    // It survives a restart.
    running.pop().unwrap().stop();
    running.push(Running::spawn(
        launch_in(&home, 2),
        &zone.path("node3.again.log"),
    ));
    wait_healthy(&zone, &m1, &all, &mut running);
    let (ok, _, err) = etcdctl(
        &zone,
        &home,
        2,
        "https://127.0.0.1:2379",
        &["put", "from-home", "after-restart"],
    );
    assert!(ok, "{err}");
    let (ok, out, err) = etcdctl(
        &zone,
        &m2,
        1,
        &zone.client_url(1),
        &["get", "from-home", "--print-value-only"],
    );
    assert!(ok && out.trim() == "after-restart", "{err}");
    let (ok, status, err) = {
        let mut cmd = common::zone_etcd();
        cmd.args([
            "status",
            "--json",
            "--config",
            zone.config(0).to_str().unwrap(),
        ]);
        let out = Net::inside(&m1, &cmd).output().unwrap();
        common::outcome(out)
    };
    assert!(ok, "{err}\n{status}");
    for member in running.drain(..) {
        member.stop();
    }
    drop(net);
}
