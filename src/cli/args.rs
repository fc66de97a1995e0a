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

/// Changes the flag `id` of a command with `change`, in its place: what a command says of
/// a flag defined here (`#[command(mut_args(only("ca", |a| a.help(...))))]` on its args
/// struct). clap's own `mut_arg` would move the flag last, reordering the usage lines and
/// the completions, which are the contract.
pub fn only(
    id: &'static str,
    change: impl Fn(clap::Arg) -> clap::Arg,
) -> impl FnMut(clap::Arg) -> clap::Arg {
    move |arg| {
        if arg.get_id() == id {
            change(arg)
        } else {
            arg
        }
    }
}

/// `--ca CA_DIR`: the owner's zone CA directory, on the commands that need it. Each
/// command says in its own help line what it needs of the directory ([`only`]; the texts
/// are the contract, see [`ca_help`]); the flag itself, its name and value name, is
/// defined here only. [`MaybeCaDir`] where the flag is optional, or required only in some forms.
#[derive(Args)]
pub struct CaDir {
    #[arg(id = "ca", long = "ca", value_name = "CA_DIR")]
    pub dir: PathBuf,
}

/// [`CaDir`] where the command may go without it.
#[derive(Args)]
pub struct MaybeCaDir {
    #[arg(id = "ca", long = "ca", value_name = "CA_DIR")]
    pub dir: Option<PathBuf>,
}

/// What each command's `--ca` says (clap drops a one-line help's final period).
pub mod ca_help {
    /// activate, zone sign, zone publish.
    pub const ROOT: &str = "Directory with the zone root CA (ca.crt, ca.key)";
    /// zone raise-level.
    pub const ROOT_FOR_LEVEL: &str = "Directory with the zone root CA (ca.crt, ca.key): a level above 1 binds the members only signed with it";
    /// ca rotate.
    pub const CURRENT: &str = "The current zone CA directory";
    /// ca retire.
    pub const NEW: &str = "The new zone CA directory (made by `ca rotate`)";
    /// ca admin.
    pub const CLIENT: &str = "The zone CA directory (with client-ca.crt and client-ca.key)";
    /// revoke.
    pub const REVOKE: &str = "The zone root CA directory (from `zone-etcd ca init`)";
    /// backup drill, backup export: the owner's reading of a target.
    pub const TARGET: &str = "The zone CA directory (ca.crt; trust.crt during a CA rotation)";
    /// undo --from.
    pub const UNDO_FROM: &str =
        "The zone CA directory (ca.crt; trust.crt during a CA rotation), for --from";
}

/// `--at TIME` or `--revision REV`: the point a command takes the zone's data back to
/// (`backup export`, `undo`; `undo` says where its `--at` looks).
#[derive(Args)]
pub struct PointInTime {
    /// An RFC 3339 time (2026-11-23T10:15:00Z, or with an offset): the last revision
    /// received at or before it.
    #[arg(
        long,
        value_name = "TIME",
        required_unless_present = "revision",
        conflicts_with = "revision"
    )]
    pub at: Option<String>,
    /// Exactly this revision.
    #[arg(long, value_name = "REV")]
    pub revision: Option<i64>,
}

/// `--to VERSION` or `--cancel`: an etcd release to move the zone to, or calling off the
/// move (`upgrade-etcd`; `downgrade` says what its two mean).
#[derive(Args)]
pub struct ToOrCancel {
    /// The etcd release the zone runs (e.g. 3.7.2; 3.6.15 on a 3.7 zone downgrades).
    #[arg(
        long,
        value_name = "VERSION",
        required_unless_present = "cancel",
        conflicts_with = "cancel"
    )]
    pub to: Option<String>,
    /// Remove the zone's target release (members already moved stay) and call off a
    /// downgrade under way.
    #[arg(long)]
    pub cancel: bool,
}

/// `--watch-pid PID` of the internal processes launch starts beside etcd.
#[derive(Args)]
pub struct WatchPid {
    /// Stop when this process (etcd) exits.
    #[arg(id = "watch_pid", long = "watch-pid", value_name = "PID")]
    pub pid: u32,
}
