//! The policy's types and their written form (see the parent module for the file format
//! and [`super::parse`] for the checks).

use serde_json::{Map, Value};

/// zone-etcd's own keys (revocations, backups, the etcd release): no service's.
pub const OWN_PREFIX: &str = "zone-etcd/";
/// Where each node's own prefix lives when the zone sets none: `nodes/<node_name>/`.
pub const DEFAULT_NODE_PREFIX: &str = "nodes/";

/// Each node's own prefix, when the zone sets no `node_quota`: a node's records and
/// leases, not its data.
pub const DEFAULT_NODE_QUOTA: u64 = 8 << 20;
/// A service that names no `quota`, when the zone sets no `service_quota`: a Patroni
/// cluster keeps kilobytes, a lock service less; a service that keeps more says so. Eight
/// services and twenty nodes at these defaults (416 MiB of quotas) ask 1,040 MiB of the
/// file at most, of the 1.5 GiB etcd's default 2 GiB has beside its reserve (the room check, `quota::room`).
pub const DEFAULT_SERVICE_QUOTA: u64 = 32 << 20;

/// In `[access] nodes`, alone: every node of the zone (not a member) gets its own identity
/// and prefix, its user made once a signer issued it one (the zone's default policy).
pub const ANY_NODE: &str = "*";

/// The keys of `[access]`.
pub const KEYS: [&str; 6] = [
    "enforce",
    "nodes",
    "node_prefix",
    "service",
    "node_quota",
    "service_quota",
];
/// The keys of one `[[access.service]]`.
pub const SERVICE_KEYS: [&str; 6] = ["name", "nodes", "read_write", "read", "quota", "max_keys"];

/// A validated `[access]` table. Two policies are equal when they mean the same
/// ([`Policy::enforce_given`] is how it was written, not what it means).
#[derive(Debug, Clone)]
pub struct Policy {
    /// Whether the zone wrote one (a zone without stays as before the policy).
    pub present: bool,
    /// Whether the members enforce it: the client port trusts the client root alone and
    /// etcd's auth is on. Without it (the first step of moving a running zone) members
    /// get their signers and identities but every certificate of the zone still works.
    pub enforce: bool,
    /// Whether the table said `enforce` at all: in a zone whose default is least
    /// privilege, a table that does not is enforced (only `enforce = false` opts out).
    pub enforce_given: bool,
    /// The zone's nodes besides its etcd members.
    pub nodes: Vec<String>,
    /// Under it, `<node_name>/` is each node's own prefix.
    pub node_prefix: String,
    pub services: Vec<Service>,
    /// Each node's own prefix's quota (issue 69, `quota`); `None`: the default.
    pub node_quota: Option<u64>,
    /// The quota of a service that names none; `None`: the default.
    pub service_quota: Option<u64>,
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
    /// What it may keep under its `read_write` prefixes, in bytes as etcd counts them;
    /// `None`: the zone's `service_quota`.
    pub quota: Option<u64>,
    /// How many live keys it may keep; `None`: no bound but its quota.
    pub max_keys: Option<u64>,
}

impl PartialEq for Policy {
    fn eq(&self, other: &Policy) -> bool {
        (
            self.present,
            self.enforce,
            &self.nodes,
            &self.node_prefix,
            &self.services,
            self.node_quota,
            self.service_quota,
        ) == (
            other.present,
            other.enforce,
            &other.nodes,
            &other.node_prefix,
            &other.services,
            other.node_quota,
            other.service_quota,
        )
    }
}

impl Eq for Policy {}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            present: false,
            enforce: false,
            enforce_given: false,
            nodes: Vec::new(),
            node_prefix: DEFAULT_NODE_PREFIX.into(),
            services: Vec::new(),
            node_quota: None,
            service_quota: None,
        }
    }
}

impl Policy {
    /// What a zone file without `[access]` means in a zone made with the default of least
    /// privilege (`ca init` of zone-etcd 0.2 and later): enforced, each node of the zone
    /// its own prefix, no service.
    pub fn by_default() -> Policy {
        Policy {
            present: true,
            enforce: true,
            enforce_given: true,
            nodes: vec![ANY_NODE.into()],
            ..Policy::default()
        }
    }

    /// Whether `nodes` is [`ANY_NODE`]: any node of the zone gets its own identity.
    pub fn any_node(&self) -> bool {
        self.nodes.iter().any(|n| n == ANY_NODE)
    }

    /// Whether `node` (not an etcd member) may have its own identity.
    pub fn gives_own_identity(&self, node: &str, zone: &str) -> bool {
        self.nodes.iter().any(|n| n == node) || (self.any_node() && is_node_of(node, zone))
    }

    /// The policy with [`ANY_NODE`] replaced by `issued` (the nodes a signer issued their
    /// own identity to, members left out by the caller): what etcd's users are made from.
    pub fn with_issued_nodes(&self, issued: &[String]) -> Policy {
        let mut policy = self.clone();
        if self.any_node() {
            policy.nodes = issued.to_vec();
        }
        policy
    }

    /// The table as `parse` reads it (empty when the zone wrote none), each key that
    /// holds its default left out (`enforce = false`, the default `node_prefix`, an empty
    /// list): a key a later release adds, left to its default, then never reaches an
    /// older release, whose reader refuses keys it does not know. `nodes` is always
    /// written: it says the zone has an `[access]` table at all.
    pub fn to_value(&self) -> Map<String, Value> {
        let mut map = Map::new();
        if !self.present {
            return map;
        }
        let put_list = |map: &mut Map<String, Value>, key: &str, items: &[String]| {
            if !items.is_empty() {
                map.insert(key.into(), Value::from(items.to_vec()));
            }
        };
        if self.enforce {
            map.insert("enforce".into(), Value::from(true));
        }
        map.insert("nodes".into(), Value::from(self.nodes.clone()));
        if self.node_prefix != DEFAULT_NODE_PREFIX {
            map.insert("node_prefix".into(), Value::from(self.node_prefix.clone()));
        }
        let put_size = |map: &mut Map<String, Value>, key: &str, size: Option<u64>| {
            if let Some(bytes) = size {
                map.insert(key.into(), Value::from(crate::size::render(bytes)));
            }
        };
        put_size(&mut map, "node_quota", self.node_quota);
        put_size(&mut map, "service_quota", self.service_quota);
        let services: Vec<Value> = self
            .services
            .iter()
            .map(|s| {
                let mut t = Map::new();
                t.insert("name".into(), Value::from(s.name.clone()));
                put_list(&mut t, "nodes", &s.nodes);
                put_list(&mut t, "read_write", &s.read_write);
                put_list(&mut t, "read", &s.read);
                put_size(&mut t, "quota", s.quota);
                if let Some(n) = s.max_keys {
                    t.insert("max_keys".into(), Value::from(n));
                }
                Value::Object(t)
            })
            .collect();
        if !services.is_empty() {
            map.insert("service".into(), Value::from(services));
        }
        map
    }

    /// The prefix of `node`'s own identity.
    pub fn node_prefix_of(&self, node: &str) -> String {
        format!("{}{node}/", self.node_prefix)
    }

    /// The quota of each node's own prefix.
    pub fn node_quota(&self) -> u64 {
        self.node_quota.unwrap_or(DEFAULT_NODE_QUOTA)
    }

    /// The quota of `service`.
    pub fn service_quota(&self, service: &Service) -> u64 {
        service
            .quota
            .or(self.service_quota)
            .unwrap_or(DEFAULT_SERVICE_QUOTA)
    }

    /// The services `node` may run.
    pub fn services_of<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a Service> + 'a {
        self.services
            .iter()
            .filter(move |s| s.nodes.iter().any(|n| n == node))
    }
}

/// Whether `node` is a node name of `zone`: a DNS name under it.
pub(super) fn is_node_of(node: &str, zone: &str) -> bool {
    crate::config::text::check_dns_name(node).is_ok()
        && node
            .strip_suffix(zone)
            .and_then(|rest| rest.strip_suffix('.'))
            .is_some_and(|label| !label.is_empty())
}
