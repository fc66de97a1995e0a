//! `zone-etcd env`: what a local service (the nameservice first, seeds/000 step 5) needs
//! to reach the zone's etcd: every member's client endpoint, the zone CA, and this node's
//! client certificate, issued from the node CA when missing or due. Works on every node,
//! etcd member or not. `--format shell` is made for `eval "$(zone-etcd env ...)"`. With
//! `--service NAME` (a zone with `[access]`) the certificate is that service's own
//! identity on this node, `NAME@<node>`, kept current in the state directory
//! ([`zone_node::identities::service`]); `--gateway` adds the file of its password for etcd's
//! JSON gateway ([`zone_node::identities::password`]).

use std::path::Path;

use serde::Serialize;
use zone_io::Error;
use zone_pki::LeafKind;

use zone_model::cluster;
use zone_node::node::Node;

/// Output formats of `env`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// The etcd user the certificate names (a zone with `[access]`; else its CN).
    user: String,
    /// With `--gateway`: the file holding the user's password for etcd's JSON gateway.
    #[serde(skip_serializing_if = "Option::is_none")]
    password_file: Option<String>,
}

pub fn run(
    config: &Path,
    format: EnvFormat,
    service: Option<&str>,
    gateway: bool,
) -> Result<(), Error> {
    let node = Node::load(config)?;
    let identity = node.identity();
    node.check_node_ca_covers(&identity)
        .map_err(|e| e.file(config))?;
    // A node that is not a member learns of revoked identities from the members.
    zone_node::identities::revoked::refresh(&node);
    let paths = zone_node::reach::current_leaves(&node, &[LeafKind::Client])?;
    let (cert, key, user, password_file) = match service {
        // A service's own identity, from the zone (a zone with [access]).
        Some(service) => {
            zone_node::identities::service::check_service_name(&node, service)?;
            if node.identities.is_none() {
                return Err(Error::new(format!(
                    "zone {} has no [access]: there is no service identity to give",
                    node.zone
                ))
                .field("--service")
                .fix("leave --service out (the node's own certificate), or give the zone an [access] policy"));
            }
            let (files, password) = match gateway {
                true => {
                    gateway_allowed(&node)?;
                    let (files, password) =
                        zone_node::identities::service::gateway(&node, service, &paths.ca())
                            .map_err(|e| e.file(config))?;
                    (files, Some(password))
                }
                false => (
                    zone_node::identities::service::ensure(&node, service)
                        .map_err(|e| e.file(config))?,
                    None,
                ),
            };
            (files.cert, files.key, files.user, password)
        }
        None => {
            let cert = paths.cert(LeafKind::Client);
            let user = zone_io::read_text(&cert)
                .ok()
                .and_then(|pem| zone_pki::CertInfo::parse_pem(&pem).ok())
                .map(|info| info.subject_cn)
                .unwrap_or_default();
            if gateway {
                return Err(Error::new("a gateway password is a service's")
                    .field("--gateway")
                    .fix("add --service NAME (the service's own identity and password)"));
            }
            (cert, paths.key(LeafKind::Client), user, None)
        }
    };
    let env = ClientEnv {
        zone: node.zone.clone(),
        node: node.name.clone(),
        member: identity.member,
        endpoints: cluster::client_endpoints(&node.members),
        members_from: node.members_source.to_string(),
        ca_file: paths.ca().display().to_string(),
        cert_file: cert.display().to_string(),
        key_file: key.display().to_string(),
        user,
        password_file: password_file.map(|p| p.display().to_string()),
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
            if let Some(file) = &env.password_file {
                for (name, value) in [
                    ("ZONE_ETCD_USER", &env.user),
                    ("ZONE_ETCD_PASSWORD_FILE", file),
                ] {
                    out.push_str(&format!("export {name}={}\n", shell_quote(value)));
                }
            }
            out
        }
        EnvFormat::Json => serde_json::to_string_pretty(env).map_err(|e| serialise(&e))? + "\n",
        EnvFormat::Toml => toml::to_string(env).map_err(|e| serialise(&e))?,
    })
}

/// Whether `node`'s zone enforces its policy: else the gateway needs no password.
fn gateway_allowed(node: &Node) -> Result<(), Error> {
    if node.access.enforce {
        return Ok(());
    }
    Err(Error::new(format!(
        "zone {} does not enforce its [access] policy: etcd's gateway takes any client without a password",
        node.zone
    ))
    .field("--gateway")
    .fix("leave --gateway out until the zone enforces its policy (zone-etcd status tells)"))
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
