//! Security checks, as a reviewer would run them:
//! - no private key material in any output or log line, across every command (passing and
//!   failing ones) and the log of a real etcd member;
//! - keys 0600 and every directory that leads to a key 0700, after every command;
//! - the TLS settings etcd gets: TLS 1.3 only (the strictest `--tls-min-version` etcd
//!   has), checked in the argv and with real handshakes against a live member.
//!
//! Subnet: `addresses::CORPUS` (the member is its .1; the bad-input corpus only names
//! addresses there, it listens on none).

use crate::common;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{bundled, s_client, zone_etcd, Running};
use zone_testkit::addresses;

const ZONE: &str = "sec.zone";
const MEMBER: &str = "node1.sec.zone";

/// The member's address.
fn address() -> String {
    addresses::CORPUS.ip(1)
}

/// What every command printed, for the final grep.
#[derive(Default)]
struct Transcript {
    outputs: Vec<(String, String)>,
    /// Body lines of every private key seen on disk at any step (rotation prunes some).
    key_lines: BTreeSet<String>,
    /// A key file the test itself opened up, to see a command refuse it.
    exempt: Option<PathBuf>,
}

impl Transcript {
    /// Runs zone-etcd with debug logging; returns success. Checks modes afterwards.
    fn run(&mut self, root: &Path, args: &[&str]) -> bool {
        let out = zone_etcd()
            .env("ZONE_ETCD_LOG", "debug")
            .args(args)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        self.outputs.push((args.join(" "), text));
        self.after_step(root, &args.join(" "));
        out.status.success()
    }

    fn ok(&mut self, root: &Path, args: &[&str]) {
        assert!(
            self.run(root, args),
            "zone-etcd {args:?} failed:\n{}",
            self.outputs.last().unwrap().1
        );
    }

    fn fails(&mut self, root: &Path, args: &[&str]) {
        assert!(
            !self.run(root, args),
            "zone-etcd {args:?} should have failed"
        );
    }

    fn after_step(&mut self, root: &Path, step: &str) {
        check_modes(root, step, self.exempt.as_deref());
        for key in private_files(root) {
            let text = fs::read_to_string(&key).unwrap_or_default();
            self.key_lines.extend(common::key_body_lines(&text));
        }
    }
}

/// Files under `root` that hold a private key (key files and the seed's JSON config).
fn private_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file()
                && meta.len() < 1 << 20
                && fs::read_to_string(&path).is_ok_and(|t| t.contains("PRIVATE KEY"))
            {
                out.push(path);
            }
        }
    }
    out
}

/// Every private key file 0600; every directory between `root` and a key 0700.
fn check_modes(root: &Path, step: &str, exempt: Option<&Path>) {
    for key in private_files(root) {
        if Some(key.as_path()) == exempt {
            continue;
        }
        let mode = fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "after `{step}`: {} is {mode:o}", key.display());
        let mut dir = key.parent();
        while let Some(d) = dir.filter(|d| *d != root) {
            let mode = fs::metadata(d).unwrap().permissions().mode() & 0o777;
            assert_eq!(
                mode,
                0o700,
                "after `{step}`: directory {} (holds {}) is {mode:o}",
                d.display(),
                key.display()
            );
            dir = d.parent();
        }
    }
}

/// The argv etcd gets (`launch --dry-run`), without the binary.
fn dry_run_args(config: &Path) -> Vec<String> {
    let out = common::run_ok(&["launch", "--config", config.to_str().unwrap(), "--dry-run"]);
    out.lines().skip(1).map(str::to_string).collect()
}

/// `--tls-min-version` as the bundled etcd documents it: its accepted values.
fn etcd_tls_min_versions() -> Option<String> {
    let out = Command::new(bundled("etcd"))
        .arg("--help")
        .output()
        .unwrap();
    let help =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let mut lines = help.lines();
    lines.find(|l| l.trim_start().starts_with("--tls-min-version"))?;
    lines.next().map(str::to_string)
}

#[test]
fn etcd_gets_tls_1_3_only_where_it_supports_the_flag() {
    let zone = common::zone_with_true_etcd(addresses::CORPUS.subnet());
    let args = dry_run_args(&zone.config(0));
    match etcd_tls_min_versions() {
        Some(values) => {
            // The bundled etcd takes TLS1.2 or TLS1.3: 1.3 is the strictest it allows.
            assert!(values.contains("TLS1.3"), "etcd --help: {values}");
            assert!(
                args.contains(&"--tls-min-version=TLS1.3".to_string()),
                "{args:?}"
            );
            // etcd refuses cipher suites with TLS 1.3 only (Go fixes the 1.3 suites).
            assert!(
                !args.iter().any(|a| a.starts_with("--cipher-suites")),
                "{args:?}"
            );
        }
        None => panic!("the bundled etcd has no --tls-min-version; zone-etcd passes it (an etcd without it refuses to start)"),
    }
    for flag in ["--client-cert-auth=true", "--peer-client-cert-auth=true"] {
        assert!(args.contains(&flag.to_string()), "{flag} missing: {args:?}");
    }
    let env = common::run_ok(&[
        "launch",
        "--config",
        zone.config(0).to_str().unwrap(),
        "--dry-run",
        "--format",
        "env",
    ]);
    assert!(env.contains("ETCD_TLS_MIN_VERSION=TLS1.3\n"), "{env}");
    assert!(!env.contains("ETCD_CIPHER_SUITES"), "{env}");
}

/// A handshake with rustls limited to `versions`; Ok(negotiated version) or Err(why).
fn rustls_handshake(
    addr: &str,
    ca: &Path,
    chain: &Path,
    key: &Path,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Result<String, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(chain)
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .unwrap()
    .with_root_certificates(roots)
    .with_client_auth_cert(certs, PrivateKeyDer::from_pem_file(key).unwrap())
    .unwrap();
    let mut conn = rustls::ClientConnection::new(
        Arc::new(config),
        ServerName::IpAddress(address().parse::<std::net::IpAddr>().unwrap().into()),
    )
    .unwrap();
    let mut sock = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).map_err(|e| e.to_string())?;
    }
    Ok(format!("{:?}", conn.protocol_version().unwrap()))
}

/// Every TLS version and suite etcd must refuse, and the ones every client of the zone
/// uses, against a live member's client and peer ports.
fn check_live_tls(tls: &Path) {
    let ca = tls.join("ca.crt");
    for (port, stem) in [(2379, "client"), (2380, "peer")] {
        let addr = format!("{}:{port}", address());
        let (cert, key) = (
            tls.join(format!("{stem}.crt")),
            tls.join(format!("{stem}.key")),
        );
        // Accepted: each TLS 1.3 suite (all ECDHE + AEAD).
        for suite in [
            "TLS_AES_128_GCM_SHA256",
            "TLS_AES_256_GCM_SHA384",
            "TLS_CHACHA20_POLY1305_SHA256",
        ] {
            let (done, text) = s_client(
                &addr,
                &ca,
                &cert,
                &key,
                &["-tls1_3", "-ciphersuites", suite],
            );
            assert!(done, "{addr}: TLS 1.3 with {suite} refused:\n{text}");
        }
        // Refused by the server (it answers a protocol_version alert): TLS 1.2 even
        // with the strongest ECDHE-ECDSA AEAD suite, a non-forward-secret suite, a CBC
        // suite, and TLS 1.1 and 1.0 (offered at security level 0 so openssl sends them).
        for options in [
            &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"][..],
            &["-tls1_2", "-cipher", "AES128-GCM-SHA256"],
            &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA"],
            &["-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"],
            &["-tls1", "-cipher", "DEFAULT:@SECLEVEL=0"],
        ] {
            let (done, text) = s_client(&addr, &ca, &cert, &key, options);
            assert!(!done, "{addr}: {options:?} accepted:\n{text}");
            assert!(
                text.contains("alert protocol version"),
                "{addr}: {options:?} not refused by the server's protocol_version alert:\n{text}"
            );
        }
        // rustls (our tests' client, and the etcd-client/tonic stack): 1.3 works, 1.2
        // alone is refused.
        let v13 = rustls_handshake(&addr, &ca, &cert, &key, &[&rustls::version::TLS13]);
        assert_eq!(v13.as_deref(), Ok("TLSv1_3"), "{addr}");
        let v12 = rustls_handshake(&addr, &ca, &cert, &key, &[&rustls::version::TLS12]);
        assert!(v12.is_err(), "{addr}: rustls TLS 1.2 accepted");
    }
}

fn etcdctl(tls: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(bundled("etcdctl"))
        .arg(format!("--endpoints=https://{}:2379", address()))
        .arg(format!("--cacert={}", tls.join("ca.crt").display()))
        .arg(format!("--cert={}", tls.join("client.crt").display()))
        .arg(format!("--key={}", tls.join("client.key").display()))
        .arg("--command-timeout=5s")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn every_command_keeps_keys_private_and_out_of_every_output() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let p = |rel: &str| root.join(rel).display().to_string();
    let mut t = Transcript::default();

    t.ok(root, &["ca", "init", "--zone", ZONE, "--out", &p("ca")]);
    // Least privilege, as every new zone has it, with the service `issue-client` asks for.
    fs::write(
        root.join("zone.toml"),
        format!(
            "{}\n[access]\nenforce = true\nnodes = [\"*\"]\n\n[[access.service]]\nname = \"svc\"\nnodes = [\"{MEMBER}\"]\nread_write = [\"svc/\"]\n",
            common::zone_toml(ZONE, &[(MEMBER, &address())])
        ),
    )
    .unwrap();
    t.ok(
        root,
        &[
            "bootstrap",
            "--ca",
            &p("ca"),
            "--zone",
            &p("zone.toml"),
            "--out",
            &p("nodes"),
        ],
    );
    // It says which keys must not stay here (issue 68): the member's signer key mints
    // identities of the zone, root among them.
    let said = &t.outputs.last().unwrap().1;
    assert!(
        said.contains("then delete it here: its pki/node.key and pki/signer.key act as that member (the signer mints identities of the zone, etcd's root among them)"),
        "{said}"
    );
    t.ok(
        root,
        &[
            "activate",
            "--ca",
            &p("ca"),
            "--zone",
            &p("zone.toml"),
            "--node",
            "app.sec.zone",
            "--out",
            &p("app"),
        ],
    );
    let said = &t.outputs.last().unwrap().1;
    assert!(
        said.contains("then delete it here: its pki/node.key acts as that node"),
        "{said}"
    );
    // Activation by request: the node's key, the owner's answer, the node's bundle; and
    // the install of another node's answer, refused.
    let (req, answer) = (p("laptop-req"), p("laptop-answer"));
    let csr = p("laptop-req/request.csr");
    let (ca, zone) = (p("ca"), p("zone.toml"));
    for args in [
        [
            "activate",
            "request",
            "--node",
            "laptop.sec.zone",
            "--out",
            &req,
        ]
        .as_slice(),
        &[
            "activate",
            "--ca",
            &ca,
            "--zone",
            &zone,
            "--request",
            &csr,
            "--out",
            &answer,
        ],
        &[
            "activate",
            "install",
            "--request",
            &req,
            "--answer",
            &answer,
            "--out",
            &p("laptop"),
        ],
    ] {
        t.ok(root, args);
    }
    let other_node = p("app");
    t.fails(
        root,
        &[
            "activate",
            "install",
            "--request",
            &req,
            "--answer",
            &other_node,
            "--out",
            &p("laptop2"),
        ],
    );
    t.ok(
        root,
        &[
            "zone",
            "sign",
            "--ca",
            &p("ca"),
            "--zone",
            &p("zone.toml"),
            "--out",
            &p("zone.json"),
        ],
    );
    let node = root.join("nodes").join(MEMBER);
    let config = node.join("node.toml").display().to_string();
    t.ok(root, &["launch", "--config", &config, "--dry-run"]);

    // A real member: its log (zone-etcd's launch lines, then etcd's) is grepped too.
    let mut cmd = zone_etcd();
    cmd.env("ZONE_ETCD_LOG", "debug")
        .args(["launch", "--config", &config]);
    let mut member = Running::spawn(cmd, &root.join("member.log"));
    t.after_step(root, "launch");
    let tls = node.join("state/tls/current");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !etcdctl(&tls, &["endpoint", "health"]).0 {
        if let Ok(Some(status)) = member.child.try_wait() {
            panic!("etcd exited ({status}):\n{}", member.log());
        }
        assert!(
            Instant::now() < deadline,
            "etcd not healthy:\n{}",
            member.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let (ok, out) = etcdctl(&tls, &["put", "k", "v"]);
    assert!(ok, "etcdctl put over TLS 1.3: {out}");
    check_live_tls(&tls);

    t.ok(root, &["env", "--config", &config]);
    t.ok(root, &["env", "--config", &config, "--format", "json"]);
    t.ok(root, &["env", "--config", &p("app/node.toml")]);
    t.ok(
        root,
        &[
            "issue-client",
            "--config",
            &config,
            "--name",
            "svc",
            "--out",
            &p("svc"),
        ],
    );
    t.ok(root, &["rotate", "--config", &config]);
    t.ok(root, &["rotate", "--config", &config, "--if-due"]);
    t.ok(root, &["check", "--config", &config]);
    t.ok(root, &["check", "--config", &config, "--json"]);
    t.ok(root, &["status", "--config", &config]);
    t.ok(root, &["status", "--config", &config, "--json"]);
    t.fails(root, &["leave", "--config", &config]); // the last member
    t.fails(root, &["join", "--config", &p("app/node.toml")]); // not a member
                                                               // After the rotation etcd serves the new set, still over TLS 1.3 only.
    assert!(etcdctl(&tls, &["get", "k"]).1.contains('v'));
    t.ok(
        root,
        &["trust", "--config", &config, "--ca", &p("ca/ca.crt")],
    );
    t.ok(
        root,
        &["ca", "rotate", "--ca", &p("ca"), "--out", &p("ca-next")],
    );
    t.ok(root, &["ca", "retire", "--ca", &p("ca-next")]);

    // Failing commands: their one line must not carry key material either.
    let seed = common::seed_json_config(&root.join("app"), &[]);
    fs::set_permissions(&seed, fs::Permissions::from_mode(0o644)).unwrap();
    t.exempt = Some(seed.clone());
    t.fails(root, &["env", "--config", seed.to_str().unwrap()]);
    fs::remove_file(&seed).unwrap();
    t.exempt = None;
    let node_key = node.join("pki/node.key");
    fs::copy(&node_key, node.join("pki/node.crt.bak")).unwrap();
    fs::set_permissions(
        node.join("pki/node.crt.bak"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    t.fails(
        root,
        &[
            "trust",
            "--config",
            &config,
            "--ca",
            &p(&format!("nodes/{MEMBER}/pki/node.crt.bak")),
        ],
    );
    fs::remove_file(node.join("pki/node.crt.bak")).unwrap();
    t.fails(
        root,
        &[
            "issue-client",
            "--config",
            &config,
            "--name",
            "root",
            "--out",
            &p("root-cert"),
        ],
    );
    t.fails(
        root,
        &[
            "bootstrap",
            "--ca",
            &p("ca"),
            "--zone",
            &p("ca/ca.key"),
            "--out",
            &p("x"),
        ],
    );
    t.fails(
        root,
        &[
            "zone",
            "sign",
            "--ca",
            &p("ca"),
            "--zone",
            &p("ca/ca.key"),
            "--out",
            &p("z.json"),
        ],
    );

    member.stop();
    let etcd_log = fs::read_to_string(root.join("member.log")).unwrap();
    assert!(
        etcd_log.contains("serving client traffic"),
        "the member log is etcd's:\n{etcd_log}"
    );
    t.outputs.push(("etcd member log".into(), etcd_log));

    assert!(
        t.key_lines.len() > 20,
        "the key files were found: {}",
        t.key_lines.len()
    );
    let mut leaks = Vec::new();
    for (what, text) in &t.outputs {
        if text.contains("PRIVATE KEY") {
            leaks.push(format!("{what}: prints \"PRIVATE KEY\""));
        }
        for line in &t.key_lines {
            if text.contains(line.as_str()) {
                leaks.push(format!("{what}: prints a line of a private key"));
                break;
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "key material in output:\n{}",
        leaks.join("\n")
    );
}
