//! etcd's automatic compaction: its two modes, and the retention each one reads (a
//! duration for `periodic`, a revision count for `revision`), checked as etcd would read
//! them, with the mistakes etcd would accept silently refused (a bare number in periodic
//! mode means hours to etcd).

use zone_io::Error;

/// A longer periodic retention keeps a year of history: certainly a mistake.
const MAX_RETENTION_SECONDS: u64 = 365 * 24 * 3600;
const MAX_RETENTION_REVISIONS: u64 = 1_000_000_000;

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
pub(super) fn duration_seconds(text: &str) -> Option<u64> {
    let mut total: u64 = 0;
    let mut last_unit = u64::MAX;
    for (number, unit) in crate::terms::terms(text)? {
        let unit = match unit {
            "h" => 3600,
            "m" => 60,
            "s" => 1,
            _ => return None,
        };
        if unit >= last_unit {
            return None;
        }
        last_unit = unit;
        total = total.checked_add(number.checked_mul(unit)?)?;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

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
