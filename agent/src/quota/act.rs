//! What the decider does about a verdict: a tenant stopped (its role's ranges read only,
//! then its record) or resumed (write given back, then its record deleted), and the
//! figures recorded. The module's invariants are its parent's.

use etcd_client::Client;

use super::state::{Held, Tenants};
use crate::duty::now;
use zone_etcd_kit::cluster_api;
use zone_model::policy::rbac::{Access, Op, Perm};
use zone_model::quota::record::{Stopped, TenantUse, Uses, FORMAT, STOPPED_PREFIX, USE_KEY};
use zone_model::quota::{display, tally::Tally};
use zone_node::policy::apply::run_op;

/// Stops and resumes what `tally` says, `stopped` being the tenants stopped now.
pub(super) async fn decide(
    held: &Held,
    client: &mut Client,
    tenants: &Tenants,
    tally: &Tally,
    stopped: &mut Vec<String>,
) -> Result<(), String> {
    let verdict = tally.verdict(stopped);
    for (tenant, crossed) in verdict.stop {
        // The grant first: etcd refuses the tenant's next write from there; the record
        // then keeps every member's access keeper from giving the write back.
        grant(client, tenants, &tenant, Access::Read).await?;
        let (used, budget) = tally.figures(&tenant, crossed);
        let record = Stopped {
            format: FORMAT,
            tenant: tenant.clone(),
            crossed: crossed.word().into(),
            used,
            budget,
            at: now(),
            by: held.member.clone(),
        };
        put(client, record.key(), record.render()).await?;
        tracing::warn!(
            "quotas: {}: its writes are refused until it is under 90% of it",
            record.line()
        );
        stopped.push(tenant);
    }
    for tenant in verdict.resume {
        delete(client, format!("{STOPPED_PREFIX}{tenant}")).await?;
        grant(client, tenants, &tenant, Access::ReadWrite).await?;
        // (Named before: inside tracing's macros `display` is tracing's own.)
        let who = display(&tenant);
        tracing::info!("quotas: {who} is back under 90% of its budgets: it writes again");
        stopped.retain(|s| *s != tenant);
    }
    // A stop of a tenant the policy no longer has (a service removed, a node revoked):
    // nothing to resume, so its record goes.
    let gone: Vec<String> = stopped
        .iter()
        .filter(|s| !tenants.iter().any(|(t, _, _)| t.name == **s))
        .cloned()
        .collect();
    for tenant in gone {
        delete(client, format!("{STOPPED_PREFIX}{tenant}")).await?;
        stopped.retain(|s| *s != tenant);
    }
    Ok(())
}

/// `access` on each of `tenant`'s prefixes, for its role (etcd keeps one permission a
/// range, so a grant replaces the one there).
async fn grant(
    client: &mut Client,
    tenants: &Tenants,
    tenant: &str,
    access: Access,
) -> Result<(), String> {
    let prefixes = tenants
        .iter()
        .find(|(t, _, _)| t.name == tenant)
        .map(|(_, p, _)| p.clone())
        .unwrap_or_default();
    for prefix in prefixes {
        let op = Op::Grant(tenant.to_string(), Perm::prefix(access, &prefix));
        cluster_api::ask(client, |mut c| {
            let op = op.clone();
            async move { run_op(&mut c, &op).await }
        })
        .await
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Each call through [`cluster_api::ask`]: asked again while etcd refuses it for a change
/// of its auth store in flight (the keepers applying a stop), never failing the round.
async fn put(client: &mut Client, key: String, value: String) -> Result<(), String> {
    cluster_api::ask(client, |mut c| {
        let (key, value) = (key.clone(), value.clone());
        async move { c.put(key, value, None).await.map(drop) }
    })
    .await
    .map_err(|e| e.to_string())
}

async fn delete(client: &mut Client, key: String) -> Result<(), String> {
    cluster_api::ask(client, |mut c| {
        let key = key.clone();
        async move { c.delete(key, None).await.map(drop) }
    })
    .await
    .map_err(|e| e.to_string())
}

/// The zone's leases (etcd's LeaseLeases, one answer of every lease's ID); `None` when etcd
/// did not answer (a zone with more than about 400,000 leases overflows the answer's
/// size: the last count, already far over [`zone_model::quota::record::LEASES_MANY`],
/// stands).
pub(super) async fn count_leases(client: &mut Client) -> Option<u64> {
    let answer =
        cluster_api::within(async { client.leases().await.map_err(|e| cluster_api::describe(&e)) })
            .await;
    match answer {
        Ok(r) => Some(r.leases().len() as u64),
        Err(why) => {
            tracing::debug!("quotas: the zone's leases not counted: {why}");
            None
        }
    }
}

/// Puts every tenant's figures (`tenants`, [`Tally::records`]) and the zone's `leases` at
/// [`USE_KEY`] when they moved since `recorded`.
pub(super) async fn record_uses(
    held: &Held,
    client: &mut Client,
    tenants: Vec<TenantUse>,
    leases: Option<u64>,
    recorded: &mut Option<Uses>,
) -> Result<(), String> {
    if recorded
        .as_ref()
        .is_some_and(|r| !r.moved(&tenants, leases))
    {
        return Ok(());
    }
    let uses = Uses {
        format: FORMAT,
        at: now(),
        by: held.member.clone(),
        tenants,
        leases,
    };
    put(client, USE_KEY.into(), uses.render()).await?;
    *recorded = Some(uses);
    Ok(())
}
