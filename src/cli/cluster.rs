//! The flags of the commands on the running cluster: its members (`leave`, `status`,
//! `maintain`, `revoke`), a tenant's keys under its quota (`quota free`) and its etcd
//! release (`upgrade-etcd`, `downgrade`). Each command's about text is its variant's in
//! [`super::Cmd`].

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::args::{ca_help, only, AnyMemberConfig, AnyNodeConfig, CaDir, NodeConfig, ToOrCancel};

/// `zone-etcd leave`.
#[derive(Args)]
pub struct LeaveArgs {
    #[command(flatten)]
    pub config: NodeConfig,
    /// The member to remove, by node name (default: this node).
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,
    /// Remove it even if the voters left would not have a healthy quorum.
    #[arg(long)]
    pub force: bool,
}

/// `zone-etcd status`.
#[derive(Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub config: NodeConfig,
    /// Print the table as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `zone-etcd quota`.
#[derive(Subcommand)]
pub enum QuotaCmd {
    /// Delete the keys under a prefix of this node's service (or its own prefix), through
    /// a member: the way back for a tenant its quota stopped, whose writes (and so its
    /// deletes) etcd refuses. It writes again within seconds of being under 90%.
    Free(QuotaFreeArgs),
}

/// `zone-etcd quota free`.
#[derive(Args)]
pub struct QuotaFreeArgs {
    #[command(flatten)]
    pub config: NodeConfig,
    /// The service whose keys to delete (one this node runs); without it, the node's own
    /// prefix.
    #[arg(long, value_name = "SERVICE")]
    pub service: Option<String>,
    /// Every key under it is deleted: one of the service's read_write prefixes, or a
    /// longer prefix under one.
    #[arg(long, value_name = "PREFIX")]
    pub prefix: String,
}

/// `zone-etcd maintain`.
#[derive(Args)]
pub struct MaintainArgs {
    #[command(flatten)]
    pub config: NodeConfig,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Defragment the members that answer even while a voter is down.
    #[arg(long)]
    pub force: bool,
}

/// `zone-etcd revoke`: a node (`--node`) or one identity (`--identity`).
#[derive(Args)]
#[command(mut_args(only("ca", |a| a.help(ca_help::REVOKE))))]
pub struct RevokeArgs {
    #[command(flatten)]
    pub ca: CaDir,
    /// The node to revoke, by node name.
    #[arg(
        long,
        value_name = "NODE_NAME",
        required_unless_present = "identity",
        conflicts_with = "identity"
    )]
    pub node: Option<String>,
    /// The one identity to revoke: its certificate file (client.crt, or a member's
    /// pki/signer.crt).
    #[arg(long, value_name = "CERT_FILE")]
    pub identity: Option<PathBuf>,
    #[command(flatten)]
    pub config: AnyNodeConfig,
    /// The node CA certificate to revoke when the CA directory has no record of it (a
    /// node activated before zone-etcd recorded them): pki/node.crt of its bundle.
    #[arg(long, value_name = "FILE")]
    pub node_ca: Vec<PathBuf>,
    /// Remove a revoked member even if the voters left would not have a healthy quorum.
    #[arg(long)]
    pub force: bool,
}

/// `zone-etcd upgrade-etcd`: a target release (`--to`) or `--cancel`.
#[derive(Args)]
pub struct UpgradeEtcdArgs {
    #[command(flatten)]
    pub config: AnyMemberConfig,
    #[command(flatten)]
    pub target: ToOrCancel,
}

/// `zone-etcd downgrade`: a minor version (`--to`) or `--cancel`.
#[derive(Args)]
#[command(
    mut_args(only("to", |a| a.help("The minor version to go to: one below the cluster's version (e.g. 3.6)"))),
    mut_args(only("cancel", |a| a.help("Call off a downgrade that is under way")))
)]
pub struct DowngradeArgs {
    #[command(flatten)]
    pub config: AnyMemberConfig,
    #[command(flatten)]
    pub target: ToOrCancel,
}
