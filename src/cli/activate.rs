//! `activate`: the owner issues a node its bundle (`--node`), or answers a node's request
//! (`--request`); `activate request` and `activate install` are the node's two steps of
//! activation by request. The owner's form keeps its flags at the top level, so
//! `activate --ca ... --node ...` reads as it always did; its flags conflict with the
//! subcommands, and are required only without one.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Subcommand};

use super::args::{ca_help, only, MaybeCaDir};

#[derive(Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    subcommand_value_name = "STEP",
    subcommand_help_heading = "Activation by request (on the node)",
    group(ArgGroup::new("for").required(true).args(["node", "request"])),
    mut_args(only("ca", |a| a.help(ca_help::ROOT).required(true)))
)]
pub struct ActivateArgs {
    #[command(subcommand)]
    pub step: Option<ActivateStep>,
    #[command(flatten)]
    pub ca: MaybeCaDir,
    /// The zone file (TOML, or the nameservice JSON document).
    #[arg(long, value_name = "ZONE_FILE", required = true)]
    pub zone: Option<PathBuf>,
    /// The node's DNS name, e.g. node1.example.zone: a bundle with a new key.
    #[arg(long, value_name = "NODE_NAME")]
    pub node: Option<String>,
    /// Answer the node's request instead (request.csr from `activate request`): the
    /// bundle without a key, for the key the node keeps.
    #[arg(long, value_name = "REQUEST_FILE")]
    pub request: Option<PathBuf>,
    /// The node follows the member list the nameservice at URL publishes (signed with
    /// `zone sign`) instead of keeping a copy in node.toml.
    #[arg(long, value_name = "URL")]
    pub nameservice: Option<String>,
    /// Where to write the bundle, or the answer (must not exist, or be empty).
    #[arg(long, value_name = "DIR", required = true)]
    pub out: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum ActivateStep {
    /// On the node: make its node CA's key (DIR/node.key, 0600) and a request for it
    /// (DIR/request.csr) for the owner's `activate --request`.
    Request(ActivateRequestArgs),
    /// On the node: put its key and the owner's answer together into its bundle.
    Install(ActivateInstallArgs),
}

/// `zone-etcd activate request`.
#[derive(Args)]
pub struct ActivateRequestArgs {
    /// The node's DNS name, e.g. node1.example.zone.
    #[arg(long, value_name = "NODE_NAME")]
    pub node: String,
    /// Where to write node.key and request.csr (must not exist, or be empty).
    #[arg(long, value_name = "REQ_DIR")]
    pub out: PathBuf,
}

/// `zone-etcd activate install`.
#[derive(Args)]
pub struct ActivateInstallArgs {
    /// The directory `activate request` wrote (node.key, request.csr).
    #[arg(long, value_name = "REQ_DIR")]
    pub request: PathBuf,
    /// The directory `activate --request` wrote (node.toml, pki/ca.crt, pki/node.crt).
    #[arg(long, value_name = "ANSWER_DIR")]
    pub answer: PathBuf,
    /// Where to write the bundle (must not exist, or be empty).
    #[arg(long, value_name = "BUNDLE_DIR")]
    pub out: PathBuf,
}
