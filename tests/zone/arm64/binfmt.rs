//! A binfmt_misc entry for aarch64 ELF files, so that an emulated zone-etcd can exec the
//! arm64 etcd as it does on a Pi: `qemu-aarch64-static` registered with the flag F (the
//! interpreter is opened once, so the entry works in every mount namespace, `ip netns
//! exec`'s included), under a name of this process's own, and removed when the last
//! [`Binfmt`] of the process is dropped, pass or fail.
//!
//! binfmt_misc is machine-wide and unmounting it drops every entry, so tests in several
//! processes (nextest runs one a test) share it through locks in /run/lock: each process
//! holds `zone-etcd-tests-binfmt.users` shared while its entry exists; binfmt_misc is
//! mounted only when it is not, recording the mount's ID in `zone-etcd-tests-binfmt.mounted`,
//! and the last process out unmounts it only if that mount is still the one a test made.

use std::fs::{self, File};
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

use nix::fcntl::{Flock, FlockArg};

use super::emulated::{emulated, QEMU};

const BINFMT: &str = "/proc/sys/fs/binfmt_misc";
/// qemu's own aarch64 ELF magic and mask (scripts/qemu-binfmt-conf.sh), as binfmt_misc
/// reads them: escapes, not bytes.
const MAGIC: &str = r"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00";
const MASK: &str =
    r"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff";
/// Held exclusively while a process registers, removes, mounts or unmounts.
const CHANGING: &str = "/run/lock/zone-etcd-tests-binfmt.lock";
/// Held shared by every process whose entry exists.
const USERS: &str = "/run/lock/zone-etcd-tests-binfmt.users";
/// The ID of the binfmt_misc mount a test made (in /proc/self/mountinfo).
const MOUNTED: &str = "/run/lock/zone-etcd-tests-binfmt.mounted";

/// A hold on this process's entry: the first hold registers it, the last one dropped
/// removes it (counted under one lock, so tests in parallel never remove an entry
/// another still uses).
pub struct Binfmt(());

/// This process's entry: its name, its shared hold on [`USERS`], and the holds on it.
struct Entry {
    name: String,
    users: Flock<File>,
    holds: usize,
}

static ENTRY: Mutex<Option<Entry>> = Mutex::new(None);

fn lock(path: &str, how: FlockArg) -> Result<Flock<File>, String> {
    let file = File::create(path).map_err(|e| format!("{path}: {e}"))?;
    Flock::lock(file, how).map_err(|(_, e)| format!("locking {path}: {e}"))
}

/// The ID of the binfmt_misc mount at [`BINFMT`], if one is there.
fn mount_id() -> Option<String> {
    let table = fs::read_to_string("/proc/self/mountinfo").ok()?;
    table.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        (fields.get(4) == Some(&BINFMT)).then(|| fields[0].to_string())
    })
}

impl Binfmt {
    /// Registers the entry, or holds the one this process registered already.
    pub fn register() -> Binfmt {
        let mut entry = ENTRY.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = entry.as_mut() {
            entry.holds += 1;
            return Binfmt(());
        }
        assert!(
            nix::unistd::geteuid().is_root(),
            "registering a binfmt_misc interpreter for arm64 needs root"
        );
        emulated(Path::new("/")); // the interpreter and its C library are there
        let _changing = lock(CHANGING, FlockArg::LockExclusive).unwrap_or_else(|e| panic!("{e}"));
        let users = lock(USERS, FlockArg::LockShared).unwrap_or_else(|e| panic!("{e}"));
        if mount_id().is_none() {
            super::common::netns::must("mount", &["-t", "binfmt_misc", "binfmt_misc", BINFMT]);
            let id = mount_id().expect("binfmt_misc is mounted");
            fs::write(MOUNTED, id).unwrap_or_else(|e| panic!("{MOUNTED}: {e}"));
        }
        let name = format!("zone-etcd-test-aarch64-{}", std::process::id());
        // A leftover of a killed run with the same PID goes first.
        let _ = fs::write(Path::new(BINFMT).join(&name), "-1");
        let rule = format!(":{name}:M::{MAGIC}:{MASK}:{QEMU}:F");
        if let Err(e) = fs::write(Path::new(BINFMT).join("register"), rule) {
            panic!("cannot register {QEMU} for aarch64 ELF in {BINFMT}/register: {e}");
        }
        *entry = Some(Entry {
            name,
            users,
            holds: 1,
        });
        Binfmt(())
    }
}

impl Drop for Binfmt {
    fn drop(&mut self) {
        let mut entry = ENTRY.lock().unwrap_or_else(|e| e.into_inner());
        let Some(held) = entry.as_mut() else {
            return;
        };
        held.holds -= 1;
        if held.holds > 0 {
            return;
        }
        let Some(Entry { name, users, .. }) = entry.take() else {
            return;
        };
        let Ok(_changing) = lock(CHANGING, FlockArg::LockExclusive) else {
            return;
        };
        let _ = fs::write(Path::new(BINFMT).join(name), "-1");
        drop(users);
        // The last process out unmounts the mount a test made, and only that one.
        let Ok(_alone) = lock(USERS, FlockArg::LockExclusiveNonblock) else {
            return;
        };
        let made = fs::read_to_string(MOUNTED).ok();
        if made.is_some() && made == mount_id() {
            let _ = Command::new("umount").arg(BINFMT).status();
        }
        let _ = fs::remove_file(MOUNTED);
    }
}
