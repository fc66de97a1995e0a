//! Where and in which form `check` gives its report: `--format` (`--json` is its
//! shorthand for json), and `--out`, the file it replaces whole instead of printing.

use std::path::Path;

use zone_io::Error;

/// Output formats of `check`.
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
pub(crate) fn emit(text: &str, out: Option<&Path>) -> Result<(), Error> {
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

/// The fix of "N problems found": where the problems and their fixes can be read.
pub(super) fn where_listed(config: &Path, format: CheckFormat, out: Option<&Path>) -> String {
    match (format, out) {
        (CheckFormat::Prometheus, _) => format!(
            "zone-etcd check --config {} lists each problem with its fix",
            config.display()
        ),
        (_, Some(out)) => format!("see the list in {}, each with its fix", out.display()),
        (_, None) => "see the list above, each with its fix".to_string(),
    }
}
