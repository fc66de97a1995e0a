//! Links for unit tests: zone `example.zone`, session `ab12cd34`, writer node1, each
//! object named as its kind and revisions give, the manifest's hash `hash<seq>`.

use super::*;

/// The times and neighbours of a test link.
pub struct Spec<'a> {
    pub seq: u64,
    pub kind: Kind,
    pub revisions: (i64, i64),
    pub times: (i64, i64),
    pub next_delta: i64,
    pub cluster: &'a str,
    pub prev: Option<&'a Verified>,
}

pub fn verified(spec: Spec<'_>) -> Verified {
    let Spec {
        seq,
        kind,
        revisions: (first, last),
        times: (t0, t1),
        next_delta,
        cluster,
        prev,
    } = spec;
    let session = "ab12cd34";
    let object = match kind {
        Kind::Full => Some(full_name(seq, session, last)),
        Kind::Delta => Some(delta_name(seq, session, first, last)),
        Kind::Gap => None,
    };
    let link = Link {
        format: FORMAT.into(),
        zone: "example.zone".into(),
        cluster_id: cluster.into(),
        seq,
        session: session.into(),
        writer: "node1.example.zone".into(),
        kind,
        first_revision: first,
        last_revision: last,
        first_time_ms: t0,
        last_time_ms: t1,
        object,
        object_size: 1,
        object_sha256: "00".into(),
        next_delta,
        prev: prev.map(|p| p.sha256.clone()),
        signed_ms: t1,
    };
    Verified {
        name: link.manifest_name(),
        sha256: format!("hash{seq}"),
        link,
    }
}
