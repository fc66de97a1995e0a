//! `zone-etcd env`: what a local service (the nameservice first, seeds/000 step 5) needs
//! to reach the zone's etcd: every member's client endpoint, the zone CA, and this node's
//! client certificate, issued from the node CA when missing or due. Works on every node,
//! etcd member or not. `--format shell` is made for `eval "$(zone-etcd env ...)"`.

use std::path::Path;

use serde::Serialize;
use zone_pki::{Error, LeafKind};

use crate::cluster;
use crate::config::node::Node;

/// Output formats of `env`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EnvFormat {
    /// `export ETCDCTL_*=...` lines for a POSIX shell.
    Shell,
    Json,
    Toml,
}

/// What `env` tells; also the JSON and TOML output.
#[derive(Debug, Serialize)]
struct ClientEnv {
    zone: String,
    node: String,
    /// Whether this node runs an etcd member (it reaches all members either way).
    member: bool,
    endpoints: Vec<String>,
    /// Where the member list came from: the node config, the nameservice, or its cache.
    members_from: String,
    ca_file: String,
    cert_file: String,
    key_file: String,
}

pub fn run(config: &Path, format: EnvFormat) -> Result<(), Error> {
    let node = Node::load(config)?;
    let identity = node.identity();
    node.check_node_ca_covers(&identity)
        .map_err(|e| e.file(config))?;
    let paths = crate::access::current_leaves(&node, &[LeafKind::Client])?;
    let env = ClientEnv {
        zone: node.zone.clone(),
        node: node.name.clone(),
        member: identity.member,
        endpoints: cluster::client_endpoints(&node.members),
        members_from: node.members_source.to_string(),
        ca_file: paths.ca().display().to_string(),
        cert_file: paths.cert(LeafKind::Client).display().to_string(),
        key_file: paths.key(LeafKind::Client).display().to_string(),
    };
    print!("{}", render(&env, format)?);
    Ok(())
}

fn render(env: &ClientEnv, format: EnvFormat) -> Result<String, Error> {
    let serialise = |e: &dyn std::fmt::Display| Error::new(format!("cannot write the output: {e}"));
    Ok(match format {
        EnvFormat::Shell => {
            let mut out = String::new();
            for (name, value) in [
                ("ETCDCTL_API", "3".to_string()),
                ("ETCDCTL_ENDPOINTS", env.endpoints.join(",")),
                ("ETCDCTL_CACERT", env.ca_file.clone()),
                ("ETCDCTL_CERT", env.cert_file.clone()),
                ("ETCDCTL_KEY", env.key_file.clone()),
            ] {
                out.push_str(&format!("export {name}={}\n", shell_quote(&value)));
            }
            out
        }
        EnvFormat::Json => serde_json::to_string_pretty(env).map_err(|e| serialise(&e))? + "\n",
        EnvFormat::Toml => toml::to_string(env).map_err(|e| serialise(&e))?,
    })
}

/// Single-quotes a value for a POSIX shell (a `'` becomes `'\''`).
fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_values_survive_quotes_and_spaces() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
