//! `[access]`: the owner's policy of who may use what in the zone's etcd, zone-wide like
//! `[settings]` (copied into member bundles, signed into the zone document as
//! `extend.access`).
//!
//! ```toml
//! [access]
//! enforce = true                      # the members enforce it (default false: see below)
//! nodes = ["nas.example.zone"]        # the zone's nodes besides its etcd members ("*": any)
//! node_prefix = "nodes/"              # each node's own identity: nodes/<node_name>/
//!
//! [[access.service]]
//! name = "photos"                     # the service's identity: photos@<node_name>
//! nodes = ["nas.example.zone"]        # the nodes that may run it
//! read_write = ["apps/photos/"]
//! read = ["apps/shared/"]
//! ```
//!
//! Deny by default: a node gets no identity but its own (its prefix), and a service only
//! on the nodes named for it, with only the prefixes named for it.
//!
//! A zone made by `ca init` of zone-etcd 0.2 or later reads a zone file without `[access]`
//! as [`Policy::by_default`]: `enforce = true`, `nodes = ["*"]` (any node of the zone its
//! own prefix; its etcd user made once a member's signer issued it its identity), no
//! service. A zone made before keeps its meaning (every client root) until its owner moves
//! it (docs/src/access.md); node.toml and zone documents always carry the table written out
//! (its keys that hold their defaults left out: [`Policy::to_value`]).
//!
//! Pure: callers hand over the parsed table and add the file name to errors. Invariants:
//! - a table is validated whole before anything uses it (`rules`): unknown keys, a
//!   service name that is not a DNS label or is used twice, a prefix that is empty or
//!   does not end in `/`, a prefix of zone-etcd's own keys ([`OWN_PREFIX`]) or over the
//!   nodes' prefixes, two services whose read-write prefixes overlap (one would get the
//!   other's keys), and a node that is neither a member nor in `nodes` are refused, naming
//!   the key (`access.service[N].<key>`);
//! - [`Policy::to_value`] writes back what [`Policy::parse`] reads, and no key that holds
//!   its default.

mod model;
mod parse;
pub mod rbac;
mod rules;
#[cfg(test)]
mod tests;

pub use model::{
    Policy, Service, ANY_NODE, DEFAULT_NODE_PREFIX, DEFAULT_NODE_QUOTA, DEFAULT_SERVICE_QUOTA,
    KEYS, OWN_PREFIX, SERVICE_KEYS,
};
