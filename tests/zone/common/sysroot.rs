//! A throwaway machine over this one (tests/sysroot/enter.sh and root.sh): an overlay of
//! `/` whose writes stay in a tmpfs, in its own mount, PID, network, UTS, IPC and cgroup
//! namespaces, with the package under test installed. `run` executes a script inside;
//! `boot` starts Debian's systemd as its PID 1 and `sh` runs commands inside it.
//!
//! Everything it makes is removed when it is dropped, pass or fail: the namespace's PID 1
//! is killed by PID (the kernel then kills every process in it, and its mounts go with
//! it), and the cgroup enter.sh made is removed. Its own files live under /var/tmp, never
//! in the machine's /tmp. A setup that cannot run panics: these tests never pass without
//! the real thing.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The package under test: `dist/zone-etcd_<version>_<arch>.deb` of this machine's
/// architecture, built by `scripts/package.sh --profile dev` (the build the tests run;
/// under a lock, so tests in parallel build it once) unless it is newer than everything
/// it is made of.
pub fn package() -> PathBuf {
    package_for(&host_arch())
}

/// This machine's architecture in Debian's naming (`dpkg --print-architecture`).
pub fn host_arch() -> String {
    let out = Command::new("dpkg")
        .arg("--print-architecture")
        .output()
        .expect("dpkg --print-architecture runs");
    let arch = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        !arch.is_empty(),
        "dpkg --print-architecture printed nothing"
    );
    arch
}

/// The package of architecture `arch` (amd64, arm64): `scripts/package.sh --arch <arch>
/// --profile dev`, as [`package`] does for this machine's.
pub fn package_for(arch: &str) -> PathBuf {
    let repo = super::repo();
    // A fresh package is taken without the lock: scripts/test.sh builds another
    // architecture's under it meanwhile, and renames each package into place whole.
    if let Some(deb) = existing_package(&repo, arch).filter(|deb| fresh(deb, &repo, arch)) {
        return deb;
    }
    let lock = fs::File::create(repo.join("target/package.lock")).expect("target/ is writable");
    let _lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .expect("lock target/package.lock");
    if let Some(deb) = existing_package(&repo, arch).filter(|deb| fresh(deb, &repo, arch)) {
        return deb;
    }
    let out = Command::new(repo.join("scripts/package.sh"))
        .args(["--arch", arch, "--profile", "dev"])
        .stderr(Stdio::inherit())
        .output()
        .expect("scripts/package.sh runs");
    assert!(
        out.status.success(),
        "scripts/package.sh --arch {arch} --profile dev failed"
    );
    let deb = repo.join(String::from_utf8_lossy(&out.stdout).trim());
    assert!(
        deb.is_file(),
        "scripts/package.sh printed no package: {deb:?}"
    );
    deb
}

/// The package of `arch` in dist/ (`zone-etcd_<version>_<arch>.deb`): never another
/// architecture's, which this machine could not install.
fn existing_package(repo: &Path, arch: &str) -> Option<PathBuf> {
    let suffix = format!("_{arch}.deb");
    fs::read_dir(repo.join("dist"))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("zone-etcd_") && n.ends_with(&suffix))
        })
}

/// True when `deb` is newer than every source it is built from (the etcd of its
/// architecture: bin/, or bin/<arch>/ for another than this machine's).
fn fresh(deb: &Path, repo: &Path, arch: &str) -> bool {
    let built = fs::metadata(deb).map(|m| m.mtime()).unwrap_or(0);
    let mut newest = 0;
    let mut stack: Vec<PathBuf> = [
        "src",
        "node/src",
        "node/build.rs",
        "node/Cargo.toml",
        "agent/src",
        "agent/Cargo.toml",
        "pki/src",
        "pki/Cargo.toml",
        "io/src",
        "io/Cargo.toml",
        "model/src",
        "model/Cargo.toml",
        "etcd-kit/src",
        "etcd-kit/Cargo.toml",
        "backup/src",
        "backup/Cargo.toml",
        "scripts",
        "Cargo.toml",
        "Cargo.lock",
        "README.md",
        "docs/src",
    ]
    .iter()
    .map(|p| repo.join(p))
    .collect();
    let etcd = if arch == host_arch() {
        "bin/etcd".to_string()
    } else {
        format!("bin/{arch}/etcd")
    };
    stack.push(repo.join(etcd));
    while let Some(path) = stack.pop() {
        let Ok(meta) = fs::metadata(&path) else {
            continue;
        };
        newest = newest.max(meta.mtime());
        if meta.is_dir() {
            stack.extend(
                fs::read_dir(&path)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.path()),
            );
        }
    }
    built > newest
}

/// The work directory of one throwaway machine: under /var/tmp, never in the machine's
/// /tmp (a checkout, and so target/, may be there). Only a mount point outside the
/// namespace: the machine's files live in a tmpfs mounted on it inside.
fn base() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("zone-etcd-sysroot-")
        .tempdir_in("/var/tmp")
        .expect("a directory under /var/tmp")
}

fn enter_script() -> PathBuf {
    super::repo().join("tests/sysroot/enter.sh")
}

/// Runs `script` (bash) inside a throwaway machine with `deb` at /root/zone-etcd.deb;
/// returns its output once it and everything it started have ended.
pub fn run(deb: &Path, script: &str) -> Output {
    let base = base();
    let script_file = base.path().with_extension("sh");
    fs::write(&script_file, script).unwrap();
    let child = Command::new("bash")
        .arg(enter_script())
        .arg(base.path())
        .arg(deb)
        .arg("run")
        .arg(&script_file)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash tests/sysroot/enter.sh starts");
    let guard = Machine {
        enter: child,
        base,
        log: script_file.clone(),
    };
    // Dropping the machine after its output removes the script file too (its `log`).
    guard.wait_output(Duration::from_secs(600))
}

/// A throwaway machine whose PID 1 is systemd.
pub struct Machine {
    /// `bash enter.sh`, which became `unshare`: its only child is the namespace's PID 1.
    enter: Child,
    base: tempfile::TempDir,
    /// Where systemd's console output goes.
    log: PathBuf,
}

impl Machine {
    /// Boots systemd over an overlay of `/` with `deb` installed, and waits until it is
    /// running (every unit of basic.target up). Panics, with systemd's output, otherwise.
    pub fn boot(deb: &Path) -> Machine {
        Machine::boot_sharing(deb, None)
    }

    /// [`Machine::boot`], with `share`'s first directory (of this machine) mounted at its
    /// second path inside, as a network share would be: what one machine writes there the
    /// others see.
    pub fn boot_sharing(deb: &Path, share: Option<(&Path, &str)>) -> Machine {
        let base = base();
        let log = base.path().with_extension("log");
        let console = fs::File::create(&log).unwrap();
        let mut enter = Command::new("bash");
        if let Some((from, to)) = share {
            enter.env(
                "ZONE_ETCD_SYSROOT_SHARE",
                format!("{}:{to}", from.display()),
            );
        }
        let enter = enter
            .arg(enter_script())
            .arg(base.path())
            .arg(deb)
            .arg("boot")
            .stdin(Stdio::null())
            .stdout(console.try_clone().unwrap())
            .stderr(console)
            .spawn()
            .expect("bash tests/sysroot/enter.sh starts");
        let mut machine = Machine { enter, base, log };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(Some(status)) = machine.enter.try_wait() {
                panic!(
                    "could not boot systemd as PID 1 in a PID+mount namespace: the setup ended ({status}):\n{}",
                    machine.console()
                );
            }
            if let Some(pid) = machine.init_pid() {
                let state = machine.sh_output(pid, "systemctl is-system-running --wait");
                let state = String::from_utf8_lossy(&state.stdout).trim().to_string();
                if state == "running" {
                    return machine;
                }
                assert!(
                    state != "degraded",
                    "systemd booted degraded: {}\n{}",
                    machine.sh("systemctl --failed --no-pager"),
                    machine.console()
                );
            }
            assert!(
                Instant::now() < deadline,
                "systemd did not boot as PID 1 in a PID+mount namespace within 120 s (is systemd installed? scripts/test.sh installs it):\n{}",
                machine.console()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The machine's PID 1 (systemd), as this machine's PID.
    fn init_pid(&self) -> Option<u32> {
        let pid = self.enter.id();
        fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    /// The machine's PID 1 as this machine sees it: its files are under
    /// `/proc/<pid>/root`, its network namespace is `/proc/<pid>/ns/net`.
    pub fn pid(&self) -> u32 {
        self.init_pid().expect("the machine's PID 1 runs")
    }

    /// What systemd and the setup printed.
    pub fn console(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn sh_output(&self, init: u32, command: &str) -> Output {
        Command::new("timeout")
            .arg("120")
            .arg("nsenter")
            .arg(format!("--target={init}"))
            .args(["--all", "--root", "--wd", "--", "bash", "-c", command])
            .stdin(Stdio::null())
            .output()
            .expect("nsenter runs")
    }

    /// Runs `command` (bash) inside the machine; panics unless it succeeds; its stdout.
    pub fn sh(&self, command: &str) -> String {
        let out = self.try_sh(command);
        assert!(
            out.status.success(),
            "inside the machine, `{command}` failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `command` (bash) inside the machine, whatever its outcome.
    pub fn try_sh(&self, command: &str) -> Output {
        let init = self.init_pid().expect("the machine's PID 1 runs");
        self.sh_output(init, command)
    }

    /// Waits for the script of `run` to end.
    fn wait_output(mut self, limit: Duration) -> Output {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(_)) = self.enter.try_wait() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the script inside the machine ran over {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        use std::io::Read;
        if let Some(mut s) = self.enter.stdout.take() {
            let _ = s.read_to_end(&mut stdout);
        }
        if let Some(mut s) = self.enter.stderr.take() {
            let _ = s.read_to_end(&mut stderr);
        }
        let status = self.enter.wait().unwrap();
        Output {
            status,
            stdout,
            stderr,
        }
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        // Killing the namespace's PID 1 kills every process in it.
        if let Some(init) = self.init_pid() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(init as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.enter.kill();
        let _ = self.enter.wait();
        remove_cgroup(self.enter.id());
        let _ = fs::remove_file(&self.log);
    }
}

/// Removes the cgroup enter.sh made (children first; they are empty once PID 1 died).
fn remove_cgroup(pid: u32) {
    for parent in ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"] {
        let root = Path::new(parent).join(format!("zone-etcd-sysroot-{pid}"));
        if !root.is_dir() {
            continue;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while root.exists() && Instant::now() < deadline {
            let mut dirs = vec![root.clone()];
            let mut at = 0;
            while at < dirs.len() {
                let children: Vec<PathBuf> = fs::read_dir(&dirs[at])
                    .into_iter()
                    .flatten()
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path())
                    .collect();
                dirs.extend(children);
                at += 1;
            }
            for dir in dirs.iter().rev() {
                let _ = fs::remove_dir(dir);
            }
            if root.exists() {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        assert!(
            !root.exists(),
            "cgroup {} could not be removed",
            root.display()
        );
    }
}
