//! The zone's etcd settings: the optional `[settings]` table of the zone file, carried in
//! node bundles (`node.toml`) and in the signed zone document (`extend.settings`), and the
//! etcd flags every member derives from it.
//!
//! Pure: no file is read here; callers hand over the parsed table and add the file name to
//! errors. Invariants:
//! - every node derives the same flags from the same table (there is no node-local
//!   override), so the members of a zone agree on their timing and quota;
//! - only timing, quota, compaction and snapshot settings exist: TLS, addresses and
//!   membership are never settable;
//! - a table is validated whole before anything uses it: unknown keys, wrong types, zero
//!   or negative values, an election timeout under 5 heartbeats or of 50 s or more, a quota over
//!   8 GiB and a malformed retention are refused, naming the key (`settings.<key>`).

mod retention;

use serde_json::{Map, Value};
use zone_io::Error;

pub use retention::{check_retention, CompactionMode};

/// etcd's default heartbeat interval (ms).
pub const DEFAULT_HEARTBEAT_MS: u64 = 100;
/// etcd's default election timeout (ms).
pub const DEFAULT_ELECTION_MS: u64 = 1000;
/// etcd refuses an election timeout of 50 s or more.
pub const MAX_ELECTION_MS: u64 = 50_000;
/// etcd refuses an election timeout under 5 heartbeats.
pub const MIN_HEARTBEATS_PER_ELECTION: u64 = 5;
/// The backend quota when the zone sets none: etcd's own default, written out so every
/// member (and `maintain`) uses the same figure whatever its etcd version defaults to.
pub const DEFAULT_QUOTA_BYTES: u64 = 2 << 30;
/// etcd warns above 8 GiB; a bigger database makes defragmentation and snapshots slow.
pub const MAX_QUOTA_BYTES: u64 = 8 << 30;
/// A new etcd database is already a few hundred KiB; below 1 MiB nothing fits.
pub const MIN_QUOTA_BYTES: u64 = 1 << 20;
/// The history kept when the zone sets no compaction (the guide's files and keys, `[settings]`).
pub const DEFAULT_RETENTION: &str = "5m";
const MAX_SNAPSHOT_COUNT: u64 = 10_000_000;

/// The keys of `[settings]`, in the order they are written.
pub const KEYS: [&str; 6] = [
    "heartbeat_interval_ms",
    "election_timeout_ms",
    "quota_backend_bytes",
    "auto_compaction_mode",
    "auto_compaction_retention",
    "snapshot_count",
];

/// A validated `[settings]` table: what the zone set, each `None` when left to the default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pub heartbeat_interval_ms: Option<u64>,
    pub election_timeout_ms: Option<u64>,
    pub quota_backend_bytes: Option<u64>,
    pub auto_compaction_mode: Option<CompactionMode>,
    /// As etcd spells it (`5m`, `1h`, `10000`), checked against the mode.
    pub auto_compaction_retention: Option<String>,
    pub snapshot_count: Option<u64>,
}

impl Settings {
    /// Validates a table; `at` names it in errors (`settings` in a zone file or node.toml,
    /// `extend.settings` in a zone document).
    pub fn parse(value: &Value, at: &str) -> Result<Settings, Error> {
        let Some(table) = value.as_object() else {
            return Err(Error::new(format!("must be a table, not {}", kind(value)))
                .field(at)
                .fix("write [settings] with keys such as heartbeat_interval_ms = 100"));
        };
        let field = |key: &str| format!("{at}.{key}");
        for key in table.keys() {
            if !KEYS.contains(&key.as_str()) {
                return Err(unknown_key(key).field(field(key)));
            }
        }
        let number = |key: &str| -> Result<Option<u64>, Error> {
            table
                .get(key)
                .map(|v| positive(v).map_err(|e| e.field(field(key))))
                .transpose()
        };
        let mode = match table.get("auto_compaction_mode") {
            None => None,
            Some(Value::String(s)) if s == "periodic" => Some(CompactionMode::Periodic),
            Some(Value::String(s)) if s == "revision" => Some(CompactionMode::Revision),
            Some(other) => {
                return Err(Error::new(format!("{other} is not a compaction mode"))
                    .field(field("auto_compaction_mode"))
                    .fix("write auto_compaction_mode = \"periodic\" (a time window) or \"revision\" (a number of revisions)"))
            }
        };
        let retention = match table.get("auto_compaction_retention") {
            None => None,
            Some(Value::String(s)) => Some(s.trim().to_string()),
            Some(Value::Number(n)) if n.is_u64() => Some(n.to_string()),
            Some(other) => {
                return Err(Error::new(format!(
                    "{other} is not a retention (expected a string such as \"1h\", or a revision count)"
                ))
                .field(field("auto_compaction_retention"))
                .fix("write auto_compaction_retention = \"1h\" (periodic) or \"10000\" (revision)"))
            }
        };
        let settings = Settings {
            heartbeat_interval_ms: number("heartbeat_interval_ms")?,
            election_timeout_ms: number("election_timeout_ms")?,
            quota_backend_bytes: number("quota_backend_bytes")?,
            auto_compaction_mode: mode,
            auto_compaction_retention: retention,
            snapshot_count: number("snapshot_count")?,
        };
        settings.check(at)?;
        Ok(settings)
    }

    /// The rules between keys and the bounds, on the values etcd will run with.
    fn check(&self, at: &str) -> Result<(), Error> {
        let field = |key: &str| format!("{at}.{key}");
        let (heartbeat, election) = (self.heartbeat_ms(), self.election_ms());
        if election < heartbeat * MIN_HEARTBEATS_PER_ELECTION {
            let (key, what) = match self.election_timeout_ms {
                Some(_) => ("election_timeout_ms", format!("{election} ms")),
                None => (
                    "heartbeat_interval_ms",
                    format!("etcd's default election timeout of {election} ms"),
                ),
            };
            return Err(Error::new(format!(
                "{what} is under {MIN_HEARTBEATS_PER_ELECTION} heartbeats of {heartbeat} ms (etcd refuses it)"
            ))
            .field(field(key))
            .fix(format!(
                "set election_timeout_ms to about 10 heartbeats ({}), at least {}",
                (heartbeat * 10).min(MAX_ELECTION_MS - 1),
                heartbeat * MIN_HEARTBEATS_PER_ELECTION
            )));
        }
        if election >= MAX_ELECTION_MS {
            return Err(Error::new(format!(
                "{election} ms is 50 s or more (etcd refuses it)"
            ))
            .field(field("election_timeout_ms"))
            .fix("set it to about 10 heartbeats, under 50000; for a round trip of R ms, heartbeat_interval_ms = R and election_timeout_ms = 10 R"));
        }
        let quota = self.quota_bytes();
        if !(MIN_QUOTA_BYTES..=MAX_QUOTA_BYTES).contains(&quota) {
            return Err(Error::new(format!(
                "{quota} bytes is outside 1 MiB to 8 GiB ({MIN_QUOTA_BYTES} to {MAX_QUOTA_BYTES})"
            ))
            .field(field("quota_backend_bytes"))
            .fix("set a quota from 1048576 to 8589934592 bytes (etcd's default is 2147483648)"));
        }
        if let Some(count) = self.snapshot_count.filter(|c| *c > MAX_SNAPSHOT_COUNT) {
            return Err(Error::new(format!(
                "{count} is over {MAX_SNAPSHOT_COUNT}: etcd would keep that many entries in memory"
            ))
            .field(field("snapshot_count"))
            .fix("leave it out (etcd's default) or set up to 10000000"));
        }
        let (mode, retention) = self.compaction();
        if self.auto_compaction_mode == Some(CompactionMode::Revision)
            && self.auto_compaction_retention.is_none()
        {
            return Err(
                Error::new("missing: revision mode needs the number of revisions to keep")
                    .field(field("auto_compaction_retention"))
                    .fix("add auto_compaction_retention = \"10000\""),
            );
        }
        check_retention(mode, retention).map_err(|e| e.field(field("auto_compaction_retention")))
    }

    pub fn is_empty(&self) -> bool {
        *self == Settings::default()
    }

    pub fn heartbeat_ms(&self) -> u64 {
        self.heartbeat_interval_ms.unwrap_or(DEFAULT_HEARTBEAT_MS)
    }

    pub fn election_ms(&self) -> u64 {
        self.election_timeout_ms.unwrap_or(DEFAULT_ELECTION_MS)
    }

    pub fn quota_bytes(&self) -> u64 {
        self.quota_backend_bytes.unwrap_or(DEFAULT_QUOTA_BYTES)
    }

    /// The compaction etcd runs with: the zone's, else periodic with [`DEFAULT_RETENTION`].
    pub fn compaction(&self) -> (CompactionMode, &str) {
        (
            self.auto_compaction_mode
                .unwrap_or(CompactionMode::Periodic),
            self.auto_compaction_retention
                .as_deref()
                .unwrap_or(DEFAULT_RETENTION),
        )
    }

    /// The seconds between two of etcd's automatic compactions, as far as they are a time:
    /// the periodic retention (etcd compacts once a retention when it is an hour or less,
    /// and every hour when longer, keeping the retention's history either way, so a
    /// period's writes stay in the file for the retention);
    /// in revision mode, [`DEFAULT_RETENTION`]'s. A tenant's write budget is per period.
    pub fn compaction_period_seconds(&self) -> u64 {
        let default = retention::duration_seconds(DEFAULT_RETENTION).unwrap_or(300);
        match self.compaction() {
            (CompactionMode::Periodic, retention) => retention::duration_seconds(retention)
                .filter(|&s| s > 0)
                .unwrap_or(default),
            (CompactionMode::Revision, _) => default,
        }
    }

    /// etcd's flags for these settings, defaults included, as (flag, value) pairs.
    /// `--snapshot-count` only when set: etcd 3.6 lowered its own default on purpose.
    pub fn flags(&self) -> Vec<(&'static str, String)> {
        let (mode, retention) = self.compaction();
        let mut flags = vec![
            ("heartbeat-interval", self.heartbeat_ms().to_string()),
            ("election-timeout", self.election_ms().to_string()),
            ("quota-backend-bytes", self.quota_bytes().to_string()),
            ("auto-compaction-mode", mode.as_str().to_string()),
            ("auto-compaction-retention", retention.to_string()),
        ];
        if let Some(count) = self.snapshot_count {
            flags.push(("snapshot-count", count.to_string()));
        }
        flags
    }

    /// The table as the zone set it (defaults left out), for node.toml and the zone
    /// document; [`Settings::parse`] reads it back to the same settings.
    pub fn to_value(&self) -> Map<String, Value> {
        let mut map = Map::new();
        let mut put = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                map.insert(key.to_string(), value);
            }
        };
        put(
            "heartbeat_interval_ms",
            self.heartbeat_interval_ms.map(Value::from),
        );
        put(
            "election_timeout_ms",
            self.election_timeout_ms.map(Value::from),
        );
        put(
            "quota_backend_bytes",
            self.quota_backend_bytes.map(Value::from),
        );
        put(
            "auto_compaction_mode",
            self.auto_compaction_mode.map(|m| Value::from(m.as_str())),
        );
        put(
            "auto_compaction_retention",
            self.auto_compaction_retention.clone().map(Value::from),
        );
        put("snapshot_count", self.snapshot_count.map(Value::from));
        map
    }
}

/// A positive whole number (TOML integer or JSON number).
fn positive(value: &Value) -> Result<u64, Error> {
    match value {
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(0), _) => Err(Error::new("0 is not allowed: it must be a positive number")
                .fix("set a positive value, or leave the key out for the default")),
            (Some(n), _) => Ok(n),
            (None, Some(negative)) => Err(Error::new(format!(
                "{negative} is negative: it must be a positive number"
            ))
            .fix("set a positive value, or leave the key out for the default")),
            _ => Err(Error::new(format!("{n} is not a whole number"))
                .fix("write a whole number without a fraction")),
        },
        other => Err(Error::new(format!("must be a number, not {}", kind(other)))
            .fix("write the number without quotes, e.g. heartbeat_interval_ms = 100")),
    }
}

fn unknown_key(key: &str) -> Error {
    let security = [
        "tls", "cert", "key", "cipher", "auth", "trusted", "ca", "url", "listen", "cluster",
        "name", "dir",
    ];
    let lowered = key.to_ascii_lowercase();
    let problem = if security
        .iter()
        .any(|word| lowered.split(['_', '-']).any(|part| part == *word))
    {
        format!(
            "{key:?} cannot be set: zone-etcd derives TLS, addresses, names and membership itself"
        )
    } else {
        format!("unknown key {key:?}")
    };
    Error::new(problem).fix(format!("use only {}", KEYS.join(", ")))
}

/// How a value is called in messages ("a string", "a table").
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a table",
    }
}

#[cfg(test)]
mod tests;
