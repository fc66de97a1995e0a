//! Helpers that run beside etcd, detached: started through a short-lived intermediate,
//! so they are not children of the process about to become etcd (by exec), since etcd
//! never reaps children it did not start; and how a helper tells whether the etcd it
//! watches still runs.
//!
//! Invariants: a helper's start returns only once the intermediate exited successfully
//! (so the helper runs); a helper never holds the caller's standard input; a zombie is
//! not running (it has exited; only its parent has not reaped it yet).

use std::path::PathBuf;

use zone_pki::Error;

/// Starts a helper of etcd (`zone-etcd <args>`) detached, through a short-lived
/// intermediate (`<args> --detach`, which runs [`respawn_detached`]), so it is not the
/// child of the process about to become etcd: etcd never reaps children it did not start.
/// `what` names it in errors.
pub fn spawn_detached(args: &[String], what: &str) -> Result<(), Error> {
    let exe = own_executable()?;
    let status = std::process::Command::new(&exe)
        .args(args)
        .arg("--detach")
        .stdin(std::process::Stdio::null())
        .status()
        .map_err(|e| Error::io(&format!("start the {what}"), &exe, &e))?;
    if !status.success() {
        return Err(Error::new(format!("the {what} did not start ({status})")));
    }
    Ok(())
}

/// The intermediate's step of [`spawn_detached`]: `zone-etcd <args>` in the background.
pub fn respawn_detached(args: &[String], what: &str) -> Result<(), Error> {
    let exe = own_executable()?;
    std::process::Command::new(&exe)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .map_err(|e| Error::io(&format!("start the {what}"), &exe, &e))?;
    Ok(())
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
