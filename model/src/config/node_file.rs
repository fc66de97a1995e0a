//! node.toml as written ([`NodeFile`], with its `[external]` table), before anything is
//! loaded from it; and the directories it names, made absolute.
//!
//! Invariants: a key this release does not know is ignored and named in
//! [`NodeFile::ignored`] for the caller's warning (a newer `activate` may write one; see
//! [`super::ignored`]), every other mistake is refused; a required field that is missing
//! or blank is refused naming it and the fix; the node's name and zone are lowercase DNS names; the
//! paths a config names are relative to its own directory, never the working directory.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zone_io::Error;

use super::ignored::Ignored;
use super::member::RawMember;
use super::text::{check_dns_name, parse_reporting};

/// node.toml as written.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct NodeFile {
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    pub ca: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
    /// The zone's client CA certificate (a zone with `[access]`): what a member's client
    /// port trusts, see the app's `identities`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<String>,
    /// An etcd member's signer certificate and key (issued by the client CA).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer_key: Option<String>,
    /// Where launch keeps leaves and etcd's data; default `state` beside the config.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_dir: Option<String>,
    /// etcd's data directory; default `<state_dir>/data`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<String>,
    /// The etcd binary; default: `etcd` beside zone-etcd, then `PATH`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etcd_bin: Option<String>,
    /// Where this member listens, when not on the address the zone file gives: an address
    /// of this machine (its LAN address behind a router's port forward), or `0.0.0.0` /
    /// `::`. Peers and clients still dial the zone file's address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen_address: Option<String>,
    /// Base URL of the zone's nameservice, asked for the member list when `etcd` is absent;
    /// default [`DEFAULT_NAMESERVICE`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nameservice: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etcd: Option<Vec<RawMember>>,
    /// The zone's `[settings]`, copied with the member list (a node that follows the
    /// nameservice takes them from the signed document instead).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settings: Option<serde_json::Value>,
    /// The zone's `[backup]`, copied with the member list likewise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<serde_json::Value>,
    /// The zone's `[access]`, copied with the member list likewise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access: Option<serde_json::Value>,
    /// Leaves made by the operator's own PKI instead of the node CA.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalFiles>,
    /// The keys of the file this release does not know, ignored: for the caller to warn
    /// about (never written).
    #[serde(skip)]
    pub ignored: Ignored,
}

impl NodeFile {
    /// Parses a node config's text; `path` names it in errors and warnings (and picks
    /// the format). Keys this release does not know are in [`NodeFile::ignored`].
    pub fn parse(path: &Path, text: &str) -> Result<NodeFile, Error> {
        let (mut file, keys): (NodeFile, _) = parse_reporting(path, text, &[])?;
        let name = path.display().to_string();
        file.ignored = Ignored::of(&name, &format!("remove it from {name}"), keys);
        Ok(file)
    }

    /// The node's name and zone, checked as DNS names. Without `zone` (the seed's JSON),
    /// the zone is the node name minus its first label.
    pub fn names(&self) -> Result<(String, String), Error> {
        let name = required(&self.name, "name", "add name = \"<node>.<zone>\"")?;
        check_dns_name(&name)
            .map_err(|p| Error::new(p).field("name").fix("use the node's DNS name"))?;
        let zone = match &self.zone {
            Some(zone) => zone.clone(),
            None => name
                .split_once('.')
                .map(|(_, z)| z.to_string())
                .ok_or_else(|| {
                    Error::new("missing, and the node name has no zone part")
                        .field("zone")
                        .fix("add zone = \"<zone>\"")
                })?,
        };
        check_dns_name(&zone)
            .map_err(|p| Error::new(p).field("zone").fix("use the zone's DNS name"))?;
        Ok((name, zone))
    }
}

/// `[external]`: leaf certificates (chain PEM) and keys made elsewhere, chaining to `ca`.
/// A member needs server and peer; `env` needs client. Paths are relative to the config.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ExternalFiles {
    pub server_cert: Option<String>,
    pub server_key: Option<String>,
    pub peer_cert: Option<String>,
    pub peer_key: Option<String>,
    pub client_cert: Option<String>,
    pub client_key: Option<String>,
}

/// The nameservice's local API when node.toml names none (the seed's port 3456).
pub const DEFAULT_NAMESERVICE: &str = "http://127.0.0.1:3456";

/// Checks a nameservice URL from node.toml.
pub fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("{url:?} is not an http:// or https:// URL"))?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || rest.contains(['?', '#', ' ']) {
        return Err(format!(
            "{url:?} is not a base URL like http://127.0.0.1:3456"
        ));
    }
    Ok(())
}

/// The directory paths in a node config are relative to, made absolute so the etcd
/// command line does not depend on the working directory.
pub fn base_dir(config: &Path) -> PathBuf {
    std::path::absolute(config)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default()
}

/// The state directory a node config names (default `state` beside it).
pub fn state_dir(config: &Path, file: &NodeFile) -> PathBuf {
    base_dir(config).join(file.state_dir.as_deref().unwrap_or("state"))
}

pub(super) fn required(value: &Option<String>, field: &str, fix: &str) -> Result<String, Error> {
    match value {
        Some(v) if !v.trim().is_empty() => Ok(v.clone()),
        _ => Err(Error::new("missing").field(field).fix(fix)),
    }
}

#[cfg(test)]
mod nameservice_url_tests {
    use super::check_url;

    #[test]
    fn a_nameservice_is_a_base_url() {
        assert!(check_url("http://127.0.0.1:3456").is_ok());
        assert!(check_url("https://ns.example.zone/api").is_ok());
        assert!(check_url("ftp://x").is_err());
        assert!(check_url("http://").is_err());
        assert!(check_url("http://x/resolve?name=z").is_err());
    }
}
