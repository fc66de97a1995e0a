//! Least privilege in a running zone (issue 34), on a real 3-member zone of the bundled
//! etcd on 127.0.170.1-3 with `[access] enforce = true`, and a node that is not a member
//! (nas): identities no node CA can forge (each refused at the TLS handshake by every
//! member), the members' keepers turning the owner's policy into etcd's users and roles
//! with auth on, the owner's administrative identity, and each service identity getting
//! its own grants only.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{
    bundled, https_request, run, run_ok, wait_for, zone_toml, Identity, Running, TestZone,
};
use zone_pki::{Authority, LeafKind, NodeIdentity};

const ZONE: &str = "lp.zone";
const NAS: &str = "nas.lp.zone";

/// The policy: photos on nas and node1, music on node2.
const ACCESS: &str = r#"
[access]
enforce = true
nodes = ["nas.lp.zone"]

[[access.service]]
name = "photos"
nodes = ["nas.lp.zone", "node1.lp.zone"]
read_write = ["apps/photos/"]
read = ["apps/shared/"]

[[access.service]]
name = "music"
nodes = ["node2.lp.zone"]
read_write = ["apps/music/"]
"#;

/// The zone on disk and running, with nas activated beside it.
struct Zone {
    zone: TestZone,
    running: Vec<Running>,
}

impl Zone {
    fn start(access: &str) -> Zone {
        let members = common::loopback_members(ZONE, 170, 3);
        let pairs: Vec<(&str, &str)> = members
            .iter()
            .map(|(n, a)| (n.as_str(), a.as_str()))
            .collect();
        let text = zone_toml(ZONE, &pairs) + access;
        let zone = TestZone::from_zone_file(ZONE, &text, members, 2380, 2379);
        run_ok(&common::activate_args(
            zone.path("ca").to_str().unwrap(),
            zone.path("zone.toml").to_str().unwrap(),
            NAS,
            zone.path("nodes").join(NAS).to_str().unwrap(),
        ));
        let mut running = zone.launch_all();
        zone.wait_healthy(&mut running);
        Zone { zone, running }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.zone.path(rel)
    }

    /// The zone roots: what verifies every member's server certificate.
    fn ca(&self) -> PathBuf {
        self.zone.tls(0, "ca.crt")
    }

    fn addrs(&self) -> Vec<String> {
        (0..3).map(|i| self.zone.client_addr(i)).collect()
    }

    /// The owner's administrative identity (`ca admin`), made once.
    fn admin(&self) -> Identity {
        let dir = self.path("admin");
        if !dir.exists() {
            run_ok(&[
                "ca",
                "admin",
                "--ca",
                self.path("ca").to_str().unwrap(),
                "--out",
                dir.to_str().unwrap(),
            ]);
        }
        Identity {
            chain: dir.join("client.crt"),
            key: dir.join("client.key"),
        }
    }
}

/// etcdctl as `who` through every member: (success, stdout + stderr).
fn etcdctl(zone: &Zone, who: &Identity, args: &[&str]) -> (bool, String) {
    etcdctl_at(zone, &zone.addrs(), who, args)
}

/// etcdctl as `who` through the members at `addrs`.
fn etcdctl_at(zone: &Zone, addrs: &[String], who: &Identity, args: &[&str]) -> (bool, String) {
    let endpoints: Vec<String> = addrs.iter().map(|a| format!("https://{a}")).collect();
    let out = Command::new(bundled("etcdctl"))
        .arg(format!("--endpoints={}", endpoints.join(",")))
        .arg(format!("--cacert={}", zone.ca().display()))
        .arg(format!("--cert={}", who.chain.display()))
        .arg(format!("--key={}", who.key.display()))
        .arg("--dial-timeout=2s")
        .arg("--command-timeout=5s")
        .args(args)
        .output()
        .expect("etcdctl runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success() && !text.contains("Error"), text)
}

/// A client certificate with CN `cn` minted by the node CA in `bundle` (as a node that
/// wants to be someone else would), its chain up to the node CA, in `dir`.
fn forge(bundle: &Path, node: &str, member: bool, cn: &str, dir: &Path) -> Identity {
    let pki = bundle.join("pki");
    let ca = Authority::load(&pki.join("node.crt"), &pki.join("node.key")).unwrap();
    let identity = NodeIdentity {
        zone: ZONE.into(),
        node_name: node.into(),
        address: None,
        member,
        tunneled: false,
    };
    let issued = ca
        .issue_leaf(LeafKind::Client, &identity, Some(cn))
        .unwrap();
    let stem = cn.replace('@', "-at-");
    let chain = dir.join(format!("{stem}-{node}.crt"));
    let key = dir.join(format!("{stem}-{node}.key"));
    std::fs::write(&chain, issued.chain_pem).unwrap();
    std::fs::write(&key, issued.key_pem).unwrap();
    Identity { chain, key }
}

/// Whether member `addr` takes a TLS connection with `who` (etcd's `/version` answers
/// any client its port admits, whatever the auth store says).
fn handshake(zone: &Zone, addr: &str, who: &Identity) -> Result<(), String> {
    let response = https_request(addr, &zone.ca(), Some(who), "GET", "/version", "")?;
    if response.status_line.contains(" 200") {
        Ok(())
    } else {
        Err(response.status_line)
    }
}

fn wait_auth_on(zone: &Zone) {
    let admin = zone.admin();
    wait_for(Duration::from_secs(30), "the keepers turn auth on", || {
        let (ok, out) = etcdctl(zone, &admin, &["auth", "status"]);
        ok && out.contains("Authentication Status: true")
    });
}

#[test]
fn no_node_ca_nor_a_revoked_members_signer_can_mint_a_client_identity() {
    let zone = Zone::start(ACCESS);
    wait_auth_on(&zone);
    let dir = tempfile::tempdir().unwrap();
    let nas = zone.path("nodes").join(NAS);
    let node2 = zone.zone.node_dir(1);
    let forged = [
        forge(&nas, NAS, false, "root", dir.path()),
        forge(&nas, NAS, false, "node1.lp.zone", dir.path()),
        forge(&nas, NAS, false, &format!("photos@{NAS}"), dir.path()),
        forge(&nas, NAS, false, NAS, dir.path()),
        // A member's own node CA cannot either.
        forge(&node2, "node2.lp.zone", true, "root", dir.path()),
    ];
    let admin = zone.admin();
    let member = Identity {
        chain: zone.zone.tls(0, "client.crt"),
        key: zone.zone.tls(0, "client.key"),
    };
    for addr in zone.addrs() {
        for who in &forged {
            let refused = handshake(&zone, &addr, who);
            assert!(
                refused.is_err(),
                "{addr} took {}: {refused:?}",
                who.chain.display()
            );
        }
        // The owner's identity and the member's own (from its signer) are taken.
        handshake(&zone, &addr, &admin).unwrap();
        handshake(&zone, &addr, &member).unwrap();
    }
    // The owner is etcd's root; a member's identity holds the root role for zone-etcd's
    // own machinery.
    let (ok, out) = etcdctl(&zone, &admin, &["user", "list"]);
    assert!(ok, "{out}");
    for user in [
        "root",
        "node1.lp.zone",
        "node2.lp.zone",
        "node3.lp.zone",
        NAS,
    ] {
        assert!(out.lines().any(|l| l == user), "{user} missing: {out}");
    }
    assert!(etcdctl(&zone, &member, &["put", "zone-etcd/probe", "x"]).0);
    // status names the policy in force and the members applying it.
    wait_for(
        Duration::from_secs(10),
        "every member records the policy",
        || {
            let (ok, json, _) = zone.zone.status(0);
            ok && json["access"]["applied_by"].as_array().map(Vec::len) == Some(3)
        },
    );
    let (ok, json, err) = zone.zone.status(1);
    assert!(ok, "{err}");
    assert_eq!(json["access"]["policy"], "node.toml", "{json}");
    assert_eq!(json["access"]["enforced"], true, "{json}");
    let (ok, text, err) = run(&["status", "--config", zone.zone.config(2).to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(
        text.contains("access policy: node.toml (the members' own copy), 2 service(s), enforced; applied by node1.lp.zone, node2.lp.zone, node3.lp.zone"),
        "{text}"
    );

    // A member revoked: its signer is on the CRL with its node CA, so an identity it
    // mints (even CN root) is refused by the others, and its user is gone.
    let node3 = zone.zone.node_dir(2);
    let signer =
        Authority::load(&node3.join("pki/signer.crt"), &node3.join("pki/signer.key")).unwrap();
    let minted = signer.issue_identity("root", ZONE).unwrap();
    let stolen = Identity {
        chain: dir.path().join("stolen.crt"),
        key: dir.path().join("stolen.key"),
    };
    std::fs::write(&stolen.chain, &minted.chain_pem).unwrap();
    std::fs::write(&stolen.key, &minted.key_pem).unwrap();
    handshake(&zone, &zone.addrs()[0], &stolen).expect("taken before the revocation");
    run_ok(&[
        "revoke",
        "--ca",
        zone.path("ca").to_str().unwrap(),
        "--node",
        "node3.lp.zone",
        "--config",
        zone.zone.config(0).to_str().unwrap(),
    ]);
    for addr in &zone.addrs()[..2] {
        wait_for(
            Duration::from_secs(10),
            "the stolen identity refused",
            || handshake(&zone, addr, &stolen).is_err(),
        );
    }
    wait_for(Duration::from_secs(10), "node3's user deleted", || {
        let (ok, out) = etcdctl_at(&zone, &zone.addrs()[..2], &admin, &["user", "list"]);
        ok && !out.lines().any(|l| l == "node3.lp.zone")
    });
    drop(zone.running);
}
