//! `backup run|status|drill|export`: the flags of the zone's continuous backups.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::args::{
    ca_help, only, BareConfig, DrillConfig, LocalChainConfig, MaybeCaDir, NodeConfig, PointInTime,
    S3Endpoint,
};
use super::formats::ReportOutput;

#[derive(Subcommand)]
pub enum BackupCmd {
    /// The backup service, on every member: one at a time (elected through etcd) ships a
    /// full snapshot every full_every and the changes every delta_every, encrypted to the
    /// zone's [backup] recipients and signed, to every [[backup.target]].
    Run(BackupRunArgs),
    /// The active writer, each target's newest full snapshot and delta (the recovery
    /// point), the window, the gaps and the last drill; exits 1 when the newest delta on a
    /// target is over 2 minutes old, a gap is open or the last drill failed.
    Status(BackupStatusArgs),
    /// Prove the backups restore. With --config, on the active writer's member: restore
    /// the newest local chain into a scratch etcd, replay it and compare its HashKV with
    /// the live cluster's, and check every target holds the chain. With --from, on the
    /// owner's machine: verify and decrypt everything on that target, then restore it.
    Drill(BackupDrillArgs),
    /// The zone as it was at a revision or a time, as a snapshot `restore` takes: the full
    /// snapshot before the point and the deltas after it, verified, replayed in a scratch
    /// etcd up to the point. From a target (the owner's machine: --ca and --identity) or
    /// from a node's own chain (--from local --config NODE_FILE).
    Export(BackupExportArgs),
}

/// `zone-etcd backup run`.
#[derive(Args)]
pub struct BackupRunArgs {
    #[command(flatten)]
    pub config: NodeConfig,
}

/// `zone-etcd backup status`.
#[derive(Args)]
pub struct BackupStatusArgs {
    #[command(flatten)]
    pub config: BareConfig,
    #[command(flatten)]
    pub output: ReportOutput,
}

/// `zone-etcd backup drill`: the member's (`--config`) or the owner's (`--from`, `--ca`,
/// `--identity`).
#[derive(Args)]
#[command(mut_args(only("ca", |a| a.help(ca_help::TARGET))))]
pub struct BackupDrillArgs {
    #[command(flatten)]
    pub config: DrillConfig,
    /// The target to check: s3://BUCKET/PREFIX or file:///DIR.
    #[arg(long, value_name = "TARGET_URL", requires_all = ["ca", "identity"])]
    pub from: Option<String>,
    #[command(flatten)]
    pub ca: MaybeCaDir,
    /// The owner's age identity file (from age-keygen), to decrypt with.
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    #[command(flatten)]
    pub s3: S3Endpoint,
}

/// `zone-etcd backup export`: from a target (`--ca`, `--identity`) or from the node's own
/// chain (`--from local --config`).
#[derive(Args)]
#[command(mut_args(only("ca", |a| a.help(ca_help::TARGET).requires("identity"))))]
pub struct BackupExportArgs {
    /// s3://BUCKET/PREFIX, file:///DIR, or `local` (with --config: the node's own chain).
    #[arg(long, value_name = "SOURCE")]
    pub from: String,
    #[command(flatten)]
    pub point: PointInTime,
    /// The snapshot to write (its manifest FILE.json beside it; neither may exist).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    #[command(flatten)]
    pub config: LocalChainConfig,
    #[command(flatten)]
    pub ca: MaybeCaDir,
    /// The owner's age identity file (from age-keygen), to decrypt with.
    #[arg(long, value_name = "FILE", requires = "ca")]
    pub identity: Option<PathBuf>,
    #[command(flatten)]
    pub s3: S3Endpoint,
}
