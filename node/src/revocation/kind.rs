//! What a revoked serial is ([`Kind`]), as a format-2 revocations document says it
//! ([`super::doc`]): the client port's CRL lists every kind but node CAs.
//!
//! Invariant: only a certificate the zone root signed is a node CA; anything else, a
//! serial whose certificate is not at hand included, is a client chain's, so a doubt puts
//! a serial on both ports' CRLs, never on fewer.

use zone_pki::CertInfo;

/// What a revoked serial is, as format 2 says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A node CA (issued by the zone root): peer chains hold it, and the client chains of
    /// a zone whose client port trusts the zone root (not enforcing); never a client
    /// chain under the client root.
    NodeCa,
    /// A certificate of the client root's chains: a member's signer, a branch, an
    /// identity (or a serial whose certificate the owner does not hold).
    Client,
    /// A kind a later release wrote: taken as [`Kind::Client`].
    Other(String),
}

impl Kind {
    pub fn as_str(&self) -> &str {
        match self {
            Kind::NodeCa => "node-ca",
            Kind::Client => "client",
            Kind::Other(other) => other,
        }
    }

    /// A kind as a document writes it (one this release does not know is kept as it is).
    pub fn parse(text: &str) -> Kind {
        match text {
            "node-ca" => Kind::NodeCa,
            "client" => Kind::Client,
            other => Kind::Other(other.to_string()),
        }
    }

    /// Whether the client port's CRL lists it (all but node CAs).
    pub fn on_client_port(&self) -> bool {
        !matches!(self, Kind::NodeCa)
    }

    /// The kind of `cert`: a node CA when a zone root (one of `zone_roots`) signed it.
    pub fn of(cert: &CertInfo, zone_roots: &[CertInfo]) -> Kind {
        if cert.is_ca && zone_roots.iter().any(|r| cert.is_signed_by(r)) {
            Kind::NodeCa
        } else {
            Kind::Client
        }
    }
}
