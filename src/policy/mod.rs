//! `[access]`: the owner's policy of who may use what in the zone's etcd, zone-wide like
//! `[settings]` (copied into member bundles, signed into the zone document as
//! `extend.access`).
//!
//! ```toml
//! [access]
//! nodes = ["nas.example.zone"]        # the zone's nodes besides its etcd members
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
//! Pure: callers hand over the parsed table and add the file name to errors. Invariants:
//! - a table is validated whole before anything uses it ([`rules`]): unknown keys, a
//!   service name that is not a DNS label or is used twice, a prefix that is empty or
//!   does not end in `/`, a prefix of zone-etcd's own keys ([`OWN_PREFIX`]) or over the
//!   nodes' prefixes, two services whose read-write prefixes overlap (one would get the
//!   other's keys), and a node that is neither a member nor in `nodes` are refused, naming
//!   the key (`access.service[N].<key>`);
//! - [`Policy::to_value`] writes back what [`Policy::parse`] reads.

pub mod apply;
pub mod rbac;
mod rules;
#[cfg(test)]
mod tests;

use serde_json::{Map, Value};
use zone_pki::Error;

use crate::settings::kind;

/// zone-etcd's own keys (revocations, backups, the etcd release): no service's.
pub const OWN_PREFIX: &str = "zone-etcd/";
/// Where each node's own prefix lives when the zone sets none: `nodes/<node_name>/`.
pub const DEFAULT_NODE_PREFIX: &str = "nodes/";

/// The keys of `[access]`.
pub const KEYS: [&str; 3] = ["nodes", "node_prefix", "service"];
/// The keys of one `[[access.service]]`.
pub const SERVICE_KEYS: [&str; 4] = ["name", "nodes", "read_write", "read"];

/// A validated `[access]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Whether the zone wrote one (a zone without stays as before the policy).
    pub present: bool,
    /// The zone's nodes besides its etcd members.
    pub nodes: Vec<String>,
    /// Under it, `<node_name>/` is each node's own prefix.
    pub node_prefix: String,
    pub services: Vec<Service>,
}

/// One `[[access.service]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// A DNS label; the identity of its instance on a node is `<name>@<node_name>`.
    pub name: String,
    /// The nodes that may run it.
    pub nodes: Vec<String>,
    pub read_write: Vec<String>,
    pub read: Vec<String>,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            present: false,
            nodes: Vec::new(),
            node_prefix: DEFAULT_NODE_PREFIX.into(),
            services: Vec::new(),
        }
    }
}

impl Policy {
    /// Validates a table against the zone's `members` (node names); `at` names it in
    /// errors (`access` in a zone file or node.toml, `extend.access` in a zone document).
    pub fn parse(value: &Value, at: &str, zone: &str, members: &[String]) -> Result<Policy, Error> {
        let table = object(value, at)?;
        unknown_keys(table, &KEYS, at)?;
        let field = |key: &str| format!("{at}.{key}");
        let nodes = strings(table.get("nodes"), &field("nodes"))?;
        let node_prefix = match table.get("node_prefix") {
            None => DEFAULT_NODE_PREFIX.to_string(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => return Err(not_a(other, "a string", &field("node_prefix"))),
        };
        let services = match table.get("service") {
            None => Vec::new(),
            Some(Value::Array(list)) => list
                .iter()
                .enumerate()
                .map(|(i, v)| Service::parse(v, &format!("{at}.service[{i}]")))
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(not_a(
                    other,
                    "a list of [[access.service]] tables",
                    &field("service"),
                ))
            }
        };
        let policy = Policy {
            present: true,
            nodes,
            node_prefix,
            services,
        };
        rules::check(&policy, at, zone, members)?;
        Ok(policy)
    }

    /// The table as `parse` reads it (empty when the zone wrote none).
    pub fn to_value(&self) -> Map<String, Value> {
        let mut map = Map::new();
        if !self.present {
            return map;
        }
        let list = |items: &[String]| Value::from(items.to_vec());
        map.insert("nodes".into(), list(&self.nodes));
        map.insert("node_prefix".into(), Value::from(self.node_prefix.clone()));
        let services: Vec<Value> = self
            .services
            .iter()
            .map(|s| {
                let mut t = Map::new();
                t.insert("name".into(), Value::from(s.name.clone()));
                t.insert("nodes".into(), list(&s.nodes));
                t.insert("read_write".into(), list(&s.read_write));
                t.insert("read".into(), list(&s.read));
                Value::Object(t)
            })
            .collect();
        map.insert("service".into(), Value::from(services));
        map
    }

    /// The prefix of `node`'s own identity.
    pub fn node_prefix_of(&self, node: &str) -> String {
        format!("{}{node}/", self.node_prefix)
    }

    /// The services `node` may run.
    pub fn services_of<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a Service> + 'a {
        self.services
            .iter()
            .filter(move |s| s.nodes.iter().any(|n| n == node))
    }
}

impl Service {
    fn parse(value: &Value, at: &str) -> Result<Service, Error> {
        let table = object(value, at)?;
        unknown_keys(table, &SERVICE_KEYS, at)?;
        let field = |key: &str| format!("{at}.{key}");
        let name = match table.get("name") {
            Some(Value::String(s)) => s.clone(),
            None => {
                return Err(Error::new("missing")
                    .field(field("name"))
                    .fix("name the service, e.g. name = \"photos\""))
            }
            Some(other) => return Err(not_a(other, "a string", &field("name"))),
        };
        Ok(Service {
            name,
            nodes: strings(table.get("nodes"), &field("nodes"))?,
            read_write: strings(table.get("read_write"), &field("read_write"))?,
            read: strings(table.get("read"), &field("read"))?,
        })
    }
}

fn object<'a>(value: &'a Value, at: &str) -> Result<&'a Map<String, Value>, Error> {
    value.as_object().ok_or_else(|| {
        Error::new(format!("must be a table, not {}", kind(value)))
            .field(at)
            .fix("write [access] with nodes, node_prefix and [[access.service]] tables")
    })
}

fn unknown_keys(table: &Map<String, Value>, keys: &[&str], at: &str) -> Result<(), Error> {
    match table.keys().find(|k| !keys.contains(&k.as_str())) {
        None => Ok(()),
        Some(key) => Err(Error::new("unknown key")
            .field(format!("{at}.{key}"))
            .fix(format!("the keys here are {}", keys.join(", ")))),
    }
}

/// A list of strings; absent is empty.
fn strings(value: Option<&Value>, at: &str) -> Result<Vec<String>, Error> {
    match value {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(not_a(other, "a string", at)),
            })
            .collect(),
        Some(other) => Err(not_a(other, "a list of strings", at)),
    }
}

fn not_a(value: &Value, want: &str, at: &str) -> Error {
    Error::new(format!("must be {want}, not {}", kind(value)))
        .field(at)
        .fix(format!("write {at} as {want}"))
}
