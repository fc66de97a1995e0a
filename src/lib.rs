//! zone-etcd as a library: the commands behind the CLI and the pieces they are made of.
//! The binary (`main.rs`) only parses the command line; fuzz targets and the benchmark
//! program use the parsers and the derivation from here.

pub mod access;
pub mod agent;
pub mod backup;
pub mod bundle;
pub mod cli;
pub mod commands;
pub mod detached;
pub mod first_start;
pub mod fuzzing;
pub mod identities;
pub mod inspection;
pub mod leaves;
pub mod maintenance;
pub mod membership;
pub mod nameservice;
pub mod node;
pub mod policy;
pub mod preflight;
pub mod restored;
pub mod revocation;
pub mod rollout;
pub mod snapshot;
