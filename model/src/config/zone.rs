//! The zone file: the zone's name and its etcd members.
//!
//! Accepted forms: TOML (`name` + `[[etcd]]` + optional `[settings]`, `[backup]`,
//! `[access]`), or the seed's
//! nameservice JSON document (`name` + `extend.etcd` + optional `extend.settings`), or JSON
//! with a top-level `etcd` and `settings`. Validation refuses everything that would make an
//! unbootable or unsafe cluster: see [`validate_members`] and [`Settings::parse`]. A key
//! this release does not know (outside `[settings]`, `[backup]` and `[access]`, whose
//! parsers refuse them) is ignored and named in [`Zone::ignored`] for the caller's
//! warning: a newer owner's tool may write one (see [`super::ignored`]).

use std::path::Path;

use serde::{Deserialize, Serialize};
use zone_io::Error;

use super::ignored::Ignored;
pub use super::member::{
    has_tunnels, Member, Protocol, RawMember, DEFAULT_CLIENT_PORT, DEFAULT_PEER_PORT, TUNNEL_HOST,
};
pub use super::members::{check_name_is_not_reserved, is_parent_domain, validate_members};
use super::text::{check_dns_name, parse_reporting, read_config};
use crate::backup::settings::BackupSettings;
use crate::policy::Policy;
use crate::settings::Settings;

/// A validated zone: its name, its nameservice addresses and its members in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    pub name: String,
    /// Where the zone's nameservice is reached (seeds/000); carried into the signed
    /// document, not used by the launcher itself.
    pub addr_info: Vec<AddrInfo>,
    pub members: Vec<Member>,
    /// `[settings]`: the zone's etcd timing, quota and compaction.
    pub settings: Settings,
    /// `[backup]`: where and how often the zone's data is backed up.
    pub backup: BackupSettings,
    /// `[access]`: who may use what in the zone's etcd.
    pub access: Policy,
    /// The keys of the file this release does not know, ignored: for the caller to warn
    /// about (never part of the zone's equality).
    pub ignored: Ignored,
}

/// One `[[addr_info]]` entry: an address of the zone's nameservice.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct AddrInfo {
    pub protocol: String,
    pub address: String,
    pub port: u16,
}

impl Zone {
    /// Reads and validates a zone file.
    pub fn load(path: &Path) -> Result<Zone, Error> {
        Zone::load_reporting(path, |_| {})
    }

    /// Like [`Zone::load`], handing `report` the keys this release does not know (see
    /// [`Zone::parse_reporting`]).
    pub fn load_reporting(path: &Path, report: impl FnOnce(&Ignored)) -> Result<Zone, Error> {
        Zone::parse_reporting(path, &read_config(path)?, report)
    }

    /// Parses and validates a zone file's text; `path` names it in errors and warnings
    /// (and picks the format by its extension). No I/O: the fuzz targets call this.
    pub fn parse(path: &Path, text: &str) -> Result<Zone, Error> {
        Zone::parse_reporting(path, text, |_| {})
    }

    /// Like [`Zone::parse`]; `report` is handed the keys this release does not know once
    /// the text parsed, before the zone is validated, so that a refusal's caller says them
    /// too (`node_nmae` is why `node_name` is missing).
    pub fn parse_reporting(
        path: &Path,
        text: &str,
        report: impl FnOnce(&Ignored),
    ) -> Result<Zone, Error> {
        let (raw, keys): (RawZone, _) = parse_reporting(path, text, &SEED_KEYS)?;
        let name = path.display().to_string();
        let ignored = Ignored::of(&name, &format!("remove it from {name}"), keys);
        report(&ignored);
        let mut zone = Zone::from_raw(raw).map_err(|e| e.file(path))?;
        zone.ignored = ignored;
        Ok(zone)
    }

    fn from_raw(raw: RawZone) -> Result<Zone, Error> {
        let name = raw.name.ok_or_else(|| {
            Error::new("missing")
                .field("name")
                .fix("add name = \"<zone>\", e.g. name = \"example.zone\"")
        })?;
        check_dns_name(&name)
            .map_err(|p| Error::new(p).field("name").fix("use the zone's DNS name"))?;
        let (extend_etcd, extend_settings, extend_backup, extend_access) = match raw.extend {
            Some(extend) => (extend.etcd, extend.settings, extend.backup, extend.access),
            None => (None, None, None, None),
        };
        let raw_members = match (raw.etcd, extend_etcd) {
            (Some(list), _) | (None, Some(list)) => list,
            (None, None) => Vec::new(),
        };
        let members = validate_members(&name, &raw_members)?;
        let settings = match (raw.settings, extend_settings) {
            (Some(table), _) => Settings::parse(&table, "settings")?,
            (None, Some(table)) => Settings::parse(&table, "extend.settings")?,
            (None, None) => Settings::default(),
        };
        let backup = match (raw.backup, extend_backup) {
            (Some(table), _) => BackupSettings::parse(&table, "backup")?,
            (None, Some(table)) => BackupSettings::parse(&table, "extend.backup")?,
            (None, None) => BackupSettings::default(),
        };
        let names: Vec<String> = members.iter().map(|m| m.node_name.clone()).collect();
        let access = match (raw.access, extend_access) {
            (Some(table), _) => Policy::parse(&table, "access", &name, &names)?,
            (None, Some(table)) => Policy::parse(&table, "extend.access", &name, &names)?,
            (None, None) => Policy::default(),
        };
        Ok(Zone {
            name,
            addr_info: raw.addr_info.unwrap_or_default(),
            members,
            settings,
            backup,
            access,
            ignored: Ignored::default(),
        })
    }

    pub fn member(&self, node_name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.node_name == node_name)
    }
}

/// The other top-level keys of the seed's JSON: accepted and ignored without a word (a
/// zone file is the owner's own input, trusted without a signature).
const SEED_KEYS: [&str; 4] = ["type", "api_version", "signed_at", "sign"];

/// The zone file as written, before validation. A key it does not have (but
/// [`SEED_KEYS`]) is ignored and named in a warning, so a misspelt `[setings]` is never
/// silently ignored, nor does a newer release's key stop this one.
#[derive(Debug, Deserialize)]
struct RawZone {
    name: Option<String>,
    addr_info: Option<Vec<AddrInfo>>,
    etcd: Option<Vec<RawMember>>,
    settings: Option<serde_json::Value>,
    backup: Option<serde_json::Value>,
    access: Option<serde_json::Value>,
    extend: Option<RawExtend>,
}

#[derive(Debug, Deserialize)]
struct RawExtend {
    etcd: Option<Vec<RawMember>>,
    settings: Option<serde_json::Value>,
    backup: Option<serde_json::Value>,
    access: Option<serde_json::Value>,
}
