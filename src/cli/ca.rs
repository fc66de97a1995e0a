//! The owner's commands on the zone CA, the zone document and the first bundles (`ca`,
//! `zone`, `bootstrap`). Each command's about text is its variant's doc comment.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::args::{ca_help, only, AnyMemberConfig, CaDir, MaybeCaDir, WriterConfig};

#[derive(Subcommand)]
pub enum ZoneCmd {
    /// Sign the zone document (member list) with the zone root key, for the nameservice.
    Sign(ZoneSignArgs),
    /// Sign the zone document and publish it in the running zone: every member applies
    /// its [access] policy to etcd's users and roles within seconds, without a restart.
    Publish(ZonePublishArgs),
    /// Raise the zone's format level once every member runs a release that reads it:
    /// the members may then write its formats, and a release that reads less refuses
    /// to start. A level never goes back.
    RaiseLevel(ZoneRaiseLevelArgs),
}

/// `zone-etcd zone raise-level`.
#[derive(Args)]
#[command(mut_args(only("ca", |a| a.help(ca_help::ROOT_FOR_LEVEL))))]
pub struct ZoneRaiseLevelArgs {
    /// The level to raise the zone to (default: the highest this release writes).
    #[arg(long, value_name = "LEVEL")]
    pub to: Option<u32>,
    #[command(flatten)]
    pub ca: MaybeCaDir,
    #[command(flatten)]
    pub config: AnyMemberConfig,
}

/// `zone-etcd zone sign`.
#[derive(Args)]
#[command(mut_args(only("ca", |a| a.help(ca_help::ROOT))))]
pub struct ZoneSignArgs {
    #[command(flatten)]
    pub ca: CaDir,
    /// The zone file (TOML, or the nameservice JSON document).
    #[arg(long, value_name = "ZONE_FILE")]
    pub zone: PathBuf,
    /// Where to write the signed document (JSON); replaced atomically.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// `zone-etcd zone publish`.
#[derive(Args)]
#[command(mut_args(only("ca", |a| a.help(ca_help::ROOT))))]
pub struct ZonePublishArgs {
    #[command(flatten)]
    pub ca: CaDir,
    /// The zone file (TOML, or the nameservice JSON document).
    #[arg(long, value_name = "ZONE_FILE")]
    pub zone: PathBuf,
    #[command(flatten)]
    pub config: WriterConfig,
}

#[derive(Subcommand)]
pub enum CaCmd {
    /// Zone CA rotation, phase 1: a new root in DIR, and DIR/trust.crt with both roots.
    Rotate(CaRotateArgs),
    /// Zone CA rotation, phase 3: stop trusting the old root (removes DIR/trust.crt).
    Retire(CaRetireArgs),
    /// Make the zone root CA (ECDSA P-256, 10 years) in DIR/ca.crt and DIR/ca.key.
    Init(CaInitArgs),
    /// The owner's administrative identity (etcd's root user) from the client CA, into
    /// DIR: ca.crt, client.crt, client.key.
    Admin(CaAdminArgs),
}

/// `zone-etcd ca rotate`.
#[derive(Args)]
#[command(mut_args(only("ca", |a| a.help(ca_help::CURRENT))))]
pub struct CaRotateArgs {
    #[command(flatten)]
    pub ca: CaDir,
    /// Where to make the new CA (must not exist, or be empty).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// `zone-etcd ca retire`.
#[derive(Args)]
#[command(mut_args(only("ca", |a| a.help(ca_help::NEW))))]
pub struct CaRetireArgs {
    #[command(flatten)]
    pub ca: CaDir,
}

/// `zone-etcd ca init`.
#[derive(Args)]
pub struct CaInitArgs {
    /// The zone's DNS name, e.g. example.zone.
    #[arg(long, value_name = "NAME")]
    pub zone: String,
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// `zone-etcd ca admin`.
#[derive(Args)]
#[command(mut_args(only("ca", |a| a.help(ca_help::CLIENT))))]
pub struct CaAdminArgs {
    #[command(flatten)]
    pub ca: CaDir,
    /// Where to write it (must not exist, or be empty).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// `zone-etcd bootstrap`.
#[derive(Args)]
pub struct BootstrapArgs {
    #[command(flatten)]
    pub ca: CaDir,
    #[arg(long, value_name = "ZONE_FILE")]
    pub zone: PathBuf,
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}
