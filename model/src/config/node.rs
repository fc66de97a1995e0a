//! A node's local config (node.toml), read and checked without the network: its names,
//! the zone roots it trusts, its node CA or `[external]` leaves, its directories and its
//! listen address. What the zone says (members, settings, backup, access) and the node's
//! identities are the zone view, resolved in one explicit step by
//! the app's `node::Node::resolve`.
//!
//! Invariant: nothing here asks the network or writes; every error names node.toml's
//! field at fault.

use std::path::{Path, PathBuf};

use zone_io::Error;
use zone_pki::CertInfo;

pub use super::node_file::{base_dir, state_dir, ExternalFiles, NodeFile};
use super::node_file::{check_url, required, DEFAULT_NAMESERVICE};
use super::text::read_config;
use super::trust::{external_paths, load_node_ca, locate};
pub use super::trust::{inline_pem, read_pem_field, trusted_roots, NodeCa};
use crate::leaf_paths::LeafPaths;

/// node.toml, parsed and checked.
pub struct NodeConfig {
    /// The file it was read from.
    pub path: PathBuf,
    /// The directory relative paths in it start from.
    pub base: PathBuf,
    /// The file as parsed: the zone view's tables (`[[etcd]]`, `[settings]`, `[backup]`,
    /// `[access]`) and the identities' fields are read from it when the view is resolved.
    pub file: NodeFile,
    pub name: String,
    pub zone: String,
    /// The zone root certificates the node trusts (PEM).
    pub zone_ca_pem: String,
    /// The same, parsed.
    pub trusted_roots: Vec<CertInfo>,
    /// The root among them that signed this node's CA.
    pub zone_ca_info: CertInfo,
    pub node_ca: Option<NodeCa>,
    pub external: Option<LeafPaths>,
    pub state_dir: PathBuf,
    pub data_dir: PathBuf,
    pub etcd_bin: Option<PathBuf>,
    pub listen_address: Option<std::net::IpAddr>,
    /// The nameservice's base URL, checked.
    pub nameservice: String,
}

impl NodeConfig {
    /// Reads and checks node.toml at `path`; errors name the file. Keys this release does
    /// not know are in `file.ignored`, for the caller's warning.
    pub fn load(path: &Path) -> Result<NodeConfig, Error> {
        NodeConfig::load_reporting(path, |_| {})
    }

    /// Like [`NodeConfig::load`]; `report` is handed the keys this release does not know
    /// once the file parsed, before it is checked, so that a refusal's caller says them
    /// too (`cert_file` is why `cert` is missing).
    pub fn load_reporting(
        path: &Path,
        report: impl FnOnce(&super::Ignored),
    ) -> Result<NodeConfig, Error> {
        let text = read_config(path)?;
        let file = NodeFile::parse(path, &text)?;
        report(&file.ignored);
        NodeConfig::from_file(path, file).map_err(|e| e.file(path))
    }

    fn from_file(path: &Path, file: NodeFile) -> Result<NodeConfig, Error> {
        let base = base_dir(path);
        let (name, zone) = file.names()?;

        let ca_field = required(
            &file.ca,
            "ca",
            "add ca = \"pki/ca.crt\" (the zone root certificate)",
        )?;
        let (zone_ca_pem, ca_file) = read_pem_field(&base, &ca_field, "ca")?;
        let trusted_roots =
            trusted_roots(&zone_ca_pem).map_err(|e| locate(e, ca_file.as_deref(), "ca"))?;

        // With external leaves the operator's PKI may have no node CA at all.
        let (node_ca, zone_ca_info) = match (&file.external, &file.cert, &file.key) {
            (Some(_), None, None) => (None, trusted_roots[0].clone()),
            _ => {
                let (node_ca, root) = load_node_ca(path, &base, &file, &trusted_roots, &name)?;
                (Some(node_ca), root)
            }
        };
        let external = match &file.external {
            Some(files) => Some(external_paths(&base, files, ca_file.as_deref())?),
            None => None,
        };

        let state_dir = state_dir(path, &file);
        let nameservice = file.nameservice.as_deref().unwrap_or(DEFAULT_NAMESERVICE);
        check_url(nameservice).map_err(|p| {
            Error::new(p).field("nameservice").fix(
                "write the nameservice's base URL, e.g. nameservice = \"http://127.0.0.1:3456\"",
            )
        })?;
        let data_dir = match &file.data_dir {
            Some(dir) => base.join(dir),
            None => state_dir.join("data"),
        };
        let listen_address = match file.listen_address.as_deref().map(str::trim) {
            None => None,
            Some(text) => Some(
                text.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .map_err(|_| {
                        Error::new(format!("{text:?} is not an IP address"))
                            .field("listen_address")
                            .fix("write an address of this machine (e.g. its LAN address 192.168.1.20), or 0.0.0.0 to listen on all")
                    })?,
            ),
        };
        Ok(NodeConfig {
            path: path.to_path_buf(),
            etcd_bin: file.etcd_bin.as_ref().map(|b| base.join(b)),
            nameservice: nameservice.to_string(),
            base,
            name,
            zone,
            zone_ca_pem,
            trusted_roots,
            zone_ca_info,
            node_ca,
            external,
            state_dir,
            data_dir,
            listen_address,
            file,
        })
    }
}
