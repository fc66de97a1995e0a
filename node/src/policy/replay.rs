//! What an etcd's auth store holds after a plan's operations ran on it, worked out
//! without asking etcd: a keeper plans its next apply for a publish from it
//! (`zone_agent::access`) instead of reading every role and user again.
//!
//! Pure. Mirrors etcd's own rules: deleting a role takes it from every user that holds
//! it; [`Op::Remake`] leaves the user with exactly its roles; enabling turns auth on.
//! Passwords are not part of the result (`with_password` is emptied): a keeper asks
//! about them, it never assumes.

use zone_model::policy::rbac::{plan, AuthState, Op};

/// `state` after `ops` ran on it, in their order.
pub fn after(state: &AuthState, ops: &[Op]) -> AuthState {
    let mut state = state.clone();
    state.with_password.clear();
    state.exclusive = false;
    for op in ops {
        match op {
            Op::AddRole(role) => {
                state.roles.entry(role.clone()).or_default();
            }
            // etcd keeps one permission a key range: a grant replaces the range's access,
            // a revoke takes the range whatever its access.
            Op::Grant(role, perm) => {
                let perms = state.roles.entry(role.clone()).or_default();
                perms.retain(|p| !p.same_range(perm));
                perms.insert(perm.clone());
            }
            Op::AddUser(user) => {
                state.users.entry(user.clone()).or_default();
            }
            Op::GrantRole { user, role } => {
                state
                    .users
                    .entry(user.clone())
                    .or_default()
                    .insert(role.clone());
            }
            Op::RevokeRole { user, role } => {
                if let Some(roles) = state.users.get_mut(user) {
                    roles.remove(role);
                }
            }
            Op::DeleteUser(user) => {
                state.users.remove(user);
            }
            Op::Revoke(role, perm) => {
                if let Some(perms) = state.roles.get_mut(role) {
                    perms.retain(|p| !p.same_range(perm));
                }
            }
            Op::DeleteRole(role) => {
                state.roles.remove(role);
                for roles in state.users.values_mut() {
                    roles.remove(role);
                }
            }
            Op::Remake { user, roles } => {
                state.users.insert(user.clone(), roles.clone());
            }
            Op::Scramble(_) => {}
            Op::Enable => state.enabled = true,
        }
    }
    state
}

/// The names of `state`'s users and roles, as [`super::read::names`] reads them from
/// etcd (each sorted).
pub fn names(state: &AuthState) -> (Vec<String>, Vec<String>) {
    (
        state.users.keys().cloned().collect(),
        state.roles.keys().cloned().collect(),
    )
}

/// Whether a plan from `last` gives what a full read would: etcd's names `now` are those
/// of `last` (nothing made or deleted since), or those `want`'s plan from `last` gives
/// (another member's keeper applied it first).
pub fn fits(
    last: &AuthState,
    now: &(Vec<String>, Vec<String>),
    want: &AuthState,
    zone: &str,
) -> bool {
    names(last) == *now || names(&after(last, &plan(last, want, zone))) == *now
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use serde_json::json;
    use zone_model::policy::rbac::desired;
    use zone_model::policy::Policy;

    fn policy(value: serde_json::Value) -> Policy {
        let members = ["node1.example.zone".to_string()];
        Policy::parse(&value, "access", "example.zone", &members).unwrap()
    }

    /// From any state, the plan's operations replayed give the state planned: so a plan
    /// made from the replayed state of the last apply is the one a full read would give.
    #[test]
    fn a_plan_replayed_is_the_state_it_aims_at() {
        let members = ["node1.example.zone".to_string()];
        let v1 = policy(
            json!({"enforce": true, "nodes": ["nas.example.zone"], "service": [
            {"name": "photos", "nodes": ["nas.example.zone", "node1.example.zone"], "read_write": ["apps/photos/"], "read": ["apps/shared/"]},
            {"name": "music", "nodes": ["nas.example.zone"], "read_write": ["apps/music/"]}]}),
        );
        let v2 = policy(
            json!({"enforce": true, "nodes": ["nas.example.zone"], "service": [
            {"name": "photos", "nodes": ["nas.example.zone"], "read_write": ["apps/photos/"], "read": ["apps/common/"]}]}),
        );
        let mut planted = desired(&v1, &members);
        planted.enabled = false;
        planted.exclusive = false;
        planted
            .users
            .insert("eve".into(), BTreeSet::from(["backdoor".to_string()]));
        planted.roles.insert("backdoor".into(), BTreeSet::new());
        // A user holding a role its plan deletes: etcd takes the role from it.
        planted.users.insert(
            "music@nas.example.zone".into(),
            BTreeSet::from(["svc:photos".to_string()]),
        );
        // A prefix that turns from read and write to read only, and back (etcd keeps one
        // permission a key range).
        let v3 = policy(
            json!({"enforce": true, "nodes": ["nas.example.zone"], "service": [
            {"name": "photos", "nodes": ["nas.example.zone"], "read": ["apps/photos/", "apps/common/"]}]}),
        );
        for (from, to) in [
            (AuthState::default(), desired(&v1, &members)),
            (desired(&v1, &members), desired(&v2, &members)),
            (planted.clone(), desired(&v2, &members)),
            (planted, desired(&v1, &members)),
            (desired(&v2, &members), desired(&v3, &members)),
            (desired(&v3, &members), desired(&v2, &members)),
        ] {
            let ops = plan(&from, &to, "example.zone");
            let mut got = after(&from, &ops);
            got.exclusive = to.exclusive;
            assert_eq!(got, to, "{ops:?}");
            assert!(plan(&got, &to, "example.zone").is_empty());
        }
        let (users, roles) = names(&desired(&v2, &members));
        assert_eq!(roles, ["node:nas.example.zone", "root", "svc:photos"]);
        assert_eq!(users.len(), 4);
    }
}
