//! Helpers that run beside etcd, detached: forked twice, so they are not children of the
//! process about to become etcd (by exec), since etcd never reaps children it did not
//! start; and how a helper tells whether the etcd it watches still runs.
//!
//! Invariants: a helper's start returns only once the helper's exec succeeded (or with
//! its error), and the launcher waits only for a fork, never for a second zone-etcd to
//! start (that cost a launch milliseconds); between a fork and the exec only
//! async-signal-safe calls are made (everything they need is made before the first
//! fork); a helper never holds the caller's standard input or output, and leads a
//! session of its own; a zombie is not running (it has exited; only its parent has not
//! reaped it yet).

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use nix::libc;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};
use zone_io::Error;

/// Starts a helper of etcd (`zone-etcd <args>`) detached: a child forks the helper and
/// exits at once, so the helper is adopted by init (or the supervisor's subreaper), not
/// left to the process about to become etcd. A pipe closed on exec tells whether the
/// helper's exec succeeded. `what` names it in errors.
#[allow(unsafe_code)] // fork twice: the keeper must outlive launch's exec into etcd
pub fn spawn_detached(args: &[String], what: &str) -> Result<(), Error> {
    let exe = own_executable()?;
    let cstring = |bytes: &[u8]| {
        CString::new(bytes)
            .map_err(|_| Error::new(format!("cannot start the {what}: a NUL in its arguments")))
    };
    let path = cstring(exe.as_os_str().as_bytes())?;
    let mut argv = vec![path.clone()];
    for arg in args {
        argv.push(cstring(arg.as_bytes())?);
    }
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let devnull = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| {
            Error::io(
                &format!("start the {what}"),
                std::path::Path::new("/dev/null"),
                &e,
            )
        })?;
    let (report_read, report_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| Error::new(format!("cannot start the {what}: pipe: {e}")))?;
    let (null_fd, write_fd) = (devnull.as_raw_fd(), report_write.as_raw_fd());
    // SAFETY: after each fork the child calls only async-signal-safe functions (fork,
    // setsid, dup2, execv, write, _exit) on data prepared before the first fork.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => unsafe {
            if let Ok(ForkResult::Child) = fork() {
                libc::setsid();
                libc::dup2(null_fd, 0);
                libc::dup2(null_fd, 1);
                libc::execv(path.as_ptr(), argv_ptrs.as_ptr());
                let errno = *libc::__errno_location();
                libc::write(write_fd, (&errno as *const i32).cast(), 4);
            }
            libc::_exit(0)
        },
        Ok(ForkResult::Parent { child }) => {
            drop(report_write);
            let status = waitpid(child, None)
                .map_err(|e| Error::new(format!("cannot start the {what}: {e}")))?;
            // EOF once the helper's exec closed its end (the child exited already).
            let mut errno = [0u8; 4];
            let got = nix::unistd::read(&report_read, &mut errno).unwrap_or(0);
            if got == 4 {
                let err = std::io::Error::from_raw_os_error(i32::from_ne_bytes(errno));
                return Err(Error::io(&format!("start the {what}"), &exe, &err));
            }
            match status {
                WaitStatus::Exited(_, 0) => Ok(()),
                other => Err(Error::new(format!("the {what} did not start ({other:?})"))),
            }
        }
        Err(e) => Err(Error::new(format!("cannot start the {what}: fork: {e}"))),
    }
}

fn own_executable() -> Result<PathBuf, Error> {
    std::env::current_exe()
        .map_err(|e| Error::new(format!("cannot find zone-etcd's own executable: {e}")))
}

/// Whether process `pid` still runs. A zombie does not: it has exited, and its parent
/// (a supervisor, a shell) may be waiting for this process to close the output it shares
/// before it reaps it.
pub fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name, which may itself hold ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => i32::try_from(pid)
            .is_ok_and(|pid| nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zombie_is_not_running() {
        assert!(running(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        // Exited but not reaped: a zombie.
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(!running(pid));
        child.wait().unwrap();
        assert!(!running(pid));
    }
}
