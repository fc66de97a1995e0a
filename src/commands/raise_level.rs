//! `zone-etcd zone raise-level --config NODE_FILE [--to LEVEL] [--ca DIR]`: the owner raises the
//! zone's format level ([`zone_model::release::Level`] at [`LEVEL_KEY`]) once every member
//! runs a release that reads it, as `restic migrate` raises a repository's version; from
//! then on the members may write the formats of that level, and a member whose release
//! reads less refuses to start ([`zone_node::preflight::level`]). Without `--to`, the highest
//! level this release writes.
//!
//! Invariants: the decision is [`zone_model::release::raise`] over etcd's member list and
//! each member's release record ([`zone_model::release::PREFIX`]); the level is put in one
//! transaction that holds only if neither the level nor any member's record changed since
//! they were read (a member moved to another release meanwhile records it, and the raise
//! is refused, nothing written). Refused in one line, exit 78, nothing written: a level
//! this release does not write, a member without a record or on a release that reads less.
//! A level never goes back: asked at or below the zone's, it says so and writes nothing.
//! A level above 1 is signed by the zone root (`--ca`, refused without it before anything
//! is asked): the members obey no other ([`zone_model::release::Level::binding`]); a value
//! at the key that does not bind counts as level 1 and is replaced.
//! Each member's keeper remembers the new level within seconds
//! ([`zone_agent::recorded::LEVEL_LOOK`]).

use std::path::Path;

use etcd_client::{Compare, CompareOp, Txn, TxnOp};
use time::format_description::well_known::Rfc3339;
use zone_io::Error;
use zone_model::release::{raise, Level, Raise, Record, LEVEL_KEY, PREFIX};

use zone_etcd_kit::cluster_api;
use zone_node::node::Node;

/// What was read: the zone's level (1 when none) and its mod revision (0: none), and
/// each member's record with its mod revision.
struct Seen {
    level: u32,
    level_revision: i64,
    records: Vec<(String, Option<Record>, i64)>,
}

pub fn run(config: &Path, to: Option<u32>, ca: Option<&Path>) -> Result<(), Error> {
    let node = Node::load(config)?;
    let trust = zone_node::preflight::level::Trust::of(&node);
    let root = signer(
        &node,
        &trust,
        to.unwrap_or(zone_node::this_build::writes()),
        ca,
    )?;
    let cluster = zone_node::reach::ask_cluster(&node)?;
    let endpoint = cluster.view.answered_by.clone();
    let creds = cluster.creds.clone();
    let members: Vec<String> = cluster
        .view
        .members
        .iter()
        .map(|m| {
            if m.name.is_empty() {
                format!("member {:x} (not started yet)", m.id)
            } else {
                m.name.clone()
            }
        })
        .collect();
    let seen = cluster
        .runtime
        .block_on(read(&endpoint, &creds, &members, &trust))
        .map_err(|e| {
            Error::new(format!(
                "cannot read the zone's level and records at {endpoint}: {e}"
            ))
            .fix("run the same command again once the zone answers")
        })?;
    let writes = zone_node::this_build::writes();
    let to = to.unwrap_or(writes);
    let at = time::OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .map_err(|e| Error::new(e.to_string()))?;
    let records: Vec<(String, Option<Record>)> = seen
        .records
        .iter()
        .map(|(m, r, _)| (m.clone(), r.clone()))
        .collect();
    let level = match raise(
        seen.level,
        to,
        writes,
        zone_node::this_build::RELEASE,
        &records,
        &at,
    ) {
        Ok(Raise::Already(level)) => {
            println!(
                "zone-etcd: the zone is at format level {level} already (a level never goes back): nothing written"
            );
            return Ok(());
        }
        Ok(Raise::To(level)) => match &root {
            Some(root) => level.signed(&node.zone, root)?,
            None => level,
        },
        Err((problem, fix)) => return Err(Error::new(problem).field("--to").fix(fix).permanent()),
    };
    let put = cluster
        .runtime
        .block_on(put(&endpoint, &creds, &seen, &level))
        .map_err(|e| {
            Error::new(format!("could not put the level at {endpoint}: {e}"))
                .fix("run the same command again")
        })?;
    if !put {
        return Err(Error::new(
            "the zone's level or a member's release record changed while the level was being raised: nothing written",
        )
        .fix("run the same command again (zone-etcd status shows every member's release)"));
    }
    println!(
        "zone-etcd: the zone is now at format level {} (was {}): every member ({}) reads it; each member's keeper remembers it within {} s, and a member moved to a release that reads less refuses to start",
        level.level,
        seen.level,
        members.join(", "),
        zone_agent::recorded::LEVEL_LOOK.as_secs()
    );
    Ok(())
}

/// The zone root that signs a level above 1 (`to`), from `ca`: `None` for level 1 (every
/// release reads it, so it binds unsigned). Refused without `--ca`, or with a root the
/// zone's members do not trust.
fn signer(
    node: &Node,
    trust: &zone_node::preflight::level::Trust,
    to: u32,
    ca: Option<&Path>,
) -> Result<Option<zone_pki::Authority>, Error> {
    // Above what this release writes, the raise itself refuses.
    if to <= 1 || to > zone_node::this_build::writes() {
        return Ok(None);
    }
    let Some(ca) = ca else {
        return Err(Error::new(format!(
            "a format level above 1 binds the members of zone {} only signed by the zone root",
            node.zone
        ))
        .field("--ca")
        .fix("on the owner's machine, give --ca with the zone's CA directory (ca.crt, ca.key)")
        .permanent());
    };
    let (root, zone) = zone_node::ca_dir::zone_of(ca)?;
    let info = zone_pki::CertInfo::parse(root.cert_der())?;
    if zone != node.zone
        || !trust
            .roots
            .iter()
            .any(|r| r.fingerprint_hex() == info.fingerprint_hex())
    {
        return Err(Error::new(format!(
            "{} holds the root of zone {zone}, not one the members of zone {} trust",
            ca.display(),
            node.zone
        ))
        .field("--ca")
        .fix("give the CA directory of this zone's current root (the one `ca init` or the last rotation made)")
        .permanent());
    }
    Ok(Some(root))
}

async fn read(
    endpoint: &str,
    creds: &cluster_api::Credentials,
    members: &[String],
    trust: &zone_node::preflight::level::Trust,
) -> Result<Seen, String> {
    let client = cluster_api::connect(endpoint, creds).await?;
    let got = cluster_api::get_prefix(&client, LEVEL_KEY).await?;
    let (level, level_revision) = match got.kvs().iter().find(|kv| kv.key() == LEVEL_KEY.as_bytes())
    {
        None => (1, 0),
        // A level that does not bind (planted) is replaced as if the zone were at 1.
        Some(kv) => match trust.binding(kv.value()) {
            Ok(level) => (level.level, kv.mod_revision()),
            Err(e) => {
                eprintln!("zone-etcd: warning: {LEVEL_KEY}: {e}; the members ignore it, and it is replaced");
                (1, kv.mod_revision())
            }
        },
    };
    let got = cluster_api::get_prefix(&client, PREFIX).await?;
    let records = members
        .iter()
        .map(|member| {
            let key = format!("{PREFIX}{member}");
            match got.kvs().iter().find(|kv| kv.key() == key.as_bytes()) {
                Some(kv) => (
                    member.clone(),
                    Record::parse(kv.value()).ok(),
                    kv.mod_revision(),
                ),
                None => (member.clone(), None, 0),
            }
        })
        .collect();
    Ok(Seen {
        level,
        level_revision,
        records,
    })
}

/// Puts `level` unless the level or a record changed since `seen`: whether it was put.
async fn put(
    endpoint: &str,
    creds: &cluster_api::Credentials,
    seen: &Seen,
    level: &Level,
) -> Result<bool, String> {
    let client = cluster_api::connect(endpoint, creds).await?;
    let mut compares = vec![Compare::mod_revision(
        LEVEL_KEY,
        CompareOp::Equal,
        seen.level_revision,
    )];
    compares.extend(seen.records.iter().map(|(member, _, revision)| {
        Compare::mod_revision(format!("{PREFIX}{member}"), CompareOp::Equal, *revision)
    }));
    let txn = Txn::new()
        .when(compares)
        .and_then([TxnOp::put(LEVEL_KEY, level.render(), None)]);
    let done = cluster_api::txn(&client, txn).await?;
    Ok(done.succeeded())
}
