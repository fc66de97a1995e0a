//! The zone's `[backup]` table ([`settings`]) and its durations ([`duration`]): what the
//! owner asks of the backups, parsed and checked, with no I/O. The backup family itself
//! (chain, targets, runner) is the crate zone-backup (backup/).

pub mod duration;
pub mod settings;
