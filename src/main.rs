//! zone-etcd: the etcd launcher of a zone. Parses the command line (`zone_etcd::cli`) and
//! turns the outcome into an exit status; each command lives in `zone_etcd::commands`.

use std::process::ExitCode;

use clap::Parser;
use zone_etcd::cli::{self, Cli};

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ZONE_ETCD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    match cli::run::run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("zone-etcd: error: {err}");
            ExitCode::from(cli::run::exit_code(&err))
        }
    }
}
