//! Nodes that follow the zone document the owner signs and the nameservice serves
//! (seeds/000 boot flow): a real zone launched from it, every bad document refused and
//! never cached, the cache used (with a warning) when the nameservice is down, and local
//! services reaching etcd through `zone-etcd env`.
//!
//! Subnets: `addresses::NAMESERVICE` (the real zone), `addresses::NAMESERVICE_REFUSALS`
//! (refusals, no etcd runs).

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use zone_testkit::addresses;

const ZONE: &str = "ns.example.zone";

/// A CA, a zone file and its signed document in a temp dir.
struct Owner {
    dir: tempfile::TempDir,
}

impl Owner {
    fn new(zone: &str, members: &[(&str, &str)]) -> Owner {
        let owner = Owner {
            dir: tempfile::tempdir().unwrap(),
        };
        fs::write(owner.path("zone.toml"), zone_toml(zone, members)).unwrap();
        common::ca_init_previous_kind(zone, owner.arg("ca"));
        owner
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn arg(&self, rel: &str) -> &str {
        // Leaked so argv helpers can borrow it; a handful per test.
        Box::leak(
            self.path(rel)
                .to_str()
                .unwrap()
                .to_string()
                .into_boxed_str(),
        )
    }

    /// `zone sign` of zone.toml into `out`; returns the document.
    fn sign(&self, out: &str) -> String {
        run_ok(&[
            "zone",
            "sign",
            "--ca",
            self.arg("ca"),
            "--zone",
            self.arg("zone.toml"),
            "--out",
            self.arg(out),
        ]);
        fs::read_to_string(self.path(out)).unwrap()
    }

    /// Activates `node` into nodes/<node>, following the nameservice at `url`.
    fn activate(&self, node: &str, url: &str) -> PathBuf {
        let out = self.path(&format!("nodes/{node}"));
        let mut args = activate_args(
            self.arg("ca"),
            self.arg("zone.toml"),
            node,
            out.to_str().unwrap(),
        );
        args.extend(["--nameservice".to_string(), url.to_string()]);
        run_ok(&args);
        out
    }
}

/// Parses `NAME=value` lines of an EnvironmentFile (comments skipped, quotes removed).
fn environment_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let (name, value) = line.split_once('=').expect("NAME=value");
            let value = match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
                Some(quoted) => quoted.replace("\\\"", "\"").replace("\\\\", "\\"),
                None => value.to_string(),
            };
            (name.to_string(), value)
        })
        .collect()
}

#[test]
fn a_zone_launches_from_the_signed_document_and_services_reach_it_with_env() {
    let members = loopback_members(ZONE, addresses::NAMESERVICE.subnet(), 3);
    let pairs: Vec<(&str, &str)> = members
        .iter()
        .map(|(n, a)| (n.as_str(), a.as_str()))
        .collect();
    let owner = Owner::new(ZONE, &pairs);
    let document = owner.sign("zone.json");
    let nameservice = TestNameservice::start(&addresses::NAMESERVICE.ip(100), ZONE);
    nameservice.serve(document.as_bytes());
    for (name, _) in &members {
        owner.activate(name, &nameservice.url);
    }
    let client_node = owner.activate(&format!("node4.{ZONE}"), &nameservice.url);
    // The bundles carry no member list: only the nameservice URL.
    let node1_toml =
        fs::read_to_string(owner.path(&format!("nodes/node1.{ZONE}/node.toml"))).unwrap();
    assert!(!node1_toml.contains("[[etcd]]"), "{node1_toml}");
    assert!(node1_toml.contains(&nameservice.url));

    let zone = TestZone::unmade(ZONE, members.clone());
    // TestZone's helpers look under <dir>/nodes: point them at the owner's bundles.
    std::os::unix::fs::symlink(owner.path("nodes"), zone.path("nodes")).unwrap();

    // node1: node.toml; node2: the seed's JSON form with inline PEM; node3: etcd started
    // by hand from `launch --dry-run --format env`, as a systemd EnvironmentFile would.
    let node2_json = seed_json_config(&zone.node_dir(1), &[("nameservice", &nameservice.url)]);
    let mut running = vec![
        zone.launch(0),
        Running::start(&node2_json, &zone.path("node2.log")),
    ];
    let node3_config = zone.config(2);
    let node3 = node3_config.to_str().unwrap();
    run_ok(&["env", "--config", node3]); // issues node3's leaves, as launch would
    let env_file = run_ok(&["launch", "--config", node3, "--dry-run", "--format", "env"]);
    let vars = environment_file(&env_file);
    assert!(vars
        .iter()
        .any(|(k, v)| k == "ETCD_CLIENT_CERT_AUTH" && v == "true"));
    let argv = run_ok(&["launch", "--config", node3, "--dry-run"]);
    assert_eq!(
        argv.lines().count() - 1,
        vars.len(),
        "one variable per flag:\n{argv}\n{env_file}"
    );
    let mut etcd = Command::new(bundled("etcd"));
    etcd.env_clear().envs(vars);
    running.push(Running::spawn(etcd, &zone.path("node3.log")));
    zone.wait_healthy(&mut running);

    // Every node cached the verified document.
    for i in 0..3 {
        let cached = fs::read_to_string(zone.node_dir(i).join("state/zone.json")).unwrap();
        assert_eq!(cached, document);
    }

    // A node that is not a member: `eval "$(zone-etcd env ...)"`, then plain etcdctl.
    let client_config = client_node.join("node.toml");
    let (ok, stdout, _) = run(&["launch", "--config", client_config.to_str().unwrap()]);
    assert!(ok && stdout.contains("is not an etcd member"), "{stdout}");
    let script = format!(
        "set -e; eval \"$(zone-etcd env --config '{}')\"; etcdctl put from-node4 hello >/dev/null; etcdctl get from-node4 --print-value-only",
        client_config.display()
    );
    let exe_dir = Path::new(env!("CARGO_BIN_EXE_zone-etcd")).parent().unwrap();
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .env(
            "PATH",
            format!(
                "{}:{}:/usr/bin:/bin",
                exe_dir.display(),
                repo().join("bin").display()
            ),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hello");
    // The member wrote it through the zone: another member reads it.
    let (ok, value, err) = zone.etcdctl(
        0,
        &zone.client_url(2),
        &["get", "from-node4", "--print-value-only"],
    );
    assert!(ok, "{err}");
    assert_eq!(value.trim(), "hello");
    // A client node holds a client leaf only: no server or peer key to lose.
    let mut held: Vec<String> = fs::read_dir(client_node.join("state/tls/current"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    held.sort();
    assert_eq!(held, ["ca.crt", "client.crt", "client.key"]);
    let json: serde_json::Value = serde_json::from_str(&run_ok(&[
        "env",
        "--config",
        client_config.to_str().unwrap(),
        "--format",
        "json",
    ]))
    .unwrap();
    assert_eq!(json["member"], false);
    assert_eq!(json["endpoints"].as_array().unwrap().len(), 3);

    // The nameservice goes away: a member restarts from its cached document, with a warning.
    drop(nameservice);
    running.remove(0).stop();
    running.insert(0, zone.launch(0));
    zone.wait_healthy(&mut running);
    let log = running[0].log();
    assert!(
        log.contains("using the cached zone document"),
        "no warning in:\n{log}"
    );
}

/// A one-member zone on `addresses::NAMESERVICE_REFUSALS` .1 whose node follows `url`, with
/// etcd_bin = a stand-in so a launch that (wrongly) got a member list would exec and exit 0 without
/// a server.
struct Refusals {
    owner: Owner,
    node_dir: PathBuf,
}

impl Refusals {
    fn new(url: &str) -> Refusals {
        let owner = Owner::new(
            ZONE,
            &[(
                &format!("node1.{ZONE}"),
                &addresses::NAMESERVICE_REFUSALS.ip(1),
            )],
        );
        let node_dir = owner.activate(&format!("node1.{ZONE}"), url);
        let config = node_dir.join("node.toml");
        common::use_stand_in_etcd(&config);
        Refusals { owner, node_dir }
    }

    fn config(&self) -> String {
        self.node_dir.join("node.toml").display().to_string()
    }

    fn cache(&self) -> PathBuf {
        self.node_dir.join("state/zone.json")
    }

    /// `launch` fails with one line containing `expected`; nothing on disk changes.
    fn refused(&self, expected: &str) {
        let before = snapshot(&self.node_dir);
        let (ok, _, stderr) = run(&["launch", "--config", &self.config()]);
        assert!(!ok, "launch should fail ({expected})");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(expected), "want {expected:?} in: {stderr}");
        assert!(
            stderr.contains("node.toml: etcd: no etcd member list"),
            "{stderr}"
        );
        assert!(!stderr.contains("PRIVATE KEY"));
        assert_eq!(snapshot(&self.node_dir), before, "{expected}: disk changed");
        assert!(!self.cache().exists());
    }

    /// `launch` succeeds (exec the stand-in); returns stderr.
    fn launches(&self) -> String {
        let (ok, _, stderr) = run(&["launch", "--config", &self.config()]);
        assert!(ok, "launch failed: {stderr}");
        stderr
    }
}

/// Re-signs `doc` after `edit` with openssl over the canonical form jq makes: the format
/// is checkable (and producible) with public tools, and lets a test sign what `zone
/// sign` would refuse to.
fn resign_with_openssl(doc: &str, ca_dir: &Path, edit: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("doc.json"), doc).unwrap();
    let script = format!(
        "set -e; cd '{d}'; jq '{edit} | del(.sign)' doc.json > edited.json; jq -cjS . edited.json > payload; \
         openssl dgst -sha256 -sign '{ca}/ca.key' -out sig.der payload; \
         kid=$(openssl x509 -in '{ca}/ca.crt' -outform DER | sha256sum | cut -d' ' -f1); \
         jq --arg s \"ecdsa-sha256:$kid:$(base64 -w0 sig.der)\" '.sign = $s' edited.json",
        d = dir.path().display(),
        ca = ca_dir.display()
    );
    bash(&script)
}

#[test]
fn bad_documents_are_refused_and_never_cached_nor_replace_a_good_cache() {
    let nameservice = TestNameservice::start(&addresses::NAMESERVICE_REFUSALS.ip(100), ZONE);
    let case = Refusals::new(&nameservice.url);
    let good = case.owner.sign("zone.json");

    // Nameservice answering 503: retried, then refused (no cache yet).
    nameservice.fail_with(503);
    case.refused("HTTP 503 Service Unavailable (3 attempts); cache");
    assert_eq!(nameservice.requests(), 3, "503 is retried three times");
    // Loading is not fetching: node.toml is read without a request; resolving the zone
    // view is the one step that asks, and names node.toml in its one line.
    let config = zone_model::config::node::NodeConfig::load(Path::new(&case.config())).unwrap();
    assert_eq!(config.name, format!("node1.{ZONE}"));
    assert_eq!(
        nameservice.requests(),
        3,
        "reading node.toml asked the nameservice"
    );
    let policy = zone_node::nameservice::CachePolicy::ReadOnly;
    let e = zone_node::node::Node::resolve(config, policy)
        .err()
        .unwrap();
    assert!(
        e.to_string().contains("node.toml") && e.to_string().contains("HTTP 503"),
        "{e}"
    );
    assert_eq!(nameservice.requests(), 6, "the view asks three times");
    nameservice.fail_with(404);
    case.refused("HTTP 404: the nameservice does not know zone");

    let tampered = good.replace(
        &addresses::NAMESERVICE_REFUSALS.ip(1),
        &addresses::NAMESERVICE_REFUSALS.ip(9),
    );
    assert_ne!(tampered, good);
    nameservice.serve(tampered.as_bytes());
    case.refused("the signature does not verify with the zone CA");

    let impostor = Owner::new(
        ZONE,
        &[(
            &format!("node1.{ZONE}"),
            &addresses::NAMESERVICE_REFUSALS.ip(1),
        )],
    );
    nameservice.serve(impostor.sign("zone.json").as_bytes());
    case.refused("sign: signed by another CA");

    let other_zone = Owner::new(
        "other.zone",
        &[("node1.other.zone", &addresses::NAMESERVICE_REFUSALS.ip(1))],
    );
    nameservice.serve(other_zone.sign("zone.json").as_bytes());
    case.refused("is for zone \"other.zone\", not this node's zone \"ns.example.zone\"");

    nameservice.serve(&good.as_bytes()[..good.len() / 2]);
    case.refused("truncated JSON");

    let bad_port = resign_with_openssl(
        &good,
        &case.owner.path("ca"),
        ".extend.etcd[0].peer_port = 70000",
    );
    nameservice.serve(bad_port.as_bytes());
    case.refused("etcd #1 peer_port: port 70000 is outside 1-65535");

    let mut unsigned: serde_json::Value = serde_json::from_str(&good).unwrap();
    unsigned.as_object_mut().unwrap().remove("sign");
    let unsigned = unsigned.to_string();
    nameservice.serve(unsigned.as_bytes());
    case.refused("the document is not signed");

    drop(nameservice);
    let down = Refusals::new(&closed_url(&addresses::NAMESERVICE_REFUSALS.ip(101)));
    down.refused("connection refused (3 attempts); cache");
    down.refused("zone.json: none yet");

    // The good document: launched and cached.
    let nameservice = TestNameservice::start(&addresses::NAMESERVICE_REFUSALS.ip(102), ZONE);
    let case = Refusals::new(&nameservice.url);
    let older = case.owner.sign("older.json");
    std::thread::sleep(std::time::Duration::from_millis(1100)); // signed_at has seconds
    let good = case.owner.sign("zone.json");
    nameservice.serve(good.as_bytes());
    let before = snapshot(&case.node_dir);
    let argv = run_ok(&["launch", "--config", &case.config(), "--dry-run"]);
    assert!(argv.contains(&format!(
        "--initial-cluster=node1.ns.example.zone=https://{}:2380",
        addresses::NAMESERVICE_REFUSALS.ip(1)
    )));
    assert_eq!(snapshot(&case.node_dir), before, "a dry run writes nothing");
    case.launches();
    assert_eq!(fs::read_to_string(case.cache()).unwrap(), good);

    // A document a newer owner's tool signed with keys this release does not know: read
    // past, each key said in one warning line naming where the document came from
    // (issue 50, item 4; before, the member list was refused and the cache kept).
    let newer = resign_with_openssl(
        &good,
        &case.owner.path("ca"),
        ".extend.etcd[0].learner = true | .extend.dns = {ttl: 60}",
    );
    nameservice.serve(newer.as_bytes());
    let (ok, argv, stderr) = run(&["launch", "--config", &case.config(), "--dry-run"]);
    assert!(ok, "{stderr}");
    assert!(argv.contains(&format!(
        "--initial-cluster=node1.ns.example.zone=https://{}:2380",
        addresses::NAMESERVICE_REFUSALS.ip(1)
    )));
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains(" WARN ")).collect();
    assert_eq!(warnings.len(), 2, "{stderr}");
    for key in ["extend.etcd #1 learner", "extend.dns"] {
        let line = format!(
            "the zone document from {}/resolve?name={ZONE}: {key}: unknown key, ignored",
            nameservice.url
        );
        assert!(
            warnings.iter().any(|w| w.contains(&line)),
            "{line} in {stderr}"
        );
    }
    assert!(
        warnings[0].contains("remove it from the zone file and sign the zone document again"),
        "{}",
        warnings[0]
    );
    nameservice.serve(good.as_bytes());

    // Bad documents after that: the cache serves, with a warning, and stays as it was.
    for bad in [
        good.replace(
            &addresses::NAMESERVICE_REFUSALS.ip(1),
            &addresses::NAMESERVICE_REFUSALS.ip(9),
        ),
        good[..good.len() / 3].to_string(),
        older.clone(),
    ] {
        nameservice.serve(bad.as_bytes());
        let stderr = case.launches();
        assert!(
            stderr.contains("using the cached zone document"),
            "{stderr}"
        );
        assert_eq!(fs::read_to_string(case.cache()).unwrap(), good);
    }
    nameservice.serve(older.as_bytes());
    assert!(case.launches().contains("older than the cached one"));

    // A tampered cache is not trusted either.
    fs::write(
        case.cache(),
        good.replace(
            &addresses::NAMESERVICE_REFUSALS.ip(1),
            &addresses::NAMESERVICE_REFUSALS.ip(7),
        ),
    )
    .unwrap();
    nameservice.fail_with(503);
    case.refused_with_cache("zone.json: refused: sign: the signature does not verify");
}

impl Refusals {
    /// Like `refused`, for a node whose (bad) cache must stay where it is.
    fn refused_with_cache(&self, expected: &str) {
        let before = snapshot(&self.node_dir);
        let (ok, _, stderr) = run(&["launch", "--config", &self.config()]);
        assert!(!ok);
        assert!(stderr.contains(expected), "want {expected:?} in: {stderr}");
        assert_eq!(snapshot(&self.node_dir), before);
    }
}

#[test]
fn the_signature_is_checkable_with_jq_and_openssl() {
    let owner = Owner::new(
        ZONE,
        &[(
            &format!("node1.{ZONE}"),
            &addresses::NAMESERVICE_REFUSALS.ip(1),
        )],
    );
    owner.sign("zone.json");
    let script = format!(
        "set -e; cd '{d}'; jq -cjS 'del(.sign)' zone.json > payload; \
         jq -r .sign zone.json | cut -d: -f3 | base64 -d > sig.der; \
         openssl x509 -in ca/ca.crt -pubkey -noout > ca.pub; \
         openssl dgst -sha256 -verify ca.pub -signature sig.der payload; \
         test \"$(jq -r .sign zone.json | cut -d: -f2)\" = \"$(openssl x509 -in ca/ca.crt -outform DER | sha256sum | cut -d' ' -f1)\"",
        d = owner.dir.path().display()
    );
    assert_eq!(bash(&script).trim(), "Verified OK");

    // zone sign refuses another zone's CA and a directory as --out, writing nothing.
    let other = Owner::new(
        "other.zone",
        &[("node1.other.zone", &addresses::NAMESERVICE_REFUSALS.ip(1))],
    );
    let (ok, _, stderr) = run(&[
        "zone",
        "sign",
        "--ca",
        other.arg("ca"),
        "--zone",
        owner.arg("zone.toml"),
        "--out",
        owner.arg("other.json"),
    ]);
    assert!(
        !ok && stderr.contains("root CA of zone \"other.zone\""),
        "{stderr}"
    );
    assert!(!owner.path("other.json").exists());
    let (ok, _, stderr) = run(&[
        "zone",
        "sign",
        "--ca",
        owner.arg("ca"),
        "--zone",
        owner.arg("zone.toml"),
        "--out",
        owner.arg("ca"),
    ]);
    assert!(!ok && stderr.contains("--out: is a directory"), "{stderr}");
}

#[test]
fn a_seed_json_config_holding_a_key_must_be_private() {
    let owner = Owner::new(
        ZONE,
        &[(
            &format!("node1.{ZONE}"),
            &addresses::NAMESERVICE_REFUSALS.ip(1),
        )],
    );
    let node_dir = owner.activate(
        &format!("node1.{ZONE}"),
        &closed_url(&addresses::NAMESERVICE_REFUSALS.ip(103)),
    );
    let json = seed_json_config(&node_dir, &[]);
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&json, fs::Permissions::from_mode(0o644)).unwrap();
    let (ok, _, stderr) = run(&["env", "--config", json.to_str().unwrap()]);
    assert!(!ok);
    assert!(stderr.contains("chmod 600"), "{stderr}");
    assert!(!stderr.contains("PRIVATE KEY"));
}

#[test]
fn an_https_nameservice_must_hold_a_certificate_from_the_zone() {
    // node2 keeps a local member list and serves the nameservice with its server leaf;
    // node1 asks it over https, trusting only the zone CA.
    let owner = Owner::new(
        ZONE,
        &[
            (
                &format!("node1.{ZONE}"),
                &addresses::NAMESERVICE_REFUSALS.ip(1),
            ),
            (
                &format!("node2.{ZONE}"),
                &addresses::NAMESERVICE_REFUSALS.ip(2),
            ),
        ],
    );
    let host = owner.path(&format!("nodes/node2.{ZONE}"));
    run_ok(&activate_args(
        owner.arg("ca"),
        owner.arg("zone.toml"),
        &format!("node2.{ZONE}"),
        host.to_str().unwrap(),
    ));
    run_ok(&["env", "--config", host.join("node.toml").to_str().unwrap()]);
    let tls = host.join("state/tls/current");
    let nameservice = TestNameservice::start_tls(
        &addresses::NAMESERVICE_REFUSALS.ip(2),
        ZONE,
        &tls.join("server.crt"),
        &tls.join("server.key"),
    );
    let document = owner.sign("zone.json");
    nameservice.serve(document.as_bytes());
    let node1 = owner.activate(&format!("node1.{ZONE}"), &nameservice.url);
    let config = node1.join("node.toml");
    let json: serde_json::Value = serde_json::from_str(&run_ok(&[
        "env",
        "--config",
        config.to_str().unwrap(),
        "--format",
        "json",
    ]))
    .unwrap();
    assert!(json["members_from"].as_str().unwrap().contains("https://"));
    assert_eq!(
        fs::read_to_string(node1.join("state/zone.json")).unwrap(),
        document
    );

    // The same document behind a certificate from another CA: refused at once, not retried.
    let impostor = Owner::new(
        ZONE,
        &[(
            &format!("node2.{ZONE}"),
            &addresses::NAMESERVICE_REFUSALS.ip(2),
        )],
    );
    let fake_host = impostor.path("nodes/node2");
    run_ok(&activate_args(
        impostor.arg("ca"),
        impostor.arg("zone.toml"),
        &format!("node2.{ZONE}"),
        fake_host.to_str().unwrap(),
    ));
    run_ok(&[
        "env",
        "--config",
        fake_host.join("node.toml").to_str().unwrap(),
    ]);
    let fake_tls = fake_host.join("state/tls/current");
    let fake = TestNameservice::start_tls(
        &addresses::NAMESERVICE_REFUSALS.ip(2),
        ZONE,
        &fake_tls.join("server.crt"),
        &fake_tls.join("server.key"),
    );
    fake.serve(document.as_bytes());
    let node3 = owner.activate(&format!("node3.{ZONE}"), &fake.url);
    let (ok, _, stderr) = run(&["env", "--config", node3.join("node.toml").to_str().unwrap()]);
    assert!(!ok);
    assert!(
        stderr.contains("TLS:") && stderr.contains("zone CA"),
        "{stderr}"
    );
    // The server counts a connection once its read ends (on the client's alert), which may
    // be after `env` exited: wait for the first, then give a retry time to show.
    wait_for(
        Duration::from_secs(5),
        "the nameservice to see the connection",
        || fake.requests() >= 1,
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(fake.requests(), 1, "a certificate error is not retried");
    assert!(!node3.join("state/zone.json").exists());
}

#[test]
fn a_silent_nameservice_times_out_instead_of_hanging() {
    // Connections are accepted by the kernel but never answered.
    let silent =
        std::net::TcpListener::bind((addresses::NAMESERVICE_REFUSALS.ip(104).as_str(), 0)).unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let case = Refusals::new(&url);
    // Returns at all (3 attempts, each cut by its own timeout), and says why.
    case.refused("timed out");
}
