//! The command line: every command, flag and help text, defined once. `main.rs` parses
//! it and hands it to [`run`] (the dispatch to the commands and the exit status);
//! `zone-etcd completions` and `zone-etcd man` generate shell completions and man pages
//! from it, so neither can disagree with `--help`.

use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand};

use crate::commands;

mod activate;
mod backup;
mod ca;
pub mod run;

pub use activate::{ActivateArgs, ActivateStep};
pub use backup::BackupCmd;
pub use ca::{CaCmd, ZoneCmd};

/// The clap definition of the whole command line (for completions and man pages).
pub fn command() -> clap::Command {
    Cli::command()
}

#[derive(Parser)]
#[command(
    name = "zone-etcd",
    version,
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
    Bootstrap {
        #[arg(long, value_name = "DIR")]
        ca: PathBuf,
        #[arg(long, value_name = "ZONE_FILE")]
        zone: PathBuf,
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Issue or reuse this node's leaves, derive the cluster, and exec etcd.
    ///
    /// etcd is `etcd_bin` from node.toml, else the bundled etcd (etcd's official 3.6
    /// release, beside zone-etcd or in /usr/lib/zone-etcd/ from the package), else PATH.
    /// Every etcd from 3.4 to 3.7 runs with the flags and environment it takes. A step
    /// etcd's upgrade guides forbid is refused in one line, exit 78, nothing changed: an
    /// etcd older than the cluster, a skipped minor version, 3.6 before every member runs
    /// 3.5.32 or later, 3.7 before every member runs 3.6.11 or later, 3.7 over a log that
    /// still holds what etcd 3.5 wrote.
    Launch {
        /// The node's config (node.toml from its bundle).
        #[arg(long, value_name = "NODE_FILE")]
        config: PathBuf,
        /// Print the etcd command line, one argument per line, and start nothing.
        #[arg(long)]
        dry_run: bool,
        /// With --dry-run: `args` (the command line) or `env` (ETCD_* variables for a
        /// systemd EnvironmentFile).
        #[arg(long, value_enum, default_value = "args", requires = "dry_run")]
        format: commands::launch::DryRunFormat,
    },
    /// Join the running cluster: add this node as a learner, start etcd, promote it.
    Join {
        #[arg(long, value_name = "NODE_FILE")]
        config: PathBuf,
        /// This node's member lost its data (a new disk): remove it from the cluster once
        /// it answers nowhere, and join anew under a new member ID.
        #[arg(long)]
        replace: bool,
    },
    /// Remove a member from the running cluster (this node's by default), once the rest keep
    /// their quorum without it
    Leave {
        /// The node's config (node.toml from its bundle).
        #[arg(long, value_name = "NODE_FILE")]
        config: PathBuf,
        /// The member to remove, by node name (default: this node).
        #[arg(long, value_name = "NAME")]
        node: Option<String>,
        /// Remove it even if the voters left would not have a healthy quorum.
        #[arg(long)]
        force: bool,
    },
    /// The running cluster's members: role, leader, raft index, size, health, TLS latency.
    Status {
        /// The node's config (node.toml from its bundle).
        #[arg(long, value_name = "NODE_FILE")]
        config: PathBuf,
        /// Print the table as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Defragment members one at a time when it gives back much space, and clear NOSPACE.
    Maintain {
        /// The node's config (node.toml from its bundle).
        #[arg(long, value_name = "NODE_FILE")]
        config: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Defragment the members that answer even while a voter is down.
        #[arg(long)]
        force: bool,
    },
    /// Revoke a node: its node CA, and every leaf it issued, goes on the zone's CRL, which
    /// every member enforces on both ports within seconds; a member is also removed. Or
    /// revoke one identity (`--identity`): the owner's admin identity, a service
    /// instance's, a node's own, or a member's signer with all it signed.
    Revoke {
        /// The zone root CA directory (from `zone-etcd ca init`).
        #[arg(long, value_name = "CA_DIR")]
        ca: PathBuf,
        /// The node to revoke, by node name.
        #[arg(
            long,
            value_name = "NODE_NAME",
            required_unless_present = "identity",
            conflicts_with = "identity"
        )]
        node: Option<String>,
        /// The one identity to revoke: its certificate file (client.crt, or a member's
        /// pki/signer.crt).
        #[arg(long, value_name = "CERT_FILE")]
        identity: Option<PathBuf>,
        /// Any node's config (node.toml from its bundle): how to reach the running zone.
        #[arg(long, value_name = "NODE_FILE")]
        config: PathBuf,
        /// The node CA certificate to revoke when the CA directory has no record of it (a
        /// node activated before zone-etcd recorded them): pki/node.crt of its bundle.
        #[arg(long, value_name = "FILE")]
        node_ca: Vec<PathBuf>,
        /// Remove a revoked member even if the voters left would not have a healthy quorum.
        #[arg(long)]
        force: bool,
    },
    /// Move the whole zone to another etcd release, by itself: every member takes the steps
    /// etcd allows (3.5.30 -> 3.5.34 -> 3.6.15 -> 3.7.2), one member at a time, only while
    /// every member is healthy; a release one minor version below the cluster's goes
    /// through etcd's downgrade. `--cancel` stops the moves.
    UpgradeEtcd {
        /// Any member's config (node.toml from its bundle): how to reach the running zone.
        #[arg(long, value_name = "NODE_FILE")]
        config: PathBuf,
        /// The etcd release the zone runs (e.g. 3.7.2; 3.6.15 on a 3.7 zone downgrades).
        #[arg(
            long,
            value_name = "VERSION",
            required_unless_present = "cancel",
            conflicts_with = "cancel"
        )]
        to: Option<String>,
        /// Remove the zone's target release (members already moved stay) and call off a
        /// downgrade under way.
        #[arg(long)]
        cancel: bool,
    },
    /// Take the running cluster one minor version down through etcd's downgrade (etcd 3.6
    /// and later): `--to 3.6` on a 3.7 cluster, then restart each member on etcd 3.6, one at
    /// a time; or `--cancel` it.
    Downgrade {
        /// Any member's config (node.toml from its bundle): how to reach the running zone.
        #[arg(long, value_name = "NODE_FILE")]
        config: PathBuf,
        /// The minor version to go to: one below the cluster's version (e.g. 3.6).
        #[arg(
            long,
            value_name = "VERSION",
            required_unless_present = "cancel",
            conflicts_with = "cancel"
        )]
        to: Option<String>,
        /// Call off a downgrade that is under way.
        #[arg(long)]
        cancel: bool,
    },
    /// Internal: started by launch and join to keep this member's CRL current.
    #[command(hide = true)]
    KeepRevocations {
        #[arg(long, value_name = "NODE_FILE")]
        config: PathBuf,
        /// Stop when this process (etcd) exits.
        #[arg(long, value_name = "PID")]
        watch_pid: u32,
    },
    /// Internal: started by join and launch to promote this node's learner once caught up.
    #[command(hide = true)]
    PromoteLearner {
        #[arg(long, value_name = "NODE_FILE")]
        config: PathBuf,
        /// The learner's member ID (hex).
        #[arg(long, value_name = "ID")]
        member_id: String,
        /// Stop when this process (etcd) exits.
        #[arg(long, value_name = "PID")]
        watch_pid: u32,
    },
    /// New server, peer and client certificates (new keys), used by a running etcd at once.
    Rotate {
        /// The node's config (node.toml from its bundle).
        #[arg(long, value_name = "NODE_FILE")]
        config: PathBuf,
        /// Only renew what is due (past 2/3 of its life, expired, names changed): for a timer.
        #[arg(long)]
        if_due: bool,
    },
    /// Inspect the node's certificates: expiry, names, key usage, chain, keys, modes.
    Check {
        /// The node's config (node.toml from its bundle).
        #[arg(long, value_name = "NODE_FILE")]
        config: PathBuf,
        /// Print the report as JSON (the same as --format json).
        #[arg(long, conflicts_with = "format")]
        json: bool,
        /// text, json, or prometheus (for node_exporter's textfile collector).
        #[arg(long, value_enum, default_value = "text")]
        format: commands::check::CheckFormat,
        /// Write the report to FILE (replaced whole, mode 0644), even when problems are found.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// A client certificate for a local service, CN = its name (for etcd's RBAC).
    IssueClient {
        /// The node's config (node.toml from its bundle).
        #[arg(long, value_name = "NODE_FILE")]
        config: PathBuf,
        /// The service's name: the certificate's CN, which etcd's RBAC maps to a user.
        #[arg(long, value_name = "SERVICE")]
        name: String,
        /// Where to write ca.crt, client.crt and client.key (must not exist, or be empty).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Install the zone roots this node trusts (zone CA rotation); restart the member after.
    Trust {
        /// The node's config (node.toml from its bundle).
        #[arg(long, value_name = "NODE_FILE")]
        config: PathBuf,
        /// The trust file from the owner: trust.crt (both roots) or the new ca.crt.
        #[arg(long, value_name = "FILE")]
        ca: PathBuf,
        /// The client roots from the owner (a zone with [access]): client-roots.crt (both)
        /// or the new client-ca.crt.
        #[arg(long, value_name = "FILE")]
        client_ca: Option<PathBuf>,
    },
    /// What local services need to reach the zone's etcd: endpoints, CA, client certificate.
    Env {
        /// The node's config (node.toml from its bundle, or the seed's JSON form).
        #[arg(long, value_name = "NODE_FILE")]
        config: PathBuf,
        /// `shell` prints ETCDCTL_* exports for `eval "$(zone-etcd env ...)"`.
        #[arg(long, value_enum, default_value = "shell")]
        format: commands::env::EnvFormat,
        /// A service's own identity (SERVICE@<node>, a zone with [access]) instead of the
        /// node's: obtained from the zone when missing or due.
        #[arg(long, value_name = "SERVICE")]
        service: Option<String>,
        /// With --service: also a password for etcd's JSON gateway (HTTP clients such as
        /// Patroni and curl), made here and set on the service's user; its file is printed.
        #[arg(long, requires = "service")]
        gateway: bool,
    },
    /// The zone document the nameservice publishes.
    #[command(subcommand)]
    Zone(ZoneCmd),
    /// After the zone lost its quorum for good: make this member's data anew from a
    /// snapshot (then launch; the same on every member).
    Restore {
        #[arg(long, value_name = "NODE_FILE")]
        config: PathBuf,
        /// The snapshot (its manifest .json beside it).
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
        /// Restore even though a quorum of the zone still answers (it splits the zone
        /// unless every member restores).
        #[arg(long)]
        force: bool,
    },
    /// Take the keys under a prefix back to what they were at a revision or a time, in the
    /// running zone, as new writes; keys changed again since are listed and left alone.
    Undo {
        #[arg(long, value_name = "NODE_FILE")]
        config: PathBuf,
        /// The keys to take back: every key that starts with PREFIX.
        #[arg(long, value_name = "PREFIX")]
        prefix: String,
        /// An RFC 3339 time (2026-11-23T10:15:00Z, or with an offset): the last revision
        /// received at or before it (from the node's backup chain).
        #[arg(
            long,
            value_name = "TIME",
            required_unless_present = "revision",
            conflicts_with = "revision"
        )]
        at: Option<String>,
        /// Exactly this revision.
        #[arg(long, value_name = "REV")]
        revision: Option<i64>,
        /// Print the change, change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Also take back keys changed again since the point.
        #[arg(long)]
        force: bool,
        /// Take the old values from this backup target (s3://BUCKET/PREFIX or
        /// file:///DIR) with the owner's CA and identity, on any node, instead of from the
        /// node's own chain.
        #[arg(long, value_name = "TARGET", requires_all = ["ca", "identity"])]
        from: Option<String>,
        /// The zone CA directory (ca.crt; trust.crt during a CA rotation), for --from.
        #[arg(long, value_name = "CA_DIR", requires = "from")]
        ca: Option<PathBuf>,
        /// The owner's age identity file (from age-keygen), for --from.
        #[arg(long, value_name = "FILE", requires = "from")]
        identity: Option<PathBuf>,
        /// The S3 endpoint of --from (else AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL).
        #[arg(long, value_name = "URL", requires = "from")]
        endpoint: Option<String>,
        /// The S3 region of --from (else AWS_REGION).
        #[arg(long, value_name = "REGION", requires = "from")]
        region: Option<String>,
    },
    /// The zone gateway's tunnels this node needs for the zone's cyfs members, as
    /// cyfs-gateway stack configuration (or JSON).
    Gateway {
        #[arg(long, value_name = "NODE_FILE")]
        config: PathBuf,
        /// `cyfs-gateway` (YAML stacks to include from the gateway's configuration) or
        /// `json` (the same plan, for any other forwarder).
        #[arg(long, value_enum, default_value = "cyfs-gateway")]
        format: commands::gateway::Format,
    },
    /// Backups of the zone's data: save, list, prune.
    #[command(subcommand)]
    Snapshot(SnapshotCmd),
    /// Continuous backups off the machine: run, status, drill.
    #[command(subcommand)]
    Backup(BackupCmd),
    /// A whole local 3-member zone on 127.0.0.1-3, until Ctrl-C.
    Demo {
        /// Where the demo keeps its CA, bundles, data and logs.
        #[arg(long, value_name = "DIR", default_value = "zone-demo")]
        dir: PathBuf,
    },
    /// Print the shell completions of zone-etcd (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum, value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Internal (packaging): write the man pages, one per command, into DIR.
    #[command(hide = true)]
    Man {
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum SnapshotCmd {
    /// Save a snapshot of the zone's data (from the local member when it answers, else
    /// another), checked against etcd's integrity hash, with a manifest beside it.
    Save {
        #[arg(long, value_name = "NODE_FILE")]
        config: PathBuf,
        /// Where to write it (default: <state>/snapshots/<zone>-<time>-r<revision>.db).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Then keep only the newest K snapshots of that directory.
        #[arg(long, value_name = "K")]
        keep: Option<usize>,
        /// Make it from this member's own data directory while its etcd is stopped (when
        /// a majority of members lost their data and this one kept it), not through etcd.
        #[arg(long)]
        from_data: bool,
    },
    /// List the snapshots of <state>/snapshots/.
    List {
        #[arg(long, value_name = "NODE_FILE")]
        config: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Keep the newest K snapshots of <state>/snapshots/, remove the others.
    Prune {
        #[arg(long, value_name = "NODE_FILE")]
        config: PathBuf,
        #[arg(long, value_name = "K")]
        keep: usize,
    },
}
