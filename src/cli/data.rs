//! The flags of the commands on the zone's data: its snapshots (`snapshot save|list|prune`),
//! making a member's data anew from one (`restore`), and taking keys back to a past
//! point (`undo`). Each command's about text is its variant's doc comment.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::args::{ca_help, only, BareConfig, MaybeCaDir, PointInTime};

#[derive(Subcommand)]
pub enum SnapshotCmd {
    /// Save a snapshot of the zone's data (from the local member when it answers, else
    /// another), checked against etcd's integrity hash, with a manifest beside it.
    Save(SnapshotSaveArgs),
    /// List the snapshots of <state>/snapshots/.
    List(SnapshotListArgs),
    /// Keep the newest K snapshots of <state>/snapshots/, remove the others.
    Prune(SnapshotPruneArgs),
}

/// `zone-etcd snapshot save`.
#[derive(Args)]
pub struct SnapshotSaveArgs {
    #[command(flatten)]
    pub config: BareConfig,
    /// Where to write it (default: <state>/snapshots/<zone>-<time>-r<revision>.db).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Then keep only the newest K snapshots of that directory.
    #[arg(long, value_name = "K")]
    pub keep: Option<usize>,
    /// Make it from this member's own data directory while its etcd is stopped (when
    /// a majority of members lost their data and this one kept it), not through etcd.
    #[arg(long)]
    pub from_data: bool,
}

/// `zone-etcd snapshot list`.
#[derive(Args)]
pub struct SnapshotListArgs {
    #[command(flatten)]
    pub config: BareConfig,
    #[arg(long)]
    pub json: bool,
}

/// `zone-etcd snapshot prune`.
#[derive(Args)]
pub struct SnapshotPruneArgs {
    #[command(flatten)]
    pub config: BareConfig,
    #[arg(long, value_name = "K")]
    pub keep: usize,
}

/// `zone-etcd restore`.
#[derive(Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub config: BareConfig,
    /// The snapshot (its manifest .json beside it).
    #[arg(long, value_name = "FILE")]
    pub from: PathBuf,
    /// Restore even though a quorum of the zone still answers (it splits the zone
    /// unless every member restores).
    #[arg(long)]
    pub force: bool,
}

/// `zone-etcd undo`. Its backup target flags are its own, not [`super::args::S3Endpoint`]:
/// each says it is for --from and requires it.
#[derive(Args)]
#[command(
    mut_args(only("at", |a| a.help("An RFC 3339 time (2026-11-23T10:15:00Z, or with an offset): the last revision received at or before it (from the node's backup chain)"))),
    mut_args(only("ca", |a| a.help(ca_help::UNDO_FROM).requires("from")))
)]
pub struct UndoArgs {
    #[command(flatten)]
    pub config: BareConfig,
    /// The keys to take back: every key that starts with PREFIX.
    #[arg(long, value_name = "PREFIX")]
    pub prefix: String,
    #[command(flatten)]
    pub point: PointInTime,
    /// Print the change, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Also take back keys changed again since the point.
    #[arg(long)]
    pub force: bool,
    /// Take the old values from this backup target (s3://BUCKET/PREFIX or
    /// file:///DIR) with the owner's CA and identity, on any node, instead of from the
    /// node's own chain.
    #[arg(long, value_name = "TARGET", requires_all = ["ca", "identity"])]
    pub from: Option<String>,
    #[command(flatten)]
    pub ca: MaybeCaDir,
    /// The owner's age identity file (from age-keygen), for --from.
    #[arg(long, value_name = "FILE", requires = "from")]
    pub identity: Option<PathBuf>,
    /// The S3 endpoint of --from (else AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL).
    #[arg(long, value_name = "URL", requires = "from")]
    pub endpoint: Option<String>,
    /// The S3 region of --from (else AWS_REGION).
    #[arg(long, value_name = "REGION", requires = "from")]
    pub region: Option<String>,
}
