//! `[backup]`: the zone's backup policy and targets, zone-wide like `[settings]` (copied
//! into node bundles, signed into the zone document as `extend.backup`).
//!
//! Pure: callers hand over the parsed table and add the file name to errors. Invariants:
//! - a table is validated whole: unknown keys, malformed durations, a target without
//!   recipients, a recipient that is not an age X25519 public key and a target URL that is
//!   neither `s3://BUCKET[/PREFIX]` nor `file:///ABSOLUTE/PATH` are refused, naming the key
//!   (`backup.<key>`, `backup.target[N].<key>`);
//! - credentials are never here: they are node-local (see zone-backup's `destination::credentials`);
//! - [`BackupSettings::to_value`] writes back what [`BackupSettings::parse`] reads, and
//!   only what the zone set: a key left to its default is not written (so a key a later
//!   release adds, which a zone that never sets it leaves out, never reaches an older
//!   release's reader, which refuses unknown keys), and a duration the zone did set is
//!   kept as set even where it equals today's default (a later release may change the
//!   default; the owner's choice stays theirs). `recipients` is always written: it says
//!   the zone has a `[backup]` table at all.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Map, Value};
use zone_io::Error;

use super::duration::{format_duration, parse_duration_value};
use crate::settings::kind;

/// The keys of `[backup]`.
pub const KEYS: [&str; 8] = [
    "recipients",
    "full_every",
    "delta_every",
    "window",
    "keep_hourly",
    "keep_daily",
    "keep_weekly",
    "target",
];
/// The keys of one `[[backup.target]]`.
pub const TARGET_KEYS: [&str; 4] = ["url", "endpoint", "region", "ca_file"];

pub const DEFAULT_FULL_EVERY: Duration = Duration::from_secs(3600);
pub const DEFAULT_DELTA_EVERY: Duration = Duration::from_secs(5);
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);
pub const DEFAULT_KEEP_HOURLY: Duration = Duration::from_secs(48 * 3600);
pub const DEFAULT_KEEP_DAILY: Duration = Duration::from_secs(30 * 24 * 3600);
pub const DEFAULT_KEEP_WEEKLY: Duration = Duration::from_secs(12 * 7 * 24 * 3600);
/// Deltas more often than this would be a PUT storm on the targets.
const MIN_DELTA_EVERY: Duration = Duration::from_secs(1);

/// Where backups go.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Location {
    /// `s3://BUCKET/PREFIX`: the prefix has no leading or trailing `/` (may be empty).
    S3 { bucket: String, prefix: String },
    /// `file:///PATH`: an absolute directory (a mounted disk, a NAS).
    Dir(PathBuf),
}

/// One `[[backup.target]]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetSpec {
    /// As written, to name the target in messages and `status`.
    pub url: String,
    pub location: Location,
    /// S3 only: `https://host[:port]` or `http://host[:port]` (a store on the LAN).
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// S3 only: a PEM file of the CA(s) the store's certificate chains to, for a
    /// self-hosted store; relative paths are relative to the node config's directory.
    pub ca_file: Option<String>,
}

/// A validated `[backup]` table. Each duration is `None` when left to its default (the
/// methods of the same names give the value in force).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackupSettings {
    /// The owner's age X25519 recipients (`age1...`).
    pub recipients: Vec<String>,
    pub full_every: Option<Duration>,
    pub delta_every: Option<Duration>,
    /// How far back a point in time can be reached: every delta this young is kept.
    pub window: Option<Duration>,
    /// Retention tiers of full snapshots beyond the window: one per hour for
    /// `keep_hourly`, one per day for `keep_daily`, one per week for `keep_weekly`.
    pub keep_hourly: Option<Duration>,
    pub keep_daily: Option<Duration>,
    pub keep_weekly: Option<Duration>,
    pub targets: Vec<TargetSpec>,
    /// Whether the zone wrote a `[backup]` table at all (an empty one still prints).
    pub present: bool,
}

impl BackupSettings {
    pub fn full_every(&self) -> Duration {
        self.full_every.unwrap_or(DEFAULT_FULL_EVERY)
    }

    pub fn delta_every(&self) -> Duration {
        self.delta_every.unwrap_or(DEFAULT_DELTA_EVERY)
    }

    pub fn window(&self) -> Duration {
        self.window.unwrap_or(DEFAULT_WINDOW)
    }

    pub fn keep_hourly(&self) -> Duration {
        self.keep_hourly.unwrap_or(DEFAULT_KEEP_HOURLY)
    }

    pub fn keep_daily(&self) -> Duration {
        self.keep_daily.unwrap_or(DEFAULT_KEEP_DAILY)
    }

    pub fn keep_weekly(&self) -> Duration {
        self.keep_weekly.unwrap_or(DEFAULT_KEEP_WEEKLY)
    }

    /// Validates a table; `at` names it in errors (`backup` in a zone file or node.toml,
    /// `extend.backup` in a zone document).
    pub fn parse(value: &Value, at: &str) -> Result<BackupSettings, Error> {
        let Some(table) = value.as_object() else {
            return Err(Error::new(format!("must be a table, not {}", kind(value)))
                .field(at)
                .fix("write [backup] with recipients = [\"age1...\"] and [[backup.target]] url = \"...\""));
        };
        let field = |key: &str| format!("{at}.{key}");
        for key in table.keys() {
            if !KEYS.contains(&key.as_str()) {
                return Err(unknown(key, &KEYS).field(field(key)));
            }
        }
        let duration = |key: &str| -> Result<Option<Duration>, Error> {
            table
                .get(key)
                .map(|v| parse_duration_value(v).map_err(|e| e.field(field(key))))
                .transpose()
        };
        let recipients = match table.get("recipients") {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    check_recipient(item).map_err(|e| e.field(format!("{at}.recipients[{i}]")))
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(other) => {
                return Err(Error::new(format!("must be a list, not {}", kind(other)))
                    .field(field("recipients"))
                    .fix("write recipients = [\"age1...\"] (the public keys `age-keygen` prints)"))
            }
        };
        let targets = match table.get("target") {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| parse_target(item, &format!("{at}.target[{i}]")))
                .collect::<Result<Vec<_>, _>>()?,
            Some(other) => {
                return Err(Error::new(format!("must be a list of tables, not {}", kind(other)))
                    .field(field("target"))
                    .fix("write each target as [[backup.target]] with url = \"s3://BUCKET/PREFIX\" or \"file:///DIR\""))
            }
        };
        let settings = BackupSettings {
            recipients,
            full_every: duration("full_every")?,
            delta_every: duration("delta_every")?,
            window: duration("window")?,
            keep_hourly: duration("keep_hourly")?,
            keep_daily: duration("keep_daily")?,
            keep_weekly: duration("keep_weekly")?,
            targets,
            present: true,
        };
        if settings.delta_every() < MIN_DELTA_EVERY {
            return Err(Error::new(format!(
                "{} is too often: every delta is an upload to every target",
                format_duration(settings.delta_every())
            ))
            .field(field("delta_every"))
            .fix("write 1s or more, e.g. delta_every = \"5s\""));
        }
        if settings.full_every() < settings.delta_every() {
            return Err(Error::new(format!(
                "{} is shorter than delta_every ({})",
                format_duration(settings.full_every()),
                format_duration(settings.delta_every())
            ))
            .field(field("full_every"))
            .fix("take full snapshots less often than deltas, e.g. full_every = \"1h\""));
        }
        if !settings.targets.is_empty() && settings.recipients.is_empty() {
            return Err(Error::new(
                "backups would go to a target with no one to encrypt them to",
            )
            .field(field("recipients"))
            .fix("add the owner's public key: recipients = [\"age1...\"] (from `age-keygen -o owner.key`, kept offline)"));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, t) in settings.targets.iter().enumerate() {
            if !seen.insert(&t.location) {
                return Err(Error::new(format!("{} is listed twice", t.url))
                    .field(format!("{at}.target[{i}].url"))
                    .fix("list each target once"));
            }
        }
        Ok(settings)
    }

    /// Whether there is anything to back up to.
    pub fn enabled(&self) -> bool {
        !self.targets.is_empty()
    }

    /// The table as the zone set it (keys left to their default left out: see the
    /// module's invariants), for node.toml and the zone document; empty when the zone has
    /// no `[backup]`.
    pub fn to_value(&self) -> Map<String, Value> {
        let mut map = Map::new();
        if !self.present {
            return map;
        }
        map.insert("recipients".into(), Value::from(self.recipients.clone()));
        for (key, d) in [
            ("full_every", self.full_every),
            ("delta_every", self.delta_every),
            ("window", self.window),
            ("keep_hourly", self.keep_hourly),
            ("keep_daily", self.keep_daily),
            ("keep_weekly", self.keep_weekly),
        ] {
            if let Some(d) = d {
                map.insert(key.into(), Value::from(format_duration(d)));
            }
        }
        let targets = self
            .targets
            .iter()
            .map(|t| {
                let mut m = Map::new();
                m.insert("url".into(), Value::from(t.url.clone()));
                for (key, v) in [
                    ("endpoint", &t.endpoint),
                    ("region", &t.region),
                    ("ca_file", &t.ca_file),
                ] {
                    if let Some(v) = v {
                        m.insert(key.into(), Value::from(v.clone()));
                    }
                }
                Value::Object(m)
            })
            .collect::<Vec<_>>();
        if !targets.is_empty() {
            map.insert("target".into(), Value::from(targets));
        }
        map
    }
}

fn parse_target(value: &Value, at: &str) -> Result<TargetSpec, Error> {
    let Some(table) = value.as_object() else {
        return Err(Error::new(format!("must be a table, not {}", kind(value)))
            .field(at)
            .fix("write [[backup.target]] followed by url = \"...\""));
    };
    let field = |key: &str| format!("{at}.{key}");
    for key in table.keys() {
        if !TARGET_KEYS.contains(&key.as_str()) {
            let e = unknown(key, &TARGET_KEYS);
            let e = if key.contains("secret") || key.contains("access") || key.contains("key") {
                Error::new(format!("{key:?} cannot be set here: credentials are never in the zone file"))
                    .fix("give each node its credentials in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a shared credentials file (AWS_SHARED_CREDENTIALS_FILE, AWS_PROFILE)")
            } else {
                e
            };
            return Err(e.field(field(key)));
        }
    }
    let text = |key: &str| -> Result<Option<String>, Error> {
        match table.get(key) {
            None => Ok(None),
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
            Some(other) => Err(Error::new(format!(
                "must be a non-empty string, not {}",
                kind(other)
            ))
            .field(field(key))
            .fix("write it in quotes, or leave the key out")),
        }
    };
    let url = text("url")?.ok_or_else(|| {
        Error::new("missing")
            .field(field("url"))
            .fix("write url = \"s3://BUCKET/PREFIX\" or url = \"file:///mnt/usb/zone-backups\"")
    })?;
    let location = parse_location(&url).map_err(|e| e.field(field("url")))?;
    let endpoint = text("endpoint")?;
    let region = text("region")?;
    let ca_file = text("ca_file")?;
    match &location {
        Location::S3 { .. } => {
            if let Some(ep) = &endpoint {
                check_endpoint(ep).map_err(|e| e.field(field("endpoint")))?;
            }
            if let (Some(_), Some(ep)) = (&ca_file, &endpoint) {
                if ep.starts_with("http://") {
                    return Err(Error::new("a CA file has no use with an http:// endpoint")
                        .field(field("ca_file"))
                        .fix("use an https:// endpoint, or remove ca_file"));
                }
            }
        }
        Location::Dir(_) => {
            for (key, v) in [
                ("endpoint", &endpoint),
                ("region", &region),
                ("ca_file", &ca_file),
            ] {
                if v.is_some() {
                    return Err(Error::new("only an s3:// target has this")
                        .field(field(key))
                        .fix("remove it from this file:// target"));
                }
            }
        }
    }
    Ok(TargetSpec {
        url,
        location,
        endpoint,
        region,
        ca_file,
    })
}

/// `s3://BUCKET[/PREFIX]` or `file:///ABSOLUTE/PATH`.
pub fn parse_location(url: &str) -> Result<Location, Error> {
    if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && !bucket.starts_with(['-', '.'])
            && !bucket.ends_with(['-', '.']);
        if !bucket_ok {
            return Err(Error::new(format!("{bucket:?} is not an S3 bucket name"))
                .fix("write s3://BUCKET/PREFIX with a bucket of 3-63 lowercase letters, digits, dots and dashes"));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|p| p == ".." || p == ".") || prefix.contains("//") {
            return Err(Error::new(format!("{prefix:?} is not a usable prefix"))
                .fix("write the prefix as plain path segments, e.g. s3://bucket/zones/example"));
        }
        return Ok(Location::S3 {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        });
    }
    if let Some(path) = url.strip_prefix("file://") {
        if !path.starts_with('/') || path.split('/').any(|p| p == "..") {
            return Err(Error::new(format!("{path:?} is not an absolute path")).fix(
                "write file:// and an absolute directory, e.g. file:///mnt/usb/zone-backups",
            ));
        }
        return Ok(Location::Dir(PathBuf::from(path)));
    }
    Err(Error::new(format!("{url:?} is neither s3:// nor file://"))
        .fix("write url = \"s3://BUCKET/PREFIX\" (with endpoint for a store other than AWS) or \"file:///mnt/usb/zone-backups\""))
}

pub fn check_endpoint(endpoint: &str) -> Result<(), Error> {
    let rest = endpoint
        .strip_prefix("https://")
        .or_else(|| endpoint.strip_prefix("http://"))
        .ok_or_else(|| {
            Error::new(format!("{endpoint:?} is not an http(s) URL"))
                .fix("write endpoint = \"https://s3.example.net\" (or http://host:port for a store on the LAN)")
        })?;
    let host = rest.trim_end_matches('/');
    if host.is_empty() || host.contains(['/', '?', '#', '@', ' ']) {
        return Err(
            Error::new(format!("{endpoint:?} must be scheme://host[:port] alone")).fix(
                "put the bucket and prefix in url = \"s3://BUCKET/PREFIX\", not in the endpoint",
            ),
        );
    }
    Ok(())
}

/// An age X25519 recipient: `age1` + bech32 of 32 bytes (62 characters in all).
fn check_recipient(value: &Value) -> Result<String, Error> {
    let Value::String(text) = value else {
        return Err(Error::new(format!("must be a string, not {}", kind(value)))
            .fix("write the recipient in quotes: \"age1...\""));
    };
    let text = text.trim();
    if text.starts_with("AGE-SECRET-KEY-") {
        return Err(Error::new(
            "this is an age identity (a secret key), not a recipient: it must never be in the zone file",
        )
        .fix("write the public key instead (`age-keygen -y owner.key` prints it), and treat the exposed key as lost"));
    }
    let bech = text.len() == 62
        && text.starts_with("age1")
        && text[4..]
            .bytes()
            .all(|b| b"qpzry9x8gf2tvdw0s3jn54khce6mua7l".contains(&b));
    if !bech {
        return Err(
            Error::new(format!("{text:?} is not an age X25519 recipient"))
                .fix("write the public key `age-keygen` prints: \"age1\" and 58 more characters"),
        );
    }
    Ok(text.to_string())
}

fn unknown(key: &str, keys: &[&str]) -> Error {
    Error::new(format!("unknown key {key:?}")).fix(format!("use only {}", keys.join(", ")))
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
