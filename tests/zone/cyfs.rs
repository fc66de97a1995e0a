//! Members reached only through the zone gateway's tunnels (issue 26), on three
//! network-namespace machines on `addresses::CYFS`: a rented server (`https`, .1) and two
//! homes (`cyfs`, .2-3). iptables lets into each home only the tunnel port, and into
//! the server its etcd ports and the tunnel port; no machine can resolve another's name,
//! as a server cannot a home behind carrier-grade NAT.
//!
//! The tunnels stand in for cyfs-gateway and are built from `zone-etcd gateway --format
//! json` alone: each machine runs an SSH server on the tunnel port whose only admitted
//! keys are the devices the plan admits and whose only reachable endpoints are those it
//! serves (`PermitOpen`, the RTCP stack's hook), and one SSH client per other machine
//! carrying the plan's loopback listeners (`-L`, the plan's tcp stacks). Every process is
//! killed by its PID, and the namespaces go with the test.

use crate::common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::netns::{Machine, Net};
use common::{run, snapshot, wait_for, zone_etcd, Running, TestZone};
use serde_json::Value;
use zone_testkit::addresses;

const ZONE: &str = "cyfs.zone";
const TUNNEL_PORT: u16 = 2980;
/// (node, machine's host in `addresses::CYFS`, protocol, peer port, client port).
const NODES: [(&str, u8, &str, u16, u16); 3] = [
    ("server.cyfs.zone", 1, "https", 2380, 2379),
    ("home1.cyfs.zone", 2, "cyfs", 2480, 2479),
    ("home2.cyfs.zone", 3, "cyfs", 2580, 2579),
];

fn zone_file() -> String {
    let mut text = format!("name = \"{ZONE}\"\n");
    for (node, host, protocol, peer, client) in NODES {
        let address = if protocol == "https" {
            addresses::CYFS.ip(host)
        } else {
            String::new()
        };
        text += &format!(
            "\n[[etcd]]\nnode_name = \"{node}\"\nprotocol = \"{protocol}\"\naddress = \"{address}\"\npeer_port = {peer}\nclient_port = {client}\n"
        );
    }
    text
}

/// Every member's client endpoint as the server's machine reaches it: the server at its
/// address, each home at its loopback port (its gateway's listener).
fn endpoint(index: usize) -> String {
    let (_, host, protocol, _, client) = NODES[index];
    let host = if protocol == "https" {
        addresses::CYFS.ip(host)
    } else {
        "127.0.0.1".to_string()
    };
    format!("https://{host}:{client}")
}

fn all_endpoints() -> String {
    (0..NODES.len()).map(endpoint).collect::<Vec<_>>().join(",")
}

/// A command's (success, stdout, stderr) inside `machine`.
fn inside(machine: &Machine, cmd: &Command) -> (bool, String, String) {
    let out = Net::inside(machine, cmd)
        .output()
        .expect("the command runs");
    common::outcome(out)
}

fn etcdctl(
    zone: &TestZone,
    machine: &Machine,
    endpoints: &str,
    args: &[&str],
) -> (bool, String, String) {
    let mut cmd = zone.etcdctl_command(0, endpoints);
    cmd.arg("--command-timeout=5s").args(args);
    inside(machine, &cmd)
}

/// Whether something listens on TCP `port` inside `machine`.
fn listening(machine: &Machine, port: u16) -> bool {
    let mut ss = Command::new("ss");
    ss.args(["-Hltn", &format!("sport = :{port}")]);
    let (ok, out, _) = inside(machine, &ss);
    ok && !out.trim().is_empty()
}

/// The tunnels of one machine, from its node's gateway plan.
struct Gateway {
    plan: Value,
    key: PathBuf,
}

/// The SSH servers and clients standing in for the zone's gateways.
struct Tunnels {
    dir: PathBuf,
    gateways: Vec<Gateway>,
    /// (from, to) → the SSH client carrying `from`'s listeners for `to`'s ports. Killed
    /// before the servers (fields drop in order), so each server's session ends with it.
    clients: BTreeMap<(usize, usize), Running>,
    servers: Vec<Running>,
}

impl Tunnels {
    fn new(zone: &TestZone) -> Tunnels {
        let dir = zone.path("tunnels");
        fs::create_dir_all(&dir).unwrap();
        // sshd wants its privilege separation directory (a fresh machine may lack it).
        fs::create_dir_all("/run/sshd").unwrap();
        let gateways = (0..NODES.len())
            .map(|i| {
                let (ok, json, err) = run(&[
                    "gateway",
                    "--format",
                    "json",
                    "--config",
                    zone.config(i).to_str().unwrap(),
                ]);
                assert!(ok, "gateway --format json: {err}");
                let plan: Value = serde_json::from_str(&json).expect("the plan is JSON");
                let key = dir.join(format!("{}.device", NODES[i].0));
                keygen(&key);
                Gateway { plan, key }
            })
            .collect();
        Tunnels {
            dir,
            gateways,
            servers: Vec::new(),
            clients: BTreeMap::new(),
        }
    }

    /// The machine index of the device a plan names (`did:web:<node>`).
    fn index_of(device: &str) -> usize {
        let node = device.strip_prefix("did:web:").expect("a did:web device");
        NODES
            .iter()
            .position(|n| n.0 == node)
            .expect("a node of the zone")
    }

    /// One SSH server per machine on the tunnel port: admits the plan's devices, opens
    /// only the endpoints the plan serves.
    fn start_servers(&mut self, machines: &[Machine]) {
        for (i, gateway) in self.gateways.iter().enumerate() {
            let node = NODES[i].0;
            let admitted: Vec<String> = gateway.plan["admits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| {
                    let key = &self.gateways[Self::index_of(d.as_str().unwrap())].key;
                    fs::read_to_string(key.with_extension("device.pub")).unwrap()
                })
                .collect();
            assert!(!admitted.is_empty(), "{node}: the plan admits no device");
            let authorized = self.dir.join(format!("{node}.authorized"));
            fs::write(&authorized, admitted.concat()).unwrap();
            let serves: Vec<&str> = gateway.plan["serves"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap())
                .collect();
            let host_key = self.dir.join(format!("{node}.host"));
            keygen(&host_key);
            let config = self.dir.join(format!("{node}.sshd_config"));
            fs::write(
                &config,
                format!(
                    "Port {TUNNEL_PORT}\nListenAddress {}\nHostKey {}\nAuthorizedKeysFile {}\nPidFile none\nStrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nAllowTcpForwarding local\nPermitOpen {}\nX11Forwarding no\nAllowAgentForwarding no\nPermitTTY no\nClientAliveInterval 1\nClientAliveCountMax 3\n",
                    addresses::CYFS.ip(NODES[i].1),
                    host_key.display(),
                    authorized.display(),
                    if serves.is_empty() { "none".to_string() } else { serves.join(" ") },
                ),
            )
            .unwrap();
            let mut sshd = Command::new("/usr/sbin/sshd");
            sshd.args(["-D", "-e", "-f"]).arg(&config);
            self.servers.push(Running::spawn(
                Net::inside(&machines[i], &sshd),
                &self.dir.join(format!("{node}.sshd.log")),
            ));
        }
        for machine in machines {
            wait_for(Duration::from_secs(10), "the tunnel servers", || {
                listening(machine, TUNNEL_PORT)
            });
        }
    }

    /// Starts the SSH client carrying machine `from`'s listeners for node `to`.
    fn start_client(&mut self, machines: &[Machine], from: usize, to: usize) {
        let forwards: Vec<(String, String)> = self.gateways[from].plan["forwards"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["node"] == NODES[to].0)
            .map(|f| {
                (
                    f["bind"].as_str().unwrap().to_string(),
                    f["target"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert!(
            !forwards.is_empty(),
            "{} forwards nothing to {}",
            NODES[from].0,
            NODES[to].0
        );
        let mut ssh = Command::new("ssh");
        ssh.args(["-N", "-i"])
            .arg(&self.gateways[from].key)
            .args(["-p", &TUNNEL_PORT.to_string()])
            .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no"])
            .args([
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "ExitOnForwardFailure=yes",
            ])
            .args(["-o", "ServerAliveInterval=1", "-o", "ServerAliveCountMax=3"]);
        for (bind, target) in &forwards {
            ssh.arg("-L").arg(format!("{bind}:{target}"));
        }
        ssh.arg(format!("root@{}", addresses::CYFS.ip(NODES[to].1)));
        let log = self
            .dir
            .join(format!("{}-{}.ssh.log", NODES[from].0, NODES[to].0));
        self.clients.insert(
            (from, to),
            Running::spawn(Net::inside(&machines[from], &ssh), &log),
        );
        for (bind, _) in &forwards {
            let port: u16 = bind.rsplit(':').next().unwrap().parse().unwrap();
            wait_for(
                Duration::from_secs(10),
                &format!("the tunnel {bind}"),
                || listening(&machines[from], port),
            );
        }
    }

    /// Every tunnel each plan asks for.
    fn start_clients(&mut self, machines: &[Machine]) {
        for from in 0..NODES.len() {
            for (to, (node, ..)) in NODES.iter().enumerate() {
                let wanted = self.gateways[from].plan["forwards"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|f| f["node"] == *node);
                if wanted {
                    self.start_client(machines, from, to);
                }
            }
        }
    }
}

fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .output()
        .expect("ssh-keygen runs (scripts/test.sh installs openssh)");
    assert!(
        out.status.success(),
        "ssh-keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `zone-etcd ARGS --config <node i's node.toml>`.
fn command_for(zone: &TestZone, i: usize, args: &[&str]) -> Command {
    let mut cmd = zone_etcd();
    cmd.args(args).arg("--config").arg(zone.config(i));
    cmd
}

fn launch(zone: &TestZone, machines: &[Machine], i: usize) -> Running {
    Running::spawn(
        Net::inside(&machines[i], &command_for(zone, i, &["launch"])),
        &zone.path(&format!("{}.log", NODES[i].0)),
    )
}

/// Waits until every member answers healthy through the server's machine.
fn wait_healthy(zone: &TestZone, machines: &[Machine], running: &mut [Running]) {
    wait_for(Duration::from_secs(60), "every member healthy", || {
        for member in running.iter_mut() {
            if let Ok(Some(status)) = member.child.try_wait() {
                panic!("a member exited ({status}):\n{}", member.log());
            }
        }
        etcdctl(
            zone,
            &machines[0],
            &all_endpoints(),
            &["endpoint", "health"],
        )
        .0
    });
}

fn dry_run(zone: &TestZone, machine: &Machine, i: usize) -> Vec<String> {
    let (ok, out, err) = inside(machine, &command_for(zone, i, &["launch", "--dry-run"]));
    assert!(ok, "launch --dry-run of {}: {err}", NODES[i].0);
    out.lines().map(str::to_string).collect()
}

#[test]
fn two_cyfs_members_and_an_https_member_form_a_zone_through_tunnels_only() {
    let members: Vec<(String, String)> = NODES
        .iter()
        .map(|(n, host, p, _, _)| {
            (
                n.to_string(),
                if *p == "https" {
                    addresses::CYFS.ip(*host)
                } else {
                    "127.0.0.1".to_string()
                },
            )
        })
        .collect();
    let zone = TestZone::from_zone_file(ZONE, &zone_file(), members, 2380, 2379);
    let mut net = Net::new("cy");
    let machines: Vec<Machine> = NODES
        .iter()
        .enumerate()
        .map(|(i, (_, host, ..))| net.machine(i + 1, &addresses::CYFS.ip(*host), &[]))
        .collect();

    // Every node names the cyfs members by their loopback endpoints, and only there.
    let home1 = dry_run(&zone, &machines[1], 1);
    let cluster = format!(
        "--initial-cluster=server.cyfs.zone=https://{}:2380,home1.cyfs.zone=https://127.0.0.1:2480,home2.cyfs.zone=https://127.0.0.1:2580",
        addresses::CYFS.ip(1)
    );
    for expected in [
        cluster.as_str(),
        "--listen-peer-urls=https://127.0.0.1:2480",
        "--initial-advertise-peer-urls=https://127.0.0.1:2480",
        "--listen-client-urls=https://127.0.0.1:2479",
        "--advertise-client-urls=https://127.0.0.1:2479",
    ] {
        assert!(
            home1.iter().any(|l| l == expected),
            "{expected} not in:\n{home1:#?}"
        );
    }
    // A cyfs member listens on loopback only: a listen_address is refused.
    let config = zone.config(1);
    let original = fs::read_to_string(&config).unwrap();
    fs::write(&config, format!("listen_address = \"0.0.0.0\"\n{original}")).unwrap();
    let (ok, _, err) = inside(
        &machines[1],
        &command_for(&zone, 1, &["launch", "--dry-run"]),
    );
    fs::write(&config, original).unwrap();
    assert!(!ok, "a cyfs member took a listen_address");
    assert!(
        common::one_error_line(&err).contains(
            "listen_address: home1.cyfs.zone is a cyfs member: it listens only on 127.0.0.1"
        ),
        "{err}"
    );
    // The bundle (etcd 3.6) names the flag without `experimental-`.
    let skip = "--peer-skip-client-san-verification=true";
    assert!(
        !home1.iter().any(|l| l.contains("skip-client-san")),
        "{home1:#?}"
    );
    let server = dry_run(&zone, &machines[0], 0);
    assert!(server.iter().any(|l| l == skip), "{server:#?}");

    // No gateway yet: home1's launch refuses in one line and writes nothing.
    let before = snapshot(&zone.node_dir(1));
    let cmd = command_for(&zone, 1, &["launch"]);
    let mut refused = Running::spawn(Net::inside(&machines[1], &cmd), &zone.path("refused.log"));
    let mut code = None;
    wait_for(
        Duration::from_secs(20),
        "launch without a gateway to end",
        || {
            code = refused.child.try_wait().unwrap().map(|s| s.code());
            code.is_some()
        },
    );
    let err = refused.log();
    drop(refused);
    assert_eq!(code, Some(Some(1)), "{err}");
    let line = common::one_error_line(&err);
    assert!(
        line.contains(
            "etcd: nothing listens on 127.0.0.1:2580 (cyfs member home2.cyfs.zone's peer port)"
        ) && line
            .contains("(fix: start the zone gateway with the stacks `zone-etcd gateway --config"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(
        snapshot(&zone.node_dir(1)),
        before,
        "the refusal wrote something"
    );

    // Only the tunnel port reaches a home; the server also serves its etcd ports.
    net.only_tcp_ports(&machines[0], &[TUNNEL_PORT, 2380, 2379]);
    for home in &machines[1..] {
        net.only_tcp_ports(home, &[TUNNEL_PORT]);
    }
    let mut tunnels = Tunnels::new(&zone);
    tunnels.start_servers(&machines);
    tunnels.start_clients(&machines);

    let mut running: Vec<Running> = (0..NODES.len())
        .map(|i| launch(&zone, &machines, i))
        .collect();
    wait_healthy(&zone, &machines, &mut running);

    // Writes through every member, each read back through every other.
    for (i, (node, ..)) in NODES.iter().enumerate() {
        let (ok, _, err) = etcdctl(
            &zone,
            &machines[0],
            &endpoint(i),
            &["put", &format!("k/{i}"), node],
        );
        assert!(ok, "put through {node}: {err}");
    }
    for (i, (node, ..)) in NODES.iter().enumerate() {
        let (ok, out, err) = etcdctl(
            &zone,
            &machines[0],
            &endpoint(i),
            &["get", "k/", "--prefix", "--print-value-only"],
        );
        assert!(ok, "read through {node}: {err}");
        assert_eq!(
            out.lines().collect::<Vec<_>>(),
            NODES.map(|n| n.0),
            "through {node}"
        );
    }
    // And the homes' own machines reach the zone the same way.
    let (ok, _, err) = etcdctl(
        &zone,
        &machines[2],
        "https://127.0.0.1:2479",
        &["put", "k/from-home2", "x"],
    );
    assert!(ok, "home2 through its tunnel to home1: {err}");

    // No member turned a peer away: each home's connections reach the server from an
    // address no certificate names, each tunnelled one reaches a home from 127.0.0.1.
    // (etcd would still form the zone with the connections of one direction only.)
    for (i, member) in running.iter().enumerate() {
        let log = member.log();
        let rejected: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("rejected connection"))
            .collect();
        assert!(
            log.contains("etcd"),
            "{}: an empty log proves nothing",
            NODES[i].0
        );
        assert!(
            rejected.is_empty(),
            "{} turned peers away:\n{}",
            NODES[i].0,
            rejected.join("\n")
        );
    }

    // status, from the server, sees every member healthy.
    let status = |machine: &Machine, i: usize| {
        let (_, out, err) = inside(machine, &command_for(&zone, i, &["status", "--json"]));
        let json: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
        (json, err)
    };
    let (json, err) = status(&machines[0], 0);
    let rows = json["members"].as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 3, "{json} {err}");
    for row in &rows {
        assert_eq!(row["healthy"], true, "{row}");
    }
    let home_row = rows
        .iter()
        .find(|r| r["name"] == "home1.cyfs.zone")
        .unwrap();
    assert_eq!(
        home_row["peer_urls"],
        serde_json::json!(["https://127.0.0.1:2480"])
    );

    // A cyfs member's peer port, reached through the tunnel, refuses the leaves that are
    // not peer leaves; the server's peer certificate gets in (the path works).
    let curl = |stem: &str| {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--http1.1", "--max-time", "5", "--cacert"])
            .arg(zone.tls(0, "ca.crt"))
            .arg("--cert")
            .arg(zone.tls(0, &format!("{stem}.crt")))
            .arg("--key")
            .arg(zone.tls(0, &format!("{stem}.key")))
            .arg("https://127.0.0.1:2480/version");
        inside(&machines[0], &cmd)
    };
    let (ok, out, err) = curl("peer");
    assert!(
        ok && out.contains("etcdserver"),
        "peer certificate refused: {out} {err}"
    );
    // The client leaf names no address, so the source check alone refuses it; the
    // server leaf names 127.0.0.1 like a peer leaf, and only the peer name keeps it out.
    for stem in ["client", "server"] {
        let (ok, out, err) = curl(stem);
        assert!(!ok, "the peer port took the {stem} certificate: {out}");
        assert!(!err.is_empty(), "curl said nothing of the refusal");
    }

    // A member restarts.
    let home2 = running.remove(2);
    home2.stop();
    running.push(launch(&zone, &machines, 2));
    wait_healthy(&zone, &machines, &mut running);
    let (ok, _, err) = etcdctl(
        &zone,
        &machines[0],
        &endpoint(2),
        &["put", "k/after-restart", "y"],
    );
    assert!(ok, "write through the restarted home2: {err}");

    // The server's tunnel to home1 dies: home1's endpoint is gone from the server's
    // machine, the zone still takes writes; when the tunnel is back, home1 is healthy
    // and has the write it missed.
    tunnels
        .clients
        .remove(&(0, 1))
        .expect("the server's tunnel to home1");
    wait_for(Duration::from_secs(10), "home1's endpoint gone", || {
        !listening(&machines[0], 2479)
    });
    let (ok, _, _) = etcdctl(&zone, &machines[0], &endpoint(1), &["endpoint", "health"]);
    assert!(
        !ok,
        "home1 answered on the server's machine without its tunnel"
    );
    let quorum = format!("{},{}", endpoint(0), endpoint(2));
    wait_for(
        Duration::from_secs(20),
        "a write without the tunnel",
        || etcdctl(&zone, &machines[0], &quorum, &["put", "k/tunnel-down", "z"]).0,
    );
    tunnels.start_client(&machines, 0, 1);
    wait_healthy(&zone, &machines, &mut running);
    wait_for(Duration::from_secs(20), "home1 caught up", || {
        let (ok, out, _) = etcdctl(
            &zone,
            &machines[0],
            &endpoint(1),
            &[
                "get",
                "k/tunnel-down",
                "--consistency=s",
                "--print-value-only",
            ],
        );
        ok && out.trim() == "z"
    });
    let (json, err) = status(&machines[1], 1);
    let healthy = json["members"]
        .as_array()
        .map(|rows| rows.iter().filter(|r| r["healthy"] == true).count());
    assert_eq!(healthy, Some(3), "status from home1: {json} {err}");

    for member in running {
        member.stop();
    }
    drop(tunnels);
}

/// The zone file's and the seed JSON's `cyfs`, the refusal of two cyfs members on one
/// port (one line naming both, nothing written), and `gateway`'s output for the README's
/// zone against the expected configuration, through the command line.
#[test]
fn cyfs_in_zone_files_and_the_gateway_configuration_of_a_fixed_zone() {
    let dir = tempfile::tempdir().unwrap();
    let path = |rel: &str| dir.path().join(rel).to_str().unwrap().to_string();
    common::ca_init_previous_kind("example.zone", &path("ca"));

    // The seed's JSON document, with a cyfs member.
    let json = r#"{"name": "example.zone", "type": "zone", "extend": {"etcd": [
        {"node_name": "server.example.zone", "protocol": "https", "address": "203.0.113.7", "peer_port": 2380, "client_port": 2379},
        {"node_name": "home1.example.zone", "protocol": "cyfs", "address": "", "peer_port": 2480, "client_port": 2479}]}}"#;
    fs::write(path("zone.json"), json).unwrap();
    common::run_ok(&common::bootstrap_args(
        &path("ca"),
        &path("zone.json"),
        &path("json-nodes"),
    ));
    let config = path("json-nodes/server.example.zone/node.toml");
    let (ok, out, err) = run(&["gateway", "--format", "json", "--config", &config]);
    assert!(ok, "{err}");
    let plan: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(plan["forwards"][0]["bind"], "127.0.0.1:2480", "{plan}");

    // Two cyfs members on one port: one line naming both, nothing written.
    let clash = common::repo().join("tests/data/gateway/zone.toml");
    let text = fs::read_to_string(&clash)
        .unwrap()
        .replace("peer_port = 2580", "peer_port = 2480");
    fs::write(path("clash.toml"), text).unwrap();
    let (ok, _, err) = run(&common::bootstrap_args(
        &path("ca"),
        &path("clash.toml"),
        &path("clash-nodes"),
    ));
    assert!(
        !ok,
        "a zone with two cyfs members on port 2480 was bootstrapped"
    );
    let line = common::one_error_line(&err);
    assert!(
        line.contains("etcd #2 peer_port: port 2480 is the peer_port of cyfs member home1.example.zone (etcd #2) and the peer_port of home2.example.zone (etcd #3)"),
        "{err}"
    );
    assert!(
        !dir.path().join("clash-nodes").exists(),
        "the refusal wrote a bundle"
    );

    // The README's zone: each node's configuration is the expected one.
    let zone = common::repo().join("tests/data/gateway/zone.toml");
    common::run_ok(&common::bootstrap_args(
        &path("ca"),
        zone.to_str().unwrap(),
        &path("nodes"),
    ));
    for node in ["home1", "server"] {
        let config = path(&format!("nodes/{node}.example.zone/node.toml"));
        let (ok, out, err) = run(&["gateway", "--config", &config]);
        assert!(ok, "{err}");
        let expected =
            fs::read_to_string(common::repo().join(format!("tests/data/gateway/{node}.yaml")))
                .unwrap()
                .replace("/etc/zone-etcd/node.toml", &config);
        assert!(
            expected.contains("forward \"rtcp://"),
            "the expected file is empty"
        );
        assert_eq!(out, expected, "{node}");
    }
}
