//! etcd's users and roles that carry a policy, and the steps from what an etcd holds to
//! them.
//!
//! Pure: [`desired`] derives the auth state from a policy, [`plan`] the operations that
//! turn the current state into it; the app's `policy::apply` reads and writes a real etcd.
//!
//! The state the policy gives (a user is a client certificate's CN):
//! - `root` (the owner's administrative identity) and each etcd member's node name hold
//!   etcd's `root` role: the members run zone-etcd's machinery (membership, maintenance,
//!   snapshots, backups, revocations), which needs it;
//! - each other node `N` holds `node:N`: read and write on its own prefix;
//! - each service `S` on each node `N` that may run it is the user `S@N` holding `svc:S`:
//!   read and write on its `read_write` prefixes, read on its `read` prefixes.
//!
//! Invariants: an enforced policy is exclusive: etcd holds exactly its users and roles
//! (anything else, a hand-made or planted user or role, is deleted) and none of its users
//! keeps a password (a client certificate's CN is the only way in); before enforcement
//! only names of these shapes are managed (`root`, `node:*`, `svc:*` roles; the `root`
//! user, the zone's node names, `*@*` users) and anything else an operator made by hand
//! is left alone; the operations come in an order that never leaves a user pointing at a
//! missing role (add and grant first, revoke and delete after), and enabling auth last.

use std::collections::{BTreeMap, BTreeSet};

use super::model::Policy;
use crate::keys::prefix_end;

/// etcd's permission kinds, as its API numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Access {
    Read = 0,
    Write = 1,
    ReadWrite = 2,
}

/// A permission on the keys from `key` up to (not including) `range_end`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Perm {
    pub access: Access,
    pub key: Vec<u8>,
    pub range_end: Vec<u8>,
}

impl Perm {
    /// Whether `other` is on the same key range (etcd keeps one permission a range).
    pub fn same_range(&self, other: &Perm) -> bool {
        (&self.key, &self.range_end) == (&other.key, &other.range_end)
    }

    /// `access` on every key under `prefix`.
    pub fn prefix(access: Access, prefix: &str) -> Perm {
        Perm {
            access,
            key: prefix.as_bytes().to_vec(),
            range_end: prefix_end(prefix.as_bytes()),
        }
    }
}

/// The users and roles of an etcd's auth store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthState {
    pub roles: BTreeMap<String, BTreeSet<Perm>>,
    pub users: BTreeMap<String, BTreeSet<String>>,
    pub enabled: bool,
    /// Of a desired state: whether it is the only one allowed (an enforced policy), so
    /// every other user and role is deleted.
    pub exclusive: bool,
    /// Of a read state: the users etcd says have a password (known only with auth on).
    pub with_password: BTreeSet<String>,
}

/// One change to an auth store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    AddRole(String),
    Grant(String, Perm),
    AddUser(String),
    GrantRole {
        user: String,
        role: String,
    },
    RevokeRole {
        user: String,
        role: String,
    },
    DeleteUser(String),
    Revoke(String, Perm),
    DeleteRole(String),
    /// The user made again without a password: one found with a password the policy did
    /// not make (planted; asked about only while auth is on, so right after it goes on:
    /// the app's `policy::apply`).
    Remake {
        user: String,
        roles: BTreeSet<String>,
    },
    /// `root` found with a password while auth is on (etcd keeps `root` then): a random
    /// one nobody knows replaces it.
    Scramble(String),
    Enable,
}

impl Op {
    /// What the operation takes away that the policy never made: a user or role of a
    /// shape the policy never uses, or a password. `None` for the policy's own business.
    pub fn removes_outsider(&self, zone: &str) -> Option<String> {
        match self {
            Op::DeleteUser(user) if !managed_user(user, zone) => Some(format!("user {user}")),
            Op::DeleteRole(role) if !managed_role(role) => Some(format!("role {role}")),
            Op::Remake { user, .. } | Op::Scramble(user) => Some(format!("password of {user}")),
            _ => None,
        }
    }
}

/// The role name of service `name`.
pub fn service_role(name: &str) -> String {
    format!("svc:{name}")
}

/// The role name of node `name`'s own identity.
pub fn node_role(name: &str) -> String {
    format!("node:{name}")
}

/// The user of service `service`'s instance on `node`.
pub fn service_user(service: &str, node: &str) -> String {
    format!("{service}@{node}")
}

/// The auth state `policy` gives a zone whose etcd members are `members`: auth on
/// when the policy is enforced.
pub fn desired(policy: &Policy, members: &[String]) -> AuthState {
    let mut state = AuthState {
        enabled: policy.enforce,
        exclusive: policy.enforce,
        ..AuthState::default()
    };
    state.roles.insert("root".into(), BTreeSet::new());
    let root = || BTreeSet::from(["root".to_string()]);
    state.users.insert("root".into(), root());
    for member in members {
        state.users.insert(member.clone(), root());
    }
    for node in &policy.nodes {
        let role = node_role(node);
        let own = Perm::prefix(Access::ReadWrite, &policy.node_prefix_of(node));
        state.roles.insert(role.clone(), BTreeSet::from([own]));
        state.users.insert(node.clone(), BTreeSet::from([role]));
    }
    for service in &policy.services {
        let role = service_role(&service.name);
        let perms = service
            .read_write
            .iter()
            .map(|p| Perm::prefix(Access::ReadWrite, p))
            .chain(service.read.iter().map(|p| Perm::prefix(Access::Read, p)))
            .collect();
        state.roles.insert(role.clone(), perms);
        for node in &service.nodes {
            state.users.insert(
                service_user(&service.name, node),
                BTreeSet::from([role.clone()]),
            );
        }
    }
    state
}

/// The auth state of [`desired`] for a zone that revoked the nodes `revoked`: none of
/// them keeps a user (its node identity, its services' instances, a member's root).
pub fn desired_without(policy: &Policy, members: &[String], revoked: &[String]) -> AuthState {
    let kept = |nodes: &[String]| -> Vec<String> {
        nodes
            .iter()
            .filter(|n| !revoked.contains(n))
            .cloned()
            .collect()
    };
    let mut policy = policy.clone();
    policy.nodes = kept(&policy.nodes);
    for service in &mut policy.services {
        service.nodes = kept(&service.nodes);
    }
    desired(&policy, &kept(members))
}

/// `state` with the roles in `stopped` (tenants a quota stopped, issue 69) reading
/// only: each of their ranges keeps its place with read access, so etcd refuses their
/// puts and deletes and still serves their reads. A role not in `state` is left alone.
pub fn read_only(mut state: AuthState, stopped: &[String]) -> AuthState {
    for role in stopped {
        if let Some(perms) = state.roles.get_mut(role) {
            *perms = perms
                .iter()
                .map(|p| Perm {
                    access: Access::Read,
                    ..p.clone()
                })
                .collect();
        }
    }
    state
}

/// Whether a role of this name is the policy's to manage.
fn managed_role(name: &str) -> bool {
    name == "root" || name.starts_with("svc:") || name.starts_with("node:")
}

/// Whether a user of this name in a zone `zone` is the policy's to manage.
fn managed_user(name: &str, zone: &str) -> bool {
    name == "root" || name.contains('@') || name.ends_with(&format!(".{zone}"))
}

/// The operations that turn `current` into `want` for zone `zone`.
pub fn plan(current: &AuthState, want: &AuthState, zone: &str) -> Vec<Op> {
    let mut ops = Vec::new();
    for (role, perms) in &want.roles {
        let have = current.roles.get(role);
        if have.is_none() {
            ops.push(Op::AddRole(role.clone()));
        }
        for perm in perms {
            if !have.is_some_and(|h| h.contains(perm)) {
                ops.push(Op::Grant(role.clone(), perm.clone()));
            }
        }
    }
    for (user, roles) in &want.users {
        let have = current.users.get(user);
        if have.is_none() {
            ops.push(Op::AddUser(user.clone()));
        }
        for role in roles {
            if !have.is_some_and(|h| h.contains(role)) {
                ops.push(Op::GrantRole {
                    user: user.clone(),
                    role: role.clone(),
                });
            }
        }
    }
    for (user, roles) in &want.users {
        if !current.users.contains_key(user) || !current.with_password.contains(user) {
            continue;
        }
        if user == "root" && current.enabled {
            ops.push(Op::Scramble(user.clone()));
        } else {
            ops.push(Op::Remake {
                user: user.clone(),
                roles: roles.clone(),
            });
        }
    }
    for (user, roles) in &current.users {
        if !(want.exclusive || managed_user(user, zone)) {
            continue;
        }
        match want.users.get(user) {
            None => ops.push(Op::DeleteUser(user.clone())),
            Some(wanted) => {
                for role in roles.difference(wanted) {
                    ops.push(Op::RevokeRole {
                        user: user.clone(),
                        role: role.clone(),
                    });
                }
            }
        }
    }
    for (role, perms) in &current.roles {
        // etcd's root role lists its own all-keys grant: never the policy's to change.
        if !(want.exclusive || managed_role(role)) || role == "root" {
            continue;
        }
        match want.roles.get(role) {
            None => ops.push(Op::DeleteRole(role.clone())),
            Some(wanted) => {
                // etcd keeps one permission per key range: a grant on a range the role
                // holds with another access replaces it there, and a revoke takes the
                // range whatever its access, so a range whose access changes is only
                // granted (a revoke after the grant would leave it with none).
                for perm in perms.difference(wanted) {
                    if !wanted.iter().any(|w| w.same_range(perm)) {
                        ops.push(Op::Revoke(role.clone(), perm.clone()));
                    }
                }
            }
        }
    }
    if want.enabled && !current.enabled {
        ops.push(Op::Enable);
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(mut value: serde_json::Value) -> Policy {
        let members = ["node1.example.zone".to_string()];
        value["enforce"] = json!(true);
        Policy::parse(&value, "access", "example.zone", &members).unwrap()
    }

    #[test]
    fn a_revoked_node_keeps_no_user_and_an_unenforced_policy_leaves_auth_off() {
        let members = ["node1.example.zone".to_string()];
        let p = policy(
            json!({"nodes": ["nas.example.zone", "pi.example.zone"], "service": [
            {"name": "photos", "nodes": ["nas.example.zone", "pi.example.zone"], "read_write": ["apps/photos/"]}]}),
        );
        let want = desired_without(&p, &members, &["nas.example.zone".to_string()]);
        let users: Vec<&str> = want.users.keys().map(String::as_str).collect();
        assert_eq!(
            users,
            [
                "node1.example.zone",
                "photos@pi.example.zone",
                "pi.example.zone",
                "root"
            ]
        );
        // The role stays: the service runs on another node.
        assert!(want.roles.contains_key("svc:photos"));
        assert!(want.enabled);
        let mut open = p.clone();
        open.enforce = false;
        assert!(!desired(&open, &members).enabled);
        assert!(!plan(
            &AuthState::default(),
            &desired(&open, &members),
            "example.zone"
        )
        .contains(&Op::Enable));
    }

    #[test]
    fn a_policy_becomes_users_and_roles_and_a_change_only_what_changed() {
        let members = ["node1.example.zone".to_string()];
        let v1 = policy(json!({"nodes": ["nas.example.zone"], "service": [
            {"name": "photos", "nodes": ["nas.example.zone", "node1.example.zone"], "read_write": ["apps/photos/"], "read": ["apps/shared/"]},
            {"name": "music", "nodes": ["nas.example.zone"], "read_write": ["apps/music/"]}]}));
        let want = desired(&v1, &members);
        assert_eq!(
            want.users["photos@nas.example.zone"],
            BTreeSet::from(["svc:photos".to_string()])
        );
        assert_eq!(
            want.users["node1.example.zone"],
            BTreeSet::from(["root".to_string()])
        );
        assert_eq!(
            want.roles["node:nas.example.zone"],
            BTreeSet::from([Perm::prefix(Access::ReadWrite, "nodes/nas.example.zone/")])
        );
        assert_eq!(want.roles["svc:photos"].len(), 2);
        // From nothing: every role, user and grant, and auth enabled last.
        let ops = plan(&AuthState::default(), &want, "example.zone");
        assert_eq!(ops.last(), Some(&Op::Enable));
        let first_user = ops
            .iter()
            .position(|o| matches!(o, Op::AddUser(_)))
            .unwrap();
        let last_grant = ops
            .iter()
            .rposition(|o| matches!(o, Op::Grant(..)))
            .unwrap();
        assert!(last_grant < first_user, "{ops:?}");
        // Applied, nothing is left to do.
        assert!(plan(&want, &want, "example.zone").is_empty());

        // music gone, photos' read grant moved: only those change; a hand-made user and
        // role go too (an enforced policy is exclusive), and are named as outsiders.
        let v2 = policy(json!({"nodes": ["nas.example.zone"], "service": [
            {"name": "photos", "nodes": ["nas.example.zone", "node1.example.zone"], "read_write": ["apps/photos/"], "read": ["apps/common/"]}]}));
        let mut current = want.clone();
        current
            .users
            .insert("alice".into(), BTreeSet::from(["reader".to_string()]));
        current.roles.insert("reader".into(), BTreeSet::new());
        let ops = plan(&current, &desired(&v2, &members), "example.zone");
        assert_eq!(
            ops,
            vec![
                Op::Grant(
                    "svc:photos".into(),
                    Perm::prefix(Access::Read, "apps/common/")
                ),
                Op::DeleteUser("alice".into()),
                Op::DeleteUser("music@nas.example.zone".into()),
                Op::DeleteRole("reader".into()),
                Op::DeleteRole("svc:music".into()),
                Op::Revoke(
                    "svc:photos".into(),
                    Perm::prefix(Access::Read, "apps/shared/")
                ),
            ]
        );
        let outsiders: Vec<String> = ops
            .iter()
            .filter_map(|op| op.removes_outsider("example.zone"))
            .collect();
        assert_eq!(outsiders, ["user alice", "role reader"]);
        // Before enforcement (the first steps of a move) what an operator made stays.
        let mut open = v2.clone();
        open.enforce = false;
        let ops = plan(&current, &desired(&open, &members), "example.zone");
        assert!(
            !ops.contains(&Op::DeleteUser("alice".into()))
                && !ops.contains(&Op::DeleteRole("reader".into())),
            "{ops:?}"
        );
    }

    /// A tenant stopped by its quota reads every range it had and writes none; the plan to
    /// it and back only grants.
    #[test]
    fn a_stopped_tenant_reads_what_it_had_and_writes_nothing() {
        let members = ["node1.example.zone".to_string()];
        let p = policy(json!({"nodes": ["nas.example.zone"], "service": [
            {"name": "photos", "nodes": ["node1.example.zone"], "read_write": ["apps/photos/"], "read": ["apps/shared/"]}]}));
        let want = desired(&p, &members);
        let stopped = read_only(
            want.clone(),
            &[
                "svc:photos".into(),
                "node:nas.example.zone".into(),
                "svc:gone".into(),
            ],
        );
        assert_eq!(
            stopped.roles["svc:photos"],
            BTreeSet::from([
                Perm::prefix(Access::Read, "apps/photos/"),
                Perm::prefix(Access::Read, "apps/shared/")
            ])
        );
        assert_eq!(
            stopped.roles["node:nas.example.zone"],
            BTreeSet::from([Perm::prefix(Access::Read, "nodes/nas.example.zone/")])
        );
        assert_eq!(stopped.users, want.users);
        let ops = plan(&want, &stopped, "example.zone");
        assert!(
            ops.iter().all(|o| matches!(o, Op::Grant(..))) && ops.len() == 2,
            "{ops:?}"
        );
        assert_eq!(plan(&stopped, &want, "example.zone").len(), 2);
    }

    /// A prefix whose access changes (read and write to read: a published change, or a
    /// tenant stopped by its quota) is granted anew and never revoked: etcd keeps one
    /// permission a key range, replaced by the grant, and a revoke after it would take the
    /// range whatever its access (seen: the service then read nothing until the next
    /// apply).
    #[test]
    fn a_range_whose_access_changes_is_granted_anew_and_never_revoked() {
        let members = ["node1.example.zone".to_string()];
        let rw = policy(json!({"nodes": [], "service": [
            {"name": "photos", "nodes": ["node1.example.zone"], "read_write": ["apps/photos/"]}]}));
        let ro = policy(json!({"nodes": [], "service": [
            {"name": "photos", "nodes": ["node1.example.zone"], "read": ["apps/photos/"]}]}));
        let ops = plan(
            &desired(&rw, &members),
            &desired(&ro, &members),
            "example.zone",
        );
        assert_eq!(
            ops,
            [Op::Grant(
                "svc:photos".into(),
                Perm::prefix(Access::Read, "apps/photos/")
            )]
        );
        let back = plan(
            &desired(&ro, &members),
            &desired(&rw, &members),
            "example.zone",
        );
        assert_eq!(
            back,
            [Op::Grant(
                "svc:photos".into(),
                Perm::prefix(Access::ReadWrite, "apps/photos/")
            )]
        );
    }

    #[test]
    fn a_planted_password_is_cleared_and_a_planted_root_user_deleted() {
        let members = ["node1.example.zone".to_string()];
        let p = policy(json!({"nodes": ["nas.example.zone"], "service": [
            {"name": "photos", "nodes": ["nas.example.zone"], "read_write": ["apps/photos/"]}]}));
        let want = desired(&p, &members);
        let mut current = want.clone();
        current.enabled = true;
        // eve: a password user holding root, made before enforcement; root's and
        // photos@nas's passwords set by hand.
        current
            .users
            .insert("eve".into(), BTreeSet::from(["root".to_string()]));
        current.with_password = BTreeSet::from([
            "eve".into(),
            "root".into(),
            "photos@nas.example.zone".into(),
        ]);
        let ops = plan(&current, &want, "example.zone");
        assert_eq!(
            ops,
            vec![
                Op::Remake {
                    user: "photos@nas.example.zone".into(),
                    roles: BTreeSet::from(["svc:photos".to_string()]),
                },
                Op::Scramble("root".into()),
                Op::DeleteUser("eve".into()),
            ]
        );
        let outsiders: Vec<String> = ops
            .iter()
            .filter_map(|op| op.removes_outsider("example.zone"))
            .collect();
        assert_eq!(
            outsiders,
            [
                "password of photos@nas.example.zone",
                "password of root",
                "user eve"
            ]
        );
        // Before auth goes on nothing can tell a password: no user is made again then
        // (etcd would rebuild its permission cache over every user thrice per user: 8
        // minutes at 3,300 users); auth goes on last, and the apply asks every user
        // right after (super::apply).
        let mut off = want.clone();
        off.enabled = false;
        let ops = plan(&off, &want, "example.zone");
        assert_eq!(ops, [Op::Enable]);
        assert_eq!(ops.last(), Some(&Op::Enable));
        assert!(ops
            .iter()
            .all(|op| op.removes_outsider("example.zone").is_none()));
        // Once on, nothing more.
        assert!(plan(&want, &want, "example.zone").is_empty());
    }
}
