//! Every bad input of the contract: one line on stderr naming the file and field and the
//! fix, a non-zero exit, and nothing on disk changed.

use crate::common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{activate_args, bootstrap_args, ca_init_args, run, snapshot, zone_toml, TestZone};
use zone_testkit::addresses;

/// Runs zone-etcd, expecting a refusal whose single line contains every `expected` part,
/// and that the tree under `dir` is exactly as before.
fn refused<S: AsRef<str> + std::fmt::Debug>(dir: &Path, args: &[S], expected: &[&str]) {
    let before = snapshot(dir);
    let (ok, stdout, stderr) = run(args);
    assert!(!ok, "zone-etcd {args:?} should fail; stdout: {stdout}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one line on stderr, got: {stderr}");
    let line = lines[0];
    assert!(line.starts_with("zone-etcd: error: "), "{line}");
    for part in expected {
        assert!(line.contains(part), "expected {part:?} in: {line}");
    }
    assert!(
        !line.contains("PRIVATE KEY"),
        "never print key material: {line}"
    );
    assert_eq!(
        snapshot(dir),
        before,
        "a failed command must change nothing on disk"
    );
}

/// The smallest good zone file.
fn one_member() -> String {
    zone_toml("example.zone", &[("node1.example.zone", "10.0.0.1")])
}

/// A directory with a zone CA of `ca_zone` in ca/, and a one-member zone file of
/// example.zone; returns the directory and the zone file.
fn ca_and_zone(ca_zone: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    common::run_ok(&ca_init_args(
        ca_zone,
        dir.path().join("ca").to_str().unwrap(),
    ));
    let zone = dir.path().join("zone.toml");
    fs::write(&zone, one_member()).unwrap();
    (dir, zone)
}

/// Bootstraps from zone file `text` and expects it refused.
fn bootstrap_refused(text: &str, expected: &[&str]) {
    let (dir, zone) = ca_and_zone("example.zone");
    fs::write(&zone, text).unwrap();
    let zone_s = zone.to_str().unwrap();
    let mut all = vec![zone_s];
    all.extend_from_slice(expected);
    refused(
        dir.path(),
        &bootstrap_args(
            dir.path().join("ca").to_str().unwrap(),
            zone_s,
            dir.path().join("nodes").to_str().unwrap(),
        ),
        &all,
    );
}

fn two(a: (&str, &str), b: (&str, &str)) -> String {
    zone_toml("example.zone", &[a, b])
}

#[test]
fn duplicate_node_names() {
    bootstrap_refused(
        &two(
            ("node1.example.zone", "10.0.0.1"),
            ("node1.example.zone", "10.0.0.2"),
        ),
        &[
            "etcd #2 node_name",
            "\"node1.example.zone\" is used by etcd #1 already",
            "fix: give every member its own node name",
        ],
    );
}

#[test]
fn port_outside_range() {
    let text = one_member().replace("peer_port = 2380", "peer_port = 70000");
    bootstrap_refused(
        &text,
        &[
            "etcd #1 peer_port",
            "port 70000 is outside 1-65535",
            "fix: use a port from 1 to 65535",
        ],
    );
    let text = one_member().replace("client_port = 2379", "client_port = 0");
    bootstrap_refused(&text, &["etcd #1 client_port", "port 0 is outside 1-65535"]);
}

#[test]
fn same_address_and_port_twice() {
    bootstrap_refused(
        &two(
            ("node1.example.zone", "10.0.0.1"),
            ("node2.example.zone", "10.0.0.1"),
        ),
        &[
            "etcd #2 peer_port",
            "10.0.0.1:2380 is already used by etcd #1 peer_port",
        ],
    );
}

#[test]
fn empty_member_list() {
    bootstrap_refused(
        "name = \"example.zone\"\netcd = []\n",
        &[
            "etcd: the etcd member list is empty",
            "fix: add at least one [[etcd]]",
        ],
    );
    bootstrap_refused(
        "name = \"example.zone\"\n",
        &["etcd: the etcd member list is empty"],
    );
}

#[test]
fn unknown_protocol_and_a_cyfs_member_with_an_address() {
    let base = one_member();
    bootstrap_refused(
        &base.replace("\"https\"", "\"gopher\""),
        &[
            "etcd #1 protocol",
            "unknown protocol \"gopher\"",
            "use protocol = \"https\"",
        ],
    );
    // A cyfs member is reached through the gateway at 127.0.0.1: an address is refused.
    bootstrap_refused(
        &base.replace("\"https\"", "\"cyfs\""),
        &[
            "etcd #1 address",
            "a cyfs member is reached only through the zone gateway",
            "fix: leave address empty for a cyfs member",
        ],
    );
}

#[test]
fn node_name_not_a_dns_name() {
    bootstrap_refused(
        &zone_toml("example.zone", &[("node_1.example.zone", "10.0.0.1")]),
        &[
            "etcd #1 node_name",
            "is not a DNS name",
            "'_' is not allowed",
        ],
    );
    // And on the command line of activate.
    let (dir, zone) = ca_and_zone("example.zone");
    refused(
        dir.path(),
        &activate_args(
            dir.path().join("ca").to_str().unwrap(),
            zone.to_str().unwrap(),
            "Node 9",
            dir.path().join("n9").to_str().unwrap(),
        ),
        &["--node", "uppercase"],
    );
}

#[test]
fn syntax_errors_name_the_line() {
    bootstrap_refused(
        "name = \"example.zone\"\n[[etcd]]\nnode_name = node1\n",
        &["line 3", "invalid TOML"],
    );
    bootstrap_refused(
        "name = \"example.zone\"\n[[etcd]]\nnode_name = \"node1.example.zone\"\npeer_port = \"2380\"\n",
        &["line 4", "invalid TOML", "expected i64"],
    );
}

/// The warning lines of a run's stderr.
fn warnings(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains(" WARN ")).collect()
}

/// A key this release does not know (a newer release's, or a typo) is not a refusal
/// (issue 50, item 4): one warning line names the file, the key and both fixes, and the
/// command goes on; every other mistake is refused as before, an unknown key of
/// `[settings]` included.
#[test]
fn unknown_keys_are_warned_about_and_the_command_goes_on() {
    let (dir, zone) = ca_and_zone("example.zone");
    fs::write(
        &zone,
        one_member() + "peer_prot = 2381\n\n[dns]\nttl = 60\n",
    )
    .unwrap();
    let ca = dir.path().join("ca");
    let out = dir.path().join("nodes");
    let (ok, _, stderr) = run(&bootstrap_args(
        ca.to_str().unwrap(),
        zone.to_str().unwrap(),
        out.to_str().unwrap(),
    ));
    assert!(ok, "{stderr}");
    let lines = warnings(&stderr);
    assert_eq!(lines.len(), 2, "{stderr}");
    let zone_s = zone.display().to_string();
    for key in ["etcd #1 peer_prot", "dns"] {
        let line = format!(
            "{zone_s}: {key}: unknown key, ignored: either a key of a newer zone-etcd release"
        );
        assert!(
            lines.iter().any(|l| l.contains(&line)),
            "{line} in {stderr}"
        );
    }
    assert!(
        lines[0].contains(&format!(
            "fix: remove it from {zone_s}, or upgrade this node's zone-etcd"
        )),
        "{}",
        lines[0]
    );
    assert!(!stderr.contains("zone-etcd: error"), "{stderr}");
    // What a newer `activate` might write into node.toml: read past, said once however
    // often the command reads the file.
    let config = out.join("node1.example.zone/node.toml");
    let node = fs::read_to_string(&config).unwrap();
    assert!(
        !node.contains("peer_prot") && !node.contains("dns"),
        "{node}"
    );
    let newer = format!("listen_address = \"127.0.0.1\"\nraft_log = \"fast\"\n{node}");
    fs::write(&config, &newer).unwrap();
    let dry_run = ["launch", "--dry-run", "--config", config.to_str().unwrap()];
    let (ok, _, stderr) = run(&dry_run);
    assert!(ok, "{stderr}");
    let lines = warnings(&stderr);
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].contains(&format!(
            "{}: raft_log: unknown key, ignored",
            config.display()
        )),
        "{}",
        lines[0]
    );
    // A key [settings] does not have is still refused, a security-sensitive one saying so.
    let local = format!("listen_address = \"127.0.0.1\"\n{node}");
    fs::write(
        &config,
        format!("{local}\n[settings]\ncipher_suites = \"x\"\n"),
    )
    .unwrap();
    refused(
        &out,
        &dry_run,
        &["node.toml", "settings.cipher_suites", "cannot be set"],
    );
}

#[test]
fn missing_and_unreadable_files() {
    let (dir, zone) = ca_and_zone("example.zone");
    let ca = dir.path().join("ca");
    let nodes = dir.path().join("nodes");
    let args = |ca: &Path, zone: &Path| {
        bootstrap_args(
            ca.to_str().unwrap(),
            zone.to_str().unwrap(),
            nodes.to_str().unwrap(),
        )
    };
    let missing = dir.path().join("no-such-zone.toml");
    refused(
        dir.path(),
        &args(&ca, &missing),
        &[
            missing.to_str().unwrap(),
            "cannot read: No such file or directory",
        ],
    );
    // A directory where a file should be (root can read any file, so this is the
    // unreadable case that holds for every user).
    refused(
        dir.path(),
        &args(&ca, &ca),
        &[ca.to_str().unwrap(), "is a directory"],
    );
    // Not UTF-8.
    let binary = dir.path().join("zone.bin");
    fs::write(&binary, [0xff, 0xfe, 0x00, 0x80]).unwrap();
    refused(
        dir.path(),
        &args(&ca, &binary),
        &[binary.to_str().unwrap(), "not UTF-8"],
    );
    // A missing CA directory.
    refused(
        dir.path(),
        &args(&dir.path().join("no-ca"), &zone),
        &["no-ca/ca.crt", "No such file"],
    );
}

fn launch_refused(zone: &TestZone, index: usize, expected: &[&str]) {
    refused(
        zone.dir.path(),
        &["launch", "--config", zone.config(index).to_str().unwrap()],
        expected,
    );
}

#[test]
fn node_key_not_matching_node_certificate() {
    let zone = TestZone::bootstrap("example.zone", addresses::BAD_INPUT_KEY.subnet(), 2);
    fs::copy(
        zone.node_dir(1).join("pki/node.key"),
        zone.node_dir(0).join("pki/node.key"),
    )
    .unwrap();
    let key = zone.node_dir(0).join("pki/node.key");
    launch_refused(
        &zone,
        0,
        &[
            &format!("{}: key: ", key.display()),
            "does not match the node certificate \"node1.example.zone\"",
            "fix: restore node.key",
        ],
    );
}

#[test]
fn node_certificate_not_signed_by_the_zone_ca() {
    let zone = TestZone::bootstrap(
        "example.zone",
        addresses::BAD_INPUT_FOREIGN_CERT.subnet(),
        1,
    );
    let other = tempfile::tempdir().unwrap();
    common::run_ok(&ca_init_args(
        "example.zone",
        other.path().join("ca").to_str().unwrap(),
    ));
    fs::copy(
        other.path().join("ca/ca.crt"),
        zone.node_dir(0).join("pki/ca.crt"),
    )
    .unwrap();
    let cert = zone.node_dir(0).join("pki/node.crt");
    launch_refused(
        &zone,
        0,
        &[
            cert.to_str().unwrap(),
            "is not signed by the zone CA",
            "fix: re-activate",
        ],
    );
}

#[test]
fn key_file_readable_by_group_or_others() {
    let zone = TestZone::bootstrap("example.zone", addresses::BAD_INPUT_KEY_MODE.subnet(), 1);
    let key = zone.node_dir(0).join("pki/node.key");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o640)).unwrap();
    launch_refused(
        &zone,
        0,
        &[
            key.to_str().unwrap(),
            "mode 0640",
            &format!("fix: chmod 600 {}", key.display()),
        ],
    );
    fs::set_permissions(&key, fs::Permissions::from_mode(0o604)).unwrap();
    launch_refused(&zone, 0, &["mode 0604", "chmod 600"]);
}

#[test]
fn existing_ca_and_non_empty_out_are_never_overwritten() {
    let zone = TestZone::bootstrap("example.zone", addresses::BAD_INPUT_OVERWRITE.subnet(), 1);
    let ca = zone.path("ca");
    refused(
        zone.dir.path(),
        &ca_init_args("example.zone", ca.to_str().unwrap()),
        &["already holds a zone CA", "refusing to overwrite"],
    );
    refused(
        zone.dir.path(),
        &bootstrap_args(
            ca.to_str().unwrap(),
            zone.path("zone.toml").to_str().unwrap(),
            zone.path("nodes").to_str().unwrap(),
        ),
        &["nodes", "not empty", "refusing to overwrite"],
    );
}

#[test]
fn a_ca_of_another_zone_is_refused() {
    let (dir, zone) = ca_and_zone("other.zone");
    refused(
        dir.path(),
        &bootstrap_args(
            dir.path().join("ca").to_str().unwrap(),
            zone.to_str().unwrap(),
            dir.path().join("nodes").to_str().unwrap(),
        ),
        &[
            "ca.crt",
            "root CA of zone \"other.zone\"",
            "names zone \"example.zone\"",
        ],
    );
}

#[test]
fn a_node_activated_as_client_cannot_launch_as_member() {
    // The owner later adds the node to the member list in its node.toml by hand: its CA
    // cannot issue peer certificates, and launch says how to fix it.
    let zone = TestZone::bootstrap("example.zone", addresses::BAD_INPUT_CLIENT.subnet(), 1);
    let out = zone.path("late");
    common::run_ok(&activate_args(
        zone.path("ca").to_str().unwrap(),
        zone.path("zone.toml").to_str().unwrap(),
        "late.example.zone",
        out.to_str().unwrap(),
    ));
    let config = out.join("node.toml");
    let text = fs::read_to_string(&config).unwrap()
        + &format!(
            "\n[[etcd]]\nnode_name = \"late.example.zone\"\naddress = \"{}\"\n",
            addresses::BAD_INPUT_CLIENT.ip(9)
        );
    fs::write(&config, text).unwrap();
    refused(
        zone.dir.path(),
        &["launch", "--config", config.to_str().unwrap()],
        &[
            "cert",
            "was activated when it was not an etcd member",
            "fix: re-activate",
        ],
    );
}

#[test]
fn nameservice_urls_that_are_not_http_base_urls() {
    let (dir, zone) = ca_and_zone("example.zone");
    let ca = dir.path().join("ca");
    let out = dir.path().join("node1");
    let mut args = activate_args(
        ca.to_str().unwrap(),
        zone.to_str().unwrap(),
        "node1.example.zone",
        out.to_str().unwrap(),
    );
    args.extend(["--nameservice".into(), "ftp://127.0.0.1:3456".into()]);
    refused(
        dir.path(),
        &args,
        &["--nameservice: \"ftp://127.0.0.1:3456\" is not an http:// or https:// URL"],
    );

    // A node config edited to a URL with a query: named with its field.
    common::run_ok(&activate_args(
        ca.to_str().unwrap(),
        zone.to_str().unwrap(),
        "node1.example.zone",
        out.to_str().unwrap(),
    ));
    let config = out.join("node.toml");
    let text = fs::read_to_string(&config).unwrap();
    fs::write(
        &config,
        format!("nameservice = \"http://127.0.0.1:3456/resolve?name=x\"\n{text}"),
    )
    .unwrap();
    refused(
        dir.path(),
        &["launch", "--config", config.to_str().unwrap()],
        &[
            "node.toml: nameservice: ",
            "is not a base URL",
            "fix: write the nameservice's base URL",
        ],
    );
}

#[test]
fn issue_client_refuses_names_that_speak_for_someone_else() {
    let zone = TestZone::bootstrap(
        "example.zone",
        addresses::BAD_INPUT_CLIENT_NAMES.subnet(),
        2,
    );
    let config = zone.config(0);
    let out = zone.path("svc");
    for (name, expected) in [
        ("root", "etcd maps CN root to its superuser"),
        ("etcd-peer.example.zone", "the zone's peer name"),
        ("node2.example.zone", "the name of a node of the zone"),
        ("Bad Name", "is not a service name"),
    ] {
        refused(
            zone.dir.path(),
            &[
                "issue-client",
                "--config",
                config.to_str().unwrap(),
                "--name",
                name,
                "--out",
                out.to_str().unwrap(),
            ],
            &["--name: ", expected, "fix: choose the service's own name"],
        );
    }
}

/// `[access]` (issue 34's policy): a policy that would give one service another's keys,
/// zone-etcd's own keys or an unknown node's identity is refused by `bootstrap` in one
/// line naming the key, nothing written; a good one goes into every member's node.toml and
/// into the signed zone document.
#[test]
fn an_access_policy_is_checked_whole_and_carried_to_the_members() {
    let photos = "[[access.service]]\nname = \"photos\"\nnodes = [\"nas.example.zone\"]\nread_write = [\"apps/photos/\"]\n";
    let with = |rest: &str| {
        format!(
            "{}\n[access]\nnodes = [\"nas.example.zone\"]\n\n{rest}",
            one_member()
        )
    };
    bootstrap_refused(
        &with(&format!("{photos}\n[[access.service]]\nname = \"apps\"\nnodes = [\"nas.example.zone\"]\nread_write = [\"apps/\"]\n")),
        &["access.service[1].read_write", "\"apps/\" overlaps \"apps/photos/\" of photos", "fix: "],
    );
    bootstrap_refused(
        &with("[[access.service]]\nname = \"spy\"\nnodes = [\"nas.example.zone\"]\nread = [\"zone-etcd/\"]\n"),
        &["access.service[0].read", "zone-etcd's own keys"],
    );
    bootstrap_refused(
        &with("[[access.service]]\nname = \"photos\"\nnodes = [\"pi.example.zone\"]\nread_write = [\"apps/photos/\"]\n"),
        &["access.service[0].nodes", "pi.example.zone is neither an etcd member"],
    );
    bootstrap_refused(
        &with(photos).replace("[access]\n", "[access]\nenforce = \"yes\"\n"),
        &["access.enforce", "true or false"],
    );
    bootstrap_refused(
        &with("[[access.service]]\nname = \"photos\"\nnodes = [\"nas.example.zone\"]\nread_write = [\"/\"]\n"),
        &["access.service[0].read_write", "every key that starts with '/'"],
    );

    let (dir, zone) = ca_and_zone("example.zone");
    fs::write(&zone, with(photos)).unwrap();
    let ca = dir.path().join("ca");
    let out = dir.path().join("nodes");
    common::run_ok(&bootstrap_args(
        ca.to_str().unwrap(),
        zone.to_str().unwrap(),
        out.to_str().unwrap(),
    ));
    let node = fs::read_to_string(out.join("node1.example.zone/node.toml")).unwrap();
    assert!(
        node.contains("[access]") && node.contains("apps/photos/"),
        "{node}"
    );
    let doc = dir.path().join("zone.json");
    common::run_ok(&[
        "zone",
        "sign",
        "--ca",
        ca.to_str().unwrap(),
        "--zone",
        zone.to_str().unwrap(),
        "--out",
        doc.to_str().unwrap(),
    ]);
    let doc: serde_json::Value = serde_json::from_str(&fs::read_to_string(&doc).unwrap()).unwrap();
    assert_eq!(
        doc["extend"]["access"]["service"][0]["name"], "photos",
        "{doc}"
    );
    // The member reads it back from its node.toml (checked again there): a launch's dry
    // run takes it; the same bundle with the grant edited into zone-etcd's keys does not.
    let config = out.join("node1.example.zone/node.toml");
    let local = format!("listen_address = \"127.0.0.1\"\n{node}");
    fs::write(&config, &local).unwrap();
    let dry_run = ["launch", "--dry-run", "--config", config.to_str().unwrap()];
    let (ok, _, err) = run(&dry_run);
    assert!(ok, "{err}");
    fs::write(&config, local.replace("apps/photos/", "zone-etcd/x/")).unwrap();
    refused(
        &out,
        &dry_run,
        &[
            "node.toml",
            "access.service[0].read_write",
            "zone-etcd's own keys",
        ],
    );
    // The identities' files: the client CA beside the zone root (key 0600), a member's
    // signer in its bundle (key 0600), named by node.toml; a signer that is not the
    // client CA's, or one without the client CA, is refused naming the field.
    let mode = |p: &std::path::Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&ca.join("client-ca.key")), 0o600);
    let bundle = out.join("node1.example.zone");
    assert_eq!(mode(&bundle.join("pki/signer.key")), 0o600);
    for line in [
        "client_ca = \"pki/client-ca.crt\"",
        "signer = \"pki/signer.crt\"",
        "signer_key = \"pki/signer.key\"",
    ] {
        assert!(node.contains(line), "{line}: {node}");
    }
    fs::write(&config, &local).unwrap();
    let signer = fs::read(bundle.join("pki/signer.crt")).unwrap();
    fs::copy(bundle.join("pki/ca.crt"), bundle.join("pki/signer.crt")).unwrap();
    refused(&out, &dry_run, &["pki/signer.crt", "signer: ", "fix: "]);
    fs::write(bundle.join("pki/signer.crt"), signer).unwrap();
    fs::write(
        &config,
        local.replace("client_ca = \"pki/client-ca.crt\"\n", ""),
    )
    .unwrap();
    refused(&out, &dry_run, &["node.toml", "client_ca", "fix: "]);
}

/// A node that is not a member, in a zone of least privilege whose members are all cyfs
/// members (their gateways carry only the peer and client ports), can get no identity:
/// `env` says so in one line with a fix that works, not "no member answered".
#[test]
fn a_node_whose_zone_has_only_cyfs_members_is_told_why_it_gets_no_identity() {
    let (dir, zone) = ca_and_zone("example.zone");
    let text = "name = \"example.zone\"\n\n[[etcd]]\nnode_name = \"home1.example.zone\"\nprotocol = \"cyfs\"\npeer_port = 2480\nclient_port = 2479\n\n[[etcd]]\nnode_name = \"home2.example.zone\"\nprotocol = \"cyfs\"\npeer_port = 2580\nclient_port = 2579\n";
    fs::write(&zone, text).unwrap();
    let bundle = dir.path().join("nas");
    common::run_ok(&activate_args(
        dir.path().join("ca").to_str().unwrap(),
        zone.to_str().unwrap(),
        "nas.example.zone",
        bundle.to_str().unwrap(),
    ));
    let (ok, _, stderr) = run(&[
        "env",
        "--config",
        bundle.join("node.toml").to_str().unwrap(),
    ]);
    assert!(!ok);
    let line = common::one_error_line(&stderr);
    assert!(
        line.contains("every other member of zone example.zone is a cyfs member")
            && line.contains("protocol = \"https\""),
        "{line}"
    );
}
