//! `undo --config NODE_FILE --prefix PREFIX (--at TIME | --revision REV) [--dry-run]
//! [--force]`: the keys under a prefix back to a point, in the running zone, as new writes.
//!
//! Invariants:
//! - all input is checked before the cluster is asked (an empty prefix, which would be the
//!   whole key space, and a revision below 1 are refused); a point in the future is
//!   refused once the zone's revision is known;
//! - the plan is printed in full before anything is written; `--dry-run` stops there and
//!   writes nothing;
//! - values are never printed (they may be secrets); keys are printed as UTF-8 when they
//!   are, escaped otherwise, one line each;
//! - what is written is [`plan::plan`]'s actions only, through [`apply::apply`]'s guarded
//!   transactions: keys outside the prefix are never touched, a key changed since the
//!   plan saw it is never overwritten;
//! - exit 0 once the plan is applied, also with keys left alone (they are listed).
//!
//! - [`history`]: the keys now and at the point, and their changes in between (the
//!   changes from etcd through `watch`);
//! - `plan`: what to write (pure); `show` how a key is printed;
//! - [`apply`]: the guarded transactions.

pub mod apply;
mod elsewhere;
pub mod history;
pub mod plan;
mod show;
mod watch;

use std::path::Path;

use zone_io::Error;

use plan::{Action, Kind, Plan};
use show::show_key;
use zone_backup::pitr::{self, Origin, Point, TargetAccess};
use zone_etcd_kit::cluster_api;
use zone_node::node::Node;

pub struct Undo<'a> {
    pub config: &'a Path,
    pub prefix: &'a str,
    pub at: Option<&'a str>,
    pub revision: Option<i64>,
    pub dry_run: bool,
    pub force: bool,
    /// A target to take the old values from, with the owner's CA and identity (else the
    /// node's own chain).
    pub from: Option<TargetAccess<'a>>,
}

pub fn run(undo: &Undo<'_>) -> Result<(), Error> {
    let config = undo.config;
    if undo.prefix.is_empty() {
        return Err(Error::new(
            "an empty prefix is the whole key space: undo takes back the keys under a prefix",
        )
        .file(config)
        .field("--prefix")
        .fix("give the prefix of the keys to take back (--prefix services/)"));
    }
    if let Some(revision) = undo.revision.filter(|&r| r < 1) {
        return Err(Error::new(format!(
            "revision {revision} is not a revision: they start at 1"
        ))
        .file(config)
        .field("--revision")
        .fix("give a revision the zone has passed, or a time (--at)"));
    }
    let asked = match (undo.revision, undo.at) {
        (Some(revision), _) => Point::Revision(revision),
        (None, Some(at)) => {
            Point::Time(pitr::parse_time(at).map_err(|e| Error::new(e).file(config).field("--at"))?)
        }
        (None, None) => {
            return Err(Error::new("no point to go back to")
                .file(config)
                .fix("give --revision REV or --at TIME"))
        }
    };
    let node = Node::load(config)?;
    let origin = match undo.from {
        Some(access) => Origin::Target(access),
        None => Origin::Local,
    };
    let chain = match &origin {
        Origin::Local => "the node's backup chain".to_string(),
        Origin::Target(access) => format!("the backup target {}", access.url),
    };
    let owners = elsewhere::owners_command(
        &node,
        undo.prefix,
        &match (undo.revision, undo.at) {
            (Some(revision), _) => format!("--revision {revision}"),
            (None, at) => format!("--at {}", at.unwrap_or_default()),
        },
    );
    let prefix = undo.prefix.as_bytes();
    let creds = zone_node::reach::client_credentials(&node)?;
    let runtime = cluster_api::runtime()?;
    let endpoints = zone_model::cluster::client_endpoints(&node.members);
    runtime.block_on(async {
        let client = cluster_api::within(cluster_api::connect_many(
            &endpoints,
            &creds,
            cluster_api::CALL_DEADLINE,
        ))
        .await
        .map_err(|reason| zone_node::reach::unreachable(&[(endpoints.join(","), reason)], config))?;
        let point = match asked {
            Point::Revision(revision) => revision,
            Point::Time(ms) => {
                let revision = match zone_node::backup_node::revision_at(&node, &origin, ms) {
                    Ok(revision) => revision,
                    Err(e) => {
                        return Err(elsewhere::refusal(&client, &node, asked, e, &owners).await)
                    }
                };
                println!(
                    "the point: revision {revision}, the last {chain} received at or before {}",
                    pitr::format_time(ms)
                );
                revision
            }
        };
        let read = history::read(&client, &node, (&origin, &owners), prefix, point).await?;
        if let Some(newest) = read.from_chain {
            println!(
                "etcd no longer holds revision {point}: the keys then come from {chain} (through revision {newest}), the changes since from etcd"
            );
        }
        let plan = plan::plan(prefix, &read.history, &read.now, undo.force).map_err(|e| {
            Error::new(format!("the history of {} does not add up: {e}", show_key(prefix)))
                .file(config)
                .fix("run undo again; if it says so again, report it")
        })?;
        print_plan(undo.prefix, &plan, undo.force);
        if undo.dry_run {
            println!("--dry-run: nothing changed");
            return Ok(());
        }
        if plan.actions.is_empty() {
            return Ok(());
        }
        match apply::apply(&client, &plan.actions).await {
            Ok(applied) => {
                print_applied(&applied, plan.point);
                Ok(())
            }
            Err((applied, reason)) => {
                print_applied(&applied, plan.point);
                Err(Error::new(format!(
                    "the cluster stopped answering after {} of {} keys were written (the last transaction may or may not have been applied): {reason}",
                    applied.written.len(),
                    plan.actions.len()
                ))
                .file(config)
                .field("etcd")
                .fix("check the zone with `zone-etcd status`, then run undo again (a key already back is not written again)"))
            }
        }
    })
}

/// The line of one action of the plan.
fn action_line(action: &Action) -> String {
    let (verb, what) = match action.kind {
        Kind::Recreate => ("re-create", "deleted"),
        Kind::SetBack => ("set back", "changed"),
        Kind::Delete => ("delete", "created"),
    };
    let key = show_key(&action.key);
    if action.changes > 1 {
        format!(
            "{verb} {key} (changed {} times since the point, last at revision {}; --force)",
            action.changes, action.last
        )
    } else {
        format!("{verb} {key} ({what} at revision {})", action.last)
    }
}

fn print_plan(prefix: &str, plan: &Plan, force: bool) {
    for action in &plan.actions {
        println!("{}", action_line(action));
    }
    for key in &plan.left_alone {
        println!(
            "left alone {}: changed {} times since revision {}, last at {} (--force takes it back)",
            show_key(&key.key),
            key.changes,
            plan.point,
            key.last
        );
    }
    if plan.actions.is_empty() && plan.left_alone.is_empty() {
        println!(
            "nothing to undo: the keys under {} are as they were at revision {} (the zone is at {})",
            show_key(prefix.as_bytes()),
            plan.point,
            plan.now
        );
        return;
    }
    println!(
        "undo {} to revision {} (the zone is at {}): {} to re-create, {} to set back, {} to delete, {} left alone{}",
        show_key(prefix.as_bytes()),
        plan.point,
        plan.now,
        plan.count(Kind::Recreate),
        plan.count(Kind::SetBack),
        plan.count(Kind::Delete),
        plan.left_alone.len(),
        if force { " (--force)" } else { "" }
    );
}

fn print_applied(applied: &apply::Applied<'_>, point: i64) {
    for action in &applied.changed_meanwhile {
        println!(
            "left alone {}: changed while undo ran (--force takes it back)",
            show_key(&action.key)
        );
    }
    let revisions = match applied.revisions {
        Some((first, last)) if first == last => format!(", at revision {first}"),
        Some((first, last)) => format!(", revisions {first}..{last}"),
        None => String::new(),
    };
    let meanwhile = match applied.changed_meanwhile.len() {
        0 => String::new(),
        n => format!("; {n} changed while undo ran, left alone"),
    };
    println!(
        "applied (back to revision {point}): {} re-created, {} set back, {} deleted in {} transaction(s){revisions}{meanwhile}",
        applied.count(Kind::Recreate),
        applied.count(Kind::SetBack),
        applied.count(Kind::Delete),
        applied.transactions,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_name_the_key_and_the_revision_never_the_value() {
        let action = Action {
            key: b"services/a".to_vec(),
            kind: Kind::Recreate,
            value: b"secret".to_vec(),
            seen: 0,
            changes: 1,
            last: 812,
        };
        assert_eq!(
            action_line(&action),
            "re-create services/a (deleted at revision 812)"
        );
        let forced = Action {
            kind: Kind::SetBack,
            changes: 3,
            last: 990,
            ..action
        };
        let line = action_line(&forced);
        assert_eq!(
            line,
            "set back services/a (changed 3 times since the point, last at revision 990; --force)"
        );
        assert!(!line.contains("secret"));
    }
}
