//! The command line: every command, flag and help text, defined once. `main.rs` parses
//! it and hands it to [`run`] (the dispatch to the commands and the exit status);
//! `zone-etcd completions` and `zone-etcd man` generate shell completions and man pages
//! from it, so neither can disagree with `--help`.
//!
//! Each command takes one args struct (`Launch(LaunchArgs)`), defined beside the other
//! commands of its concept; the flags several commands share (`--config` and its
//! variants, the S3 endpoint of a backup target) are [`args`]' structs, and the output
//! formats [`formats`]', flattened where each flag stands. A command's about text is its
//! variant's doc comment. The commands themselves (`crate::commands`) know no clap: each
//! takes plain values and plain enums.
//!
//! The doc comments here are the help texts users read (and the contract): `[access]`
//! and `<state>` in them are a zone file's table and a placeholder, not rustdoc links or
//! HTML, so rustdoc's link and HTML checks are off for this module alone.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]

use clap::{CommandFactory, Parser, Subcommand};

mod activate;
pub mod args;
mod backup;
mod ca;
mod cluster;
mod data;
pub mod formats;
mod node;
pub mod run;
mod tools;

pub use activate::{ActivateArgs, ActivateInstallArgs, ActivateRequestArgs, ActivateStep};
pub use backup::{BackupCmd, BackupDrillArgs, BackupExportArgs, BackupRunArgs, BackupStatusArgs};
pub use ca::{
    BootstrapArgs, CaAdminArgs, CaCmd, CaInitArgs, CaRetireArgs, CaRotateArgs, ZoneCmd,
    ZonePublishArgs, ZoneSignArgs,
};
pub use cluster::{
    DowngradeArgs, LeaveArgs, MaintainArgs, QuotaCmd, QuotaFreeArgs, RevokeArgs, StatusArgs,
    UpgradeEtcdArgs,
};
pub use data::{
    RestoreArgs, SnapshotCmd, SnapshotListArgs, SnapshotPruneArgs, SnapshotSaveArgs, UndoArgs,
};
pub use node::{
    CheckArgs, EnvArgs, GatewayArgs, IssueClientArgs, JoinArgs, KeepRevocationsArgs, LaunchArgs,
    PromoteLearnerArgs, RotateArgs, TrustArgs,
};
pub use tools::{CompletionsArgs, DemoArgs, ManArgs};

/// The clap definition of the whole command line (for completions and man pages).
pub fn command() -> clap::Command {
    Cli::command()
}

#[derive(Parser)]
#[command(
    name = "zone-etcd",
    version,
    long_version = zone_node::this_build::long_version(),
    about = "Run a zone's etcd cluster with mutual TLS: zone CA, node certificates, static cluster, exec etcd."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// The zone root CA.
    #[command(subcommand)]
    Ca(CaCmd),
    /// Issue one node its bundle: node.toml, the zone CA and the node's own CA; or answer
    /// a node's request, so its key never leaves it (`activate request`, then `install`).
    Activate(ActivateArgs),
    /// Offline bootstrap: a bundle for every etcd member, under DIR/<node_name>/.
    Bootstrap(BootstrapArgs),
    /// Issue or reuse this node's leaves, derive the cluster, and exec etcd.
    ///
    /// etcd is `etcd_bin` from node.toml, else the bundled etcd (etcd's official 3.6
    /// release, beside zone-etcd or in /usr/lib/zone-etcd/ from the package), else PATH.
    /// Every etcd from 3.4 to 3.7 runs with the flags and environment it takes. A step
    /// etcd's upgrade guides forbid is refused in one line, exit 78, nothing changed: an
    /// etcd older than the cluster, a skipped minor version, 3.6 before every member runs
    /// 3.5.32 or later, 3.7 before every member runs 3.6.11 or later, 3.7 over a log that
    /// still holds what etcd 3.5 wrote.
    Launch(LaunchArgs),
    /// Join the running cluster: add this node as a learner, start etcd, promote it.
    Join(JoinArgs),
    /// Remove a member from the running cluster (this node's by default), once the rest keep
    /// their quorum without it
    Leave(LeaveArgs),
    /// The running cluster's members: role, leader, raft index, size, health, TLS latency.
    Status(StatusArgs),
    /// Defragment members one at a time when it gives back much space, and clear NOSPACE.
    Maintain(MaintainArgs),
    /// A tenant's quota: `free` deletes keys of a stopped service (or node) so it writes
    /// again.
    #[command(subcommand)]
    Quota(QuotaCmd),
    /// Revoke a node: its node CA, and every leaf it issued, goes on the zone's CRL, which
    /// every member enforces on both ports within seconds; a member is also removed. Or
    /// revoke one identity (`--identity`): the owner's admin identity, a service
    /// instance's, a node's own, or a member's signer with all it signed.
    Revoke(RevokeArgs),
    /// Move the whole zone to another etcd release, by itself: every member takes the steps
    /// etcd allows (3.5.30 -> 3.5.34 -> 3.6.15 -> 3.7.2), one member at a time, only while
    /// every member is healthy; a release one minor version below the cluster's goes
    /// through etcd's downgrade. `--cancel` stops the moves.
    UpgradeEtcd(UpgradeEtcdArgs),
    /// Take the running cluster one minor version down through etcd's downgrade (etcd 3.6
    /// and later): `--to 3.6` on a 3.7 cluster, then restart each member on etcd 3.6, one at
    /// a time; or `--cancel` it.
    Downgrade(DowngradeArgs),
    /// Internal: started by launch and join to keep this member's CRL current.
    #[command(hide = true)]
    KeepRevocations(KeepRevocationsArgs),
    /// Internal: started by join and launch to promote this node's learner once caught up.
    #[command(hide = true)]
    PromoteLearner(PromoteLearnerArgs),
    /// New server, peer and client certificates (new keys), used by a running etcd at once.
    Rotate(RotateArgs),
    /// Inspect the node: its certificates (expiry, names, key usage, chain, keys, modes), its etcd, and a member's data disk (fdatasync latency).
    Check(CheckArgs),
    /// A client certificate for a local service, CN = its name (for etcd's RBAC).
    IssueClient(IssueClientArgs),
    /// Install the zone roots this node trusts (zone CA rotation); restart the member after.
    Trust(TrustArgs),
    /// What local services need to reach the zone's etcd: endpoints, CA, client certificate.
    Env(EnvArgs),
    /// The zone document the nameservice publishes.
    #[command(subcommand)]
    Zone(ZoneCmd),
    /// After the zone lost its quorum for good: make this member's data anew from a
    /// snapshot (then launch; the same on every member).
    Restore(RestoreArgs),
    /// Take the keys under a prefix back to what they were at a revision or a time, in the
    /// running zone, as new writes; keys changed again since are listed and left alone.
    Undo(UndoArgs),
    /// The zone gateway's tunnels this node needs for the zone's cyfs members, as
    /// cyfs-gateway stack configuration (or JSON).
    Gateway(GatewayArgs),
    /// Backups of the zone's data: save, list, prune.
    #[command(subcommand)]
    Snapshot(SnapshotCmd),
    /// Continuous backups off the machine: run, status, drill.
    #[command(subcommand)]
    Backup(BackupCmd),
    /// A whole local 3-member zone on 127.0.0.1-3, until Ctrl-C.
    Demo(DemoArgs),
    /// Print the shell completions of zone-etcd (bash, zsh, fish, elvish, powershell).
    Completions(CompletionsArgs),
    /// Internal (packaging): write the man pages, one per command, into DIR.
    #[command(hide = true)]
    Man(ManArgs),
}
