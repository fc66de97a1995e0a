//! Names the commit zone-etcd is built from (`ZONE_ETCD_COMMIT`, for `--version` and the
//! release each member records in its zone), as ripgrep's build script does: the first
//! 10 hex digits of `git rev-parse HEAD`, or `unknown` outside a git checkout (a source
//! tarball). Built again when HEAD moves (a commit, a checkout), not on every build.

use std::process::Command;

fn main() {
    let commit = git(&["rev-parse", "--short=10", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=ZONE_ETCD_COMMIT={commit}");
    println!("cargo:rerun-if-changed=build.rs");
    // HEAD, the branch it points to and the packed refs: what a commit or checkout
    // changes, wherever git keeps them (a worktree's .git is a file).
    let mut watched = vec![git(&["rev-parse", "--git-path", "HEAD"])];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(git(&["rev-parse", "--git-path", &branch]));
    }
    watched.push(git(&["rev-parse", "--git-common-dir"]).map(|d| format!("{d}/packed-refs")));
    for path in watched.into_iter().flatten() {
        if std::path::Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}

/// `git ARGS`' one line of output, `None` when git is missing or fails.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let line = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !line.is_empty()).then_some(line)
}
