//! `zone-etcd completions SHELL` and the hidden `zone-etcd man --out DIR`: shell
//! completions and man pages generated from the one clap definition (`crate::cli`), so
//! what a package installs can never disagree with `--help`.

use std::io::Write;
use std::path::Path;

use zone_io::Error;
use zone_io::{write_atomic, PUBLIC_MODE};

/// Writes the completions of `cmd` for `shell` to `out`.
pub fn completions(
    mut cmd: clap::Command,
    shell: clap_complete::Shell,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let name = cmd.get_name().to_string();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut buf);
    out.write_all(&buf)
        .map_err(|e| Error::new(format!("cannot write the completions: {e}")))
}

/// Writes `zone-etcd.1` and one page per visible command (`zone-etcd-launch.1`,
/// `zone-etcd-snapshot-save.1`, ...) into `dir`, which must exist.
pub fn man_pages(cmd: clap::Command, dir: &Path) -> Result<(), Error> {
    let mut pages = Vec::new();
    collect(cmd.disable_help_subcommand(true), None, &mut pages);
    for (name, page) in pages {
        let mut roff = Vec::new();
        clap_mangen::Man::new(page)
            .render(&mut roff)
            .map_err(|e| Error::new(format!("cannot render the man page {name}: {e}")))?;
        write_atomic(&dir.join(format!("{name}.1")), &roff, PUBLIC_MODE)?;
    }
    Ok(())
}

/// The page of `cmd` under its full name (`zone-etcd-snapshot-save`, the synopsis
/// `zone-etcd snapshot save`), then its visible subcommands' pages.
fn collect(
    cmd: clap::Command,
    parent: Option<(&str, &str)>,
    pages: &mut Vec<(String, clap::Command)>,
) {
    let (name, bin) = match parent {
        None => (cmd.get_name().to_string(), cmd.get_name().to_string()),
        Some((name, bin)) => (
            format!("{name}-{}", cmd.get_name()),
            format!("{bin} {}", cmd.get_name()),
        ),
    };
    let subcommands: Vec<clap::Command> = cmd
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set())
        .cloned()
        .collect();
    // clap_mangen titles a page with the command's name and writes the synopsis with its
    // bin name.
    pages.push((name.clone(), cmd.name(name.clone()).bin_name(bin.clone())));
    for sub in subcommands {
        collect(sub, Some((&name, &bin)), pages);
    }
}
