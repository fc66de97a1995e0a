//! Reading an `[access]` table: every key's type and shape, then the whole policy through
//! [`super::rules`].

use serde_json::{Map, Value};
use zone_io::Error;

use super::model::{Policy, Service, DEFAULT_NODE_PREFIX, KEYS, SERVICE_KEYS};
use crate::settings::kind;

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
        let enforce = match table.get("enforce") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => return Err(not_a(other, "true or false", &field("enforce"))),
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
            enforce,
            enforce_given: table.contains_key("enforce"),
            nodes,
            node_prefix,
            services,
            node_quota: size(table.get("node_quota"), &field("node_quota"))?,
            service_quota: size(table.get("service_quota"), &field("service_quota"))?,
        };
        super::rules::check(&policy, at, zone, members)?;
        Ok(policy)
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
            quota: size(table.get("quota"), &field("quota"))?,
            max_keys: match table.get("max_keys") {
                None => None,
                Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n > 0) => n.as_u64(),
                Some(other) => {
                    return Err(not_a(other, "a whole number above 0", &field("max_keys")))
                }
            },
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

/// A quota: a size as people write it (`"64 MiB"`) or a number of bytes, above 0.
fn size(value: Option<&Value>, at: &str) -> Result<Option<u64>, Error> {
    let bytes = match value {
        None => return Ok(None),
        Some(Value::String(text)) => crate::size::parse(text),
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| format!("{n} is not {}", crate::size::SHAPE)),
        Some(other) => return Err(not_a(other, crate::size::SHAPE, at)),
    };
    match bytes {
        Ok(0) => Err(Error::new("a quota of 0 bytes lets nothing be written")
            .field(at)
            .fix("give a size such as \"64 MiB\", or leave the key out for the default")),
        Ok(bytes) => Ok(Some(bytes)),
        Err(why) => Err(Error::new(why)
            .field(at)
            .fix(format!("write {at} as {}", crate::size::SHAPE))),
    }
}

fn not_a(value: &Value, want: &str, at: &str) -> Error {
    Error::new(format!("must be {want}, not {}", kind(value)))
        .field(at)
        .fix(format!("write {at} as {want}"))
}
