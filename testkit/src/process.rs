//! A process a harness started: a child held by its PID, with its output in a log file.
//!
//! Invariants: a [`Process`] is only ever made by spawning a child, so its PID is this
//! program's child until it is reaped; a signal goes to that PID only while the child is
//! not yet reaped (a reaped PID may already be another process's), and nothing is ever
//! killed by name. Dropping it (or [`Process::kill`]) sends SIGCONT (a stopped process
//! dies at once) then SIGKILL, and reaps it, so a failing test, scenario or benchmark
//! leaves no etcd behind.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

type Result<T> = std::result::Result<T, String>;

/// The binary `name` cargo built with this program (same target directory and profile):
/// beside it, or beside `deps/`'s parent for a test binary; missing, one line ending in
/// `fix` (how to build it).
pub fn built_binary(name: &str, fix: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.pop();
    }
    let bin = dir.join(name);
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!("{} is missing (fix: {fix})", bin.display()))
    }
}

/// A child process, killed by its PID when dropped.
#[derive(Debug)]
pub struct Process {
    /// The child itself, for `try_wait` and `wait` (a child reaped here is never signalled
    /// again: see the module's doc).
    pub child: Child,
    log: PathBuf,
}

impl Process {
    /// Starts `cmd` with its stdout and stderr in `log`, made anew (truncated). Its stdin
    /// is whatever `cmd` says.
    pub fn spawn(cmd: Command, log: &Path) -> Result<Process> {
        let file = File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        Process::spawn_into(cmd, log, file)
    }

    /// [`Process::spawn`], appending to `log` (a member started again keeps one log).
    pub fn spawn_appending(cmd: Command, log: &Path) -> Result<Process> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| format!("{}: {e}", log.display()))?;
        Process::spawn_into(cmd, log, file)
    }

    fn spawn_into(mut cmd: Command, log: &Path, file: File) -> Result<Process> {
        let err = file
            .try_clone()
            .map_err(|e| format!("{}: {e}", log.display()))?;
        let child = cmd
            .stdout(file)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("{cmd:?}: {e}"))?;
        Ok(Process {
            child,
            log: log.to_path_buf(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Everything it wrote so far (empty when the log is unreadable).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its exit status, once it has exited (reaping it); `None` while it runs.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        match self.child.try_wait() {
            Ok(status) => status,
            // Already reaped elsewhere, or not ours: it does not run.
            Err(_) => Some(ExitStatus::default()),
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.exit_status().is_none()
    }

    /// Sends `signal` to it; nothing when it has already exited (and is reaped now).
    pub fn signal(&mut self, signal: Signal) -> Result<()> {
        if !self.is_running() {
            return Ok(());
        }
        let pid = Pid::from_raw(self.pid() as i32);
        kill(pid, signal).map_err(|e| format!("kill -{signal} {pid}: {e}"))
    }

    /// Waits up to `limit` for it to exit by itself; whether it did (then it is reaped).
    pub fn wait_exit(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while self.is_running() {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        true
    }

    /// SIGTERM, as a supervisor stops a member, then waits up to `limit` for it; whether
    /// it exited. What still runs then is killed when it is dropped.
    pub fn stop(&mut self, limit: Duration) -> bool {
        let _ = self.signal(Signal::SIGTERM);
        self.wait_exit(limit)
    }

    /// SIGCONT then SIGKILL, and reaps it (nothing when it was already reaped).
    pub fn kill(&mut self) {
        if self.is_running() {
            let _ = kill(Pid::from_raw(self.pid() as i32), Signal::SIGCONT);
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_process_is_killed_and_reaped_and_an_exited_one_is_not_signalled() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("sleep.log");
        let mut sleeping = Command::new("sleep");
        sleeping.arg("600");
        let mut process = Process::spawn(sleeping, &log).unwrap();
        assert!(process.is_running());
        process.signal(Signal::SIGSTOP).unwrap();
        let pid = Pid::from_raw(process.pid() as i32);
        drop(process);
        // Reaped: no zombie is left with its PID.
        assert!(kill(pid, None).is_err());

        let mut echo = Command::new("sh");
        echo.args(["-c", "echo said"]);
        let mut done = Process::spawn_appending(echo, &log).unwrap();
        assert!(done.wait_exit(Duration::from_secs(10)));
        assert_eq!(done.log(), "said\n");
        assert!(done.signal(Signal::SIGKILL).is_ok());
        assert!(done.exit_status().is_some_and(|s| s.success()));
    }
}
