//! What a member's signer may issue to a node: who asks ([`requester`]) and what it may
//! have ([`decide`]), pure, for the identity endpoint ([`super::endpoint`]) and for a
//! member signing for itself ([`super::request`]) alike.
//!
//! Invariants (deny by default):
//! - a node is known by its node CA's name only, and only when its leaf names it too;
//! - nothing is issued in a zone without `[access]`;
//! - a service identity `<service>@<node>` only when the policy names `node` for that
//!   service; the node's own identity (etcd user: its node name) only for a node the
//!   policy lists in `access.nodes`, or any node of the zone under `nodes = ["*"]`
//!   (members hold signers and issue their own);
//! - never `root`, an etcd member's name, or any user for a name that is not a DNS label;
//! - a refusal is one line that starts with `refused:` and names the identity asked for
//!   and the rule (the `access.*` key) that refuses it.
//!
//! Issuing under a policy the members do not enforce yet is allowed on purpose: a zone
//! moving over gives every service its identity before the owner sets `enforce`
//! (docs/design/least-privilege.md, migration step 2), and until then every certificate
//! of the zone opens the client port anyway.

use rustls::pki_types::CertificateDer;
use zone_pki::{CertInfo, Host};

use zone_model::config::check_dns_name;
use zone_model::policy::rbac::service_user;
use zone_model::policy::Policy;

/// How long an identity from a signer lives (renewed like leaves).
pub const IDENTITY_DAYS: i64 = 30;

/// The most of a refused name repeated in a refusal.
const SHOWN_NAME: usize = 64;

/// The etcd user `node` may have for `name` (a service; `None` or empty: the node's own
/// identity) under `policy`, in a zone whose etcd members are `members`; or the refusal.
pub fn decide(
    policy: &Policy,
    members: &[String],
    zone: &str,
    node: &str,
    name: Option<&str>,
) -> Result<String, String> {
    if !policy.present {
        return Err(
            "refused: the zone has no [access] policy, so its signers issue no identities".into(),
        );
    }
    if check_dns_name(node).is_err() {
        return Err(format!(
            "refused: {} is not a node name of the zone",
            shown(node)
        ));
    }
    let user = match name.filter(|n| !n.is_empty()) {
        None => own_identity(policy, members, node, zone)?,
        Some(service) => service_identity(policy, node, service)?,
    };
    // The policy's own checks keep these out; this is the last word, whatever it says.
    if user == "root" || members.contains(&user) {
        return Err(format!("refused: {user} is never issued by a signer"));
    }
    Ok(user)
}

/// The node a client chain (verified against `roots` at the handshake) proves: the
/// subject CN of the node CA that signed the leaf, itself signed by one of `roots` (not
/// merely the certificate after the leaf: a chain may carry others), and the leaf must
/// name it as a DNS SAN. Name constraints do not cover a CN: without that SAN, a node CA
/// could say any name.
pub fn requester(chain: &[CertificateDer<'_>], roots: &[CertInfo]) -> Result<String, String> {
    let leaf = chain
        .first()
        .and_then(|der| CertInfo::parse(der).ok())
        .ok_or("no client certificate")?;
    let node_ca = chain[1..]
        .iter()
        .filter_map(|der| CertInfo::parse(der).ok())
        .find(|ca| ca.is_ca && leaf.is_signed_by(ca) && roots.iter().any(|r| ca.is_signed_by(r)))
        .ok_or("the client certificate comes with no node CA of the zone that signed it")?;
    let node = node_ca.subject_cn;
    check_dns_name(&node).map_err(|_| format!("the node CA's name {node:?} is not a node name"))?;
    if !leaf.sans.contains(&Host::Dns(node.clone())) {
        return Err(format!(
            "the client certificate {:?} does not name its node {node} (its node CA) as a DNS name",
            leaf.subject_cn
        ));
    }
    Ok(node)
}

fn own_identity(
    policy: &Policy,
    members: &[String],
    node: &str,
    zone: &str,
) -> Result<String, String> {
    if members.iter().any(|m| m == node) {
        return Err(format!(
            "refused: {node} is an etcd member: its own identity comes from its own signer, never from another member"
        ));
    }
    if !policy.gives_own_identity(node, zone) {
        return Err(format!(
            "refused: the policy gives node {node} no identity of its own (access.nodes: {})",
            listed(&policy.nodes)
        ));
    }
    Ok(node.to_string())
}

fn service_identity(policy: &Policy, node: &str, service: &str) -> Result<String, String> {
    if !is_label(service) {
        return Err(format!(
            "refused: {} is not a service name (a DNS label, as access.service names are)",
            shown(service)
        ));
    }
    let Some(entry) = policy.services.iter().find(|s| s.name == service) else {
        let names: Vec<String> = policy.services.iter().map(|s| s.name.clone()).collect();
        return Err(format!(
            "refused: the policy has no service \"{service}\" (access.service names: {})",
            listed(&names)
        ));
    };
    if !entry.nodes.iter().any(|n| n == node) {
        return Err(format!(
            "refused: the policy gives node {node} no service \"{service}\" (access.service \"{service}\" runs on: {})",
            listed(&entry.nodes)
        ));
    }
    Ok(service_user(service, node))
}

/// A DNS label: what a policy's service names are (see `policy::rules`).
fn is_label(name: &str) -> bool {
    !name.contains('.') && check_dns_name(name).is_ok()
}

/// A name as a refusal repeats it: quoted and escaped, cut short.
fn shown(name: &str) -> String {
    let cut: String = name.chars().take(SHOWN_NAME).collect();
    format!("{cut:?}")
}

fn listed(names: &[String]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NAS: &str = "nas.example.zone";
    const TV: &str = "tv.example.zone";
    const M1: &str = "node1.example.zone";
    const M2: &str = "node2.example.zone";
    const Z: &str = "example.zone";

    fn members() -> Vec<String> {
        vec![M1.to_string(), M2.to_string()]
    }

    fn policy() -> Policy {
        Policy::parse(
            &json!({"nodes": [NAS, TV], "service": [
                {"name": "photos", "nodes": [NAS, M1], "read_write": ["apps/photos/"]},
                {"name": "music", "nodes": [M2], "read_write": ["apps/music/"]}]}),
            "access",
            "example.zone",
            &members(),
        )
        .unwrap()
    }

    #[test]
    fn a_service_is_issued_only_on_the_nodes_the_policy_names_for_it() {
        let (p, m) = (policy(), members());
        assert_eq!(
            decide(&p, &m, Z, NAS, Some("photos")),
            Ok("photos@nas.example.zone".into())
        );
        assert_eq!(
            decide(&p, &m, Z, M1, Some("photos")),
            Ok("photos@node1.example.zone".into())
        );
        assert_eq!(
            decide(&p, &m, Z, NAS, Some("music")),
            Err("refused: the policy gives node nas.example.zone no service \"music\" (access.service \"music\" runs on: node2.example.zone)".into())
        );
        assert_eq!(
            decide(&p, &m, Z, TV, Some("photos")).unwrap_err(),
            "refused: the policy gives node tv.example.zone no service \"photos\" (access.service \"photos\" runs on: nas.example.zone, node1.example.zone)"
        );
        assert_eq!(
            decide(&p, &m, Z, NAS, Some("videos")).unwrap_err(),
            "refused: the policy has no service \"videos\" (access.service names: photos, music)"
        );
        // A node the zone does not know is refused like any other.
        assert!(decide(&p, &m, Z, "stranger.example.zone", Some("photos"))
            .unwrap_err()
            .contains("no service \"photos\""));
    }

    #[test]
    fn a_node_gets_its_own_identity_only_when_listed_and_never_a_member() {
        let (p, m) = (policy(), members());
        assert_eq!(decide(&p, &m, Z, NAS, None), Ok(NAS.into()));
        assert_eq!(decide(&p, &m, Z, TV, Some("")), Ok(TV.into()));
        assert!(decide(&p, &m, Z, M1, None)
            .unwrap_err()
            .starts_with("refused: node1.example.zone is an etcd member"));
        assert_eq!(
            decide(&p, &m, Z, "stranger.example.zone", None).unwrap_err(),
            "refused: the policy gives node stranger.example.zone no identity of its own (access.nodes: nas.example.zone, tv.example.zone)"
        );
    }

    #[test]
    fn never_root_a_member_or_a_name_that_is_not_a_label() {
        let (p, m) = (policy(), members());
        for bad in [
            "root",
            "photos@x",
            "photos.evil",
            "Photos",
            "-x",
            "a b",
            "../x",
            "x\ny",
        ] {
            let refusal = decide(&p, &m, Z, NAS, Some(bad)).unwrap_err();
            assert!(refusal.starts_with("refused:"), "{bad:?}: {refusal}");
            assert!(!refusal.contains('\n'), "{refusal}");
        }
        assert!(decide(&p, &m, Z, NAS, Some("root"))
            .unwrap_err()
            .contains("no service \"root\""));
        // A node name that is no DNS name (a forged CN) is refused before anything.
        assert!(decide(&p, &m, Z, "root", None).is_err());
        assert!(decide(&p, &m, Z, "Nas.example.zone", Some("photos"))
            .unwrap_err()
            .contains("not a node name"));
        assert!(decide(&p, &m, Z, "", None).is_err());
        // A long name is cut short in the refusal.
        let long = "a".repeat(5000);
        assert!(decide(&p, &m, Z, NAS, Some(&long)).unwrap_err().len() < 200);
    }

    #[test]
    fn root_is_never_issued_whatever_the_policy_says() {
        // A policy that skipped its checks (they refuse a node "root").
        let forged = Policy {
            present: true,
            nodes: vec!["root".into()],
            ..Policy::default()
        };
        let refusal = decide(&forged, &members(), Z, "root", None).unwrap_err();
        assert_eq!(refusal, "refused: root is never issued by a signer");
    }

    #[test]
    fn by_default_any_node_of_the_zone_gets_its_own_identity_and_no_service() {
        let p = Policy::by_default();
        let m = members();
        assert_eq!(decide(&p, &m, Z, NAS, None), Ok(NAS.into()));
        assert_eq!(
            decide(&p, &m, Z, "a.b.example.zone", None),
            Ok("a.b.example.zone".into())
        );
        // Not a node of this zone, not a member, not a service.
        for outside in ["nas.other.zone", "example.zone", "xexample.zone"] {
            assert!(decide(&p, &m, Z, outside, None).is_err(), "{outside}");
        }
        assert!(decide(&p, &m, Z, M1, None)
            .unwrap_err()
            .contains("is an etcd member"));
        assert!(decide(&p, &m, Z, NAS, Some("photos"))
            .unwrap_err()
            .contains("no service \"photos\""));
    }

    #[test]
    fn nothing_without_a_policy() {
        let none = Policy::default();
        let refusal = decide(&none, &members(), Z, NAS, Some("photos")).unwrap_err();
        assert!(refusal.contains("no [access] policy"), "{refusal}");
        assert!(decide(&none, &members(), Z, NAS, None).is_err());
    }
}
