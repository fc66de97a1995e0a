//! A zone over several machines, each a network namespace of its own (see
//! [`common::netns`]): members named by DNS only (the seed's empty `address`), resolved by
//! each machine's hosts file, on 198.18.7.1-3; a partition of one member during writes
//! and its catch-up after healing; a non-member client machine writing through `env`.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::netns::{Machine, Net};
use common::{run_ok, Running, TestZone};

const ZONE: &str = "spread.zone";

fn member_names() -> Vec<(String, String)> {
    (1..=3)
        .map(|i| (format!("node{i}.{ZONE}"), format!("198.18.7.{i}")))
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
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn url(i: usize) -> String {
    format!("https://node{}.{ZONE}:2379", i + 1)
}

#[test]
fn a_dns_named_zone_over_three_machines_survives_a_partition_and_serves_a_client_machine() {
    let names = member_names();
    let mut hosts = names.clone();
    hosts.push((format!("node4.{ZONE}"), "198.18.7.4".to_string()));
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
    let deadline = Instant::now() + Duration::from_secs(60);
    while !etcdctl(&zone, &machines[0], 0, &all, &["endpoint", "health"]).0 {
        for member in running.iter_mut() {
            if let Ok(Some(status)) = member.child.try_wait() {
                panic!("member exited ({status}):\n{}", member.log());
            }
        }
        assert!(
            Instant::now() < deadline,
            "zone not healthy:\n{}",
            running[0].log()
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    // node3 is cut off; writes go on through node1 and node2.
    net.partition(&machines[2]);
    let quorum = format!("{},{}", url(0), url(1));
    for i in 0..20 {
        let (ok, _, err) = etcdctl(
            &zone,
            &machines[0],
            0,
            &quorum,
            &["put", &format!("p/{i:02}"), "during"],
        );
        assert!(ok, "write {i} during the partition: {err}");
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
            "set -e; eval \"$(zone-etcd env --config '{}')\"; etcdctl put from-node4 hello >/dev/null; etcdctl get from-node4 --print-value-only",
            client_dir.join("node.toml").display()
        ))
        .env(
            "PATH",
            format!("{}:{}:/usr/bin:/bin", exe_dir.display(), common::repo().join("bin").display()),
        );
    let out = Net::inside(&machines[3], &script).output().unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "hello",
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let (ok, out, err) = etcdctl(
        &zone,
        &machines[2],
        2,
        &url(2),
        &["get", "from-node4", "--print-value-only"],
    );
    assert!(ok && out.trim() == "hello", "{err}");

    for member in running.drain(..) {
        member.stop();
    }
    drop(net);
}
