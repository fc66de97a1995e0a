//! Where and in which form a report of the node's health is given (`check`, `backup
//! status`): `--format` (`--json` is its shorthand for json), and `--out`, the file it
//! replaces whole instead of printing.

use std::path::Path;

use zone_io::Error;

/// The output formats of `check` and `backup status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckFormat {
    /// The certificate table, then each problem with its fix.
    Text,
    /// The same report as JSON, for scripts.
    Json,
    /// Metrics in Prometheus' text format, for node_exporter's textfile collector.
    Prometheus,
}

/// Prints `text`, or replaces `out` with it whole (a reader sees the old file or the new
/// one). The file is 0644 whatever the umask: node_exporter reads it as another user.
pub fn emit(text: &str, out: Option<&Path>) -> Result<(), Error> {
    let Some(out) = out else {
        print!("{text}");
        return Ok(());
    };
    let dir = match out.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(Error::new("no such directory for --out").file(dir).fix(
            "create it (prometheus-node-exporter makes its textfile directory) or choose another --out",
        ));
    }
    let umask = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    let written = zone_io::write_atomic(out, text.as_bytes(), 0o644);
    nix::sys::stat::umask(umask);
    written
}
