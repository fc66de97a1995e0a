//! Where the etcd binary is, and which etcd it is.
//!
//! The version comes from the binary itself (`etcd --version`), asked once per binary:
//! the answer is remembered in `<state>/etcd-versions.json` under the binary's path, size,
//! modification time and inode, so a launch over an unchanged binary runs no process
//! before etcd's own (the launch overhead stays a stat and a small read). Replacing the
//! binary (a new bundle, an upgraded package, `etcd_bin` pointing elsewhere) changes one
//! of the four and makes the next launch ask again. A binary that does not answer as etcd
//! does is refused in one line before anything is written.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use zone_io::Error;
use zone_io::{read_small_file, Links, PUBLIC_MODE};

use super::release::Version;
use super::version::{self, Profile};

/// Finds etcd: `etcd_bin` from node.toml, else `etcd` beside this executable (the
/// bundle), else in `../lib/zone-etcd/` from it (the package: /usr/bin/zone-etcd runs
/// /usr/lib/zone-etcd/etcd), else `PATH`.
pub fn find_binary(configured: Option<&Path>, config_file: &Path) -> Result<PathBuf, Error> {
    find_tool("etcd", configured, config_file)
}

/// Finds a bundled tool (`etcd`, `etcdctl`, `etcdutl`) the same way as etcd itself:
/// beside the configured etcd, beside this executable, in the package's
/// `../lib/zone-etcd/`, then on `PATH`.
pub fn find_tool(
    name: &str,
    configured_etcd: Option<&Path>,
    config_file: &Path,
) -> Result<PathBuf, Error> {
    if let Some(etcd) = configured_etcd {
        let candidate = match name {
            "etcd" => etcd.to_path_buf(),
            _ => etcd.with_file_name(name),
        };
        return if is_executable(&candidate) {
            Ok(candidate)
        } else {
            Err(
                Error::new(format!("{} is not an executable file", candidate.display()))
                    .file(config_file)
                    .field("etcd_bin")
                    .fix("point etcd_bin to the etcd binary, or remove it to use the bundled one"),
            )
        };
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
    {
        let packaged = dir.join(PACKAGE_LIB).join(name);
        if let Some(found) = [dir.join(name), packaged]
            .into_iter()
            .find(|p| is_executable(p))
        {
            return Ok(found);
        }
    }
    which::which(name).map_err(|_| {
        Error::new(format!(
            "cannot find {name}: not set in etcd_bin, not beside zone-etcd nor in {PACKAGE_LIB}/ from it, not on PATH"
        ))
        .file(config_file)
        .field("etcd_bin")
        .fix("run scripts/fetch-etcd.sh and put bin/ on PATH, or set etcd_bin in node.toml")
    })
}

/// Where the package puts the bundled etcd, relative to the directory of zone-etcd.
pub const PACKAGE_LIB: &str = "../lib/zone-etcd";

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The version cache, beside the leaves in the state directory.
const CACHE_FILE: &str = "etcd-versions.json";
/// Binaries remembered at once (a node switches between a few at most).
const CACHE_ENTRIES: usize = 16;
/// How long `etcd --version` may take (it answers in milliseconds).
const VERSION_TIMEOUT: Duration = Duration::from_secs(10);
/// The most of its output that is read.
const VERSION_OUTPUT_BYTES: u64 = 64 * 1024;

/// Whether [`identify`] may remember what it learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remember {
    Yes,
    /// `--dry-run` and `check` write nothing.
    No,
}

/// One remembered binary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    path: PathBuf,
    size: u64,
    mtime_ns: i128,
    inode: u64,
    version: String,
}

impl Entry {
    fn of(path: &Path, meta: &std::fs::Metadata, version: Version) -> Entry {
        Entry {
            path: path.to_path_buf(),
            size: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            inode: meta.ino(),
            version: version.to_string(),
        }
    }

    fn same_binary(&self, other: &Entry) -> bool {
        (&self.path, self.size, self.mtime_ns, self.inode)
            == (&other.path, other.size, other.mtime_ns, other.inode)
    }
}

/// The etcd at `binary` and what the launcher does with it (the version table), from the
/// cache in `state_dir` when the binary has not changed, else from `etcd --version`.
/// Refused, naming `config_file`'s `etcd_bin`, when it is not an etcd the table supports.
pub fn identify(
    binary: &Path,
    state_dir: &Path,
    remember: Remember,
    config_file: &Path,
) -> Result<Profile, Error> {
    let meta = std::fs::metadata(binary).map_err(|e| Error::io("inspect etcd", binary, &e))?;
    let cache_path = state_dir.join(CACHE_FILE);
    let mut cache = read_cache(&cache_path);
    let probe = Entry::of(binary, &meta, Version::new(0, 0, 0));
    let cached = cache
        .iter()
        .find(|e| e.same_binary(&probe))
        .and_then(|e| Version::parse(&e.version));
    let refuse = |problem: String| {
        Error::new(problem)
            .file(config_file)
            .field("etcd_bin")
            .fix(format!(
                "point etcd_bin to etcd {} or later, or remove it to use the bundled etcd (scripts/fetch-etcd.sh)",
                version::OLDEST_SUPPORTED
            ))
    };
    let found = match cached {
        Some(found) => found,
        None => ask_version(binary).map_err(refuse)?,
    };
    let profile = version::profile(found)
        .map_err(|why| refuse(format!("{} is etcd {found}: {why}", binary.display())))?;
    if cached.is_none() && remember == Remember::Yes {
        cache.retain(|e| e.path != binary);
        cache.insert(0, Entry::of(binary, &meta, found));
        cache.truncate(CACHE_ENTRIES);
        write_cache(&cache_path, &cache)?;
    }
    Ok(profile)
}

/// The version the binary prints for `--version`, or why none could be read.
pub fn ask_version(binary: &Path) -> Result<Version, String> {
    let shown = binary.display();
    let mut child = Command::new(binary)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run {shown} --version: {e}"))?;
    let stdout = child.stdout.take();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut out = Vec::new();
        if let Some(stdout) = stdout {
            let _ = stdout.take(VERSION_OUTPUT_BYTES).read_to_end(&mut out);
        }
        let _ = sender.send(out);
    });
    let Ok(out) = receiver.recv_timeout(VERSION_TIMEOUT) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!(
            "{shown} --version did not answer within {VERSION_TIMEOUT:?}; it is not an etcd"
        ));
    };
    let status = child
        .wait()
        .map_err(|e| format!("cannot wait for {shown} --version: {e}"))?;
    let text = String::from_utf8_lossy(&out);
    match super::release::from_version_output(&text) {
        Some(found) if status.success() => Ok(found),
        _ => {
            let first = text.lines().map(str::trim).find(|l| !l.is_empty());
            let said = match first {
                None => "printed nothing".to_string(),
                Some(line) => format!("printed \"{}\"", line.chars().take(80).collect::<String>()),
            };
            let exited = if status.success() {
                String::new()
            } else {
                format!(" and exited with {status}")
            };
            Err(format!(
                "{shown} does not look like etcd: '--version' {said}{exited} (etcd prints \"etcd Version: X.Y.Z\")"
            ))
        }
    }
}

/// The remembered binaries; an unreadable or damaged cache is an empty one (it is only a
/// cache: the binaries are asked again).
fn read_cache(path: &Path) -> Vec<Entry> {
    read_small_file(path, Links::Refuse)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Under the state lock, as every write into the state directory; the caller holds none.
fn write_cache(path: &Path, cache: &[Entry]) -> Result<(), Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let _lock = zone_io::state::lock(dir)?;
    let text = serde_json::to_vec_pretty(cache)
        .map_err(|e| Error::new(format!("cannot write the etcd version cache: {e}")))?;
    zone_io::write_atomic(path, &text, PUBLIC_MODE)
}

/// The last non-empty line an etcd tool wrote to stderr: its error, without the log lines
/// before it.
pub fn last_stderr_line(stderr: &[u8]) -> String {
    String::from_utf8_lossy(stderr)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .to_string()
}

/// What an etcd that exited said last, as one line: its last log entry's `msg` and
/// `error` (etcd logs JSON, and its fatal entry carries a Go stack trace, which is no
/// message for an operator), or the last line as it is when it is not JSON.
pub fn fatal_line(log: &[u8]) -> String {
    let last = last_stderr_line(log);
    let Ok(entry) = serde_json::from_str::<serde_json::Value>(&last) else {
        return last;
    };
    let field = |name: &str| entry.get(name).and_then(|v| v.as_str()).unwrap_or("");
    match (field("msg"), field("error")) {
        ("", "") => last,
        (msg, "") => msg.to_string(),
        ("", error) => error.to_string(),
        (msg, error) => format!("{msg}: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// Held by each test that writes a script and runs it. A test writing its script
    /// while another forks to run one hands the fork its open write descriptor (until
    /// that child execs), and running the script then fails with "Text file busy"
    /// (ETXTBSY): seen in a clean run. So they take turns.
    static SCRIPTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn turn() -> std::sync::MutexGuard<'static, ()> {
        SCRIPTS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn a_binary_is_asked_once_until_it_changes() {
        let _turn = turn();
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let count = dir.path().join("asked");
        let body = |v: &str| format!("echo x >> {}\necho 'etcd Version: {v}'", count.display());
        let etcd = script(dir.path(), "etcd", &body("3.5.30"));
        let asked = || std::fs::read_to_string(&count).map_or(0, |t| t.lines().count());
        let config = dir.path().join("node.toml");
        let ident = |remember| identify(&etcd, &state, remember, &config).unwrap().version;

        assert_eq!(ident(Remember::No), Version::new(3, 5, 30));
        assert_eq!(asked(), 1);
        assert!(!state.exists(), "a dry run writes nothing");
        assert_eq!(ident(Remember::Yes), Version::new(3, 5, 30));
        assert_eq!(ident(Remember::Yes), Version::new(3, 5, 30));
        assert_eq!(asked(), 2, "the second launch used the cache");

        // Replaced by another release: a new inode, size and time, asked again.
        std::fs::remove_file(&etcd).unwrap();
        script(dir.path(), "etcd", &body("3.4.23"));
        assert_eq!(ident(Remember::Yes), Version::new(3, 4, 23));
        assert_eq!(asked(), 3);
    }

    #[test]
    fn what_is_not_etcd_is_refused_in_one_line() {
        let _turn = turn();
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let config = dir.path().join("node.toml");
        let cases = [
            ("true", "exit 0", "printed nothing"),
            ("garbage", "echo 'hello world'", "printed \"hello world\""),
            (
                "failing",
                "echo 'etcd Version: 3.5.30'; exit 3",
                "exited with exit status: 3",
            ),
            ("old", "echo 'etcd Version: 3.3.25'", "is etcd 3.3.25"),
        ];
        for (name, body, says) in cases {
            let bin = script(dir.path(), name, body);
            let err = identify(&bin, &state, Remember::Yes, &config).unwrap_err();
            let line = err.to_string();
            assert!(line.contains(says), "{name}: {line}");
            assert!(!line.contains('\n'), "{name}: {line}");
            assert_eq!(err.field_name(), Some("etcd_bin"), "{name}");
            assert!(!state.exists(), "{name}: nothing written");
        }
    }

    #[test]
    fn an_exited_etcds_last_entry_is_one_line_without_its_stack_trace() {
        let log = br#"{"level":"info","msg":"closing etcd server"}
{"level":"fatal","ts":"2026-11-27T07:38:03Z","msg":"discovery failed","error":"listen tcp 127.0.0.1:2380: bind: address already in use","stacktrace":"go.etcd.io/etcd/server/v3/etcdmain.startEtcdOrProxyV2\n\tetcd.go:183"}
"#;
        assert_eq!(
            fatal_line(log),
            "discovery failed: listen tcp 127.0.0.1:2380: bind: address already in use"
        );
        assert_eq!(fatal_line(b"{\"msg\":\"stopped\"}\n"), "stopped");
        assert_eq!(fatal_line(b"panic: plain text\n\n"), "panic: plain text");
        assert_eq!(fatal_line(b""), "");
    }
}
