//! The checks a policy passes before anything uses it: each refusal names the key at
//! fault and the fix, in one line.
//!
//! Prefixes end in `/`, so two of them overlap exactly when one starts with the other
//! (`apps/` covers `apps/photos/`; `apps/photo/` and `apps/photos/` do not touch).

use zone_io::Error;

use super::model::{is_node_of, Policy, ANY_NODE, OWN_PREFIX};

/// Names a service cannot take: etcd's administrator, zone-etcd's own.
const RESERVED: [&str; 3] = ["root", "zone-etcd", "owner"];

pub(super) fn check(
    policy: &Policy,
    at: &str,
    zone: &str,
    members: &[String],
) -> Result<(), Error> {
    let any = policy.any_node();
    for (i, node) in policy.nodes.iter().enumerate() {
        let field = format!("{at}.nodes[{i}]");
        if any {
            if policy.nodes.len() > 1 {
                return Err(Error::new(format!(
                    "\"{ANY_NODE}\" (every node of the zone) stands alone, and the list has {} entries",
                    policy.nodes.len()
                ))
                .field(format!("{at}.nodes"))
                .fix(format!("write nodes = [\"{ANY_NODE}\"], or list the nodes by name without it")));
            }
            continue;
        }
        in_zone(node, zone, &field)?;
        if members.contains(node) {
            return Err(Error::new(format!(
                "{node} is an etcd member of the zone: members are known"
            ))
            .field(field)
            .fix("list only the zone's other nodes here"));
        }
        if policy.nodes[..i].contains(node) {
            return Err(Error::new(format!("{node} is listed twice"))
                .field(field)
                .fix("list each node once"));
        }
    }
    let node_prefix = &policy.node_prefix;
    prefix_shape(node_prefix, &format!("{at}.node_prefix"))?;
    not_own(node_prefix, &format!("{at}.node_prefix"))?;
    let known = |n: &String| {
        members.contains(n) || policy.nodes.contains(n) || (any && is_node_of(n, zone))
    };
    for (i, service) in policy.services.iter().enumerate() {
        let field = |key: &str| format!("{at}.service[{i}].{key}");
        let name = &service.name;
        let label = !name.is_empty()
            && name.len() <= 63
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !name.starts_with('-')
            && !name.ends_with('-');
        if !label {
            return Err(Error::new(format!("{name:?} is not a DNS label"))
                .field(field("name"))
                .fix("use lowercase letters, digits and '-', at most 63, e.g. \"photos\""));
        }
        if RESERVED.contains(&name.as_str()) {
            return Err(Error::new(format!("\"{name}\" is reserved"))
                .field(field("name"))
                .fix("name the service after what it is, e.g. \"photos\""));
        }
        if let Some(j) = policy.services[..i].iter().position(|s| &s.name == name) {
            return Err(Error::new(format!("\"{name}\" is also {at}.service[{j}]"))
                .field(field("name"))
                .fix("give each service one [[access.service]] table"));
        }
        if service.nodes.is_empty() {
            return Err(Error::new("names no node: nobody could run the service")
                .field(field("nodes"))
                .fix("list the nodes that run it, e.g. nodes = [\"nas.example.zone\"]"));
        }
        if let Some(node) = service.nodes.iter().find(|n| !known(n)) {
            return Err(Error::new(format!(
                "{node} is neither an etcd member of the zone nor in {at}.nodes"
            ))
            .field(field("nodes"))
            .fix(if any {
                format!("write node names of zone {zone}, e.g. \"nas.{zone}\"")
            } else {
                format!("add {node} to {at}.nodes (or fix the name)")
            }));
        }
        if service.read_write.is_empty() && service.read.is_empty() {
            return Err(Error::new("grants nothing")
                .field(field("read_write"))
                .fix("give the service its prefix, e.g. read_write = [\"apps/photos/\"]"));
        }
        for (key, prefixes) in [("read_write", &service.read_write), ("read", &service.read)] {
            for prefix in prefixes {
                prefix_shape(prefix, &field(key))?;
                not_own(prefix, &field(key))?;
                if overlap(prefix, node_prefix) {
                    return Err(Error::new(format!(
                        "\"{prefix}\" overlaps the nodes' own prefixes under \"{node_prefix}\""
                    ))
                    .field(field(key))
                    .fix(format!(
                        "give the service a prefix outside \"{node_prefix}\""
                    )));
                }
            }
        }
        for prefix in &service.read_write {
            for (j, other) in policy.services[..i].iter().enumerate() {
                if let Some(theirs) = other.read_write.iter().find(|p| overlap(prefix, p)) {
                    return Err(Error::new(format!(
                        "\"{prefix}\" overlaps \"{theirs}\" of {} ({at}.service[{j}]): one service would read and write the other's keys",
                        other.name
                    ))
                    .field(field("read_write"))
                    .fix("give each service its own prefix; a service that must see another's keys lists them under read"));
                }
            }
        }
    }
    Ok(())
}

/// Whether two `/`-terminated prefixes share keys.
pub(super) fn overlap(a: &str, b: &str) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

fn prefix_shape(prefix: &str, field: &str) -> Result<(), Error> {
    // A leading '/' is a layout of its own (Patroni's `/service/<scope>/`, Kubernetes'
    // `/registry/`, CoreDNS's `/skydns/`): grantable, but "/" alone is every such key.
    if prefix.is_empty() || !prefix.ends_with('/') || prefix == "/" {
        let why = if prefix == "/" {
            "is every key that starts with '/'"
        } else if prefix.is_empty() {
            "is empty"
        } else {
            "does not end in '/'"
        };
        return Err(Error::new(format!("\"{prefix}\" is not a key prefix: it {why}"))
        .field(field)
        .fix("write prefixes like \"apps/photos/\" or \"/service/pg/\": a name, ending in '/'"));
    }
    if prefix.bytes().any(|b| b.is_ascii_control()) {
        return Err(Error::new("a prefix holds a control character")
            .field(field)
            .fix("write prefixes of printable characters"));
    }
    Ok(())
}

fn not_own(prefix: &str, field: &str) -> Result<(), Error> {
    if overlap(prefix, OWN_PREFIX) {
        return Err(Error::new(format!(
            "\"{prefix}\" overlaps zone-etcd's own keys under \"{OWN_PREFIX}\""
        ))
        .field(field)
        .fix(format!("choose a prefix outside \"{OWN_PREFIX}\"")));
    }
    Ok(())
}

fn in_zone(node: &str, zone: &str, field: &str) -> Result<(), Error> {
    if is_node_of(node, zone) {
        Ok(())
    } else {
        Err(
            Error::new(format!("{node:?} is not a node name of zone {zone}"))
                .field(field)
                .fix(format!("write node names like \"nas.{zone}\"")),
        )
    }
}
