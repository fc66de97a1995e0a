//! The arm64 package's programs run on this amd64 machine under qemu-user: the files taken
//! out of the built .deb (never from target/), `qemu-aarch64-static` with the arm64 C
//! library of libc6-arm64-cross (binfmt.rs lets an emulated zone-etcd exec the arm64
//! etcd). Missing tools make the test fail, naming the package to install: never pass.

use std::path::{Path, PathBuf};
use std::process::Command;

pub use super::package_check::{unpack, Unpacked};

pub const QEMU: &str = "/usr/bin/qemu-aarch64-static";
/// Where libc6-arm64-cross puts the arm64 C library (QEMU_LD_PREFIX).
pub const SYSROOT: &str = "/usr/aarch64-linux-gnu";

/// What runs from a package unpacked by [`unpack`] (its files, never target/'s).
impl Unpacked {
    /// `usr/bin/zone-etcd` of the package.
    pub fn zone_etcd(&self) -> PathBuf {
        self.root.path().join("usr/bin/zone-etcd")
    }

    /// A tool of `usr/lib/zone-etcd/` (etcd, etcdctl, etcdutl).
    pub fn lib(&self, tool: &str) -> PathBuf {
        self.root.path().join("usr/lib/zone-etcd").join(tool)
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
