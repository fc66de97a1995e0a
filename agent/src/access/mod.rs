//! The members' keeper of etcd's users and roles (a duty of the member's keeper process,
//! [`crate::keep`]): it keeps the zone's etcd auth store in step with
//! the policy in force, and records which policy it found applied.
//!
//! The policy in force is the newest signed zone document published at [`POLICY_KEY`](zone_node::policy::in_force::POLICY_KEY)
//! (`zone-etcd zone publish`), verified against the zone roots, or, before any was
//! published, the node's own `[access]` (node.toml's copy or the nameservice's document).
//! Nodes the zone revoked keep no user ([`rbac::desired_without`]). Under `nodes = ["*"]`
//! the nodes' users are those of the nodes the ledger marks as issued their own identity
//! ([`zone_node::identities::ledger::nodes`], read each round).
//!
//! Invariants: a document that does not verify, names another zone or was signed before
//! the one in force is never applied (logged, the one in force stays and is put back at
//! the key, as it is when the key is deleted); a document the zone root signed that this
//! release cannot read (a newer zone-etcd's, [`zone_node::policy::in_force::Newer`]) is neither
//! applied nor put back: this member stops applying until it runs that release, said once
//! in its log; the newest document applied is kept in the
//! state directory (`policy::in_force`), so a restart never goes back to an older one nor
//! to node.toml's copy once one was published; the auth store is read whole and planned
//! again at a keeper's first apply, every `RECHECK` (`FOLLOWER_RECHECK` on a member that
//! does not lead) and whenever etcd's users' or roles' names are not those the last apply
//! left (looked at by the leader's keeper alone, in each round its raft log moved since
//! the last look: each read of the auth store is a raft proposal, and each change to it an
//! entry); a publish or a revocation in between
//! is planned from what the last apply left ([`zone_node::policy::replay`]), so members applying at
//! once only ever finish each other's work (an operation another member did first fails,
//! and is taken as done); a full read is given up for a policy published meanwhile,
//! which is applied first (the recheck follows at the next round); auth is enabled only
//! under `enforce`, and before it is on only the leader's keeper touches etcd; every member records
//! `<applied>` at [`APPLIED_PREFIX`](zone_node::policy::record::APPLIED_PREFIX)`<member>` once its etcd holds exactly the policy's
//! users and roles, which `status` reads, with whether its client port trusts the client
//! root alone; auth goes on only once every member's record says so (auth on beside a
//! port that still takes node-CA certificates would make a forged CN `root` etcd's root);
//! a round reads nothing more than the member's status while its raft index and the
//! node's inputs are where a look found everything as its last apply left it ([`idle`]).

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use zone_io::Error;
use zone_pki::CertInfo;

mod idle;
mod look;

use super::duty::{now, Duty, Round};
use super::link::Link;
use zone_model::policy::rbac;
use zone_node::node::Node;
use zone_node::policy::in_force::InForce;
use zone_node::policy::record::Removed;

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
    identities: Option<zone_node::identities::endpoint::Slot>,
    /// Told the revoked nodes whose users are gone (the revocation keeper cuts their
    /// connections then).
    users_gone: crate::revocations::UsersGone,
    /// The newest published policy applied here and its document's text.
    newest: Mutex<Option<(InForce, String)>>,
    /// The users this keeper gave a random password (`root`, see [`rbac::Op::Scramble`]).
    sealed: Mutex<BTreeSet<String>>,
    /// The users' and roles' names etcd held after the last apply: a round that finds
    /// others applies at once.
    names: Mutex<Option<(Vec<String>, Vec<String>)>>,
    /// What etcd's users and roles are after the last apply ([`zone_node::policy::replay::after`]),
    /// when its names were those etcd then held: a publish is planned from it.
    last: Mutex<Option<rbac::AuthState>>,
    /// Whether `last` is presumed, not worked out: a non-leader keeper waiting for auth on
    /// presumes the leader's keeper leaves the policy's users and roles, and plans its first
    /// apply after from that (when etcd's names agree), its full read at the next round.
    presumed: std::sync::atomic::AtomicBool,
    /// What it removed outside the policy, newest last ([`remember`](zone_node::policy::record::remember)).
    removed: Mutex<Vec<Removed>>,
    /// The connection to this member's etcd the duties share.
    link: Link,
    /// Told the tenants of each policy applied, for the quota decider ([`crate::quota`]).
    quotas: crate::quota::Slot,
    /// What the last round that finished applied.
    done: Option<Done>,
    /// When the whole auth store was last read.
    checked: Instant,
    /// Why this member holds off, when the published policy is a newer release's
    /// ([`zone_node::policy::in_force::Newer`]).
    held: Mutex<Option<String>>,
    /// The leader's raft index after its last look at etcd's names found them as the last
    /// apply left them (its own two reads included): while the index stays there, no user
    /// or role can have changed ([`zone_node::policy::read::names_look_due`]).
    quiet: Mutex<Option<u64>>,
    /// Where the last look found everything as its last apply left it ([`idle`]): until
    /// the member's raft log or the node's inputs move, a round asks nothing more.
    idle: Mutex<Option<idle::Idle>>,
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
        identities: Option<zone_node::identities::endpoint::Slot>,
        users_gone: crate::revocations::UsersGone,
        quotas: crate::quota::Slot,
    ) -> Result<Option<AccessKeeper>, Error> {
        if node.member().is_none() || (node.identities.is_none() && !node.access.present) {
            return Ok(None);
        }
        let roots = zone_model::config::trust::trusted_roots(&node.zone_ca_pem)?;
        Ok(Some(AccessKeeper {
            newest: Mutex::new(zone_node::policy::in_force::load(&node, &roots)),
            sealed: Mutex::new(BTreeSet::new()),
            removed: Mutex::new(Vec::new()),
            names: Mutex::new(None),
            last: Mutex::new(None),
            presumed: std::sync::atomic::AtomicBool::new(false),
            link,
            quotas,
            done: None,
            checked: Instant::now(),
            held: Mutex::new(None),
            quiet: Mutex::new(None),
            idle: Mutex::new(None),
            roots,
            node,
            identities,
            users_gone,
        }))
    }
}

/// What the last finished round applied: the policy, the revoked nodes, auth on, the
/// nodes marked as issued their own identity (under `nodes = ["*"]`), the tenants a quota
/// stopped.
type Done = (InForce, Vec<String>, bool, Vec<String>, Vec<String>);

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl AccessKeeper {
    /// Whether this keeper's member leads the cluster now (its etcd says so), and its
    /// committed raft index (`None` when etcd did not answer).
    async fn leads(&self) -> (bool, Option<u64>) {
        match self.link.leads().await {
            Ok((leads, index)) => (leads, Some(index)),
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
    match zone_node::revocation::store::in_force(&node.state_dir, roots) {
        Ok(Some(doc)) => doc.node_names(),
        _ => Vec::new(),
    }
}
