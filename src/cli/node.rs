//! The flags of the commands a node runs on its own bundle: its etcd (`launch`, `join`,
//! and the internal processes they start), its certificates (`rotate`, `check`,
//! `issue-client`, `trust`) and what its local services and gateway need (`env`,
//! `gateway`). Each command's about text is its variant's in [`super::Cmd`].

use std::path::PathBuf;

use clap::Args;

use super::args::{BareConfig, NodeConfig, NodeOrSeedConfig, WatchPid};
use super::formats::{DryRunFormat, EnvFormat, GatewayFormat, ReportOutput};

/// `zone-etcd launch`.
#[derive(Args)]
pub struct LaunchArgs {
    #[command(flatten)]
    pub config: NodeConfig,
    /// Print the etcd command line, one argument per line, and start nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// With --dry-run: `args` (the command line) or `env` (ETCD_* variables for a
    /// systemd EnvironmentFile).
    #[arg(long, value_enum, default_value = "args", requires = "dry_run")]
    pub format: DryRunFormat,
}

/// `zone-etcd join`.
#[derive(Args)]
pub struct JoinArgs {
    #[command(flatten)]
    pub config: BareConfig,
    /// This node's member lost its data (a new disk): remove it from the cluster once
    /// it answers nowhere, and join anew under a new member ID.
    #[arg(long)]
    pub replace: bool,
}

/// `zone-etcd keep-revocations` (internal).
#[derive(Args)]
pub struct KeepRevocationsArgs {
    #[command(flatten)]
    pub config: BareConfig,
    #[command(flatten)]
    pub watch: WatchPid,
}

/// `zone-etcd promote-learner` (internal).
#[derive(Args)]
pub struct PromoteLearnerArgs {
    #[command(flatten)]
    pub config: BareConfig,
    /// The learner's member ID (hex).
    #[arg(long, value_name = "ID")]
    pub member_id: String,
    #[command(flatten)]
    pub watch: WatchPid,
}

/// `zone-etcd rotate`.
#[derive(Args)]
pub struct RotateArgs {
    #[command(flatten)]
    pub config: NodeConfig,
    /// Only renew what is due (past 2/3 of its life, expired, names changed): for a timer.
    #[arg(long)]
    pub if_due: bool,
}

/// `zone-etcd check`.
#[derive(Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub config: NodeConfig,
    #[command(flatten)]
    pub output: ReportOutput,
}

/// `zone-etcd issue-client`.
#[derive(Args)]
pub struct IssueClientArgs {
    #[command(flatten)]
    pub config: NodeConfig,
    /// The service's name: the certificate's CN, which etcd's RBAC maps to a user.
    #[arg(long, value_name = "SERVICE")]
    pub name: String,
    /// Where to write ca.crt, client.crt and client.key (must not exist, or be empty).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// `zone-etcd trust`.
#[derive(Args)]
pub struct TrustArgs {
    #[command(flatten)]
    pub config: NodeConfig,
    /// The trust file from the owner: trust.crt (both roots) or the new ca.crt.
    #[arg(long, value_name = "FILE")]
    pub ca: PathBuf,
    /// The client roots from the owner (a zone with [access]): client-roots.crt (both)
    /// or the new client-ca.crt.
    #[arg(long, value_name = "FILE")]
    pub client_ca: Option<PathBuf>,
}

/// `zone-etcd env`.
#[derive(Args)]
pub struct EnvArgs {
    #[command(flatten)]
    pub config: NodeOrSeedConfig,
    /// `shell` prints ETCDCTL_* exports for `eval "$(zone-etcd env ...)"`.
    #[arg(long, value_enum, default_value = "shell")]
    pub format: EnvFormat,
    /// A service's own identity (SERVICE@<node>, a zone with [access]) instead of the
    /// node's: obtained from the zone when missing or due.
    #[arg(long, value_name = "SERVICE")]
    pub service: Option<String>,
    /// With --service: also a password for etcd's JSON gateway (HTTP clients such as
    /// Patroni and curl), made here and set on the service's user; its file is printed.
    #[arg(long, requires = "service")]
    pub gateway: bool,
}

/// `zone-etcd gateway`.
#[derive(Args)]
pub struct GatewayArgs {
    #[command(flatten)]
    pub config: BareConfig,
    /// `cyfs-gateway` (YAML stacks to include from the gateway's configuration) or
    /// `json` (the same plan, for any other forwarder).
    #[arg(long, value_enum, default_value = "cyfs-gateway")]
    pub format: GatewayFormat,
}
