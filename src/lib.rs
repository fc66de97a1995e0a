//! zone-etcd, the app: the commands behind the CLI and the pieces they are made of, on
//! top of the workspace's layers (`zone-etcd-kit` what it knows of etcd, `zone-model`
//! what a zone is, `zone-pki`, `zone-io`). The binary (`main.rs`) only parses the command
//! line; fuzz targets and the benchmark program use the library.
//!
//! It may use any crate of the workspace but the tools (bench, recorder, consistency);
//! inside it, no circle of more than three top-level modules
//! (`tests/module_circles/layers.rs`). Pure rules and formats go down to `zone-model`,
//! etcd's own knowledge to `zone-etcd-kit`. The page a newcomer reads first is
//! docs/src/reference/layout.md.

pub mod agent;
pub mod backup_node;
pub mod bundle;
pub mod ca_dir;
pub mod cli;
pub mod commands;
pub mod detached;
pub mod disk_probe;
pub mod exposition;
pub mod first_start;
pub mod fuzzing;
/// Every persistent format as each release wrote it, read back (tests/golden/).
#[cfg(test)]
mod golden;
pub mod identities;
pub mod inspection;
pub mod leaves;
pub mod maintenance;
pub mod member_removal;
pub mod membership;
pub mod nameservice;
pub mod node;
pub mod policy;
pub mod preflight;
pub mod quota_records;
pub mod reach;
pub mod report_output;
pub mod restored;
pub mod revocation;
pub mod rollout;
pub mod snapshot;
pub mod this_build;
pub mod unknown_keys;
