//! The flags several commands share, each defined once and flattened into the commands'
//! args structs (`#[command(flatten)]` where the flag stands in `--help`, so the order
//! of the flags is the command's own).
//!
//! `--config NODE_FILE` comes in variants, one struct per help text, each holding the
//! path in `path` (its id stays `config`, the name other flags' requirements and
//! conflicts use). The variants exist because the help texts are part of the command
//! line's contract (`--help`, the man pages, the completions): a command that explains
//! its `--config` one way keeps explaining it that way. The commands that need the node
//! itself name it "the node's config", those that only need a way to reach the running
//! zone "any member's" or "any node's", and a few commands never had a help line. Every
//! `--config` of the command line is defined here, and nowhere else.

use std::path::PathBuf;

use clap::Args;

/// `--config` of the commands that act as this node, on its own bundle, certificates or
/// member: launch, leave, status, maintain, rotate, check, issue-client, trust, backup
/// run.
#[derive(Args)]
pub struct NodeConfig {
    /// The node's config (node.toml from its bundle).
    #[arg(id = "config", long = "config", value_name = "NODE_FILE")]
    pub path: PathBuf,
}

/// `--config` of the commands whose `--config` has no help line (they were written
/// without one, and the contract keeps them so): join, restore, undo, gateway, snapshot
/// save/list/prune, backup status, and the internal keep-revocations and
/// promote-learner.
#[derive(Args)]
pub struct BareConfig {
    #[arg(id = "config", long = "config", value_name = "NODE_FILE")]
    pub path: PathBuf,
}

/// `--config` of the commands that only need a way into the running zone, from any
/// member: upgrade-etcd and downgrade.
#[derive(Args)]
pub struct AnyMemberConfig {
    /// Any member's config (node.toml from its bundle): how to reach the running zone.
    #[arg(id = "config", long = "config", value_name = "NODE_FILE")]
    pub path: PathBuf,
}

/// `--config` of `revoke`, which reaches the running zone from any node, member or not.
#[derive(Args)]
pub struct AnyNodeConfig {
    /// Any node's config (node.toml from its bundle): how to reach the running zone.
    #[arg(id = "config", long = "config", value_name = "NODE_FILE")]
    pub path: PathBuf,
}

/// `--config` of `env`, which also reads the seed's JSON form of node.toml.
#[derive(Args)]
pub struct NodeOrSeedConfig {
    /// The node's config (node.toml from its bundle, or the seed's JSON form).
    #[arg(id = "config", long = "config", value_name = "NODE_FILE")]
    pub path: PathBuf,
}

/// `--config` of `zone publish`: the member whose identity writes the zone document.
#[derive(Args)]
pub struct WriterConfig {
    /// The node.toml of an etcd member (its identity writes the document).
    #[arg(id = "config", long = "config", value_name = "NODE_FILE")]
    pub path: PathBuf,
}

/// `--config` of `backup drill`: the member's drill, or else the owner's with `--from`
/// (a flag of the drill's own), never both.
#[derive(Args)]
pub struct DrillConfig {
    #[arg(
        id = "config",
        long = "config",
        value_name = "NODE_FILE",
        required_unless_present = "from",
        conflicts_with = "from"
    )]
    pub path: Option<PathBuf>,
}

/// `--config` of `backup export`: the node whose own chain `--from local` reads; the
/// owner's `--ca` and `--identity` (flags of the export's own) are for a target instead.
#[derive(Args)]
pub struct LocalChainConfig {
    /// The node's config, for --from local.
    #[arg(
        id = "config",
        long = "config",
        value_name = "NODE_FILE",
        conflicts_with_all = ["ca", "identity"]
    )]
    pub path: Option<PathBuf>,
}

/// Where an S3 backup target answers, when the environment does not say: `--endpoint`
/// and `--region` of `backup drill` and `backup export`, the owner's commands on a
/// target. (`undo --from` has its own two, which say "of --from" and require it.)
#[derive(Args)]
pub struct S3Endpoint {
    /// The S3 endpoint (else AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL).
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// The S3 region (else AWS_REGION).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
}
