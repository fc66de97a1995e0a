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
//!   or negative values, an election timeout under 5 heartbeats or over 50 s, a quota over
//!   8 GiB and a malformed retention are refused, naming the key (`settings.<key>`).

use serde_json::{Map, Value};
use zone_pki::Error;

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
/// The history kept when the zone sets no compaction (README: "Compaction").
pub const DEFAULT_RETENTION: &str = "5m";
/// A longer periodic retention keeps a year of history: certainly a mistake.
const MAX_RETENTION_SECONDS: u64 = 365 * 24 * 3600;
const MAX_RETENTION_REVISIONS: u64 = 1_000_000_000;
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

/// etcd's `--auto-compaction-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompactionMode {
    /// Keep the history of a time window (`retention` is a duration: `5m`, `1h`).
    Periodic,
    /// Keep the last N revisions (`retention` is a count: `10000`).
    Revision,
}

impl CompactionMode {
    pub fn as_str(self) -> &'static str {
        match self {
            CompactionMode::Periodic => "periodic",
            CompactionMode::Revision => "revision",
        }
    }
}

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

/// Checks a retention as etcd reads it for `mode`: a duration of whole hours, minutes and
/// seconds for periodic (a bare number would mean hours to etcd, so it is refused), a
/// revision count for revision.
pub fn check_retention(mode: CompactionMode, retention: &str) -> Result<(), Error> {
    match mode {
        CompactionMode::Periodic => {
            if !retention.is_empty() && retention.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Error::new(format!(
                    "{retention:?} has no unit: in periodic mode etcd reads a bare number as hours"
                ))
                .fix(format!(
                    "write the unit (\"{retention}h\", \"{retention}m\"), or set auto_compaction_mode = \"revision\" to keep {retention} revisions"
                )));
            }
            match duration_seconds(retention) {
                Some(s) if s > 0 && s <= MAX_RETENTION_SECONDS => Ok(()),
                Some(0) => Err(Error::new("a retention of 0 turns compaction off")
                    .fix("keep some history, e.g. \"5m\" or \"1h\"")),
                Some(_) => Err(Error::new(format!("{retention:?} is more than a year"))
                    .fix("keep hours or days of history, e.g. \"1h\" or \"24h\"")),
                None => Err(Error::new(format!("{retention:?} is not a duration"))
                    .fix("write hours, minutes or seconds as etcd does: \"1h\", \"30m\", \"1h30m\", \"90s\"")),
            }
        }
        CompactionMode::Revision => match retention.parse::<u64>() {
            Ok(n) if n > 0 && n <= MAX_RETENTION_REVISIONS => Ok(()),
            Ok(0) => Err(Error::new("a retention of 0 turns compaction off")
                .fix("keep some revisions, e.g. \"10000\"")),
            _ => Err(Error::new(format!(
                "{retention:?} is not a number of revisions from 1 to {MAX_RETENTION_REVISIONS}"
            ))
            .fix("write the number of revisions to keep, e.g. \"10000\" (or use auto_compaction_mode = \"periodic\" with \"1h\")")),
        },
    }
}

/// `1h30m`, `5m`, `90s`: whole numbers with h, m or s, in that order of size, each once.
fn duration_seconds(text: &str) -> Option<u64> {
    let mut total: u64 = 0;
    let mut rest = text;
    let mut last_unit = u64::MAX;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let number: u64 = rest[..digits].parse().ok()?;
        let unit = match rest.as_bytes().get(digits)? {
            b'h' => 3600,
            b'm' => 60,
            b's' => 1,
            _ => return None,
        };
        if unit >= last_unit {
            return None;
        }
        last_unit = unit;
        total = total.checked_add(number.checked_mul(unit)?)?;
        rest = &rest[digits + 1..];
    }
    Some(total)
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

fn kind(value: &Value) -> &'static str {
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
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Result<Settings, String> {
        Settings::parse(&value, "settings").map_err(|e| e.to_string())
    }

    #[test]
    fn an_empty_table_gives_the_defaults() {
        let settings = parse(json!({})).unwrap();
        assert!(settings.is_empty());
        let flags = settings.flags();
        assert_eq!(
            flags,
            vec![
                ("heartbeat-interval", "100".to_string()),
                ("election-timeout", "1000".to_string()),
                ("quota-backend-bytes", "2147483648".to_string()),
                ("auto-compaction-mode", "periodic".to_string()),
                ("auto-compaction-retention", "5m".to_string()),
            ]
        );
    }

    #[test]
    fn every_key_reaches_its_flag_and_round_trips() {
        let table = json!({
            "heartbeat_interval_ms": 300, "election_timeout_ms": 3000,
            "quota_backend_bytes": 16777216, "auto_compaction_mode": "revision",
            "auto_compaction_retention": 1000, "snapshot_count": 5000,
        });
        let settings = parse(table).unwrap();
        let flags = settings.flags();
        for expected in [
            ("heartbeat-interval", "300"),
            ("election-timeout", "3000"),
            ("quota-backend-bytes", "16777216"),
            ("auto-compaction-mode", "revision"),
            ("auto-compaction-retention", "1000"),
            ("snapshot-count", "5000"),
        ] {
            assert!(
                flags.contains(&(expected.0, expected.1.to_string())),
                "{expected:?} in {flags:?}"
            );
        }
        let written = Value::Object(settings.to_value());
        assert_eq!(parse(written).unwrap(), settings);
        // Only what the zone set is written back.
        let partial = parse(json!({"heartbeat_interval_ms": 150})).unwrap();
        assert_eq!(partial.to_value().len(), 1);
    }

    #[test]
    fn each_bad_table_is_refused_naming_its_key() {
        let refused = |value: Value, key: &str, words: &str| {
            let message = parse(value.clone()).unwrap_err();
            assert!(
                message.contains(&format!("settings.{key}:")) && message.contains(words),
                "{value} -> {message}"
            );
            assert!(message.contains("(fix: "), "{message}");
        };
        refused(
            json!({"heartbeat_interval_ms": 300, "election_timeout_ms": 1000}),
            "election_timeout_ms",
            "under 5 heartbeats",
        );
        refused(
            json!({"heartbeat_interval_ms": 300}),
            "heartbeat_interval_ms",
            "default election timeout",
        );
        refused(
            json!({"heartbeat_interval_ms": 10000, "election_timeout_ms": 50000}),
            "election_timeout_ms",
            "50 s",
        );
        refused(
            json!({"quota_backend_bytes": 8589934593_u64}),
            "quota_backend_bytes",
            "8 GiB",
        );
        refused(
            json!({"quota_backend_bytes": 1000}),
            "quota_backend_bytes",
            "1 MiB",
        );
        refused(
            json!({"snapshot_count": 0}),
            "snapshot_count",
            "0 is not allowed",
        );
        refused(
            json!({"heartbeat_interval_ms": -5}),
            "heartbeat_interval_ms",
            "negative",
        );
        refused(
            json!({"heartbeat_interval_ms": 1.5}),
            "heartbeat_interval_ms",
            "whole",
        );
        refused(
            json!({"heartbeat_interval_ms": "300"}),
            "heartbeat_interval_ms",
            "not a string",
        );
        refused(
            json!({"snapshot_count": 100000000}),
            "snapshot_count",
            "in memory",
        );
        refused(json!({"heartbeat": 100}), "heartbeat", "unknown key");
        refused(json!({"cert_file": "x"}), "cert_file", "cannot be set");
        refused(
            json!({"tls_min_version": "TLS1.2"}),
            "tls_min_version",
            "cannot be set",
        );
        refused(
            json!({"auto_compaction_mode": "daily"}),
            "auto_compaction_mode",
            "not a compaction mode",
        );
        refused(
            json!({"auto_compaction_retention": "1 hour"}),
            "auto_compaction_retention",
            "not a duration",
        );
        refused(
            json!({"auto_compaction_retention": "1000"}),
            "auto_compaction_retention",
            "bare number as hours",
        );
        refused(
            json!({"auto_compaction_retention": "0s"}),
            "auto_compaction_retention",
            "turns compaction off",
        );
        refused(
            json!({"auto_compaction_retention": true}),
            "auto_compaction_retention",
            "not a retention",
        );
        refused(
            json!({"auto_compaction_mode": "revision"}),
            "auto_compaction_retention",
            "missing",
        );
        refused(
            json!({"auto_compaction_mode": "revision", "auto_compaction_retention": "1h"}),
            "auto_compaction_retention",
            "number of revisions",
        );
        let not_table = parse(json!([1])).unwrap_err();
        assert!(
            not_table.contains("settings: must be a table"),
            "{not_table}"
        );
    }

    #[test]
    fn durations_read_as_etcd_reads_them() {
        assert_eq!(duration_seconds("5m"), Some(300));
        assert_eq!(duration_seconds("1h30m"), Some(5400));
        assert_eq!(duration_seconds("90s"), Some(90));
        assert_eq!(duration_seconds("2h0m5s"), Some(7205));
        for bad in [
            "", "h", "5", "5x", "1m1h", "1h1h", "1.5h", "-1h", "1 h", "5ms",
        ] {
            assert_eq!(duration_seconds(bad), None, "{bad}");
        }
        assert!(check_retention(CompactionMode::Periodic, "9000h").is_err());
        assert!(check_retention(CompactionMode::Periodic, "24h").is_ok());
        assert!(check_retention(CompactionMode::Revision, "10000").is_ok());
    }
}
