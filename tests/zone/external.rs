//! Externally managed certificates: a node whose leaves come from the operator's own PKI
//! (made here with openssl, root and intermediate, the way seeds/003 does it). launch and
//! check validate them and never rewrite them; rotate says they are external.
//!
//! Subnet: `addresses::EXTERNAL`.

use crate::common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::*;
use zone_testkit::addresses;

const ZONE: &str = "ext.zone";

/// An openssl PKI in `dir`: root.pem, and server/peer/client .crt (leaf + intermediate)
/// and .key, for node1.ext.zone at `addresses::EXTERNAL` .1. `peer_names` are the peer leaf's DNS
/// SANs.
fn openssl_pki(dir: &Path, peer_names: &str) {
    let script = format!(
        r#"set -e; cd '{dir}'
ec() {{ openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; chmod 600 "$1"; }}
ec root.key
openssl req -x509 -new -key root.key -subj "/CN=ops root" -days 3650 -out root.pem \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
ec inter.key
openssl req -new -key inter.key -subj "/CN=ops etcd intermediate" -out inter.csr
printf 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n' > inter.ext
openssl x509 -req -in inter.csr -CA root.pem -CAkey root.key -CAcreateserial -days 3650 -extfile inter.ext -out inter.pem 2>/dev/null
leaf() {{ # name eku sans
  ec "$1.key"
  openssl req -new -key "$1.key" -subj "/CN=node1.ext.zone" -out "$1.csr"
  printf "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=$2\nsubjectAltName=$3\n" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA inter.pem -CAkey inter.key -CAcreateserial -days 20 -extfile "$1.ext" -out "$1.leaf" 2>/dev/null
  cat "$1.leaf" inter.pem > "$1.crt"
}}
leaf server serverAuth,clientAuth "DNS:node1.ext.zone,DNS:localhost,IP:{ip},IP:127.0.0.1"
leaf peer serverAuth,clientAuth "DNS:node1.ext.zone,{peer_names},IP:{ip},IP:127.0.0.1"
leaf client clientAuth "DNS:node1.ext.zone"
rm -f *.csr *.ext *.leaf *.srl
"#,
        dir = dir.display(),
        ip = addresses::EXTERNAL.ip(1),
    );
    bash(&script);
}

fn node_toml(pki: &Path) -> String {
    let p = |f: &str| pki.join(f).display().to_string();
    format!(
        r#"name = "node1.{ZONE}"
zone = "{ZONE}"
ca = "{root}"

[external]
server_cert = "{sc}"
server_key = "{sk}"
peer_cert = "{pc}"
peer_key = "{pk}"
client_cert = "{cc}"
client_key = "{ck}"

[[etcd]]
node_name = "node1.{ZONE}"
address = "{ip}"
"#,
        ip = addresses::EXTERNAL.ip(1),
        root = p("root.pem"),
        sc = p("server.crt"),
        sk = p("server.key"),
        pc = p("peer.crt"),
        pk = p("peer.key"),
        cc = p("client.crt"),
        ck = p("client.key"),
    )
}

#[test]
fn external_certificates_serve_a_member_and_are_never_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("ops-pki");
    fs::create_dir(&pki).unwrap();
    openssl_pki(&pki, &format!("DNS:etcd-peer.{ZONE}"));
    let node = dir.path().join("node");
    fs::create_dir(&node).unwrap();
    let config = node.join("node.toml");
    fs::write(&config, node_toml(&pki)).unwrap();
    let config_s = config.to_str().unwrap();
    let before = snapshot(&pki);

    let (ok, out, _) = run(&["check", "--config", config_s]);
    assert!(
        ok && out.contains("no problems") && !out.contains("node CA"),
        "{out}"
    );
    let mut running = vec![Running::start(&config, &dir.path().join("etcd.log"))];
    // etcdctl with the operator's client certificate, through `env`.
    let env: serde_json::Value =
        serde_json::from_str(&run_ok(&["env", "--config", config_s, "--format", "json"])).unwrap();
    let etcdctl = |args: &[&str]| {
        Command::new(bundled("etcdctl"))
            .arg(format!(
                "--endpoints={}",
                env["endpoints"][0].as_str().unwrap()
            ))
            .arg(format!("--cacert={}", env["ca_file"].as_str().unwrap()))
            .arg(format!("--cert={}", env["cert_file"].as_str().unwrap()))
            .arg(format!("--key={}", env["key_file"].as_str().unwrap()))
            .arg("--command-timeout=5s")
            .args(args)
            .output()
            .unwrap()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !etcdctl(&["put", "k", "external"]).status.success() {
        assert!(
            running[0].child.try_wait().unwrap().is_none(),
            "etcd exited:\n{}",
            running[0].log()
        );
        assert!(std::time::Instant::now() < deadline, "{}", running[0].log());
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    let got = etcdctl(&["get", "k", "--print-value-only"]);
    assert_eq!(String::from_utf8_lossy(&got.stdout).trim(), "external");

    // rotate refuses to touch them; --if-due only validates.
    let (ok, _, stderr) = run(&["rotate", "--config", config_s]);
    assert!(!ok && stderr.contains("are external"), "{stderr}");
    let out = run_ok(&["rotate", "--if-due", "--config", config_s]);
    assert!(out.contains("external and valid"), "{out}");
    assert_eq!(snapshot(&pki), before, "external files are never rewritten");
    assert!(
        !node.join("state/tls").exists(),
        "no leaves issued for an external node"
    );
    running.remove(0).stop();

    // A peer certificate without the zone's peer name would be refused by every peer.
    let bad = dir.path().join("bad-pki");
    fs::create_dir(&bad).unwrap();
    openssl_pki(&bad, "DNS:other.example");
    fs::write(&config, node_toml(&bad)).unwrap();
    let (ok, _, stderr) = run(&["launch", "--config", config_s, "--dry-run"]);
    assert!(ok, "a dry run does not validate: {stderr}");
    let (ok, _, stderr) = run(&["launch", "--config", config_s]);
    assert!(!ok, "launch must refuse");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(
            "peer.crt: external: external peer certificate: does not name etcd-peer.ext.zone"
        ),
        "{stderr}"
    );
    // A key others can read: refused with the chmod.
    fs::write(&config, node_toml(&pki)).unwrap();
    fs::set_permissions(pki.join("server.key"), fs::Permissions::from_mode(0o644)).unwrap();
    let (ok, _, stderr) = run(&["launch", "--config", config_s]);
    assert!(!ok && stderr.contains("chmod 600"), "{stderr}");
    let (ok, out, _) = run(&["check", "--config", config_s]);
    assert!(!ok && out.contains("readable by group or others"), "{out}");
}
