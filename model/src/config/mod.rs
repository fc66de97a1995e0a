//! The zone's files: the zone file (member list) and a node's local config (node.toml).
//!
//! Both are read in full and validated before anything acts on them, so a command fails
//! before it writes. Both accept TOML or the seed's JSON forms ([`text`]).

pub mod identities;
pub mod ignored;
pub mod member;
pub mod members;
pub mod node;
pub mod node_file;
pub mod text;
pub mod trust;
pub mod zone;

pub use ignored::{Ignored, UnknownKey};
pub use text::{check_dns_name, parse, parse_reporting, read_config, Format};
pub use trust::trusted_roots;

#[cfg(test)]
mod other_releases_tests;
