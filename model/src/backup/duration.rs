//! Durations as `[backup]` writes them: `500ms`, `5s`, `10m`, `1h`, `7d`, `12w`, and sums
//! of them (`1h30m`). Pure; [`format_duration`] writes what [`parse_duration`] reads.

use std::time::Duration;

use serde_json::Value;
use zone_io::Error;

use crate::settings::kind;

/// A policy longer than this is a typo (10 years).
const MAX_DURATION: Duration = Duration::from_secs(10 * 366 * 24 * 3600);

/// `500ms`, `5s`, `10m`, `1h`, `7d`, `12w`, and sums of them (`1h30m`).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    for (number, unit) in crate::terms::terms(text.trim())? {
        let unit = match unit {
            "ms" => Duration::from_millis(1),
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            "d" => Duration::from_secs(86400),
            "w" => Duration::from_secs(7 * 86400),
            _ => return None,
        };
        total = total.checked_add(unit.checked_mul(u32::try_from(number).ok()?)?)?;
    }
    Some(total)
}

/// The shortest way to write `d` in the units [`parse_duration`] reads.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let s = d.as_secs();
    for (unit, size) in [("d", 86400), ("h", 3600), ("m", 60)] {
        if s.is_multiple_of(size) {
            return format!("{}{unit}", s / size);
        }
    }
    format!("{s}s")
}

pub fn parse_duration_value(value: &Value) -> Result<Duration, Error> {
    let Value::String(text) = value else {
        return Err(
            Error::new(format!("must be a duration string, not {}", kind(value)))
                .fix("write it in quotes with a unit, e.g. \"5s\", \"1h\", \"7d\""),
        );
    };
    match parse_duration(text) {
        Some(d) if d.is_zero() => Err(Error::new("must be longer than 0")
            .fix("write a duration with a unit, e.g. \"5s\", \"1h\", \"7d\"")),
        Some(d) if d > MAX_DURATION => Err(Error::new(format!("{text:?} is more than 10 years"))
            .fix("write hours, days or weeks, e.g. \"7d\"")),
        Some(d) => Ok(d),
        None => Err(Error::new(format!("{text:?} is not a duration")).fix(
            "write whole numbers with ms, s, m, h, d or w, e.g. \"5s\", \"1h\", \"7d\", \"12w\"",
        )),
    }
}
