//! The CRL in force, as `status` and `check` show it: number, dates, revoked nodes, and
//! whether it is past its next update (the owner signs a fresh one with `revoke`).

use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::doc::Revocations;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CrlSummary {
    pub number: u64,
    pub this_update: String,
    pub next_update: Option<String>,
    /// Seconds since it was signed.
    pub age_seconds: i64,
    /// The revoked nodes, by name.
    pub revoked: Vec<String>,
    /// Past its next update.
    pub overdue: bool,
}

pub fn summarise(doc: &Revocations, now: OffsetDateTime) -> CrlSummary {
    let date = |t: OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
    CrlSummary {
        number: doc.crl.number,
        this_update: date(doc.crl.this_update),
        next_update: doc.crl.next_update.map(date),
        age_seconds: (now - doc.crl.this_update).whole_seconds(),
        revoked: doc.node_names(),
        overdue: doc.crl.next_update.is_some_and(|t| t < now),
    }
}

/// The problem (and its fix) of a CRL past its next update.
pub fn overdue(summary: &CrlSummary) -> Option<(String, String)> {
    summary.overdue.then(|| {
        (
            format!(
                "the zone's CRL number {} is past its next update ({})",
                summary.number,
                summary.next_update.as_deref().unwrap_or("-")
            ),
            "the owner signs a fresh one: zone-etcd revoke --ca CA_DIR --node <any revoked node> --config NODE_FILE".to_string(),
        )
    })
}

/// One line for a report: `CRL: number 3 of <date>, next update <date>; revoked: a, b`.
pub fn line(summary: Option<&CrlSummary>) -> String {
    match summary {
        None => "CRL: none (the zone has revoked nothing)".to_string(),
        Some(s) => format!(
            "CRL: number {} of {}, next update {}{}; revoked: {}",
            s.number,
            s.this_update,
            s.next_update.as_deref().unwrap_or("-"),
            if s.overdue { " (OVERDUE)" } else { "" },
            if s.revoked.is_empty() {
                "nothing".to_string()
            } else {
                s.revoked.join(", ")
            }
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zone_pki::revocation::{Crl, RevokedCa};
    use zone_pki::Authority;

    #[test]
    fn a_crl_past_its_next_update_is_overdue() {
        let root = Authority::new_root("example.zone").unwrap();
        let signed = OffsetDateTime::now_utc();
        let entry = RevokedCa {
            serial: vec![7],
            revoked_at: signed,
        };
        let crl = Crl::parse_pem(&root.sign_crl(4, &[entry], signed).unwrap()).unwrap();
        let nodes = vec![super::super::doc::RevokedNode {
            node: "laptop.example.zone".into(),
            serial: vec![7],
            kind: None,
        }];
        let doc = Revocations::sign(&root, crl, nodes).unwrap();
        let fresh = summarise(&doc, signed + time::Duration::days(1));
        assert!(!fresh.overdue && overdue(&fresh).is_none());
        assert_eq!(fresh.age_seconds, 86_400);
        assert!(
            line(Some(&fresh)).contains("number 4 of")
                && line(Some(&fresh)).ends_with("revoked: laptop.example.zone")
        );
        let late = summarise(&doc, signed + time::Duration::days(366));
        assert!(late.overdue);
        assert!(overdue(&late).unwrap().0.contains("past its next update"));
        assert!(line(Some(&late)).contains("(OVERDUE)"));
        assert_eq!(line(None), "CRL: none (the zone has revoked nothing)");
    }
}
