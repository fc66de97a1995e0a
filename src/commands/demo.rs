//! `zone-etcd demo`: a whole local zone of three members on 127.0.0.1-3, made with the
//! same commands an operator runs (ca init, bootstrap, launch), kept until Ctrl-C.
//!
//! Re-running it with the same directory restarts the same zone with its data.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, SigSet, Signal};
use nix::unistd::Pid;
use zone_io::Error;
use zone_pki::LeafKind;

use zone_etcd_kit::etcd::find_tool;
use zone_model::cluster::client_endpoints;
use zone_model::config::zone::Zone;
use zone_model::leaf_paths::LeafPaths;

/// The demo zone: three members on loopback, etcd's default ports.
pub const DEMO_ZONE: &str = r#"# The demo zone: three etcd members on loopback addresses.
name = "example.zone"

[[etcd]]
node_name = "node1.example.zone"
protocol = "https"
address = "127.0.0.1"
peer_port = 2380
client_port = 2379

[[etcd]]
node_name = "node2.example.zone"
protocol = "https"
address = "127.0.0.2"
peer_port = 2380
client_port = 2379

[[etcd]]
node_name = "node3.example.zone"
protocol = "https"
address = "127.0.0.3"
peer_port = 2380
client_port = 2379
"#;

const HEALTH_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

pub fn run(dir: &Path) -> Result<(), Error> {
    zone_io::ensure_private_dir(dir)?;
    let zone_file = dir.join("zone.toml");
    if !zone_file.exists() {
        zone_io::write_atomic(&zone_file, DEMO_ZONE.as_bytes(), 0o644)?;
    }
    let zone = Zone::load_reporting(&zone_file, zone_node::unknown_keys::warn)?;
    let ca_dir = dir.join("ca");
    if !ca_dir.join(zone_node::ca_dir::CA_CERT).exists() {
        super::ca_init::run(&zone.name, &ca_dir)?;
    }
    let nodes_dir = dir.join("nodes");
    if !nodes_dir.exists() {
        super::bootstrap::run(&ca_dir, &zone_file, &nodes_dir)?;
    }
    let etcdctl = find_tool("etcdctl", None, &zone_file)?;
    let exe = std::env::current_exe().map_err(|e| Error::io("find", Path::new("zone-etcd"), &e))?;

    // Ctrl-C, termination and a member's exit all arrive here, through sigwait.
    let mut signals = SigSet::empty();
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGCHLD] {
        signals.add(signal);
    }
    signals
        .thread_block()
        .map_err(|e| Error::new(format!("cannot block signals: {e}")))?;

    let mut members = Vec::new();
    for member in &zone.members {
        let config = nodes_dir.join(&member.node_name).join("node.toml");
        let log_path = dir.join(format!("{}.log", member.node_name));
        match spawn_member(&exe, &config, &log_path) {
            Ok(child) => members.push((member.node_name.clone(), child, log_path)),
            Err(e) => {
                stop(&mut members);
                return Err(e);
            }
        }
    }
    let client =
        LeafPaths::for_state_dir(&nodes_dir.join(&zone.members[0].node_name).join("state"));
    let etcdctl_args = vec![
        format!("--endpoints={}", client_endpoints(&zone.members).join(",")),
        format!("--cacert={}", client.ca().display()),
        format!("--cert={}", client.cert(LeafKind::Client).display()),
        format!("--key={}", client.key(LeafKind::Client).display()),
    ];
    if let Err(e) = wait_healthy(&etcdctl, &etcdctl_args, &mut members) {
        stop(&mut members);
        return Err(e);
    }
    let tried = identities(dir, &ca_dir, &zone_file, &nodes_dir, &zone);
    let (admin, laptop) = match tried {
        Ok(found) => found,
        Err(e) => {
            stop(&mut members);
            return Err(e);
        }
    };
    println!(
        "zone {} is healthy: {} members with mutual TLS on client and peer ports, least privilege enforced",
        zone.name,
        members.len()
    );
    for (name, child, log) in &members {
        println!("  {name}  pid {}  log {}", child.id(), log.display());
    }
    let endpoints = format!("--endpoints={}", client_endpoints(&zone.members).join(","));
    let line = |files: &[String; 3], args: &str| {
        format!(
            "  {} {endpoints} {} {args}",
            etcdctl.display(),
            files
                .iter()
                .zip(["--cacert", "--cert", "--key"])
                .map(|(f, flag)| format!("{flag}={f}"))
                .collect::<Vec<_>>()
                .join(" ")
        )
    };
    println!("try it as the owner (etcd's root, `zone-etcd ca admin`):");
    println!("{}", line(&admin, "put hello world"));
    println!("{}", line(&admin, "get hello"));
    println!("and as {LAPTOP}, a node that is not a member (`zone-etcd env`): its own prefix nodes/{LAPTOP}/ only, everything else refused:");
    println!(
        "{}",
        line(&laptop, &format!("put nodes/{LAPTOP}/hello world"))
    );
    println!("{}", line(&laptop, "get hello"));
    println!("press Ctrl-C to stop the zone");

    loop {
        let signal = signals
            .wait()
            .map_err(|e| Error::new(format!("cannot wait for signals: {e}")))?;
        if signal != Signal::SIGCHLD {
            break;
        }
        if let Some(name) = exited_member(&mut members) {
            eprintln!("zone-etcd: member {name} exited; stopping the demo zone");
            break;
        }
    }
    println!("stopping the zone");
    stop(&mut members);
    Ok(())
}

/// The demo's node that is not an etcd member.
const LAPTOP: &str = "laptop.example.zone";
/// How long the members' keepers may take to turn etcd's auth on.
const ENFORCE_TIMEOUT: Duration = Duration::from_secs(60);

/// Once the zone enforces its policy: the owner's identity (made with `ca admin` under
/// `<dir>/admin`) and the laptop's (activated under `nodes/`, its identity obtained from a
/// member's signer as `env` does), each as its CA, certificate and key files.
fn identities(
    dir: &Path,
    ca_dir: &Path,
    zone_file: &Path,
    nodes_dir: &Path,
    zone: &Zone,
) -> Result<([String; 3], [String; 3]), Error> {
    let member =
        zone_node::node::Node::load(&nodes_dir.join(&zone.members[0].node_name).join("node.toml"))?;
    if !member.access.enforce {
        return Err(Error::new(
            "this demo zone was made by an older zone-etcd: every client is root in it",
        )
        .file(dir)
        .fix(format!(
            "remove {} and run the demo again for a zone that enforces least privilege",
            dir.display()
        )));
    }
    let admin = dir.join("admin");
    if !admin.exists() {
        super::ca_admin::run(ca_dir, &admin)?;
    }
    let laptop_dir = nodes_dir.join(LAPTOP);
    if !laptop_dir.exists() {
        super::activate::run(ca_dir, zone_file, LAPTOP, None, &laptop_dir)?;
    }
    let config = laptop_dir.join("node.toml");
    let node = zone_node::node::Node::load(&config)?;
    wait_enforced(&member)?;
    let paths = zone_node::reach::current_leaves(&node, &[LeafKind::Client])?;
    let text = |p: &Path| p.display().to_string();
    Ok((
        [
            text(&admin.join("ca.crt")),
            text(&admin.join("client.crt")),
            text(&admin.join("client.key")),
        ],
        [
            text(&paths.ca()),
            text(&paths.cert(LeafKind::Client)),
            text(&paths.key(LeafKind::Client)),
        ],
    ))
}

/// Waits until a member's keeper turned etcd's auth on (before, every identity is root).
fn wait_enforced(member: &zone_node::node::Node) -> Result<(), Error> {
    let roots = zone_model::config::trust::trusted_roots(&member.zone_ca_pem)?;
    let creds = zone_etcd_kit::cluster_api::Credentials::load(&member.leaf_paths())?;
    let endpoints = client_endpoints(&member.members);
    let runtime = zone_etcd_kit::cluster_api::runtime()?;
    let client = runtime
        .block_on(zone_etcd_kit::cluster_api::connect_many(
            &endpoints,
            &creds,
            zone_etcd_kit::cluster_api::REQUEST_TIMEOUT,
        ))
        .map_err(Error::new)?;
    let started = Instant::now();
    loop {
        let summary = runtime.block_on(zone_node::policy::standing::read(member, &roots, &client));
        if summary.is_some_and(|s| s.enforced) {
            return Ok(());
        }
        if started.elapsed() > ENFORCE_TIMEOUT {
            return Err(Error::new(format!(
                "the members did not turn least privilege on within {}s",
                ENFORCE_TIMEOUT.as_secs()
            ))
            .fix(
                "read the member logs beside the demo's zone.toml (lines with \"access policy\")",
            ));
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[allow(unsafe_code)] // pre_exec: the member must not inherit the demo's blocked signals
fn spawn_member(exe: &Path, config: &Path, log_path: &Path) -> Result<Child, Error> {
    let log = fs::File::create(log_path).map_err(|e| Error::io("create log file", log_path, &e))?;
    let log_err = log
        .try_clone()
        .map_err(|e| Error::io("open log file", log_path, &e))?;
    let mut command = Command::new(exe);
    command
        .arg("launch")
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);
    // SAFETY: between fork and exec only async-signal-safe calls are allowed;
    // pthread_sigmask is one. The member must not inherit the demo's blocked signals.
    unsafe {
        command.pre_exec(|| SigSet::all().thread_unblock().map_err(std::io::Error::from));
    }
    command
        .spawn()
        .map_err(|e| Error::io("start `zone-etcd launch` for", config, &e))
}

fn wait_healthy(
    etcdctl: &Path,
    args: &[String],
    members: &mut [(String, Child, PathBuf)],
) -> Result<(), Error> {
    let started = Instant::now();
    loop {
        if let Some(name) = exited_member(members) {
            let log = members
                .iter()
                .find(|m| m.0 == name)
                .map(|m| m.2.clone())
                .unwrap_or_default();
            // What it said last (launch's error line, or etcd's fatal entry without its
            // stack trace): the reason, where "read the log" alone sent the reader away.
            let said = fs::read(&log)
                .map(|text| zone_etcd_kit::etcd::binary::fatal_line(&text))
                .unwrap_or_default();
            let said = said.strip_prefix("zone-etcd: error: ").unwrap_or(&said);
            let exited = format!("member {name} exited before the zone became healthy");
            let error = if said.is_empty() {
                Error::new(exited).fix(
                    "read the log; a port in use (another etcd on 127.0.0.1-3:2379/2380) is the usual cause",
                )
            } else {
                Error::new(format!("{exited}; it said last: {said}"))
                    .fix("as the member's own line says; the log holds the rest")
            };
            return Err(error.file(log));
        }
        let healthy = Command::new(etcdctl)
            .args(args)
            .args(["--command-timeout=2s", "endpoint", "health"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if healthy {
            return Ok(());
        }
        if started.elapsed() > HEALTH_TIMEOUT {
            return Err(Error::new(format!(
                "the zone was not healthy after {}s",
                HEALTH_TIMEOUT.as_secs()
            ))
            .fix("read the member logs beside the demo's zone.toml"));
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn exited_member(members: &mut [(String, Child, PathBuf)]) -> Option<String> {
    members
        .iter_mut()
        .find_map(|(name, child, _)| matches!(child.try_wait(), Ok(Some(_))).then(|| name.clone()))
}

/// Asks every member to stop (SIGTERM, as systemd would), then kills what is left.
fn stop(members: &mut [(String, Child, PathBuf)]) {
    for (_, child, _) in members.iter() {
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
    }
    let deadline = Instant::now() + STOP_TIMEOUT;
    for (name, child, _) in members.iter_mut() {
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if matches!(child.try_wait(), Ok(None)) {
            eprintln!("zone-etcd: member {name} did not stop in time; killing it");
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
