//! zone-model: what a zone *is*, as pure data and rules. The zone file and node.toml as
//! parsed (reading only the file it is given, never fetching), the zone's `[settings]`,
//! `[backup]` and `[access]` tables, the static cluster derived from the member list,
//! tunnels, the signed zone document's format, the access policy's rules and plans,
//! zone-etcd's own format levels and release records, and the check of the `format` a
//! machine-written object names.
//!
//! Every function here is deterministic: the same files give the same values on every
//! node, which is what lets each node derive the cluster alone.
//!
//! What this crate must never import (`tests/module_circles/layers.rs` holds it to this): the
//! network and etcd (`tokio`, `etcd-client`, `tonic`, `ureq`, `rustls`), the backup
//! family's storage (`age`, `rusty-s3`), and any crate of zone-etcd but `zone-io` and
//! `zone-pki`. The app (`zone-etcd`) and everything in it sits on top.

#![forbid(unsafe_code)]

pub mod autopilot;
pub mod backup;
pub mod cluster;
pub mod config;
pub mod disk_minute;
pub mod format;
pub mod histogram;
pub mod keys;
pub mod leaf_paths;
pub mod left;
pub mod links;
pub mod policy;
pub mod quota;
pub mod release;
pub mod settings;
pub mod size;
pub mod terms;
pub mod tunnels;
pub mod zone_doc;
