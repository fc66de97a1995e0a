//! The output formats of the command line: the values `--format` takes, as clap sees
//! them (names, order, the help of each, which `--help` lists), each turned into the
//! command's own plain enum, so no command depends on clap; and `--json`, `--format` and
//! `--out` of the commands that give a report.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::commands;

/// `launch --dry-run --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DryRunFormat {
    /// The binary, then one `--flag=value` argument per line.
    Args,
    /// `ETCD_*=value` lines for a systemd EnvironmentFile (the binary in a comment).
    Env,
}

impl From<DryRunFormat> for commands::launch::DryRunFormat {
    fn from(format: DryRunFormat) -> Self {
        match format {
            DryRunFormat::Args => Self::Args,
            DryRunFormat::Env => Self::Env,
        }
    }
}

/// `env --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EnvFormat {
    /// `export ETCDCTL_*=...` lines for a POSIX shell.
    Shell,
    Json,
    Toml,
}

impl From<EnvFormat> for commands::env::EnvFormat {
    fn from(format: EnvFormat) -> Self {
        match format {
            EnvFormat::Shell => Self::Shell,
            EnvFormat::Json => Self::Json,
            EnvFormat::Toml => Self::Toml,
        }
    }
}

/// `gateway --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GatewayFormat {
    /// cyfs-gateway's YAML stack configuration.
    CyfsGateway,
    /// The plan as JSON.
    Json,
}

impl From<GatewayFormat> for commands::gateway::Format {
    fn from(format: GatewayFormat) -> Self {
        match format {
            GatewayFormat::CyfsGateway => Self::CyfsGateway,
            GatewayFormat::Json => Self::Json,
        }
    }
}

/// `--format` of the reports of `check` and `backup status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// The certificate table, then each problem with its fix.
    Text,
    /// The same report as JSON, for scripts.
    Json,
    /// Metrics in Prometheus' text format, for node_exporter's textfile collector.
    Prometheus,
}

impl From<ReportFormat> for zone_node::report_output::CheckFormat {
    fn from(format: ReportFormat) -> Self {
        match format {
            ReportFormat::Text => Self::Text,
            ReportFormat::Json => Self::Json,
            ReportFormat::Prometheus => Self::Prometheus,
        }
    }
}

/// Where and in which form `check` and `backup status` give their report (the same
/// three flags, the same help, in both).
#[derive(Args)]
pub struct ReportOutput {
    /// Print the report as JSON (the same as --format json).
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// text, json, or prometheus (for node_exporter's textfile collector).
    #[arg(long, value_enum, default_value = "text")]
    pub format: ReportFormat,
    /// Write the report to FILE (replaced whole, mode 0644), even when problems are found.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

impl ReportOutput {
    /// The format asked for: `--json` is `--format json`.
    pub fn format(&self) -> zone_node::report_output::CheckFormat {
        if self.json {
            zone_node::report_output::CheckFormat::Json
        } else {
            self.format.into()
        }
    }
}
