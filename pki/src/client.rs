//! The client side of a zone under least privilege: who may open the client port.
//!
//! - The *client root* (`<zone> client CA`) is a second self-signed root the owner holds
//!   offline beside the zone root. A member's client port trusts it alone, so no node CA
//!   (issued by the zone root) can mint a client identity at all, whatever its CN: etcd
//!   maps a certificate to a user by CN only, and name constraints never cover the CN.
//! - Each etcd member holds a *signer*: a CA the client root issues. With it the member
//!   issues identities (its own, its `--client-cert-file`, those of the services the
//!   owner's policy lets a node run) without the owner's key.
//! - A *branch* is a `pathlen:0` CA a member's signer issues for one node (`<node>
//!   identities by <member>`): it signs that node's identities, so revoking the node
//!   lists its branches on the CRL, not each identity, and the CRL grows with revoked
//!   nodes rather than with identities. Client roots made since branches exist are
//!   `pathlen:2` and their signers `pathlen:1`; an older signer (`pathlen:0`, under a
//!   `pathlen:1` root) signs identities itself, as before.
//! - An *identity* is a client leaf: CN the etcd user (`root`, a node name,
//!   `<service>@<node>`), no SAN, EKU clientAuth only.
//!
//! Invariants: nothing the client root or a signer issues is trusted by a server
//! verifier or a peer port (they trust the zone root only), so a signer cannot
//! impersonate a member; an identity's CN comes from the issuer's caller, never from a
//! request (only a request's public key is certified).

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyUsagePurpose,
};
use time::OffsetDateTime;
use zone_io::Result;

use crate::authority::{with_serial, Authority, Issued};
use crate::inspect::CertInfo;
use crate::key::{new_key, sign_error};
use crate::profile::{base, CLIENT_CA_DAYS, LEAF_DAYS, SIGNER_DAYS};
use crate::request::NodeRequest;

/// The client root's subject CN for `zone`.
pub fn client_root_name(zone: &str) -> String {
    format!("{zone} client CA")
}

/// The subject CN of `node_name`'s signer.
pub fn signer_name(node_name: &str) -> String {
    format!("{node_name} signer")
}

/// The member a signer was issued to (from its CN), or `None` for another certificate.
pub fn signer_of(info: &CertInfo) -> Option<&str> {
    info.subject_cn
        .strip_suffix(" signer")
        .filter(|member| info.is_ca && !member.is_empty())
}

/// The subject CN of the branch `member`'s signer issues for `node_name`.
pub fn branch_name(node_name: &str, member: &str) -> String {
    format!("{node_name} identities by {member}")
}

/// How long a branch lives: it must outlive every identity it signs, so a member makes a
/// new one once fewer days than an identity's lifetime (and a margin) are left.
pub const BRANCH_DAYS: i64 = 180;

/// The client root: a self-signed CA that only ever issues signers (`pathlen:2`: a
/// signer, a branch, then the identity).
pub fn client_root(zone: &str, now: OffsetDateTime) -> CertificateParams {
    let mut params = base(client_root_name(zone), zone, now, CLIENT_CA_DAYS);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(2));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params
}

/// A member's signer: `pathlen:1` (its branches, then identities), client identities only.
pub fn signer(node_name: &str, zone: &str, now: OffsetDateTime) -> CertificateParams {
    let mut params = base(signer_name(node_name), zone, now, SIGNER_DAYS);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(1));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    params
}

/// The branch `member`'s signer issues for `node_name`: `pathlen:0`, client identities
/// of that node only (the signer names the users; a branch is never handed out).
pub fn branch(node_name: &str, member: &str, zone: &str, now: OffsetDateTime) -> CertificateParams {
    let mut params = base(branch_name(node_name, member), zone, now, BRANCH_DAYS);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    params
}

/// Whether a signer may issue branches: `pathlen:1` or more under a root that lets a
/// branch follow it (`pathlen:2` or more, or none). Go's verifier (so etcd) counts every
/// CA's pathlen, the root's too, so a branch under an older root would be refused.
pub fn issues_branches(signer: &CertInfo, root: &CertInfo) -> bool {
    let allows = |c: &CertInfo, below: u32| c.path_len.is_none_or(|n| n >= below);
    signer.is_ca && root.is_ca && allows(signer, 1) && allows(root, 2)
}

/// An identity: CN `user` (the etcd user), no SAN, clientAuth only.
pub fn identity(user: &str, zone: &str, now: OffsetDateTime, days: i64) -> CertificateParams {
    let mut params = base(user.to_string(), zone, now, days);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    params
}

/// What a gateway certificate's OU says before its user.
pub const GATEWAY_OF: &str = "gateway of ";

/// The user a gateway certificate was issued for (its OU), or `None` for another.
pub fn gateway_user(info: &CertInfo) -> Option<&str> {
    if !info.subject_cn.is_empty() {
        return None;
    }
    info.subject_ou
        .strip_prefix(GATEWAY_OF)
        .filter(|u| !u.is_empty())
}

/// The profile of a gateway certificate for `user`: a client leaf *without* a CN. etcd's
/// JSON gateway refuses any client certificate with one once auth is on (its `/v3/`
/// handler answers 400 "CommonName of client sending a request against gateway will be
/// ignored"); without one the certificate names no etcd user (gRPC answers "user name is
/// empty"): it only passes the handshake, and the user's password gives the grant. The
/// user it was issued for is named in the subject's OU, for people reading it.
pub fn gateway_certificate(
    user: &str,
    zone: &str,
    now: OffsetDateTime,
    days: i64,
) -> CertificateParams {
    let mut params = identity(user, zone, now, days);
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, zone);
    dn.push(
        DnType::OrganizationalUnitName,
        format!("{GATEWAY_OF}{user}"),
    );
    params.distinguished_name = dn;
    params
}

impl Authority {
    /// Makes a new client root for `zone`.
    pub fn new_client_root(zone: &str) -> Result<Authority> {
        let params = with_serial(client_root(zone, OffsetDateTime::now_utc()))?;
        let key = new_key()?;
        let cert = params.self_signed(&key).map_err(sign_error)?;
        Authority::with_key(&cert.pem(), key)
    }

    /// Issues `node_name` its signer, with a fresh key (this authority: the client root).
    pub fn issue_signer(&self, node_name: &str, zone: &str) -> Result<Authority> {
        let issued = self.issue(signer(node_name, zone, OffsetDateTime::now_utc()))?;
        Authority::from_pem(&issued.chain_pem, &issued.key_pem)
    }

    /// Issues `node_name` its signer for the public key of `request` (a member activated
    /// by request: its node key is its signer's key too, so no key travels). Returns the
    /// chain PEM: the signer, then this authority's chain below the root.
    pub fn issue_signer_for(
        &self,
        node_name: &str,
        zone: &str,
        request: &NodeRequest,
    ) -> Result<String> {
        let params = with_serial(signer(node_name, zone, OffsetDateTime::now_utc()))?;
        let cert = params
            .signed_by(request.public_key(), self.issuer())
            .map_err(sign_error)?;
        Ok(format!("{}{}", cert.pem(), self.chain_below_root()))
    }

    /// Issues `member`'s branch for `node_name` with a fresh key (this authority: the
    /// member's signer; see [`issues_branches`]).
    pub fn issue_branch(&self, node_name: &str, member: &str, zone: &str) -> Result<Authority> {
        let issued = self.issue(branch(node_name, member, zone, OffsetDateTime::now_utc()))?;
        Authority::from_pem(&issued.chain_pem, &issued.key_pem)
    }

    /// Issues the identity `user` with a fresh key (this authority: a signer, or the
    /// client root for the owner's own identity).
    pub fn issue_identity(&self, user: &str, zone: &str) -> Result<Issued> {
        self.issue(identity(user, zone, OffsetDateTime::now_utc(), LEAF_DAYS))
    }

    /// Issues `user` a gateway certificate ([`gateway_certificate`]) with a fresh key:
    /// what a member's etcd dials its own gateway with (`--client-cert-file`), so that a
    /// gateway request without a token is nobody, never the member.
    pub fn issue_gateway(&self, user: &str, zone: &str) -> Result<Issued> {
        self.issue(gateway_certificate(
            user,
            zone,
            OffsetDateTime::now_utc(),
            LEAF_DAYS,
        ))
    }

    /// Issues the identity `user` for the public key of `request` (whose own CN is
    /// ignored). Returns the chain PEM: the identity, then this signer.
    pub fn issue_identity_for(
        &self,
        user: &str,
        zone: &str,
        request: &NodeRequest,
        days: i64,
    ) -> Result<String> {
        self.issue_for(
            identity(user, zone, OffsetDateTime::now_utc(), days),
            request,
        )
    }

    /// Issues `user` a gateway certificate ([`gateway_certificate`]) for the public key of
    /// `request`. Returns the chain PEM: the certificate, then this signer.
    pub fn issue_gateway_for(
        &self,
        user: &str,
        zone: &str,
        request: &NodeRequest,
        days: i64,
    ) -> Result<String> {
        let params = gateway_certificate(user, zone, OffsetDateTime::now_utc(), days);
        self.issue_for(params, request)
    }

    /// Signs `params` (a fresh serial given) for the public key of `request`: the chain
    /// PEM, the certificate then this authority's chain below the root.
    fn issue_for(&self, params: CertificateParams, request: &NodeRequest) -> Result<String> {
        let cert = with_serial(params)?
            .signed_by(request.public_key(), self.issuer())
            .map_err(sign_error)?;
        Ok(format!("{}{}", cert.pem(), self.chain_below_root()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::chains_to;
    use crate::request::new_request;
    use rcgen::PublicKeyData;

    #[test]
    fn an_identity_chains_to_the_client_root_through_a_signer_and_names_only_its_user() {
        let root = Authority::new_client_root("example.zone").unwrap();
        let signer = root
            .issue_signer("node1.example.zone", "example.zone")
            .unwrap();
        let info = CertInfo::parse_pem(signer.chain_pem()).unwrap();
        assert!(info.is_ca);
        assert_eq!(info.path_len, Some(1));
        assert_eq!(info.subject_cn, "node1.example.zone signer");
        assert!(info.is_signed_by(&CertInfo::parse_pem(root.chain_pem()).unwrap()));

        let request = new_request("root").unwrap();
        let parsed = NodeRequest::from_pem(&request.csr_pem).unwrap();
        let chain = signer
            .issue_identity_for("photos@nas.example.zone", "example.zone", &parsed, 30)
            .unwrap();
        let leaf = CertInfo::parse_pem(&chain).unwrap();
        // The CN is the issuer's choice, never the request's.
        assert_eq!(leaf.subject_cn, "photos@nas.example.zone");
        assert!(leaf.sans.is_empty());
        assert!(leaf.client_auth && !leaf.server_auth && !leaf.is_ca);
        assert!(leaf.is_signed_by(&info));
        assert_eq!(leaf.public_key_bits(), parsed.public_key().der_bytes());
        // The chain carries the signer after the identity (the root stays out).
        assert_eq!(crate::encoding::parse_cert_chain(&chain).unwrap().len(), 2);

        // A gateway certificate names no user: no CN at all.
        let gateway = signer
            .issue_gateway_for("photos@nas.example.zone", "example.zone", &parsed, 30)
            .unwrap();
        let leaf = CertInfo::parse_pem(&gateway).unwrap();
        assert_eq!(leaf.subject_cn, "");
        assert_eq!(gateway_user(&leaf), Some("photos@nas.example.zone"));
        assert!(leaf.client_auth && !leaf.server_auth && !leaf.is_ca);
        assert!(leaf.is_signed_by(&info));
        assert_eq!(leaf.public_key_bits(), parsed.public_key().der_bytes());
    }

    #[test]
    fn a_branch_signs_one_nodes_identities_and_only_a_newer_root_allows_it() {
        let zone = "example.zone";
        let root = Authority::new_client_root(zone).unwrap();
        let root_info = CertInfo::parse(root.cert_der()).unwrap();
        assert_eq!(root_info.path_len, Some(2));
        let signer = root.issue_signer("node1.example.zone", zone).unwrap();
        let signer_info = CertInfo::parse(signer.cert_der()).unwrap();
        assert!(issues_branches(&signer_info, &root_info));
        let branch = signer
            .issue_branch("nas.example.zone", "node1.example.zone", zone)
            .unwrap();
        let branch_info = CertInfo::parse(branch.cert_der()).unwrap();
        assert_eq!(
            branch_info.subject_cn,
            "nas.example.zone identities by node1.example.zone"
        );
        assert!(branch_info.is_ca && branch_info.path_len == Some(0));
        assert!(!branch_info.server_auth && branch_info.client_auth);

        let request = new_request("x").unwrap();
        let parsed = NodeRequest::from_pem(&request.csr_pem).unwrap();
        let chain = branch
            .issue_identity_for("photos@nas.example.zone", zone, &parsed, 30)
            .unwrap();
        // The identity carries its branch and the signer: the handshake needs both.
        let infos: Vec<CertInfo> = crate::encoding::parse_cert_chain(&chain)
            .unwrap()
            .iter()
            .map(|c| CertInfo::parse(c).unwrap())
            .collect();
        assert_eq!(infos.len(), 3);
        assert_eq!(infos[1], branch_info);
        assert_eq!(infos[2], signer_info);
        assert!(chains_to(&infos, std::slice::from_ref(&root_info)));
        // Without the branch, or under another root, it chains to nothing.
        assert!(!chains_to(
            &[infos[0].clone(), infos[2].clone()],
            std::slice::from_ref(&root_info)
        ));
        let stranger = Authority::new_client_root(zone).unwrap();
        let stranger_info = CertInfo::parse(stranger.cert_der()).unwrap();
        assert!(!chains_to(&infos, &[stranger_info]));

        // A root or signer of the previous profile (pathlen 1 and 0) issues no branch.
        let mut older = root_info.clone();
        older.path_len = Some(1);
        assert!(!issues_branches(&signer_info, &older));
        let mut old_signer = signer_info.clone();
        old_signer.path_len = Some(0);
        assert!(!issues_branches(&old_signer, &root_info));
        assert!(
            !issues_branches(&infos[0], &root_info),
            "a leaf issues nothing"
        );
    }
}
