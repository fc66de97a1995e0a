//! `backup run|status|drill`: the flags of the zone's continuous backups.

use std::path::PathBuf;

use clap::Subcommand;

use crate::commands::check::CheckFormat;

#[derive(Subcommand)]
pub enum BackupCmd {
    /// The backup service, on every member: one at a time (elected through etcd) ships a
    /// full snapshot every full_every and the changes every delta_every, encrypted to the
    /// zone's [backup] recipients and signed, to every [[backup.target]].
    Run {
        /// The node's config (node.toml from its bundle).
        #[arg(long, value_name = "NODE_FILE")]
        config: PathBuf,
    },
    /// The active writer, each target's newest full snapshot and delta (the recovery
    /// point), the window, the gaps and the last drill; exits 1 when the newest delta on a
    /// target is over 2 minutes old, a gap is open or the last drill failed.
    Status {
        #[arg(long, value_name = "NODE_FILE")]
        config: PathBuf,
        /// Print the report as JSON (the same as --format json).
        #[arg(long, conflicts_with = "format")]
        json: bool,
        /// text, json, or prometheus (for node_exporter's textfile collector).
        #[arg(long, value_enum, default_value = "text")]
        format: CheckFormat,
        /// Write the report to FILE (replaced whole, mode 0644), even when problems are found.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Prove the backups restore. With --config, on the active writer's member: restore
    /// the newest local chain into a scratch etcd, replay it and compare its HashKV with
    /// the live cluster's, and check every target holds the chain. With --from, on the
    /// owner's machine: verify and decrypt everything on that target, then restore it.
    Drill {
        #[arg(
            long,
            value_name = "NODE_FILE",
            required_unless_present = "from",
            conflicts_with = "from"
        )]
        config: Option<PathBuf>,
        /// The target to check: s3://BUCKET/PREFIX or file:///DIR.
        #[arg(long, value_name = "TARGET_URL", requires_all = ["ca", "identity"])]
        from: Option<String>,
        /// The zone CA directory (ca.crt; trust.crt during a CA rotation).
        #[arg(long, value_name = "CA_DIR")]
        ca: Option<PathBuf>,
        /// The owner's age identity file (from age-keygen), to decrypt with.
        #[arg(long, value_name = "FILE")]
        identity: Option<PathBuf>,
        /// The S3 endpoint (else AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL).
        #[arg(long, value_name = "URL")]
        endpoint: Option<String>,
        /// The S3 region (else AWS_REGION).
        #[arg(long, value_name = "REGION")]
        region: Option<String>,
    },
    /// The zone as it was at a revision or a time, as a snapshot `restore` takes: the full
    /// snapshot before the point and the deltas after it, verified, replayed in a scratch
    /// etcd up to the point. From a target (the owner's machine: --ca and --identity) or
    /// from a node's own chain (--from local --config NODE_FILE).
    Export {
        /// s3://BUCKET/PREFIX, file:///DIR, or `local` (with --config: the node's own chain).
        #[arg(long, value_name = "SOURCE")]
        from: String,
        /// An RFC 3339 time (2026-11-23T10:15:00Z, or with an offset): the last revision
        /// received at or before it.
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
        /// The snapshot to write (its manifest FILE.json beside it; neither may exist).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// The node's config, for --from local.
        #[arg(long, value_name = "NODE_FILE", conflicts_with_all = ["ca", "identity"])]
        config: Option<PathBuf>,
        /// The zone CA directory (ca.crt; trust.crt during a CA rotation).
        #[arg(long, value_name = "CA_DIR", requires = "identity")]
        ca: Option<PathBuf>,
        /// The owner's age identity file (from age-keygen), to decrypt with.
        #[arg(long, value_name = "FILE", requires = "ca")]
        identity: Option<PathBuf>,
        /// The S3 endpoint (else AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL).
        #[arg(long, value_name = "URL")]
        endpoint: Option<String>,
        /// The S3 region (else AWS_REGION).
        #[arg(long, value_name = "REGION")]
        region: Option<String>,
    },
}
