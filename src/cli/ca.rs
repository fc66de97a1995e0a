//! The owner's commands on the zone CA and the zone document (`ca`, `zone`).

use std::path::PathBuf;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum ZoneCmd {
    /// Sign the zone document (member list) with the zone root key, for the nameservice.
    Sign {
        /// Directory with the zone root CA (ca.crt, ca.key).
        #[arg(long, value_name = "DIR")]
        ca: PathBuf,
        /// The zone file (TOML, or the nameservice JSON document).
        #[arg(long, value_name = "ZONE_FILE")]
        zone: PathBuf,
        /// Where to write the signed document (JSON); replaced atomically.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Sign the zone document and publish it in the running zone: every member applies
    /// its [access] policy to etcd's users and roles within seconds, without a restart.
    Publish {
        /// Directory with the zone root CA (ca.crt, ca.key).
        #[arg(long, value_name = "DIR")]
        ca: PathBuf,
        /// The zone file (TOML, or the nameservice JSON document).
        #[arg(long, value_name = "ZONE_FILE")]
        zone: PathBuf,
        /// The node.toml of an etcd member (its identity writes the document).
        #[arg(long, value_name = "NODE_FILE")]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum CaCmd {
    /// Zone CA rotation, phase 1: a new root in DIR, and DIR/trust.crt with both roots.
    Rotate {
        /// The current zone CA directory.
        #[arg(long, value_name = "DIR")]
        ca: PathBuf,
        /// Where to make the new CA (must not exist, or be empty).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Zone CA rotation, phase 3: stop trusting the old root (removes DIR/trust.crt).
    Retire {
        /// The new zone CA directory (made by `ca rotate`).
        #[arg(long, value_name = "DIR")]
        ca: PathBuf,
    },
    /// Make the zone root CA (ECDSA P-256, 10 years) in DIR/ca.crt and DIR/ca.key.
    Init {
        /// The zone's DNS name, e.g. example.zone.
        #[arg(long, value_name = "NAME")]
        zone: String,
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// The owner's administrative identity (etcd's root user) from the client CA, into
    /// DIR: ca.crt, client.crt, client.key.
    Admin {
        /// The zone CA directory (with client-ca.crt and client-ca.key).
        #[arg(long, value_name = "DIR")]
        ca: PathBuf,
        /// Where to write it (must not exist, or be empty).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}
