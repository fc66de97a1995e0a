//! One look of the access keeper ([`super::AccessKeeper`]): the policy in force and the
//! revoked nodes read, the auth store read or planned from the last apply, the plan
//! applied, the member's record put. The module's invariants are its parent's.

use std::time::Instant;

use super::{
    lock, now, revoked_nodes, short, AccessKeeper, Done, APPLY_TIME, FOLLOWER_RECHECK, RECHECK,
    SAY_AFTER,
};
use zone_etcd_kit::cluster_api;
use zone_model::policy::rbac;
use zone_node::policy::in_force::POLICY_KEY;
use zone_node::policy::record::{self, Applied};
use zone_node::policy::timing::Phases;

impl AccessKeeper {
    /// One look: the policy in force and the revoked nodes; applied when they changed
    /// since the last round that finished, or every [`RECHECK`].
    pub(super) async fn look(
        &self,
        client: &mut etcd_client::Client,
        done: &mut Option<Done>,
        checked: &mut Instant,
    ) -> Result<(), String> {
        // Nothing moved since a look that found everything as its last apply left it:
        // nothing to read (see [`super::idle`]).
        let mut phases = Phases::new();
        let (leads, raft_index) = self.leads().await;
        phases.mark("leads", 1);
        let local = super::idle::Local::now(
            &self.node.state_dir,
            self.identities
                .as_ref()
                .is_some_and(|slot| slot.get().is_some()),
        );
        let recheck = if leads { RECHECK } else { FOLLOWER_RECHECK };
        let due = done.is_none() || checked.elapsed() >= recheck;
        let last_idle = lock(&self.idle).take();
        if super::idle::skip(last_idle.as_ref(), raft_index, &local, due) {
            *lock(&self.idle) = last_idle;
            return Ok(());
        }
        let idle_at = |index: Option<u64>| {
            index.map(|raft_index| super::idle::Idle {
                raft_index,
                local: local.clone(),
            })
        };
        let published = cluster_api::within(async {
            client
                .get(POLICY_KEY, None)
                .await
                .map_err(|e| cluster_api::describe(&e))
        })
        .await?;
        let policy_at = published.kvs().first().map(|kv| kv.mod_revision());
        let in_force = match zone_node::policy::in_force::in_force(
            &self.node,
            &self.roots,
            &self.newest,
            client,
            published.kvs().first(),
        )
        .await
        {
            Ok(in_force) => in_force,
            Err(newer) => {
                *lock(&self.held) = Some(newer.line());
                return Ok(());
            }
        };
        *lock(&self.held) = None;
        phases.mark("policy", 1);
        match zone_node::identities::ledger::upload(client, &self.node.state_dir).await {
            Ok(0) => {}
            Ok(n) => tracing::info!("identity ledger: {n} identity(ies) issued while the zone did not answer now recorded in it"),
            Err(e) => tracing::warn!("identity ledger: not carried into the zone yet: {e}"),
        }
        let revoked = revoked_nodes(&self.node, &self.roots);
        // Under `nodes = ["*"]`, the nodes a signer issued their own identity to.
        let issued = if in_force.policy.any_node() {
            let mut marked = zone_node::identities::ledger::nodes(client).await?;
            marked.retain(|n| !in_force.members.contains(n));
            marked
        } else {
            Vec::new()
        };
        phases.mark("nodes", usize::from(in_force.policy.any_node()));
        let policy = in_force.policy.with_issued_nodes(&issued);
        let mut want = rbac::desired_without(&policy, &in_force.members, &revoked);
        // Quotas: the decider counts this policy's tenants, and the ones it stopped read
        // only (their record stands until it resumes them).
        let own: Vec<String> = policy
            .nodes
            .iter()
            .filter(|n| !in_force.members.contains(n) && !revoked.contains(n))
            .cloned()
            .collect();
        let tenants = if policy.enforce {
            zone_model::quota::tenants(&policy, &own)
        } else {
            Vec::new()
        };
        self.quotas.set(tenants);
        let stopped = crate::quota::stopped(client).await?;
        want = rbac::read_only(want, &stopped);
        // Auth on while some member still takes node-CA certificates would make a forged
        // CN root etcd's root there: wait until every member's client port is enforced.
        let ports = record::enforced_ports(client).await?;
        phases.mark("ports", 1);
        let waiting: Vec<&String> = in_force
            .members
            .iter()
            .filter(|m| !revoked.contains(m))
            .filter(|m| {
                let own = **m == self.node.name && self.node.access.enforce;
                !(own || ports.contains(m))
            })
            .collect();
        if want.enabled && !waiting.is_empty() {
            want.enabled = false;
        }
        let signature = (
            in_force.clone(),
            revoked.clone(),
            want.enabled,
            issued,
            stopped,
        );
        // The endpoint issues by the policy in force, not by node.toml's copy.
        if let Some(handle) = self.identities.as_ref().and_then(|slot| slot.get()) {
            handle.set_policy(in_force.policy.clone(), in_force.members.clone());
        }
        // A full apply (everything read, every user asked about a password) at a keeper's
        // first apply, at each full recheck and when etcd's names changed; not when only
        // the policy or the revocations did (a published change stays quick however many
        // users there are): the recheck comes at the next round when it is due.
        let presumed = self
            .presumed
            .swap(false, std::sync::atomic::Ordering::Relaxed);
        let probe_passwords = !presumed && !matches!(done.as_ref(), Some(d) if *d != signature);
        // etcd orders every read of its auth store through raft (a UserList, RoleList,
        // UserGet or password probe is a proposal each member writes to its WAL), and the
        // store is the zone's: the leader's keeper looks at the names each round and reads
        // the whole store every RECHECK for the whole zone; the others read it whole only
        // every FOLLOWER_RECHECK, in case the leader's keeper is not running (an idle
        // 3-member zone made 412 raft entries a minute when every keeper did both, 136 when
        // the leader's looked at the names each second, 24 since it looks only when its raft
        // log moved).
        let unchanged = done.as_ref() == Some(&signature) && checked.elapsed() < recheck;
        if unchanged && !leads {
            *lock(&self.idle) = idle_at(raft_index);
            return Ok(());
        }
        let quiet = lock(&self.quiet).take();
        if unchanged && !zone_node::policy::read::names_look_due(quiet, raft_index) {
            *lock(&self.quiet) = quiet;
            *lock(&self.idle) = idle_at(raft_index);
            return Ok(());
        }
        let names_now = if unchanged || !probe_passwords {
            Some(cluster_api::within(zone_node::policy::read::names(client)).await?)
        } else {
            None
        };
        if unchanged {
            if lock(&self.names).as_ref() == names_now.as_ref() {
                let quiet = raft_index.map(|i| i + zone_node::policy::read::NAMES_ENTRIES);
                *lock(&self.quiet) = quiet;
                *lock(&self.idle) = idle_at(quiet);
                return Ok(());
            }
            tracing::info!("access policy: etcd's users or roles changed; applying again");
        }
        phases.mark("names", if names_now.is_some() { 2 } else { 0 });
        // A publish (or a revocation) is planned from what the last apply left when etcd's
        // names say no user or role was made or deleted since but by the plan itself (the
        // full read at each RECHECK puts back a grant changed by hand). Taken: a failed
        // apply leaves none, and the next reads everything.
        let kept = lock(&self.last).take();
        let last = kept.clone().filter(|last| {
            !probe_passwords
                && names_now.as_ref().is_some_and(|now| {
                    zone_node::policy::replay::fits(last, now, &want, &self.node.zone)
                })
        });
        let sealed = lock(&self.sealed).clone();
        let leader = want.exclusive && leads;
        let current = match last {
            Some(last) => {
                phases.mark("from the last apply", 0);
                last
            }
            // While auth is off under an enforced policy, only the leader's keeper touches
            // etcd: the others read nothing (reading thousands of users and roles slowed
            // the leader's making of them), they only record their port.
            None if want.exclusive
                && !leader
                && !zone_node::policy::passwords::auth_on(client).await? =>
            {
                phases.mark("auth off: the leader's to apply", 2);
                rbac::AuthState::default()
            }
            None => {
                let read =
                    zone_node::policy::read::read_unless_changed(client, POLICY_KEY, policy_at);
                let Some(read) = cluster_api::within_for(APPLY_TIME, read).await? else {
                    *lock(&self.last) = kept;
                    tracing::info!("access policy: a policy was published during a full read of etcd's users and roles: applying it first");
                    return Ok(());
                };
                phases.mark("read", 2 + read.roles.len() + read.users.len());
                read
            }
        };
        // Each call is bounded by the client's own timeout; the apply as a whole by
        // [`APPLY_TIME`], not by one call's deadline: a first apply of thousands of users
        // and roles (each a raft write) cut after one call's time would read everything
        // again each round and never get through.
        let outcome = cluster_api::within_for(APPLY_TIME, async {
            let target = zone_node::policy::apply::Target {
                want: &want,
                zone: &self.node.zone,
                sealed: &sealed,
                leader,
                probe_passwords,
            };
            zone_node::policy::apply::apply_to(client, current, Phases::new(), target).await
        })
        .await?;
        phases.absorb(outcome.phases);
        // The endpoint issues nothing under an enforced policy until auth is on.
        if let Some(handle) = self.identities.as_ref().and_then(|slot| slot.get()) {
            handle.set_auth_on(outcome.auth_on);
        }
        let ops = outcome.ops;
        for op in &ops {
            if let rbac::Op::Scramble(user) = op {
                lock(&self.sealed).insert(user.clone());
            }
        }
        let outsiders: Vec<String> = ops
            .iter()
            .filter_map(|op| op.removes_outsider(&self.node.zone))
            .collect();
        if !outsiders.is_empty() {
            tracing::warn!(
                "access policy {}: removed what the policy never made: {}",
                in_force.version,
                outsiders.join(", ")
            );
            record::remember(&mut lock(&self.removed), outsiders, &now());
        }
        if !ops.is_empty() {
            tracing::info!(
                "access policy {} (signer {}): {} change(s) to etcd's users and roles{}",
                in_force.version,
                short(&in_force.signer),
                ops.len(),
                if want.enabled { ", auth on" } else { "" }
            );
        }
        let removed = lock(&self.removed).clone();
        let record = Applied {
            policy: in_force.version.clone(),
            signer: in_force.signer.clone(),
            // Auth on in etcd, not merely wanted: a keeper that is not the leader's
            // records before the leader's turned it on, and `status` must not say
            // "enforced" while every client is still root.
            enforced: want.enabled && outcome.auth_on,
            client_port_enforced: self.node.access.enforce,
            at: now(),
            removed,
        };
        record::put(client, &self.node.name, &record).await?;
        let held = cluster_api::within(zone_node::policy::read::names(client)).await?;
        // What it worked out is kept only when etcd's names agree (another member's
        // keeper applying a newer policy meanwhile, or a user or role made by hand since
        // the read: the next round applies again and reads everything). The names are
        // kept only then too: names held after a plant during the apply would be taken
        // as what the apply left, and the plant would stand until the next full read (a
        // clean run's red: eve planted during the leader's keeper's 30 s read was still
        // there 10 s later).
        let agree = zone_node::policy::replay::names(&outcome.held) == held;
        *lock(&self.last) = agree.then_some(outcome.held);
        *lock(&self.names) = agree.then_some(held);
        phases.mark("record", 3);
        // Where the time went: said when it changed something or took a while (a keeper
        // that waits for the leader's to turn auth on looks each second).
        if !ops.is_empty() || phases.took() >= SAY_AFTER {
            tracing::info!(
                "access policy {}: applied in {}",
                in_force.version,
                phases.line()
            );
        } else {
            tracing::debug!(
                "access policy {}: applied in {}",
                in_force.version,
                phases.line()
            );
        }
        self.users_gone.set(revoked.clone());
        if !outcome.auth_on && (want.enabled || (want.exclusive && !leader)) {
            // The leader's keeper makes the users and roles and turns auth on: look again
            // at the next round.
            if want.exclusive && !leader {
                *lock(&self.last) = Some(want.clone());
                self.presumed
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
            return Ok(());
        }
        *done = Some(signature);
        if probe_passwords {
            *checked = Instant::now();
        } else if presumed {
            // Planned from a presumed state: the full read follows at the next round.
            *checked = Instant::now().checked_sub(RECHECK).unwrap_or(*checked);
        }
        Ok(())
    }
}
