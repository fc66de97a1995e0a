//! Faults: SIGKILL at random points of `bootstrap`, `activate`, `launch` (before exec),
//! `rotate` and `snapshot save --from-data`; a full disk during `rotate` while a real etcd member serves.
//!
//! After every kill, whatever the command writes is either as it was before or complete
//! (a staging directory, hidden and private, is the only other thing a kill may leave, and
//! the next run clears it), every key matches its certificate, modes are right, and
//! running the command again succeeds.
//!
//! The kill instants come from a seeded generator, spread over 0 to 1.5 times the
//! command's measured duration; each test prints its seed, and `ZONE_ETCD_FAULT_SEED=<n>`
//! replays a run.
//!
//! Subnets: `addresses::FAULTS` (no etcd: a stand-in), `addresses::FAULTS_DISK` (a real member,
//! full disk), `addresses::FAULTS_RESCUE` (a stopped member whose data `snapshot save --from-data`
//! reads).

use crate::common;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use zone_pki::CertInfo;
use zone_testkit::addresses;

/// splitmix64: a seeded, dependency-free source of kill instants.
struct Rng(u64);

impl Rng {
    /// The run's seed (from `ZONE_ETCD_FAULT_SEED`, else the clock), mixed with `test`.
    fn for_test(test: &str) -> Rng {
        let seed = std::env::var("ZONE_ETCD_FAULT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("{test}: seed {seed} (replay with ZONE_ETCD_FAULT_SEED={seed})");
        let mut rng = Rng(seed);
        for b in test.bytes() {
            rng.0 ^= u64::from(b);
            rng.next();
        }
        rng
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A duration uniformly in 0..=`max`.
    fn up_to(&mut self, max: Duration) -> Duration {
        let nanos = max.as_nanos() as u64;
        Duration::from_nanos(self.next() % (nanos + 1))
    }
}

/// What the kill trials of one command saw.
#[derive(Default)]
struct Tally {
    /// The process was still running when SIGKILL arrived.
    killed_mid_run: u32,
    /// It had finished (or exec'd the stand-in) first.
    finished_first: u32,
}

/// Runs `command(trial)` `trials` times, each SIGKILLed after a random delay over 0 to 1.5
/// times its duration (measured first, as the median of three whole runs numbered
/// `trials + 1 ..`); `prepare(trial)` runs before each, `check(trial)` after each.
fn kill_trials(
    test: &str,
    trials: u32,
    mut prepare: impl FnMut(u32),
    command: impl Fn(u32) -> Command,
    mut check: impl FnMut(u32),
) -> Tally {
    let mut rng = Rng::for_test(test);
    let mut runs: Vec<Duration> = (trials + 1..=trials + 5)
        .map(|t| {
            prepare(t);
            // The run's own time, to its exit: a helper it leaves running (launch's
            // revocation keeper) may hold its standard error for a while longer.
            let started = Instant::now();
            let mut child = command(t)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let status = child.wait().unwrap();
            let took = started.elapsed();
            let mut err = String::new();
            if let Some(mut stderr) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut stderr, &mut err);
            }
            assert!(status.success(), "{test}: {err}");
            check(t);
            took
        })
        .collect();
    runs.sort();
    let takes = runs[2];
    let mut tally = Tally::default();
    let started = Instant::now();
    for trial in 0..trials {
        prepare(trial);
        let delay = rng.up_to(takes);
        let mut child = command(trial)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL
        let status = child.wait().unwrap();
        if status.signal() == Some(9) {
            tally.killed_mid_run += 1;
        } else {
            tally.finished_first += 1;
        }
        check(trial);
    }
    eprintln!(
        "{test}: {trials} kills over 0-{:?} (a run takes {takes:?}): {} mid-run, {} after the end; {:?} in all",
        takes,
        tally.killed_mid_run,
        tally.finished_first,
        started.elapsed()
    );
    // Kills spread over one run (the median of five; runs vary with what `prepare` removed)
    // land mid-run most of the time.
    assert!(
        tally.killed_mid_run >= trials / 4,
        "{test}: too few kills landed mid-run to prove anything"
    );
    tally
}

/// `zone-etcd` with `args` (kill_trials discards its output).
fn command<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Command {
    let mut cmd = zone_etcd();
    cmd.args(args);
    cmd
}

/// Names in `dir`, sorted.
fn names(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// What a killed writer may leave beside its target: its private staging directory.
fn assert_only_private_staging(dir: &Path, expected: &BTreeSet<String>) {
    for name in names(dir).difference(expected) {
        assert!(
            name.starts_with(".staging-"),
            "{}: unexpected {name}",
            dir.display()
        );
        assert_eq!(mode(&dir.join(name)), 0o700, "{name} is private");
    }
}

/// A complete node bundle for `node` under the zone root `root` (ca.crt path), of a zone
/// of least privilege by default: the client CA, and for an etcd `member` its signer.
fn assert_whole_bundle(dir: &Path, node: &str, root: &Path, member: bool) {
    let set = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(names(dir), set(&["node.toml", "pki"]), "{}", dir.display());
    let pki = dir.join("pki");
    let mut files = vec!["ca.crt", "client-ca.crt", "node.crt", "node.key"];
    if member {
        files.extend(["signer.crt", "signer.key"]);
        assert_eq!(mode(&pki.join("signer.key")), 0o600);
    }
    assert_eq!(names(&pki), set(&files));
    assert_eq!(mode(dir), 0o700);
    assert_eq!(mode(&pki), 0o700);
    assert_eq!(mode(&pki.join("node.key")), 0o600);
    assert_eq!(mode(&pki.join("node.crt")), 0o644);
    assert_eq!(mode(&pki.join("ca.crt")), 0o644);
    assert_eq!(mode(&dir.join("node.toml")), 0o644);
    let root_pem = fs::read_to_string(root).unwrap();
    assert_eq!(fs::read_to_string(pki.join("ca.crt")).unwrap(), root_pem);
    let node_ca = CertInfo::parse_pem(&fs::read_to_string(pki.join("node.crt")).unwrap()).unwrap();
    let key = zone_pki::key::load_key(&pki.join("node.key")).unwrap();
    assert!(node_ca.is_ca && node_ca.subject_cn == node);
    assert!(node_ca.public_key_matches(&key), "{node}: key matches");
    assert!(node_ca.is_signed_by(&CertInfo::parse_pem(&root_pem).unwrap()));
    let config: toml::Table = fs::read_to_string(dir.join("node.toml"))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(config["name"].as_str(), Some(node));
    assert_eq!(config["access"]["enforce"].as_bool(), Some(true), "{node}");
    assert_eq!(config.contains_key("signer"), member, "{node}");
}

/// A zone root and a three-member zone file in a temporary directory.
struct Owner {
    dir: tempfile::TempDir,
    members: Vec<String>,
}

impl Owner {
    fn new() -> Owner {
        let dir = tempfile::tempdir().unwrap();
        let members = loopback_members("faults.zone", addresses::FAULTS.subnet(), 3);
        let pairs: Vec<(&str, &str)> = members
            .iter()
            .map(|(n, a)| (n.as_str(), a.as_str()))
            .collect();
        fs::write(
            dir.path().join("zone.toml"),
            zone_toml("faults.zone", &pairs),
        )
        .unwrap();
        run_ok(&ca_init_args(
            "faults.zone",
            dir.path().join("ca").to_str().unwrap(),
        ));
        fs::create_dir(dir.path().join("out")).unwrap();
        Owner {
            dir,
            members: members.into_iter().map(|(n, _)| n).collect(),
        }
    }

    fn path(&self, rel: &str) -> String {
        self.dir.path().join(rel).to_str().unwrap().to_string()
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    /// After a killed run writing `out/<target>`: the target is absent (then a new run
    /// succeeds) or complete (`check_whole`), and the staging directory is gone after it.
    fn settle(&self, target: &str, rerun: &[String], check_whole: impl Fn(&Path)) -> bool {
        let dir = self.out().join(target);
        let before: BTreeSet<String> = names(&self.out())
            .into_iter()
            .filter(|n| !n.starts_with('.'))
            .collect();
        assert_only_private_staging(&self.out(), &before);
        let was_complete = dir.exists();
        if !was_complete {
            run_ok(rerun);
        }
        check_whole(&dir);
        let mut after = before.clone();
        after.insert(target.to_string());
        assert_eq!(names(&self.out()), after, "nothing else left in out/");
        was_complete
    }
}

#[test]
fn bootstrap_killed_at_any_point_leaves_nothing_or_every_bundle() {
    let owner = Owner::new();
    let args = |trial: u32| {
        bootstrap_args(
            &owner.path("ca"),
            &owner.path("zone.toml"),
            &owner.path(&format!("out/zone-{trial}")),
        )
    };
    let whole = |dir: &Path| {
        let expected: BTreeSet<String> = owner.members.iter().cloned().collect();
        assert_eq!(names(dir), expected, "one bundle per member");
        assert_eq!(mode(dir), 0o700);
        for member in &owner.members {
            assert_whole_bundle(
                &dir.join(member),
                member,
                Path::new(&owner.path("ca/ca.crt")),
                true,
            );
        }
    };
    kill_trials(
        "bootstrap",
        50,
        |_| {},
        |trial| command(&args(trial)),
        |trial| {
            owner.settle(&format!("zone-{trial}"), &args(trial), whole);
        },
    );
}

#[test]
fn activate_killed_at_any_point_leaves_nothing_or_a_whole_bundle() {
    let owner = Owner::new();
    let node = |trial: u32| format!("client{trial}.faults.zone");
    let args = |trial: u32| {
        activate_args(
            &owner.path("ca"),
            &owner.path("zone.toml"),
            &node(trial),
            &owner.path(&format!("out/{}", node(trial))),
        )
    };
    kill_trials(
        "activate",
        50,
        |_| {},
        |trial| command(&args(trial)),
        |trial| {
            owner.settle(&node(trial), &args(trial), |dir| {
                assert_whole_bundle(
                    dir,
                    &node(trial),
                    Path::new(&owner.path("ca/ca.crt")),
                    false,
                )
            });
        },
    );
}

/// The leaf state of member 0 after a kill: `current` absent or a whole set, every set
/// whole, private directories; hidden staging or removal directories and a temporary link
/// are all else a kill may leave. With `settled`, nothing but `current` and whole sets.
fn assert_state(zone: &TestZone, settled: bool) {
    let node_dir = zone.node_dir(0);
    let node_ca = node_dir.join("pki/node.crt");
    let state = node_dir.join("state");
    if !state.exists() {
        assert!(!settled, "a completed run made the state directory");
        return;
    }
    assert_eq!(mode(&state), 0o700);
    if settled {
        // A write killed mid-way may leave its temporary file; the next writer removes it.
        let temps: Vec<String> = names(&state)
            .into_iter()
            .filter(|n| n.starts_with(".tmp-"))
            .collect();
        assert!(temps.is_empty(), "abandoned temporary files: {temps:?}");
    }
    let tls = state.join("tls");
    if !tls.exists() {
        assert!(!settled);
        return;
    }
    assert_eq!(mode(&tls), 0o700);
    let current = tls.join("current");
    if fs::symlink_metadata(&current).is_ok() {
        assert_whole_set_at(&current, &node_ca);
    } else {
        assert!(!settled, "a completed run made `current`");
    }
    for name in names(&tls) {
        match name.as_str() {
            "current" | "sets" => {}
            temp if temp.starts_with(".current-") && !settled => {}
            other => panic!("unexpected {other} in {}", tls.display()),
        }
    }
    let sets = tls.join("sets");
    if !sets.exists() {
        return;
    }
    assert_eq!(mode(&sets), 0o700);
    for name in names(&sets) {
        // A staging directory, or a set renamed aside to be removed.
        if name.starts_with('.') && !settled {
            assert_eq!(mode(&sets.join(&name)), 0o700);
        } else {
            assert_whole_set_at(&sets.join(&name), &node_ca);
        }
    }
}

#[test]
fn launch_killed_before_exec_leaves_the_old_state_or_a_whole_set() {
    let zone = zone_with_true_etcd(addresses::FAULTS.subnet());
    let config = zone.config(0);
    let args = ["launch", "--config", config.to_str().unwrap()];
    let state = zone.node_dir(0).join("state");
    kill_trials(
        "launch",
        60,
        // A first launch (no state), or one whose current set is gone: both issue a set.
        |trial| {
            if trial % 2 == 0 {
                let _ = fs::remove_dir_all(&state);
            } else {
                let _ = fs::remove_file(state.join("tls/current"));
                // What a write killed mid-way leaves (a temporary file of write_atomic).
                let _ = fs::write(state.join(".tmp-killed"), "{\"partial");
            }
        },
        |_| command(&args),
        |_| {
            assert_state(&zone, false);
            run_ok(&args);
            assert_state(&zone, true);
        },
    );
}

#[test]
fn rotate_killed_at_any_point_leaves_a_whole_set_and_launch_works() {
    let zone = zone_with_true_etcd(addresses::FAULTS.subnet());
    let config = zone.config(0);
    let config = config.to_str().unwrap();
    run_ok(&["launch", "--config", config]);
    let args = ["rotate", "--config", config];
    let mut serials = BTreeSet::new();
    kill_trials(
        "rotate",
        60,
        |_| {},
        |_| command(&args),
        |_| {
            assert_state(&zone, false);
            serials.insert(serial(&zone.tls(0, "server.crt")));
        },
    );
    assert!(serials.len() > 1, "some killed rotations completed");
    run_ok(&["launch", "--config", config]);
    run_ok(&args);
    assert_state(&zone, true);
    let sets = names(&zone.node_dir(0).join("state/tls/sets"));
    assert_eq!(sets.len(), 2, "current and previous set kept: {sets:?}");
}

/// A tmpfs of `size` mounted on `dir` (empty), unmounted when dropped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(dir: &Path, size: &str) -> SmallDisk {
        fs::create_dir_all(dir).unwrap();
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .status()
            .expect("mount runs");
        assert!(status.success(), "mount a tmpfs on {}", dir.display());
        SmallDisk(dir.to_path_buf())
    }

    /// Writes a file until the file system is full; returns its path.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.0.join("filler");
        let mut file = fs::File::create(&path).unwrap();
        let block = [0u8; 4096];
        loop {
            if let Err(e) = file.write_all(&block).and_then(|()| file.sync_all()) {
                assert_eq!(e.kind(), std::io::ErrorKind::StorageFull, "{e}");
                return path;
            }
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn full_disk_during_rotate_fails_cleanly_and_the_old_set_is_still_served() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: mounting a small tmpfs needs root (CI runs as root)");
        return;
    }
    // A one-member zone whose state directory is a 256 KiB tmpfs; etcd's data elsewhere.
    let zone = TestZone::bootstrap("disk.zone", addresses::FAULTS_DISK.subnet(), 1);
    let config = zone.config(0);
    let text = fs::read_to_string(&config).unwrap();
    let data = zone.path("data");
    fs::write(
        &config,
        format!("data_dir = {:?}\n{text}", data.to_str().unwrap()),
    )
    .unwrap();
    let state = zone.node_dir(0).join("state");
    let disk = SmallDisk::mount(&state, "256k");
    let mut running = vec![zone.launch(0)];
    zone.wait_healthy(&mut running);
    assert!(disk.0.join("tls/current").exists(), "leaves on the tmpfs");

    let probes = tempfile::tempdir().unwrap();
    let ca = zone.path("ca/ca.crt");
    let client = fixed_identity(&zone, 0, "client", probes.path());
    let old = serial(&zone.tls(0, "server.crt"));
    assert_eq!(served_serial(&zone.client_addr(0), &ca, &client), old);

    let filler = disk.fill();
    let before = snapshot(&state);
    let (ok, stdout, stderr) = run(&["rotate", "--config", config.to_str().unwrap()]);
    eprintln!("rotate on a full disk: {stderr}");
    assert!(!ok, "rotate fails: {stdout}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.starts_with("zone-etcd: error: ")
            && stderr.contains("No space left on device")
            && stderr.contains(state.to_str().unwrap())
            && stderr.contains("(fix: free space on the file system"),
        "names the file, the cause and a fix: {stderr}"
    );
    assert!(!stderr.contains("PRIVATE KEY"), "{stderr}");
    assert_eq!(snapshot(&state), before, "nothing changed on disk");
    assert_whole_set(&zone);
    assert_eq!(
        served_serial(&zone.client_addr(0), &ca, &client),
        old,
        "the old set is still served"
    );
    assert!(running[0].child.try_wait().unwrap().is_none(), "etcd runs");

    // Space again: the same command succeeds and the new set is served.
    fs::remove_file(filler).unwrap();
    run_ok(&["rotate", "--config", config.to_str().unwrap()]);
    assert_whole_set(&zone);
    let new = serial(&zone.tls(0, "server.crt"));
    assert_ne!(new, old);
    assert_eq!(served_serial(&zone.client_addr(0), &ca, &client), new);
    drop(running); // etcd stops before the tmpfs goes
}

/// What `snapshot save --from-data` killed at any instant leaves: etcd's data directory as
/// it was (it is only read), and under the final name nothing, or a whole snapshot (etcd's
/// trailing hash matches, and its manifest, when written, names the file's SHA-256); the
/// temporary files of the snapshot and of its manifest are hidden and private.
#[test]
fn save_from_data_killed_at_any_point_leaves_the_data_untouched_and_no_partial_snapshot() {
    let zone = TestZone::bootstrap("rescue.zone", addresses::FAULTS_RESCUE.subnet(), 1);
    let mut running = vec![zone.launch(0)];
    zone.wait_healthy(&mut running);
    // About 16 MiB of values, so that the copy takes a while.
    let value = "x".repeat(64 * 1024);
    for round in 0..16 {
        let ops: String = (0..16)
            .map(|i| format!("put big/{round}/{i:02} {value}\n"))
            .collect();
        let (ok, err) = zone.txn(0, &zone.client_url(0), &ops);
        assert!(ok, "{err}");
    }
    running.pop().unwrap().stop();
    let config = zone.config(0);
    let data = zone.node_dir(0).join("state/data");
    let before = snapshot(&data);
    let out = zone.path("rescue");
    let target = |trial: u32| out.join(format!("trial-{trial}.db"));
    let args = |trial: u32| {
        vec![
            "snapshot".to_string(),
            "save".into(),
            "--config".into(),
            config.to_str().unwrap().into(),
            "--from-data".into(),
            "--out".into(),
            target(trial).to_str().unwrap().into(),
        ]
    };
    let mut whole = 0;
    let tally = kill_trials(
        "save --from-data",
        40,
        |_| {},
        |trial| command(&args(trial)),
        |trial| {
            assert!(snapshot(&data) == before, "the data directory changed");
            for name in names(&out) {
                let path = out.join(&name);
                // The snapshot's temporary file, or the manifest's (write_atomic's).
                if name.starts_with(".tmp-") {
                    assert_eq!(mode(&path) & 0o077, 0, "{name} is private");
                    continue;
                }
                assert!(
                    name.starts_with("trial-") && !name.starts_with('.'),
                    "unexpected {name}"
                );
            }
            let file = target(trial);
            let Ok(bytes) = fs::read(&file) else {
                assert!(
                    !out.join(format!("trial-{trial}.db.json")).exists(),
                    "a manifest without its snapshot"
                );
                return;
            };
            let mut check = zone_etcd_kit::cluster_api::Integrity::default();
            check.update(&bytes);
            let (_, sha256) = check
                .finish()
                .unwrap_or_else(|p| panic!("a partial snapshot under its final name: {p}"));
            if let Ok(text) = fs::read_to_string(format!("{}.json", file.display())) {
                let manifest: serde_json::Value = serde_json::from_str(&text).unwrap();
                assert_eq!(manifest["sha256"], sha256.as_str());
            }
            whole += 1;
        },
    );
    assert!(whole > 0 && tally.killed_mid_run > 0);
    // A run after the kills completes, and restores.
    let (ok, _, err) = run(&args(1000));
    assert!(ok, "{err}");
    assert!(snapshot(&data) == before, "the data directory changed");
}
