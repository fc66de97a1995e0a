//! Activation by request (issue 25, part 1): the node makes its node CA's key and a
//! PKCS#10 request (`activate request`), the owner answers it without ever seeing the key
//! (`activate --request`), the node installs the answer beside its key (`activate
//! install`). The key's bytes exist in the request directory and the bundle, nowhere
//! else; a member so activated serves in a real zone, a client node reads through `env`;
//! what does not belong together is refused in one line, with nothing written.
//!
//! Addresses: `addresses::ACTIVATE_REQUEST` .1-20 (`addresses::ACTIVATE_REQUEST_DEAD` for URLs
//! nothing listens on).

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use common::*;
use rustls_pki_types::pem::PemObject;
use zone_testkit::addresses;

fn text(path: &Path) -> String {
    path.to_str().unwrap().to_string()
}

/// `activate request --node NODE --out REQ_DIR` (on the node).
fn request_args(node: &str, req: &Path) -> Vec<String> {
    vec![
        "activate".into(),
        "request".into(),
        "--node".into(),
        node.into(),
        "--out".into(),
        text(req),
    ]
}

/// `activate --ca CA --zone ZONE_FILE --request CSR --out ANSWER_DIR` (the owner).
fn answer_args(ca: &Path, zone_file: &Path, csr: &Path, answer: &Path) -> Vec<String> {
    [
        "activate",
        "--ca",
        &text(ca),
        "--zone",
        &text(zone_file),
        "--request",
        &text(csr),
        "--out",
        &text(answer),
    ]
    .map(String::from)
    .to_vec()
}

/// `activate install --request REQ_DIR --answer ANSWER_DIR --out BUNDLE_DIR` (the node).
fn install_args(req: &Path, answer: &Path, bundle: &Path) -> Vec<String> {
    [
        "activate",
        "install",
        "--request",
        &text(req),
        "--answer",
        &text(answer),
        "--out",
        &text(bundle),
    ]
    .map(String::from)
    .to_vec()
}

/// Runs zone-etcd, insists it succeeds, and keeps everything it printed in `printed`.
fn ok_printing(printed: &mut String, args: &[String]) {
    let (ok, stdout, stderr) = run(args);
    assert!(ok, "zone-etcd {args:?} failed:\n{stderr}");
    printed.push_str(&stdout);
    printed.push_str(&stderr);
}

/// The node's three steps and the owner's one, as four machines would run them: the node
/// (`node`) makes `req`, the owner answers into `answer`, the node installs into `bundle`.
/// Returns everything the commands printed.
fn activate_by_request(
    ca: &Path,
    zone_file: &Path,
    node: &str,
    req: &Path,
    answer: &Path,
    bundle: &Path,
) -> String {
    let mut printed = String::new();
    ok_printing(&mut printed, &request_args(node, req));
    ok_printing(
        &mut printed,
        &answer_args(ca, zone_file, &req.join("request.csr"), answer),
    );
    ok_printing(&mut printed, &install_args(req, answer, bundle));
    printed
}

/// The forms a private key's bytes could take in a file or an output: its PEM, its DER
/// (PKCS#8), the DER in base64 on one line, each base64 line of the PEM body, and the
/// private scalar itself, raw and in hex.
fn key_forms(key_pem: &str) -> Vec<(String, Vec<u8>)> {
    let der = rustls_pki_types::PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .unwrap()
        .secret_der()
        .to_vec();
    // ECPrivateKey: version 1, then the 32-byte private key as an OCTET STRING.
    let at = der
        .windows(5)
        .position(|w| w == [0x02, 0x01, 0x01, 0x04, 0x20])
        .expect("an ECPrivateKey inside the PKCS#8")
        + 5;
    let scalar = der[at..at + 32].to_vec();
    let hex: String = scalar.iter().map(|b| format!("{b:02x}")).collect();
    let mut forms = vec![
        ("PEM".to_string(), key_pem.trim().as_bytes().to_vec()),
        ("DER".to_string(), der.clone()),
        (
            "base64 of the DER".to_string(),
            base64::engine::general_purpose::STANDARD
                .encode(&der)
                .into_bytes(),
        ),
        ("private scalar".to_string(), scalar),
        ("private scalar in hex".to_string(), hex.into_bytes()),
    ];
    for line in key_body_lines(key_pem) {
        forms.push((format!("PEM line {line}"), line.into_bytes()));
    }
    assert!(forms.len() > 5, "the PEM has body lines");
    forms
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    let first = needle[0];
    haystack
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == first)
        .any(|(i, _)| haystack[i..].starts_with(needle))
}

/// Every regular file under `root`, except under `skip` (etcd's own data directory).
fn files_under(root: &Path, skip: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                if !skip.contains(&path) {
                    dirs.push(path);
                }
            } else if meta.is_file() {
                out.push(path);
            }
        }
    }
    out
}

/// The key in `req/node.key` is in `req/node.key` and `bundle/pki/node.key` and in no
/// other file under `root` (nor in `printed`): searched in every form [`key_forms`]
/// gives. Returns how many files were searched.
fn assert_key_only_in_its_two_places(
    root: &Path,
    req: &Path,
    bundle: &Path,
    skip: &[PathBuf],
    printed: &str,
) -> usize {
    let key_pem = fs::read_to_string(req.join("node.key")).unwrap();
    assert_eq!(
        fs::read(bundle.join("pki/node.key")).unwrap(),
        key_pem.as_bytes(),
        "the bundle's key is the request's, byte for byte"
    );
    let forms = key_forms(&key_pem);
    let allowed = [req.join("node.key"), bundle.join("pki/node.key")];
    let files = files_under(root, skip);
    for path in &files {
        if allowed.contains(path) {
            continue;
        }
        let bytes = fs::read(path).unwrap();
        for (what, form) in &forms {
            assert!(
                !contains(&bytes, form),
                "the key's {what} is in {}",
                path.display()
            );
        }
    }
    for (what, form) in &forms {
        assert!(
            !contains(printed.as_bytes(), form),
            "the key's {what} was printed"
        );
    }
    files.len() - allowed.len()
}

/// The relative paths (and modes) of everything under `dir`.
fn layout(dir: &Path) -> Vec<(String, u32)> {
    snapshot(dir)
        .into_iter()
        .map(|(path, (mode, _))| (path.display().to_string(), mode & 0o777))
        .collect()
}

#[test]
fn a_member_activated_by_request_keeps_its_key_alone_and_serves() {
    let name = "request.zone";
    let members = vec![(format!("node1.{name}"), addresses::ACTIVATE_REQUEST.ip(1))];
    let pairs = [(members[0].0.as_str(), members[0].1.as_str())];
    let zone = TestZone::unmade(name, members.clone());
    fs::write(zone.path("zone.toml"), zone_toml(name, &pairs)).unwrap();
    run_ok(&ca_init_args(name, zone.path("ca").to_str().unwrap()));
    // The node's side lives apart from the owner's, as on two machines.
    let req = zone.path("node-side/req");
    let answer = zone.path("owner-side/answer");
    let bundle = zone.node_dir(0);
    let printed = activate_by_request(
        &zone.path("ca"),
        &zone.path("zone.toml"),
        &members[0].0,
        &req,
        &answer,
        &bundle,
    );
    // A member's install measures the disk its data will be on, before the first start.
    assert!(
        printed
            .lines()
            .any(|l| l.contains("data disk: ") && l.contains("fdatasync p50")),
        "{printed}"
    );

    // The request directory: the key 0600 in a 0700 directory, and the request.
    assert_eq!(
        layout(&req),
        vec![("node.key".into(), 0o600), ("request.csr".into(), 0o644)]
    );
    assert_eq!(mode(&req), 0o700);
    // The answer holds no key: in a zone of least privilege (the default) the client CA
    // and the member's signer, issued for the request's key.
    assert_eq!(
        layout(&answer),
        vec![
            ("node.toml".into(), 0o644),
            ("pki".into(), 0o700),
            ("pki/ca.crt".into(), 0o644),
            ("pki/client-ca.crt".into(), 0o644),
            ("pki/node.crt".into(), 0o644),
            ("pki/signer.crt".into(), 0o644),
        ]
    );
    run_ok(&activate_args(
        zone.path("ca").to_str().unwrap(),
        zone.path("zone.toml").to_str().unwrap(),
        &members[0].0,
        zone.path("owner-side/classic").to_str().unwrap(),
    ));
    // Laid out as `activate --node` lays a bundle out, but for the signer's own key:
    // the node's key is its signer's.
    let mut classic = layout(&zone.path("owner-side/classic"));
    classic.retain(|(path, _)| path != "pki/signer.key");
    assert_eq!(layout(&bundle), classic);
    assert_eq!(mode(&bundle), 0o700);
    assert_eq!(
        fs::read_to_string(bundle.join("node.toml")).unwrap(),
        fs::read_to_string(zone.path("owner-side/classic/node.toml"))
            .unwrap()
            .replace(
                "signer_key = \"pki/signer.key\"",
                "signer_key = \"pki/node.key\""
            )
    );
    let config = fs::read_to_string(bundle.join("node.toml")).unwrap();
    assert!(
        config.contains("enforce = true") && config.contains("signer_key = \"pki/node.key\""),
        "{config}"
    );
    for file in [
        "node.toml",
        "pki/ca.crt",
        "pki/node.crt",
        "pki/client-ca.crt",
        "pki/signer.crt",
    ] {
        assert_eq!(
            fs::read(bundle.join(file)).unwrap(),
            fs::read(answer.join(file)).unwrap(),
            "{file} is the answer's"
        );
    }

    // It launches as the member of a real zone and serves, enforcing least privilege:
    // its own identity from its signer is root, a node CA's client leaf is refused at the
    // handshake.
    let mut running = zone.launch_all();
    zone.wait_healthy(&mut running);
    common::wait_for(Duration::from_secs(30), "etcd's auth on", || {
        let (ok, json, _) = zone.status(0);
        ok && json["access"]["enforced"] == true
    });
    let (ok, out, err) = zone.etcdctl(0, &zone.client_url(0), &["user", "list"]);
    assert!(ok && out.contains(&members[0].0), "{out}{err}");
    // A client leaf of the member's node CA (what every client was before), CN root.
    let leaf = common::node_authority(&zone, 0)
        .issue_leaf(
            zone_pki::LeafKind::Client,
            &common::member_identity(&zone, 0),
            Some("root"),
        )
        .unwrap();
    fs::create_dir_all(zone.path("outsider")).unwrap();
    fs::write(zone.path("outsider/client.crt"), &leaf.chain_pem).unwrap();
    fs::write(zone.path("outsider/client.key"), &leaf.key_pem).unwrap();
    let out = std::process::Command::new(common::bundled("etcdctl"))
        .args([
            format!("--endpoints={}", zone.client_url(0)),
            format!("--cacert={}", zone.tls(0, "ca.crt").display()),
            format!("--cert={}", zone.path("outsider/client.crt").display()),
            format!("--key={}", zone.path("outsider/client.key").display()),
            "--command-timeout=5s".into(),
            "get".into(),
            "greeting".into(),
        ])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a node CA's client leaf was let in: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let (ok, _, err) = zone.etcdctl(0, &zone.client_url(0), &["put", "greeting", "by request"]);
    assert!(ok, "{err}");
    let (ok, out, err) = zone.etcdctl(
        0,
        &zone.client_url(0),
        &["get", "greeting", "--print-value-only"],
    );
    assert!(ok && out.trim() == "by request", "{out}{err}");
    for member in running {
        member.stop();
    }

    // Every file the flow wrote (the CA, the request, the answer, the bundle, the leaves
    // launch issued, the launch log) but the two key files is free of the key. etcd's
    // data directory is etcd's own writing, not the flow's.
    let searched = assert_key_only_in_its_two_places(
        zone.dir.path(),
        &req,
        &bundle,
        &[bundle.join("state/data")],
        &printed,
    );
    assert!(searched >= 15, "searched {searched} files");
}

#[test]
fn a_client_node_activated_by_request_reads_through_env() {
    let name = "clients.zone";
    let zone = TestZone::bootstrap_on(
        name,
        vec![(format!("node1.{name}"), addresses::ACTIVATE_REQUEST.ip(2))],
        2380,
        2379,
    );
    let mut running = zone.launch_all();
    zone.wait_healthy(&mut running);
    // Put by a member (root) under the client node's own prefix, the one it may read.
    let app = format!("app1.{name}");
    let shared = format!("nodes/{app}/shared");
    let (ok, _, err) = zone.etcdctl(0, &zone.client_url(0), &["put", &shared, "for clients"]);
    assert!(ok, "{err}");

    let req = zone.path("app-side/req");
    let bundle = zone.path("app-side/bundle");
    let mut printed = activate_by_request(
        &zone.path("ca"),
        &zone.path("zone.toml"),
        &app,
        &req,
        &zone.path("owner-side/answer"),
        &bundle,
    );
    let config = bundle.join("node.toml");
    let (ok, json, err) = run(&[
        "env",
        "--config",
        config.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(ok, "{err}");
    printed += &json;
    printed += &err;
    let env: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(env["node"], app.as_str());
    assert_eq!(env["member"], false);
    let file = |key: &str| env[key].as_str().unwrap().to_string();
    let out = std::process::Command::new(bundled("etcdctl"))
        .arg(format!("--endpoints={}", zone.client_url(0)))
        .arg(format!("--cacert={}", file("ca_file")))
        .arg(format!("--cert={}", file("cert_file")))
        .arg(format!("--key={}", file("key_file")))
        .args(["--command-timeout=5s", "get", &shared, "--print-value-only"])
        .output()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "for clients",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for member in running {
        member.stop();
    }
    assert_key_only_in_its_two_places(
        zone.dir.path(),
        &req,
        &bundle,
        &[zone.node_dir(0).join("state/data")],
        &printed,
    );
}

/// `request.csr` with one byte inside its signature changed, as PEM again.
fn flip_signature_byte(csr_pem: &str) -> String {
    let mut der =
        rustls_pki_types::CertificateSigningRequestDer::from_pem_slice(csr_pem.as_bytes())
            .unwrap()
            .as_ref()
            .to_vec();
    // The signature BIT STRING ends the request: its last byte is inside the ECDSA s.
    let last = der.len() - 1;
    der[last] ^= 0x01;
    let body = base64::engine::general_purpose::STANDARD.encode(&der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
        lines.join("\n")
    )
}

/// Runs a command that must be refused: non-zero exit, one error line containing every
/// one of `says`, and nothing changed under `root`. Returns the line.
fn refused(root: &Path, args: &[String], says: &[&str]) -> String {
    let before = snapshot(root);
    let (ok, _, stderr) = run(args);
    assert!(!ok, "zone-etcd {args:?} was not refused");
    let line = one_error_line(&stderr);
    for text in says {
        assert!(
            line.contains(text),
            "{args:?}: expected {text:?} in: {line}"
        );
    }
    assert!(line.contains("(fix: "), "{line}");
    assert!(
        snapshot(root) == before,
        "{args:?} changed the disk: {line}"
    );
    line
}

/// A zone file with one member at `address` and its CA, in a new directory.
fn owner(name: &str, address: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let node1 = format!("node1.{name}");
    fs::write(
        dir.path().join("zone.toml"),
        zone_toml(name, &[(node1.as_str(), address)]),
    )
    .unwrap();
    common::ca_init_previous_kind(name, &text(&dir.path().join("ca")));
    dir
}

#[test]
fn what_does_not_belong_together_is_refused_in_one_line_writing_nothing() {
    let dir = owner("refuse.zone", &addresses::ACTIVATE_REQUEST.ip(3));
    let root = dir.path();
    let p = |rel: &str| root.join(rel);
    let answer = |csr: &str, out: &str| answer_args(&p("ca"), &p("zone.toml"), &p(csr), &p(out));
    run_ok(&request_args("node1.refuse.zone", &p("req-a")));
    run_ok(&request_args("node1.refuse.zone", &p("req-b"))); // the same node, another key
    run_ok(&request_args("client2.refuse.zone", &p("req-c"))); // another node
    run_ok(&request_args("node9.other.zone", &p("req-outside")));
    run_ok(&answer("req-a/request.csr", "answer-a"));
    run_ok(&answer("req-c/request.csr", "answer-c"));

    // A name outside the zone: named, with the way out.
    refused(
        root,
        &answer("req-outside/request.csr", "answer-outside"),
        &[
            "req-outside/request.csr",
            "\"node9.other.zone\"",
            "neither a member of zone \"refuse.zone\"",
            "activate request --node",
        ],
    );
    // An answer for another key: another request of the same node.
    refused(
        root,
        &install_args(&p("req-b"), &p("answer-a"), &p("bundle")),
        &["answer-a/pki/node.crt", "another key"],
    );
    // An answer for another node.
    refused(
        root,
        &install_args(&p("req-a"), &p("answer-c"), &p("bundle")),
        &[
            "answer-c/pki/node.crt",
            "another node",
            "\"client2.refuse.zone\"",
            "\"node1.refuse.zone\"",
        ],
    );
    // A request directory whose key is not its request's.
    fs::create_dir(p("req-mixed")).unwrap();
    fs::copy(p("req-a/request.csr"), p("req-mixed/request.csr")).unwrap();
    fs::copy(p("req-b/node.key"), p("req-mixed/node.key")).unwrap();
    refused(
        root,
        &install_args(&p("req-mixed"), &p("answer-a"), &p("bundle")),
        &["req-mixed/node.key", "not the key of"],
    );
    // An answer whose ca.crt holds more than zone roots (here the node CA too).
    fs::create_dir_all(p("answer-mixed/pki")).unwrap();
    for file in ["node.toml", "pki/node.crt"] {
        fs::copy(p("answer-a").join(file), p("answer-mixed").join(file)).unwrap();
    }
    let read = |rel: &str| fs::read_to_string(p(rel)).unwrap();
    let both = read("answer-a/pki/node.crt") + &read("answer-a/pki/ca.crt");
    fs::write(p("answer-mixed/pki/ca.crt"), both).unwrap();
    refused(
        root,
        &install_args(&p("req-a"), &p("answer-mixed"), &p("bundle")),
        &["answer-mixed/pki/ca.crt", "is not a root CA certificate"],
    );
    // A request whose signature does not verify.
    let csr = fs::read_to_string(p("req-a/request.csr")).unwrap();
    fs::write(p("bad.csr"), flip_signature_byte(&csr)).unwrap();
    refused(
        root,
        &answer("bad.csr", "answer-bad"),
        &["bad.csr", "signature does not verify"],
    );
    // An existing, non-empty --out, for each of the three.
    fs::create_dir(p("taken")).unwrap();
    fs::write(p("taken/something"), "x").unwrap();
    for args in [
        request_args("node1.refuse.zone", &p("taken")),
        answer("req-a/request.csr", "taken"),
        install_args(&p("req-a"), &p("answer-a"), &p("taken")),
    ] {
        refused(root, &args, &["taken", "not empty"]);
    }

    // What belongs together installs; the refused ones wrote nothing.
    run_ok(&install_args(&p("req-a"), &p("answer-a"), &p("bundle")));
    for never in ["answer-outside", "answer-bad"] {
        assert!(!p(never).exists(), "{never}");
    }
}

#[test]
fn an_answer_follows_the_nameservice_when_asked() {
    let dir = owner("follow.zone", &addresses::ACTIVATE_REQUEST.ip(4));
    let p = |rel: &str| dir.path().join(rel);
    let url: &str = &format!("http://{}:3456", addresses::ACTIVATE_REQUEST_DEAD.ip(1));
    let with_nameservice = |mut args: Vec<String>, url: &str| {
        args.extend(["--nameservice".to_string(), url.to_string()]);
        args
    };
    run_ok(&request_args("node1.follow.zone", &p("req")));
    let answer = answer_args(
        &p("ca"),
        &p("zone.toml"),
        &p("req/request.csr"),
        &p("answer"),
    );
    run_ok(&with_nameservice(answer, url));
    run_ok(&install_args(&p("req"), &p("answer"), &p("bundle")));
    let classic = activate_args(
        &text(&p("ca")),
        &text(&p("zone.toml")),
        "node1.follow.zone",
        &text(&p("classic")),
    );
    run_ok(&with_nameservice(classic, url));
    let config = fs::read_to_string(p("bundle/node.toml")).unwrap();
    assert_eq!(config, fs::read_to_string(p("classic/node.toml")).unwrap());
    let table: toml::Table = config.parse().unwrap();
    assert_eq!(table["nameservice"].as_str(), Some(url));
    assert!(!table.contains_key("etcd"), "no member list copy: {config}");
    // A bad URL is refused as `activate --node` refuses it.
    let answer = answer_args(
        &p("ca"),
        &p("zone.toml"),
        &p("req/request.csr"),
        &p("answer2"),
    );
    refused(
        dir.path(),
        &with_nameservice(answer, "ftp://nowhere"),
        &["--nameservice"],
    );
}
