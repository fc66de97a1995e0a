//! zone-node: the pieces of a zone-etcd node that the commands (the app, `zone-etcd`) and
//! the keepers beside etcd (`zone-agent`) are both made of.
//!
//! - the node: [`node`] (`Node`, node.toml plus the zone view, resolved in one step) and
//!   [`nameservice`] (the zone document fetched and cached), [`bundle`] a node's bundle,
//!   [`leaves`] its leaf sets, [`inspection`] their checks, [`ca_dir`] the owner's CA
//!   directory;
//! - the launch path: [`preflight`] (the checks before etcd starts, in order),
//!   [`first_start`], [`membership`] (the join, leave and restart decisions),
//!   [`member_removal`], [`reach`] (how a command reaches the cluster), [`detached`]
//!   (processes beside etcd), [`restored`], [`disk_probe`];
//! - least privilege and the zone's rules at work: [`identities`], [`policy`],
//!   [`quota_records`], [`revocation`], [`rollout`];
//! - the rest of a node's life: [`maintenance`], [`snapshot`], [`backup_node`] (what
//!   `zone-backup` takes of a node), [`report_output`] and [`exposition`] (reports and
//!   Prometheus' text), [`this_build`] (release, commit, format levels), [`unknown_keys`],
//!   [`fuzzing`] (the fuzz targets' entry points).
//!
//! Its layer (`tests/module_circles/layers.rs` holds it to this): above `zone-io`,
//! `zone-pki`, `zone-model`, `zone-etcd-kit` and `zone-backup`, below `zone-agent` and
//! the app, which it never imports (nor the command line, clap): what a command or a
//! keeper decides stays with them, and a module here names them in prose only. Inside
//! it, no circle of more than three top-level modules. Pure rules and formats go down to
//! `zone-model`, etcd's own knowledge to `zone-etcd-kit`.
//!
//! `unsafe` is denied here (the workspace's lint), not forbidden: [`detached`] forks
//! (twice, so a keeper outlives launch's exec into etcd) and allows it at that function.

pub mod backup_node;
pub mod bundle;
pub mod ca_dir;
pub mod detached;
pub mod disk_probe;
pub mod exposition;
pub mod first_start;
pub mod fuzzing;
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
