//! What a point in time is: a revision, or the last revision received at or before a
//! time; its RFC 3339 form; and what is known of the keys under a prefix at a point.
//!
//! Invariants: times are Unix milliseconds, parsed from RFC 3339 with any offset and
//! printed in UTC; a [`PrefixHistory`]'s keys are as they were at its `revision`, and its
//! `changes` cover every revision after it through `through`. Pure.

use std::collections::BTreeMap;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A point to go back to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    /// Exactly this revision.
    Revision(i64),
    /// The last revision received at or before this time (Unix ms).
    Time(i64),
}

/// Parses an RFC 3339 time (`2026-11-23T10:15:00Z`, or with an offset) into Unix ms.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let at = OffsetDateTime::parse(text.trim(), &Rfc3339).map_err(|e| {
        format!("{text:?} is not an RFC 3339 time ({e}); write it as 2026-11-23T10:15:00Z or with an offset, 2026-11-23T11:15:00+01:00")
    })?;
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| format!("{text:?} is out of range"))
}

/// Formats Unix ms as RFC 3339, UTC, to the millisecond.
pub fn format_time(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("{ms} ms"))
}

/// A key as it was at the point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OldKey {
    pub value: Vec<u8>,
    pub mod_revision: i64,
}

/// The keys under a prefix at a point, and what changed them after it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrefixHistory {
    /// The point: `keys` are as they were at this revision.
    pub revision: i64,
    pub keys: BTreeMap<Vec<u8>, OldKey>,
    /// Every key under the prefix changed after `revision` up to `through` (inclusive),
    /// with the revisions that changed it, ascending.
    pub changes: BTreeMap<Vec<u8>, Vec<i64>>,
    /// The newest revision `changes` covers.
    pub through: i64,
}
