//! zone-etcd, the app: the command line (`cli`) and the commands behind it (`commands`,
//! one module per command), on top of the workspace's layers (`zone-agent` the keepers
//! beside etcd, `zone-node` the pieces a node is made of, `zone-backup` the backup
//! family, `zone-etcd-kit` what it knows of etcd, `zone-model` what a zone is,
//! `zone-pki`, `zone-io`). The binary (`main.rs`) only parses the command line.
//!
//! It may use any crate of the workspace but the tools (bench, recorder, consistency);
//! inside it, no circle of more than three top-level modules and no command importing
//! another (`tests/module_circles/`). What a command shares with another command or with
//! the keepers goes down to `zone-node`, a keeper's duty to `zone-agent`, pure rules and
//! formats to `zone-model`, etcd's own knowledge to `zone-etcd-kit`. The page a newcomer
//! reads first is docs/src/reference/layout.md.

pub mod cli;
pub mod commands;
/// Every persistent format as each release wrote it, read back (tests/golden/).
#[cfg(test)]
mod golden;
