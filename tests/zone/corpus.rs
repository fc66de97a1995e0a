//! The bad-input corpus: every directory of tests/corpus/ is one malformed or hostile input
//! with the refusal it must get (its `case.toml`). One test runs them all and, for each,
//! requires: a non-zero exit that is not a panic or a signal, exactly one stderr line
//! `zone-etcd: error: ...` naming the input's path and the field, no key material in any
//! output, and no file changed. Every failing case is reported at once, by name.
//!
//! A key this release does not know is not a refusal (issue 50, item 4: a newer release
//! may have written it): a case with `outcome = "accepted"` must exit 0 with a warning
//! line naming the input's path and its `expect` parts, and no error line (the command
//! does its work, so files change); a refused case whose input also holds such a key
//! names the warning's parts in `warns`, and no other case may warn.
//!
//! Inputs that cannot be static (certificates relative to now, links, FIFOs, huge files)
//! are made at run time by the generator the case names; what goes where and what must be
//! said still lives in the corpus. No etcd runs: the member fixture execs a stand-in.
//! Subnet: `addresses::CORPUS` (addresses only; nothing listens).

use crate::common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::Deserialize;
use time::OffsetDateTime;
use zone_model::config::zone::Member;
use zone_model::settings::Settings;
use zone_pki::{Authority, Host, LeafKind, NodeIdentity};

use common::{activate_args, bootstrap_args, run_ok, snapshot, zone_etcd};
use zone_testkit::addresses;

const ZONE: &str = "example.zone";
const NODE: &str = "node1.example.zone";

/// The member's address, the one the corpus's files name.
fn address() -> String {
    addresses::CORPUS.ip(1)
}

/// Where the nameservice fixture's node looks: nothing listens there, so it falls back
/// to its cached document at once (connection refused).
fn dead_nameservice() -> String {
    format!("http://{}:9", address())
}

const CASE_TIMEOUT: Duration = Duration::from_secs(30);

/// One case.toml.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    /// What is wrong with the input, for a reader of the corpus.
    about: String,
    /// The valid setup the input is put into: see [`Fixtures`].
    fixture: String,
    /// A file of the case's directory copied to `place`...
    input: Option<String>,
    /// ...or an input made at run time by the generator of that name (see [`generate`]).
    generate: Option<String>,
    /// For the `link` generator: where the link points.
    target: Option<String>,
    /// Where the input goes (a placeholder path: replaces the fixture's file).
    place: String,
    /// The input file's mode (default 0644; 0600 for keys).
    mode: Option<u32>,
    /// The command line after `zone-etcd`, with placeholders.
    args: Vec<String>,
    /// The path the error must name; default `place`.
    names: Option<String>,
    /// Further parts the error line must contain: the field, the problem (with
    /// `outcome = "accepted"`: the warning line).
    expect: Vec<String>,
    /// `refused` (the default) or `accepted` (a warning, exit 0).
    outcome: Option<String>,
    /// A refused case's warning line (a key this release does not know): its parts.
    warns: Option<Vec<String>>,
}

/// A warning line of zone-etcd's log (`<time>  WARN <message>`).
fn is_warning(line: &str) -> bool {
    line.contains(" WARN ")
}

#[test]
fn every_corpus_case_is_refused_cleanly() {
    let corpus = common::repo().join("tests/corpus");
    let mut names: Vec<PathBuf> = fs::read_dir(&corpus)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("case.toml").is_file())
        .collect();
    names.sort();
    assert!(
        names.len() >= 40,
        "the corpus has {} cases, fewer than 40",
        names.len()
    );
    let fixtures = Fixtures::build();
    let mut failures = Vec::new();
    let started = Instant::now();
    for dir in &names {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let text = fs::read_to_string(dir.join("case.toml")).unwrap();
        let result = toml::from_str::<Case>(&text)
            .map_err(|e| format!("case.toml: {e}"))
            .and_then(|case| run_case(&fixtures, dir, &case));
        if let Err(why) = result {
            failures.push(format!("{name}: {why}"));
        }
    }
    eprintln!(
        "corpus: {} cases in {:.1}s",
        names.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} of {} corpus cases failed:\n{}",
        failures.len(),
        names.len(),
        failures.join("\n")
    );
}

/// Sets up the case in a fresh copy of its fixture, runs it, and checks the refusal.
fn run_case(fixtures: &Fixtures, case_dir: &Path, case: &Case) -> Result<(), String> {
    if case.about.trim().is_empty() || case.expect.is_empty() {
        return Err("a case needs `about` and at least one `expect`".into());
    }
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    fixtures.copy(&case.fixture, dir)?;
    let mut vars = Vars::new(dir);
    let place = PathBuf::from(vars.fill(&case.place));
    vars.0.insert("input", place.display().to_string());
    match (&case.input, &case.generate) {
        (Some(input), None) => {
            let _ = fs::remove_file(&place);
            fs::copy(case_dir.join(input), &place).map_err(|e| format!("input {input}: {e}"))?;
        }
        (None, Some(generator)) => {
            let target = case.target.as_deref().map(|t| vars.fill(t));
            generate(generator, &place, target.as_deref(), &vars)?;
        }
        _ => return Err("give exactly one of `input` and `generate`".into()),
    }
    if let Some(mode) = case.mode {
        fs::set_permissions(&place, fs::Permissions::from_mode(mode)).unwrap();
    }
    let args: Vec<String> = case.args.iter().map(|a| vars.fill(a)).collect();
    let must_name = case
        .names
        .as_deref()
        .map(|n| vars.fill(n))
        .unwrap_or_else(|| place.display().to_string());

    let accepted = match case.outcome.as_deref() {
        None | Some("refused") => false,
        Some("accepted") => true,
        Some(other) => return Err(format!("outcome {other:?}: `refused` or `accepted`")),
    };

    let secrets = key_lines(dir);
    let before = snapshot(dir);
    let (code, stdout, stderr) = run_bounded(&args)?;
    let after = snapshot(dir);

    let mut problems = Vec::new();
    match code {
        Some(0) if !accepted => problems.push("exited 0".to_string()),
        Some(0) => {}
        Some(101) => problems.push("panicked (exit 101)".to_string()),
        None => problems.push("killed by a signal".to_string()),
        Some(code) if accepted => problems.push(format!("exited {code}")),
        Some(_) => {}
    }
    if stderr.contains("panicked") {
        problems.push("panicked".into());
    }
    let (warnings, lines): (Vec<&str>, Vec<&str>) = stderr.lines().partition(|l| is_warning(l));
    let expected_warning: Vec<&str> = if accepted {
        case.expect.iter().map(String::as_str).collect()
    } else {
        case.warns.iter().flatten().map(String::as_str).collect()
    };
    if accepted && lines.iter().any(|l| l.starts_with("zone-etcd: error: ")) {
        problems.push("an error line, where only a warning was expected".into());
    }
    if !accepted && (lines.len() != 1 || !lines[0].starts_with("zone-etcd: error: ")) {
        problems.push(format!(
            "expected one line `zone-etcd: error: ...` on stderr, got {} lines",
            lines.len()
        ));
    }
    if !accepted {
        let error = lines.first().copied().unwrap_or_default();
        for part in
            std::iter::once(must_name.as_str()).chain(case.expect.iter().map(String::as_str))
        {
            if !error.contains(part) {
                problems.push(format!("the error does not contain {part:?}"));
            }
        }
    }
    if expected_warning.is_empty() && !warnings.is_empty() {
        problems.push(format!("{} warning lines, none expected", warnings.len()));
    }
    if !expected_warning.is_empty() {
        let warned = warnings.iter().any(|w| {
            std::iter::once(must_name.as_str())
                .chain(expected_warning.iter().copied())
                .all(|part| w.contains(part))
        });
        if !warned {
            problems.push(format!(
                "no warning line contains {must_name:?} and {expected_warning:?}"
            ));
        }
    }
    let output = format!("{stdout}{stderr}");
    if output.contains("PRIVATE KEY") || secrets.iter().any(|line| output.contains(line)) {
        problems.push("key material in the output".into());
    }
    if before != after && !accepted {
        let changed: Vec<String> = before
            .keys()
            .chain(after.keys())
            .filter(|k| before.get(*k) != after.get(*k))
            .map(|k| k.display().to_string())
            .collect();
        problems.push(format!("files changed: {}", changed.join(", ")));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}\n    zone-etcd {}\n    stderr: {}",
            problems.join("; "),
            args.join(" "),
            stderr.trim_end().replace('\n', "\n            ")
        ))
    }
}

/// Runs zone-etcd, killing it (by its PID) if it outlives [`CASE_TIMEOUT`]. Returns the
/// exit code (`None` for a signal), stdout and stderr.
fn run_bounded(args: &[String]) -> Result<(Option<i32>, String, String), String> {
    let mut child = zone_etcd()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start zone-etcd: {e}"))?;
    let deadline = Instant::now() + CASE_TIMEOUT;
    loop {
        if child.try_wait().map_err(|e| e.to_string())?.is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("hung: still running after {CASE_TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    Ok((
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// The base64 body lines of every private key under `dir` (files and inline PEM): none
/// may appear in any output.
fn key_lines(dir: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for (path, (_, bytes)) in snapshot(dir) {
        let text = String::from_utf8_lossy(&bytes);
        if !text.contains("PRIVATE KEY") || path.extension().is_some_and(|e| e == "crt") {
            continue;
        }
        lines.extend(common::key_body_lines(&text));
    }
    lines
}

/// The placeholders of case.toml: {dir} (the case's root), {ca}, {node} (the node's
/// bundle), {config}, {state}, {pki}, and {input} (where the input was put).
struct Vars(BTreeMap<&'static str, String>);

impl Vars {
    fn new(dir: &Path) -> Vars {
        let node = dir.join("nodes").join(NODE);
        let mut map = BTreeMap::new();
        map.insert("dir", dir.display().to_string());
        map.insert("ca", dir.join("ca").display().to_string());
        map.insert("node", node.display().to_string());
        map.insert("config", node.join("node.toml").display().to_string());
        map.insert("state", node.join("state").display().to_string());
        map.insert("pki", node.join("pki").display().to_string());
        Vars(map)
    }

    fn fill(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (name, value) in &self.0 {
            out = out.replace(&format!("{{{name}}}"), value);
        }
        out
    }

    fn path(&self, name: &str) -> PathBuf {
        PathBuf::from(&self.0[name])
    }
}

/// Valid setups, made once and copied for each case (paths in node.toml are relative):
/// - `ca`: ca/ (zone CA of example.zone) and zone.toml with one member;
/// - `member`: plus the bundle nodes/node1.example.zone/ (etcd_bin = the stand-in), launched
///   once, so its state holds a leaf set;
/// - `nameservice`: like `member`, but the node follows a dead nameservice and lives on
///   its cached, signed state/zone.json;
/// - `external`: like `member`, with [external] leaves in ext/ issued by the node CA.
struct Fixtures {
    root: tempfile::TempDir,
}

impl Fixtures {
    fn build() -> Fixtures {
        let root = tempfile::tempdir().unwrap();
        let ca_fixture = root.path().join("ca");
        fs::create_dir(&ca_fixture).unwrap();
        common::ca_init_previous_kind(ZONE, ca_fixture.join("ca").to_str().unwrap());
        fs::write(
            ca_fixture.join("zone.toml"),
            common::zone_toml(ZONE, &[(NODE, &address())]),
        )
        .unwrap();

        let member = root.path().join("member");
        copy_tree(&ca_fixture, &member);
        let vars = Vars::new(&member);
        run_ok(&bootstrap_args(
            &vars.0["ca"],
            member.join("zone.toml").to_str().unwrap(),
            member.join("nodes").to_str().unwrap(),
        ));
        common::use_stand_in_etcd(&vars.path("config"));
        run_ok(&["launch", "--config", &vars.0["config"]]);

        let nameservice = root.path().join("nameservice");
        copy_tree(&ca_fixture, &nameservice);
        let vars = Vars::new(&nameservice);
        let mut args = activate_args(
            &vars.0["ca"],
            nameservice.join("zone.toml").to_str().unwrap(),
            NODE,
            &vars.0["node"],
        );
        args.extend(["--nameservice".into(), dead_nameservice()]);
        run_ok(&args);
        common::use_stand_in_etcd(&vars.path("config"));
        fs::create_dir(vars.path("state")).unwrap();
        fs::set_permissions(vars.path("state"), fs::Permissions::from_mode(0o700)).unwrap();
        run_ok(&[
            "zone",
            "sign",
            "--ca",
            &vars.0["ca"],
            "--zone",
            nameservice.join("zone.toml").to_str().unwrap(),
            "--out",
            &format!("{}/zone.json", vars.0["state"]),
        ]);
        run_ok(&["launch", "--config", &vars.0["config"]]);

        let external = root.path().join("external");
        copy_tree(&member, &external);
        let vars = Vars::new(&external);
        let ext = vars.path("node").join("ext");
        fs::create_dir(&ext).unwrap();
        let node_ca = node_authority(&vars);
        for kind in LeafKind::ALL {
            let issued = node_ca.issue_leaf(kind, &identity(), None).unwrap();
            write_pair(&ext.join(kind.file_stem()), &issued);
        }
        let mut config = fs::read_to_string(vars.path("config")).unwrap();
        config += "\n[external]\n";
        for kind in LeafKind::ALL {
            let stem = kind.file_stem();
            config +=
                &format!("{stem}_cert = \"ext/{stem}.crt\"\n{stem}_key = \"ext/{stem}.key\"\n");
        }
        fs::write(vars.path("config"), config).unwrap();
        run_ok(&["launch", "--config", &vars.0["config"]]);
        Fixtures { root }
    }

    fn copy(&self, fixture: &str, to: &Path) -> Result<(), String> {
        let from = self.root.path().join(fixture);
        if !from.is_dir() {
            return Err(format!("unknown fixture {fixture:?}"));
        }
        copy_tree(&from, to);
        Ok(())
    }
}

fn copy_tree(from: &Path, to: &Path) {
    common::bash(&format!(
        "mkdir -p '{to}' && cp -a '{from}/.' '{to}/'",
        from = from.display(),
        to = to.display()
    ));
}

fn identity() -> NodeIdentity {
    NodeIdentity {
        zone: ZONE.into(),
        node_name: NODE.into(),
        address: Some(Host::parse(&address())),
        member: true,
        tunneled: false,
    }
}

fn zone_root(vars: &Vars) -> Authority {
    Authority::load(
        &vars.path("ca").join("ca.crt"),
        &vars.path("ca").join("ca.key"),
    )
    .unwrap()
}

fn node_authority(vars: &Vars) -> Authority {
    let pki = vars.path("pki");
    Authority::load(&pki.join("node.crt"), &pki.join("node.key")).unwrap()
}

/// Writes `<stem>.crt` and `<stem>.key` (0600).
fn write_pair(stem: &Path, issued: &zone_pki::Issued) {
    fs::write(stem.with_extension("crt"), &issued.chain_pem).unwrap();
    let key = stem.with_extension("key");
    fs::write(&key, &issued.key_pem).unwrap();
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
}

fn days(n: i64) -> time::Duration {
    time::Duration::days(n)
}

/// Makes the input `name` at `place` (and, for certificates, its key beside it).
fn generate(name: &str, place: &Path, target: Option<&str>, vars: &Vars) -> Result<(), String> {
    let now = OffsetDateTime::now_utc();
    match name {
        "keep" => return Ok(()), // the fixture's own file, changed only by `mode`
        "link_out" | "prepend" => {}
        _ => {
            let _ = fs::remove_file(place);
        }
    }
    match name {
        // The fixture's own file with `target` before it (a TOML file's top-level keys come
        // before its tables).
        "prepend" => {
            let target = target.ok_or("the prepend generator needs `target`")?;
            let text = fs::read_to_string(place).map_err(|e| e.to_string())?;
            fs::write(place, format!("{target}\n{text}")).unwrap();
        }
        // 2 MiB of comment lines: a parser would accept it, so only the size refuses it.
        "huge" => fs::write(place, "# padding\n".repeat(210_000)).unwrap(),
        "fifo" => nix::unistd::mkfifo(place, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .map_err(|e| e.to_string())?,
        "link" => {
            let target = target.ok_or("the link generator needs `target`")?;
            std::os::unix::fs::symlink(target, place).unwrap();
        }
        // Moves what is at `place` out of the state directory (to {dir}/outside/) and
        // leaves a link to it: the same bytes, reached through a link zone-etcd never made.
        "link_out" => {
            let outside = vars.path("dir").join("outside");
            fs::create_dir_all(&outside).unwrap();
            let moved = outside.join(place.file_name().unwrap());
            common::bash(&format!(
                "cp -aL '{p}' '{m}' && rm -rf '{p}'",
                p = place.display(),
                m = moved.display()
            ));
            std::os::unix::fs::symlink(&moved, place).unwrap();
        }
        "expired_node_ca" | "future_node_ca" => {
            let start = if name == "expired_node_ca" {
                now - days(6 * 365)
            } else {
                now + days(2)
            };
            let params = zone_pki::profile::node_ca(&identity(), start).unwrap();
            write_pair(
                &place.with_extension(""),
                &zone_root(vars).issue(params).unwrap(),
            );
        }
        // A genuine node CA of another node: its constraints do not permit node1's names.
        "other_node_ca" => {
            let other = NodeIdentity {
                node_name: "node2.example.zone".into(),
                address: Some(Host::parse(&addresses::CORPUS.ip(2))),
                ..identity()
            };
            let ca = zone_root(vars).issue_node_ca(&other).unwrap();
            fs::write(place, ca.chain_pem()).unwrap();
            let key = place.with_extension("key");
            fs::write(&key, ca.key_pem()).unwrap();
            fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
        }
        // The node's own server leaf (and key) where its CA belongs.
        "leaf_as_node_ca" => {
            let current = vars.path("state").join("tls/current");
            fs::copy(current.join("server.crt"), place).unwrap();
            fs::copy(current.join("server.key"), place.with_extension("key")).unwrap();
        }
        // A valid file of the fixture where another one belongs.
        "copy" => {
            let target = target.ok_or("the copy generator needs `target`")?;
            fs::copy(target, place).map_err(|e| format!("copy {target}: {e}"))?;
        }
        // The seed's JSON form of the node config, with the node key inline.
        "seed_json" => {
            let json = common::seed_json_config(
                &vars.path("node"),
                &[("etcd_bin", common::stand_in_etcd().to_str().unwrap())],
            );
            fs::rename(json, place).unwrap();
        }
        "rsa_key" => {
            common::bash(&format!(
                "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out '{}' 2>/dev/null",
                place.display()
            ));
            fs::set_permissions(place, fs::Permissions::from_mode(0o600)).unwrap();
        }
        // An RSA root named like the zone's, with its key beside it.
        "rsa_root" => {
            common::bash(&format!(
            "openssl req -x509 -newkey rsa:2048 -nodes -subj '/CN={ZONE} root CA' -days 30 \
             -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
             -keyout '{key}' -out '{crt}' 2>/dev/null && chmod 600 '{key}'",
            key = place.with_extension("key").display(),
            crt = place.display()
            ));
        }
        "other_zone_root" => {
            let root = Authority::new_root("other.zone").unwrap();
            fs::write(place, root.chain_pem()).unwrap();
        }
        // External server leaves, issued by the node CA, each wrong in one way.
        "ext_expired" | "ext_future" | "ext_outside_constraints" | "ext_client_as_server" => {
            let node_ca = node_authority(vars);
            let start = match name {
                "ext_expired" => now - days(200),
                "ext_future" => now + days(2),
                _ => now,
            };
            let kind = match name {
                "ext_client_as_server" => LeafKind::Client,
                _ => LeafKind::Server,
            };
            let mut params = zone_pki::profile::leaf(kind, &identity(), None, start).unwrap();
            if name == "ext_outside_constraints" {
                params.subject_alt_names.push(rcgen::SanType::DnsName(
                    "node2.example.zone".try_into().unwrap(),
                ));
            }
            write_pair(&place.with_extension(""), &node_ca.issue(params).unwrap());
        }
        "ext_node_ca_as_leaf" => {
            let pki = vars.path("pki");
            fs::copy(pki.join("node.crt"), place).unwrap();
            fs::copy(pki.join("node.key"), place.with_extension("key")).unwrap();
        }
        // Zone documents with valid signatures, wrong in what they say or who signed.
        "doc_tampered"
        | "doc_other_ca"
        | "doc_bad_member"
        | "doc_other_zone"
        | "doc_settings_tampered"
        | "doc_bad_settings" => {
            let root = match name {
                "doc_other_ca" => Authority::new_root(ZONE).unwrap(),
                _ => zone_root(vars),
            };
            let member = Member {
                node_name: NODE.into(),
                address: Some(Host::parse(&address())),
                peer_port: if name == "doc_bad_member" { 0 } else { 2380 },
                client_port: 2379,
                protocol: Default::default(),
            };
            let zone = zone_model::config::zone::Zone {
                name: if name == "doc_other_zone" {
                    "other.zone".into()
                } else {
                    ZONE.into()
                },
                addr_info: Vec::new(),
                backup: Default::default(),
                access: Default::default(),
                ignored: Default::default(),
                members: vec![member],
                settings: Settings {
                    heartbeat_interval_ms: Some(300),
                    // 1000 ms is under 5 heartbeats: only `sign` of a struct made here
                    // (never of a zone file, which is validated) can write it.
                    election_timeout_ms: Some(if name == "doc_bad_settings" {
                        1000
                    } else {
                        3000
                    }),
                    ..Settings::default()
                },
            };
            let mut text = zone_model::zone_doc::sign(&zone, &root, now).unwrap();
            if name == "doc_tampered" {
                text = text.replace(&address(), &addresses::CORPUS.ip(66));
            }
            if name == "doc_settings_tampered" {
                let tampered = text.replace(
                    "\"election_timeout_ms\": 3000",
                    "\"election_timeout_ms\": 2000",
                );
                assert_ne!(tampered, text, "the generator must change the settings");
                text = tampered;
            }
            fs::write(place, text).unwrap();
        }
        other => return Err(format!("unknown generator {other:?}")),
    }
    Ok(())
}
