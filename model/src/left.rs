//! Members that left: `leave` (and `revoke --node` of a member) records each removed
//! member at [`PREFIX`]`<node>`, so `status` can warn while the node keeps its powers (its
//! node CA, with `[access]` its signer, still make certificates the zone accepts) until the
//! owner revokes it ([`unrevoked`], pure).
//!
//! Format (version 1, JSON): `{"format":1,"at":"<RFC 3339>"}`; later releases may add
//! fields, which this one reads past.

use serde::{Deserialize, Serialize};

/// Under it, `<node>` for each member that left the cluster.
pub const PREFIX: &str = "zone-etcd/left/";

/// The record of a member that left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Left {
    /// The record's own format (1).
    pub format: u32,
    /// When it was removed (RFC 3339).
    pub at: String,
}

impl Left {
    /// The record of a removal at `at`.
    pub fn at(at: &str) -> Left {
        Left {
            format: 1,
            at: at.to_string(),
        }
    }

    pub fn parse(text: &[u8]) -> Result<Left, String> {
        serde_json::from_slice(text).map_err(|e| format!("not a record of a member that left: {e}"))
    }

    pub fn render(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Of the members that `left` (name, record), those that are neither in the cluster again
/// (`in_cluster`) nor revoked (`revoked`: the nodes on the zone's CRL), by name.
pub fn unrevoked<'a>(
    left: &'a [(String, Left)],
    in_cluster: &[String],
    revoked: &[String],
) -> Vec<&'a (String, Left)> {
    left.iter()
        .filter(|(name, _)| !in_cluster.contains(name) && !revoked.contains(name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The record as this release writes it (golden), and as a later one might.
    #[test]
    fn a_left_record_keeps_its_format() {
        let left = Left::at("2026-11-28T05:00:00Z");
        assert_eq!(left.render(), r#"{"format":1,"at":"2026-11-28T05:00:00Z"}"#);
        let later = br#"{"format":1,"at":"2026-11-28T05:00:00Z","by":"autopilot"}"#;
        assert_eq!(Left::parse(later).unwrap(), left);
        assert!(Left::parse(b"{}").is_err());
    }

    #[test]
    fn a_member_that_left_is_named_until_it_is_revoked_or_back() {
        let left: Vec<(String, Left)> = ["a", "b", "c"]
            .iter()
            .map(|n| (n.to_string(), Left::at("T")))
            .collect();
        let named: Vec<&str> = unrevoked(&left, &["b".into()], &["c".into()])
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(named, ["a"]);
        assert!(unrevoked(&left, &[], &["a".into(), "b".into(), "c".into()]).is_empty());
    }
}
