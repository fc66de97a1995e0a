//! The arm64 package's programs run on this amd64 machine under qemu-user: the files taken
//! out of the built .deb (never from target/), `qemu-aarch64-static` with the arm64 C
//! library of libc6-arm64-cross for zone-etcd, and a binfmt_misc entry for aarch64 ELF
//! files so that an emulated zone-etcd can exec the arm64 etcd as it does on a Pi.
//!
//! The entry is registered under a name of this process's own, with the flag F (the
//! interpreter is opened once, so it works in every mount namespace, `ip netns exec`'s
//! included), and removed when the last [`Binfmt`] of the process is dropped, pass or
//! fail; binfmt_misc is mounted only when it is not, and then unmounted again. Missing
//! tools make the test fail, naming the package to install: never pass.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

pub const QEMU: &str = "/usr/bin/qemu-aarch64-static";
/// Where libc6-arm64-cross puts the arm64 C library (QEMU_LD_PREFIX).
pub const SYSROOT: &str = "/usr/aarch64-linux-gnu";

/// The arm64 package unpacked with `dpkg-deb -x` into a directory of its own.
pub struct Unpacked {
    pub dir: tempfile::TempDir,
}

impl Unpacked {
    pub fn new(deb: &Path) -> Unpacked {
        let dir = tempfile::Builder::new()
            .prefix("zone-etcd-arm64-")
            .tempdir_in(super::common::repo().join("target"))
            .expect("a directory under target/");
        super::common::netns::must(
            "dpkg-deb",
            &["-x", deb.to_str().unwrap(), dir.path().to_str().unwrap()],
        );
        Unpacked { dir }
    }

    /// `usr/bin/zone-etcd` of the package.
    pub fn zone_etcd(&self) -> PathBuf {
        self.dir.path().join("usr/bin/zone-etcd")
    }

    /// A tool of `usr/lib/zone-etcd/` (etcd, etcdctl, etcdutl).
    pub fn lib(&self, tool: &str) -> PathBuf {
        self.dir.path().join("usr/lib/zone-etcd").join(tool)
    }

    /// The package's zone-etcd with `args`, under qemu-user.
    pub fn command<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Command {
        let mut cmd = emulated(&self.zone_etcd());
        cmd.args(args).env_remove("ZONE_ETCD_LOG");
        cmd
    }
}

/// `exe` (an arm64 program) run by qemu-aarch64-static, its C library from [`SYSROOT`].
pub fn emulated(exe: &Path) -> Command {
    assert!(
        Path::new(QEMU).is_file(),
        "{QEMU} missing: apt-get install qemu-user-static (scripts/package.sh --arch arm64 installs it)"
    );
    assert!(
        Path::new(SYSROOT).join("lib").is_dir(),
        "{SYSROOT}/lib missing: apt-get install libc6-arm64-cross (scripts/package.sh --arch arm64 installs it)"
    );
    let mut cmd = Command::new(QEMU);
    cmd.env("QEMU_LD_PREFIX", SYSROOT).arg(exe);
    cmd
}

const BINFMT: &str = "/proc/sys/fs/binfmt_misc";
/// qemu's own aarch64 ELF magic and mask (scripts/qemu-binfmt-conf.sh), as binfmt_misc
/// reads them: escapes, not bytes.
const MAGIC: &str = r"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00";
const MASK: &str =
    r"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff";

/// A hold on this process's binfmt_misc entry for aarch64 ELF files: the first hold
/// registers it, the last one dropped removes it (counted under one lock, so tests in
/// parallel never remove an entry another still uses).
pub struct Binfmt(());

/// The entry's name, whether this process mounted binfmt_misc, and the holds on it.
static ENTRY: Mutex<Option<(String, bool, usize)>> = Mutex::new(None);

impl Binfmt {
    /// Registers the entry, or holds the one this process registered already.
    pub fn register() -> Binfmt {
        let mut entry = ENTRY.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, _, holds)) = entry.as_mut() {
            *holds += 1;
            return Binfmt(());
        }
        assert!(
            nix::unistd::geteuid().is_root(),
            "registering a binfmt_misc interpreter for arm64 needs root"
        );
        emulated(Path::new("/")); // the interpreter and its C library are there
        let mounted_here = !Path::new(BINFMT).join("register").exists();
        if mounted_here {
            super::common::netns::must("mount", &["-t", "binfmt_misc", "binfmt_misc", BINFMT]);
        }
        let name = format!("zone-etcd-test-aarch64-{}", std::process::id());
        // A leftover of a killed run with the same PID goes first.
        let _ = fs::write(Path::new(BINFMT).join(&name), "-1");
        let rule = format!(":{name}:M::{MAGIC}:{MASK}:{QEMU}:F");
        if let Err(e) = fs::write(Path::new(BINFMT).join("register"), rule) {
            if mounted_here {
                let _ = Command::new("umount").arg(BINFMT).status();
            }
            panic!("cannot register {QEMU} for aarch64 ELF in {BINFMT}/register: {e}");
        }
        *entry = Some((name, mounted_here, 1));
        Binfmt(())
    }
}

impl Drop for Binfmt {
    fn drop(&mut self) {
        let mut entry = ENTRY.lock().unwrap_or_else(|e| e.into_inner());
        let Some((name, mounted_here, holds)) = entry.as_mut() else {
            return;
        };
        *holds -= 1;
        if *holds > 0 {
            return;
        }
        let _ = fs::write(Path::new(BINFMT).join(&*name), "-1");
        if *mounted_here {
            let _ = Command::new("umount").arg(BINFMT).status();
        }
        *entry = None;
    }
}
