//! The access policy at work in a running zone: reading the auth store ([`read`]),
//! applying a plan to it ([`apply`], [`passwords`]), the policy in force and its signed
//! record in etcd ([`in_force`], [`record`], [`standing`]), replaying a plan's outcome
//! ([`replay`]), the keeper that holds the zone to it (`zone_agent`) and its timings
//! ([`timing`]); and the room check where a zone file's policy is accepted ([`room`]: its
//! tenants' quotas fit the zone's database).
//!
//! The policy itself (the `[access]` table, its rules and the plan from one auth state to
//! another) is pure and lives in `zone_model::policy`.

pub mod apply;
pub mod in_force;
pub mod passwords;
pub mod read;
pub mod record;
pub mod replay;
pub mod room;
pub mod standing;
pub mod timing;
