//! A zone of one member for unit tests: its root CA and the member's node, loaded from a
//! bundle written by the real code, in a temporary directory.

use std::fs;

use zone_pki::{Authority, CertInfo};

use crate::bundle::{write_bundle, MemberList};
use crate::node::Node;
use zone_model::config::zone::Zone;

pub const ZONE: &str = "example.zone";
pub const NODE: &str = "node1.example.zone";

pub struct Fixture {
    pub _dir: tempfile::TempDir,
    pub root: Authority,
    pub node: Node,
}

/// A zone of one member, its root CA, and the member's node loaded from its bundle.
pub fn zone_with_root(root: Authority) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let zone_file = dir.path().join("zone.toml");
    let text = format!(
        "name = \"{ZONE}\"\n[[etcd]]\nnode_name = \"{NODE}\"\nprotocol = \"https\"\naddress = \"127.0.0.1\"\npeer_port = 2380\nclient_port = 2379\n"
    );
    let zone = Zone::parse(&zone_file, &text).unwrap();
    let bundle = dir.path().join("node1");
    fs::create_dir(&bundle).unwrap();
    zone_io::ensure_private_dir(&dir.path().join("ca")).unwrap();
    write_bundle(
        &dir.path().join("ca"),
        &bundle,
        &root,
        root.chain_pem(),
        &zone,
        NODE,
        MemberList::Copy,
    )
    .unwrap();
    let node = Node::load(&bundle.join("node.toml")).unwrap();
    Fixture {
        _dir: dir,
        root,
        node,
    }
}

pub fn fixture() -> Fixture {
    zone_with_root(Authority::new_root(ZONE).unwrap())
}

impl Fixture {
    pub fn roots(&self) -> Vec<CertInfo> {
        vec![CertInfo::parse(self.root.cert_der()).unwrap()]
    }
}

impl Fixture {
    /// `n` delta links of this zone, signed by the member's backup signer, in chain order:
    /// each manifest as it would be stored (name, bytes, hash).
    pub fn signed_chain(&self, n: u64) -> Vec<crate::backup::local::Stored> {
        self.signed_chain_with(n, |_| "ab12cd34")
    }

    /// The same, link `seq` written by the session `session(seq)`.
    pub fn signed_chain_with(
        &self,
        n: u64,
        session: impl Fn(u64) -> &'static str,
    ) -> Vec<crate::backup::local::Stored> {
        let signer = crate::backup::signing::Signer::for_node(&self.node).unwrap();
        let now_ms = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
        let mut out: Vec<crate::backup::local::Stored> = Vec::new();
        for seq in 1..=n {
            let link = sign_link(&signer, seq, session(seq), out.last(), now_ms);
            out.push(link);
        }
        out
    }

    /// Delta link `seq` of `session` after `prev`, signed at `signed_ms`, as stored.
    pub fn signed_link(
        &self,
        seq: u64,
        session: &str,
        prev: Option<&crate::backup::local::Stored>,
        signed_ms: i64,
    ) -> crate::backup::local::Stored {
        let signer = crate::backup::signing::Signer::for_node(&self.node).unwrap();
        sign_link(&signer, seq, session, prev, signed_ms)
    }
}

/// The object every link of [`Fixture::signed_chain`] names (its size and SHA-256).
pub const OBJECT: &[u8] = b"x";

fn sign_link(
    signer: &crate::backup::signing::Signer,
    seq: u64,
    session: &str,
    prev: Option<&crate::backup::local::Stored>,
    signed_ms: i64,
) -> crate::backup::local::Stored {
    use crate::backup::chain::{delta_name, Kind, Link, FORMAT};
    let revision = seq as i64 + 1;
    let link = Link {
        format: FORMAT.into(),
        zone: ZONE.into(),
        cluster_id: "c0ffee".into(),
        seq,
        session: session.into(),
        writer: NODE.into(),
        kind: Kind::Delta,
        first_revision: revision,
        last_revision: revision,
        first_time_ms: 1_700_000_000_000 + revision,
        last_time_ms: 1_700_000_000_000 + revision,
        object: Some(delta_name(seq, session, revision, revision)),
        object_size: OBJECT.len() as u64,
        object_sha256: crate::backup::local::sha256_hex(OBJECT),
        next_delta: revision + 1,
        prev: prev.map(|p| p.sha256.clone()),
        signed_ms,
    };
    let body = serde_json::to_vec(&link).unwrap();
    let bytes = signer.sign(&body).unwrap();
    crate::backup::manifest::stored(&link.manifest_name(), bytes)
}

/// Revision `revision`: one put of `app/<revision>` = `v`, at 1_700_000_000_000 + revision.
pub fn put_revision(revision: i64) -> crate::backup::segment::Revision {
    use crate::backup::segment::{Event, EventKind, Revision};
    Revision {
        revision,
        time_ms: 1_700_000_000_000 + revision,
        events: vec![Event {
            kind: EventKind::Put,
            key: format!("app/{revision}").into_bytes(),
            value: b"v".to_vec(),
            create_revision: revision,
            mod_revision: revision,
            version: 1,
            lease: 0,
        }],
    }
}
