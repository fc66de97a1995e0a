//! Revocation: the zone root's certificate revocation list (CRL).
//!
//! A revoked node is revoked by the serial number of its node CA: etcd checks the serial
//! of every certificate a peer presents (leaf and node CA) against its CRL file on every
//! new connection, so one entry refuses every leaf the node CA ever issued, or will.
//!
//! Invariants:
//! - A CRL of the zone is signed by the zone root ([`Authority::sign_crl`]), carries a
//!   CRL number, and lists the serials of the certificates the zone revoked: node CAs,
//!   and the client root's chains (a member's signer, a branch, an identity: the app's
//!   `revocation::kind`); [`Crl::is_signed_by`] is the only test of where one came from
//!   (etcd itself never checks a CRL's signature).
//! - Serials are compared as numbers: [`normalize_serial`] strips DER's sign padding, so
//!   the same serial read from a certificate and from a CRL compares equal.
//! - An entry is a serial and its revocation time, without a reason code: etcd parses the
//!   whole file at every handshake and looks at serials only, and an entry's extension
//!   costs it a quarter more per entry (2.8 against 2.3 µs measured, issue 68 item 9); the
//!   signed revocations document keeps what each serial is. CRLs signed before kept
//!   `keyCompromise` on every entry; both read the same.
//! - [`placeholder_crl`] revokes nothing and is signed by a key thrown away at once: what
//!   etcd reads before the zone has revoked anything (its CRL flags need a file).

use rcgen::{
    CertificateParams, CertificateRevocationListParams, DnType, IsCa, Issuer, KeyIdMethod,
    KeyUsagePurpose, RevokedCertParams, SerialNumber,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateRevocationListDer;
use time::{Duration, OffsetDateTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;
use zone_io::{Error, Result};

use crate::authority::Authority;
pub use crate::encoding::normalize_serial;
use crate::encoding::pem_lf;
use crate::inspect::CertInfo;
use crate::key::{new_key, sign_error};

/// How long a CRL is current: its next update is this long after it was signed.
/// Revoking again (any node, even one revoked before) signs a fresh one.
pub const CRL_DAYS: i64 = 365;

/// A certificate to revoke (a node CA, or a signer, branch or identity of the client
/// root's chains): its serial (big-endian bytes) and when it was revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedCa {
    pub serial: Vec<u8>,
    pub revoked_at: OffsetDateTime,
}

impl Authority {
    /// Signs CRL number `number` listing `revoked` (reason: key compromise), current from
    /// `now` for [`CRL_DAYS`]. Returns its PEM (`X509 CRL`).
    pub fn sign_crl(
        &self,
        number: u64,
        revoked: &[RevokedCa],
        now: OffsetDateTime,
    ) -> Result<String> {
        let params = crl_params(number, revoked, now);
        let crl = params.signed_by(self.issuer()).map_err(sign_error)?;
        crl.pem().map_err(sign_error)
    }
}

fn crl_params(
    number: u64,
    revoked: &[RevokedCa],
    now: OffsetDateTime,
) -> CertificateRevocationListParams {
    CertificateRevocationListParams {
        this_update: now,
        next_update: now + Duration::days(CRL_DAYS),
        crl_number: SerialNumber::from_slice(&number.to_be_bytes()),
        issuing_distribution_point: None,
        revoked_certs: revoked
            .iter()
            .map(|r| RevokedCertParams {
                serial_number: SerialNumber::from_slice(&r.serial),
                revocation_time: r.revoked_at,
                // None: see the module's invariants (the handshake's cost).
                reason_code: None,
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    }
}

/// An empty CRL (number 0) signed by a key made for it and dropped: what etcd's CRL
/// flags read while the zone has revoked nothing. It vouches for nothing.
pub fn placeholder_crl(now: OffsetDateTime) -> Result<Crl> {
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, "zone-etcd placeholder: nothing revoked");
    params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::CrlSign];
    let issuer = Issuer::new(params, new_key()?);
    let crl = crl_params(0, &[], now)
        .signed_by(&issuer)
        .map_err(sign_error)?;
    Crl::parse_der(crl.der())
}

/// A CRL read back: what etcd will enforce, and what `status` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crl {
    der: Vec<u8>,
    /// The CRL number (0 when absent: never one the zone signed).
    pub number: u64,
    pub this_update: OffsetDateTime,
    pub next_update: Option<OffsetDateTime>,
    /// The revoked serials, normalized ([`normalize_serial`]), with their revocation
    /// times.
    pub entries: Vec<RevokedCa>,
    raw_issuer: Vec<u8>,
}

impl Crl {
    /// Parses the first `X509 CRL` block of a PEM text.
    pub fn parse_pem(text: &str) -> Result<Crl> {
        let der = CertificateRevocationListDer::from_pem_slice(text.as_bytes()).map_err(|e| {
            Error::new(format!("no X509 CRL block found ({e})"))
                .fix("give the CRL PEM (-----BEGIN X509 CRL-----) zone-etcd revoke wrote")
        })?;
        Crl::parse_der(der.as_ref())
    }

    pub fn parse_der(der: &[u8]) -> Result<Crl> {
        let (rest, crl) = CertificateRevocationList::from_der(der)
            .map_err(|e| Error::new(format!("not a valid X.509 CRL: {e}")))?;
        if !rest.is_empty() {
            return Err(Error::new("not a valid X.509 CRL: bytes after its end"));
        }
        let number = match crl.crl_number() {
            None => 0,
            Some(n) => {
                u64::try_from(n).map_err(|_| Error::new("the CRL number does not fit 64 bits"))?
            }
        };
        let time = |t: x509_parser::time::ASN1Time| t.to_datetime();
        Ok(Crl {
            der: der.to_vec(),
            number,
            this_update: time(crl.last_update()),
            next_update: crl.next_update().map(time),
            entries: crl
                .iter_revoked_certificates()
                .map(|r| RevokedCa {
                    serial: normalize_serial(r.raw_serial()),
                    revoked_at: time(r.revocation_date),
                })
                .collect(),
            raw_issuer: crl.tbs_cert_list.issuer.as_raw().to_vec(),
        })
    }

    /// The CRL as DER: what etcd's `--client-crl-file` and `--peer-crl-file` read. etcd
    /// 3.6 and later parse that file with Go's `x509.ParseRevocationList`, which takes
    /// DER only ("x509: malformed crl" for PEM, and every connection refused); 3.4 and
    /// 3.5 take either.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The CRL as PEM, as the zone's revocation document carries it.
    pub fn pem(&self) -> String {
        pem_lf(&pem::Pem::new("X509 CRL", self.der.clone()))
    }

    /// True when `root` issued this CRL: its name is the CRL's issuer and its key's
    /// signature verifies.
    pub fn is_signed_by(&self, root: &CertInfo) -> bool {
        let (Ok((_, crl)), Ok((_, cert))) = (
            CertificateRevocationList::from_der(&self.der),
            X509Certificate::from_der(root.der()),
        ) else {
            return false;
        };
        cert.subject().as_raw() == self.raw_issuer.as_slice()
            && crl.verify_signature(cert.public_key()).is_ok()
    }

    /// True when the certificate with this serial (any encoding) is revoked.
    pub fn revokes(&self, serial: &[u8]) -> bool {
        let serial = normalize_serial(serial);
        self.entries.iter().any(|e| e.serial == serial)
    }
}

/// A serial as lowercase hex without separators (normalized first).
pub fn serial_hex(raw: &[u8]) -> String {
    zone_io::hex(&normalize_serial(raw))
}

/// Parses [`serial_hex`]'s form back.
pub fn parse_serial_hex(text: &str) -> Option<Vec<u8>> {
    parse_hex(text)
        .filter(|b| !b.is_empty())
        .map(|b| normalize_serial(&b))
}

/// [`zone_io::hex`]'s form back (`None` for an odd length or a non-hex digit).
pub fn parse_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::NodeIdentity;

    fn node(name: &str) -> NodeIdentity {
        NodeIdentity {
            zone: "example.zone".into(),
            node_name: name.into(),
            address: None,
            member: false,
            tunneled: false,
        }
    }

    fn serial_of(ca: &Authority) -> Vec<u8> {
        let info = CertInfo::parse(ca.cert_der()).unwrap();
        info.serial().to_vec()
    }

    #[test]
    fn a_signed_crl_reads_back_with_its_number_serials_and_signer() {
        let root = Authority::new_root("example.zone").unwrap();
        let other = Authority::new_root("example.zone").unwrap();
        let laptop = root.issue_node_ca(&node("laptop.example.zone")).unwrap();
        let kept = root.issue_node_ca(&node("desk.example.zone")).unwrap();
        let now = OffsetDateTime::now_utc();
        let revoked = [RevokedCa {
            serial: serial_of(&laptop),
            revoked_at: now,
        }];
        let crl = Crl::parse_pem(&root.sign_crl(7, &revoked, now).unwrap()).unwrap();
        assert_eq!(crl.number, 7);
        assert!(crl.revokes(&serial_of(&laptop)));
        assert!(!crl.revokes(&serial_of(&kept)));
        let root_info = CertInfo::parse(root.cert_der()).unwrap();
        let other_info = CertInfo::parse(other.cert_der()).unwrap();
        assert!(crl.is_signed_by(&root_info));
        // Same name, another key: not the zone's root.
        assert!(!crl.is_signed_by(&other_info));
        assert!(crl.next_update.unwrap() > crl.this_update);
        // PEM round trip is byte for byte.
        assert_eq!(Crl::parse_pem(&crl.pem()).unwrap(), crl);
    }

    #[test]
    fn an_entry_is_its_serial_and_time_only() {
        // Each entry's extension costs etcd at every handshake (the module's invariants).
        let root = Authority::new_root("example.zone").unwrap();
        let now = OffsetDateTime::now_utc();
        let revoked: Vec<RevokedCa> = (1..=3u8)
            .map(|i| RevokedCa {
                serial: vec![i; 16],
                revoked_at: now,
            })
            .collect();
        let crl = Crl::parse_pem(&root.sign_crl(1, &revoked, now).unwrap()).unwrap();
        let (_, parsed) = CertificateRevocationList::from_der(crl.der()).unwrap();
        let entries: Vec<_> = parsed.iter_revoked_certificates().collect();
        assert_eq!(entries.len(), 3);
        for entry in entries {
            assert!(entry.extensions().is_empty(), "{entry:?}");
        }
    }

    #[test]
    fn the_placeholder_revokes_nothing_and_vouches_for_nothing() {
        let root = Authority::new_root("example.zone").unwrap();
        let crl = placeholder_crl(OffsetDateTime::now_utc()).unwrap();
        assert_eq!(crl.number, 0);
        assert!(crl.entries.is_empty());
        assert!(!crl.is_signed_by(&CertInfo::parse(root.cert_der()).unwrap()));
    }

    #[test]
    fn serials_compare_as_numbers() {
        assert_eq!(normalize_serial(&[0, 0, 0x81, 2]), vec![0x81, 2]);
        assert_eq!(serial_hex(&[0, 0x0a, 0xff]), "0aff");
        assert_eq!(parse_serial_hex("0aff"), Some(vec![0x0a, 0xff]));
        assert_eq!(parse_serial_hex("0g"), None);
        assert_eq!(parse_serial_hex("abc"), None);
    }
}
