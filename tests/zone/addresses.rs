//! Addresses in every form a zone file allows: IPv6 (real, on ::1), a DNS name (empty
//! address), and a node that is not a member at all.

use crate::common;

use std::fs;

use common::{activate_args, run, run_ok, TestZone};
use zone_pki::{CertInfo, Host};
use zone_testkit::addresses;

fn dry_run(zone: &TestZone, index: usize) -> Vec<String> {
    run_ok(&[
        "launch",
        "--config",
        zone.config(index).to_str().unwrap(),
        "--dry-run",
    ])
    .lines()
    .map(str::to_string)
    .collect()
}

fn flag<'a>(argv: &'a [String], name: &str) -> &'a str {
    let prefix = format!("--{name}=");
    argv.iter()
        .find_map(|a| a.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no --{name} in {argv:?}"))
}

#[test]
fn ipv6_member_gets_brackets_in_every_url_and_an_ip_san() {
    let text = "name = \"v6.zone\"\n[[etcd]]\nnode_name = \"node1.v6.zone\"\naddress = \"::1\"\npeer_port = 23800\nclient_port = 23790\n";
    let zone = TestZone::from_zone_file(
        "v6.zone",
        text,
        vec![("node1.v6.zone".into(), "::1".into())],
        23800,
        23790,
    );
    let argv = dry_run(&zone, 0);
    assert!(
        argv[0].ends_with("etcd"),
        "argv[0] is the etcd binary: {argv:?}"
    );
    for (name, url) in [
        ("listen-client-urls", "https://[::1]:23790"),
        ("advertise-client-urls", "https://[::1]:23790"),
        ("listen-peer-urls", "https://[::1]:23800"),
        ("initial-advertise-peer-urls", "https://[::1]:23800"),
        ("initial-cluster", "node1.v6.zone=https://[::1]:23800"),
    ] {
        assert_eq!(flag(&argv, name), url, "--{name}");
    }
    // Mutual TLS on both ports; only the zone's peer name on the peer port.
    assert_eq!(flag(&argv, "client-cert-auth"), "true");
    assert_eq!(flag(&argv, "peer-client-cert-auth"), "true");
    assert_eq!(
        flag(&argv, "peer-cert-allowed-hostname"),
        "etcd-peer.v6.zone"
    );
    assert!(flag(&argv, "cert-file").ends_with("state/tls/current/server.crt"));
    assert!(flag(&argv, "peer-key-file").ends_with("state/tls/current/peer.key"));
    // And it really runs on IPv6, with ::1 as an IP SAN of the server certificate.
    let mut running = zone.launch_all();
    zone.wait_healthy(&mut running);
    let server =
        CertInfo::parse_pem(&fs::read_to_string(zone.tls(0, "server.crt")).unwrap()).unwrap();
    assert!(
        server.sans.contains(&Host::Ip("::1".parse().unwrap())),
        "{:?}",
        server.sans
    );
    let (ok, _, err) = zone.etcdctl(0, &zone.client_url(0), &["put", "six", "yes"]);
    assert!(ok, "{err}");
}

#[test]
fn an_empty_address_means_the_node_name() {
    let text = "name = \"dns.zone\"\n[[etcd]]\nnode_name = \"node1.dns.zone\"\naddress = \"\"\n[[etcd]]\nnode_name = \"node2.dns.zone\"\n";
    let members = vec![
        ("node1.dns.zone".into(), String::new()),
        ("node2.dns.zone".into(), String::new()),
    ];
    let zone = TestZone::from_zone_file("dns.zone", text, members, 2380, 2379);
    let argv = dry_run(&zone, 1);
    assert_eq!(
        flag(&argv, "advertise-client-urls"),
        "https://node2.dns.zone:2379"
    );
    assert_eq!(
        flag(&argv, "initial-advertise-peer-urls"),
        "https://node2.dns.zone:2380"
    );
    assert_eq!(
        flag(&argv, "initial-cluster"),
        "node1.dns.zone=https://node1.dns.zone:2380,node2.dns.zone=https://node2.dns.zone:2380"
    );
    // etcd binds IPs only: a member known by name listens on every IPv4 address.
    assert_eq!(flag(&argv, "listen-peer-urls"), "https://0.0.0.0:2380");
    // The node CA is constrained to the name (a DNS subtree), and dry-run wrote nothing.
    let node_ca =
        CertInfo::parse_pem(&fs::read_to_string(zone.node_dir(1).join("pki/node.crt")).unwrap())
            .unwrap();
    assert!(
        node_ca.permitted.contains(&"node2.dns.zone".to_string()),
        "{:?}",
        node_ca.permitted
    );
    assert!(
        !zone.node_dir(1).join("state").exists(),
        "dry-run must not write"
    );
    // The same token on every node.
    assert_eq!(
        flag(&dry_run(&zone, 0), "initial-cluster-token"),
        flag(&argv, "initial-cluster-token")
    );
}

#[test]
fn a_node_that_is_not_a_member_says_so_and_exits_zero() {
    let zone = TestZone::bootstrap("clients.zone", addresses::ADDRESSES.subnet(), 1);
    let out = zone.path("client1");
    run_ok(&activate_args(
        zone.path("ca").to_str().unwrap(),
        zone.path("zone.toml").to_str().unwrap(),
        "client1.clients.zone",
        out.to_str().unwrap(),
    ));
    let (ok, stdout, stderr) = run(&[
        "launch",
        "--config",
        out.join("node.toml").to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stdout.contains("client1.clients.zone is not an etcd member of zone clients.zone"),
        "{stdout}"
    );
    assert!(!out.join("state").exists());
    // The bundle has the member list, so the node can still be a client, and no root key.
    let config = fs::read_to_string(out.join("node.toml")).unwrap();
    assert!(config.contains("node1.clients.zone"));
    assert!(!out.join("pki/ca.key").exists());
}
