//! The members' keeper of etcd's users and roles (a duty of the member's keeper process,
//! [`crate::agent::keep`]): it keeps the zone's etcd auth store in step with
//! the policy in force, and records which policy it found applied.
//!
//! The policy in force is the newest signed zone document published at [`POLICY_KEY`]
//! (`zone-etcd zone publish`), verified against the zone roots, or, before any was
//! published, the node's own `[access]` (node.toml's copy or the nameservice's document).
//! Nodes the zone revoked keep no user ([`rbac::desired_without`]). Under `nodes = ["*"]`
//! the nodes' users are those of the nodes the ledger marks as issued their own identity
//! ([`crate::identities::ledger::nodes`], read each round).
//!
//! Invariants: a document that does not verify, names another zone or was signed before
//! the one in force is never applied (logged, the one in force stays and is put back at
//! the key, as it is when the key is deleted); a document the zone root signed that this
//! release cannot read (a newer zone-etcd's, [`crate::policy::in_force::Newer`]) is neither
//! applied nor put back: this member stops applying until it runs that release, said once
//! in its log; the newest document applied is kept in the
//! state directory (`policy::in_force`), so a restart never goes back to an older one nor
//! to node.toml's copy once one was published; the auth store is read whole and planned
//! again at a keeper's first apply, every `RECHECK` (`FOLLOWER_RECHECK` on a member that
//! does not lead) and whenever etcd's users' or roles' names are not those the last apply
//! left (looked at by the leader's keeper alone, in each round its raft log moved since
//! the last look: each read of the auth store is a raft proposal, and each change to it an
//! entry); a publish or a revocation in between
//! is planned from what the last apply left ([`crate::policy::replay`]), so members applying at
//! once only ever finish each other's work (an operation another member did first fails,
//! and is taken as done); a full read is given up for a policy published meanwhile,
//! which is applied first (the recheck follows at the next round); auth is enabled only
//! under `enforce`, and before it is on only the leader's keeper touches etcd; every member records
//! `<applied>` at [`record::APPLIED_PREFIX`]`<member>` once its etcd holds exactly the policy's
//! users and roles, which `status` reads, with whether its client port trusts the client
//! root alone; auth goes on only once every member's record says so (auth on beside a
//! port that still takes node-CA certificates would make a forged CN `root` etcd's root).

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use time::format_description::well_known::Rfc3339;
use zone_io::Error;
use zone_pki::CertInfo;

use super::duty::{Duty, Round};
use super::link::Link;
use crate::node::Node;
use crate::policy::in_force::InForce;
use crate::policy::in_force::POLICY_KEY;
use crate::policy::record::{self, Applied, Removed};
use crate::policy::timing::Phases;
use zone_etcd_kit::cluster_api;
use zone_model::policy::rbac;

/// How often the keeper looks at the published policy and the zone's revocations (and,
/// the leader's, at etcd's users' and roles' names).
const TICK: Duration = Duration::from_secs(1);
/// How often the leader's keeper reads the whole auth store even when nothing it knows of
/// changed (a grant or password changed by hand is put back within this).
const RECHECK: Duration = Duration::from_secs(30);
/// How often another member's keeper does (the zone's store is read by the leader's).
const FOLLOWER_RECHECK: Duration = Duration::from_secs(300);
/// An apply that took this long says where its time went, even when it changed nothing.
const SAY_AFTER: Duration = Duration::from_millis(500);
/// The most one apply may take, however many users and roles it makes.
const APPLY_TIME: Duration = Duration::from_secs(600);

/// The keeper of one member.
pub struct AccessKeeper {
    node: Node,
    roots: Vec<CertInfo>,
    /// The member's identity endpoint, told each policy that comes into force.
    identities: Option<crate::identities::endpoint::Slot>,
    /// Told the revoked nodes whose users are gone (the revocation keeper cuts their
    /// connections then).
    users_gone: crate::agent::revocations::UsersGone,
    /// The newest published policy applied here and its document's text.
    newest: Mutex<Option<(InForce, String)>>,
    /// The users this keeper gave a random password (`root`, see [`rbac::Op::Scramble`]).
    sealed: Mutex<BTreeSet<String>>,
    /// The users' and roles' names etcd held after the last apply: a round that finds
    /// others applies at once.
    names: Mutex<Option<(Vec<String>, Vec<String>)>>,
    /// What etcd's users and roles are after the last apply ([`crate::policy::replay::after`]),
    /// when its names were those etcd then held: a publish is planned from it.
    last: Mutex<Option<rbac::AuthState>>,
    /// Whether `last` is presumed, not worked out: a non-leader keeper waiting for auth on
    /// presumes the leader's keeper leaves the policy's users and roles, and plans its first
    /// apply after from that (when etcd's names agree), its full read at the next round.
    presumed: std::sync::atomic::AtomicBool,
    /// What it removed outside the policy, newest last ([`record::remember`]).
    removed: Mutex<Vec<Removed>>,
    /// The connection to this member's etcd the duties share.
    link: Link,
    /// What the last round that finished applied.
    done: Option<Done>,
    /// When the whole auth store was last read.
    checked: Instant,
    /// Why this member holds off, when the published policy is a newer release's
    /// ([`crate::policy::in_force::Newer`]).
    held: Mutex<Option<String>>,
    /// The leader's raft index after its last look at etcd's names found them as the last
    /// apply left them (its own two reads included): while the index stays there, no user
    /// or role can have changed ([`crate::policy::read::names_look_due`]).
    quiet: Mutex<Option<u64>>,
}

impl Duty for AccessKeeper {
    fn name(&self) -> String {
        format!("access policy: {}", self.link.endpoint())
    }

    fn pause(&self) -> Duration {
        TICK
    }

    /// One look over the shared connection (opened anew after a failed round).
    async fn round(&mut self) -> Result<Round, String> {
        let mut client = self.link.client().await?;
        let (mut done, mut checked) = (self.done.take(), self.checked);
        let looked = self.look(&mut client, &mut done, &mut checked).await;
        (self.done, self.checked) = (done, checked);
        if looked.is_err() {
            self.link.reset().await;
        }
        looked.map(|()| lock(&self.held).clone().map_or(Round::Quiet, Round::Said))
    }
}

impl AccessKeeper {
    /// The keeper of `node`'s member, or `None` when the zone has no `[access]` or the
    /// node runs no member.
    pub fn new(
        node: Node,
        link: Link,
        identities: Option<crate::identities::endpoint::Slot>,
        users_gone: crate::agent::revocations::UsersGone,
    ) -> Result<Option<AccessKeeper>, Error> {
        if node.member().is_none() || (node.identities.is_none() && !node.access.present) {
            return Ok(None);
        }
        let roots = zone_model::config::trust::trusted_roots(&node.zone_ca_pem)?;
        Ok(Some(AccessKeeper {
            newest: Mutex::new(crate::policy::in_force::load(&node, &roots)),
            sealed: Mutex::new(BTreeSet::new()),
            removed: Mutex::new(Vec::new()),
            names: Mutex::new(None),
            last: Mutex::new(None),
            presumed: std::sync::atomic::AtomicBool::new(false),
            link,
            done: None,
            checked: Instant::now(),
            held: Mutex::new(None),
            quiet: Mutex::new(None),
            roots,
            node,
            identities,
            users_gone,
        }))
    }

    /// One look: the policy in force and the revoked nodes; applied when they changed
    /// since the last round that finished, or every [`RECHECK`].
    async fn look(
        &self,
        client: &mut etcd_client::Client,
        done: &mut Option<Done>,
        checked: &mut Instant,
    ) -> Result<(), String> {
        let mut phases = Phases::new();
        let published = cluster_api::within(async {
            client
                .get(POLICY_KEY, None)
                .await
                .map_err(|e| cluster_api::describe(&e))
        })
        .await?;
        let policy_at = published.kvs().first().map(|kv| kv.mod_revision());
        let in_force = match crate::policy::in_force::in_force(
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
        match crate::identities::ledger::upload(client, &self.node.state_dir).await {
            Ok(0) => {}
            Ok(n) => tracing::info!("identity ledger: {n} identity(ies) issued while the zone did not answer now recorded in it"),
            Err(e) => tracing::warn!("identity ledger: not carried into the zone yet: {e}"),
        }
        let revoked = revoked_nodes(&self.node, &self.roots);
        // Under `nodes = ["*"]`, the nodes a signer issued their own identity to.
        let issued = if in_force.policy.any_node() {
            let mut marked = crate::identities::ledger::nodes(client).await?;
            marked.retain(|n| !in_force.members.contains(n));
            marked
        } else {
            Vec::new()
        };
        phases.mark("nodes", usize::from(in_force.policy.any_node()));
        let policy = in_force.policy.with_issued_nodes(&issued);
        let mut want = rbac::desired_without(&policy, &in_force.members, &revoked);
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
        let signature = (in_force.clone(), revoked.clone(), want.enabled, issued);
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
        let (leads, raft_index) = self.leads(client).await;
        phases.mark("leads", 1);
        let recheck = if leads { RECHECK } else { FOLLOWER_RECHECK };
        let unchanged = done.as_ref() == Some(&signature) && checked.elapsed() < recheck;
        if unchanged && !leads {
            return Ok(());
        }
        let quiet = lock(&self.quiet).take();
        if unchanged && !crate::policy::read::names_look_due(quiet, raft_index) {
            *lock(&self.quiet) = quiet;
            return Ok(());
        }
        let names_now = if unchanged || !probe_passwords {
            Some(cluster_api::within(crate::policy::read::names(client)).await?)
        } else {
            None
        };
        if unchanged {
            if lock(&self.names).as_ref() == names_now.as_ref() {
                *lock(&self.quiet) = raft_index.map(|i| i + crate::policy::read::NAMES_ENTRIES);
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
                    crate::policy::replay::fits(last, now, &want, &self.node.zone)
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
                && !crate::policy::passwords::auth_on(client).await? =>
            {
                phases.mark("auth off: the leader's to apply", 2);
                rbac::AuthState::default()
            }
            None => {
                let read = crate::policy::read::read_unless_changed(client, POLICY_KEY, policy_at);
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
            let target = crate::policy::apply::Target {
                want: &want,
                zone: &self.node.zone,
                sealed: &sealed,
                leader,
                probe_passwords,
            };
            crate::policy::apply::apply_to(client, current, Phases::new(), target).await
        })
        .await?;
        phases.absorb(outcome.phases);
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
        let held = cluster_api::within(crate::policy::read::names(client)).await?;
        // What it worked out is kept only when etcd's names agree (another member's
        // keeper applying a newer policy meanwhile, or a user or role made by hand since
        // the read: the next round applies again and reads everything). The names are
        // kept only then too: names held after a plant during the apply would be taken
        // as what the apply left, and the plant would stand until the next full read (a
        // clean run's red: eve planted during the leader's keeper's 30 s read was still
        // there 10 s later).
        let agree = crate::policy::replay::names(&outcome.held) == held;
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

/// What the last finished round applied: the policy, the revoked nodes, auth on, the
/// nodes marked as issued their own identity (under `nodes = ["*"]`).
type Done = (InForce, Vec<String>, bool, Vec<String>);

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default()
}

impl AccessKeeper {
    /// Whether this keeper's member leads the cluster now (its etcd says so), and its
    /// committed raft index (`None` when etcd did not answer).
    async fn leads(&self, client: &mut etcd_client::Client) -> (bool, Option<u64>) {
        let status = cluster_api::within(async {
            client.status().await.map_err(|e| cluster_api::describe(&e))
        })
        .await;
        match status {
            Ok(s) => (
                s.header().is_some_and(|h| h.member_id() == s.leader()),
                Some(s.raft_index()),
            ),
            Err(_) => (false, None),
        }
    }
}

fn short(key_id: &str) -> &str {
    if key_id.is_empty() {
        "none"
    } else {
        &key_id[..key_id.len().min(16)]
    }
}

/// The nodes the zone's revocations in force on this member name.
fn revoked_nodes(node: &Node, roots: &[CertInfo]) -> Vec<String> {
    match crate::revocation::store::in_force(&node.state_dir, roots) {
        Ok(Some(doc)) => doc.node_names(),
        _ => Vec::new(),
    }
}
