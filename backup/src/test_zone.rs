//! A zone of one member for unit tests: its root CA and the member as backup sees it (its
//! identity, its node CA issued by the root as a bundle's is, and a state directory), in
//! a temporary directory.

use std::path::PathBuf;

use zone_pki::{Authority, CertInfo, Host, NodeIdentity};

use crate::signing::SignerNode;
use zone_model::config::node::NodeCa;

pub const ZONE: &str = "example.zone";
pub const NODE: &str = "node1.example.zone";

pub struct Fixture {
    pub _dir: tempfile::TempDir,
    pub root: Authority,
    pub node: TestNode,
}

/// The member: what a loaded node gives backup.
pub struct TestNode {
    pub name: String,
    pub zone: String,
    /// `None` for a node whose certificates are external.
    pub node_ca: Option<NodeCa>,
    pub state_dir: PathBuf,
    identity: NodeIdentity,
}

impl TestNode {
    pub fn identity(&self) -> NodeIdentity {
        self.identity.clone()
    }

    pub fn node_ca(&self) -> Result<&NodeCa, String> {
        self.node_ca
            .as_ref()
            .ok_or_else(|| format!("{} has no node CA", self.name))
    }

    /// What its backup signer is issued and checked with.
    pub fn signing(&self) -> SignerNode<'_> {
        SignerNode {
            identity: self.identity(),
            node_ca: self.node_ca().unwrap(),
            state_dir: &self.state_dir,
        }
    }
}

/// A zone of one member (`127.0.0.1`), its root CA, and the member's node CA and state
/// directory (not made yet, as in a new bundle).
pub fn zone_with_root(root: Authority) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let identity = NodeIdentity {
        zone: ZONE.into(),
        node_name: NODE.into(),
        address: Some(Host::parse("127.0.0.1")),
        member: true,
        tunneled: false,
    };
    let authority = root.issue_node_ca(&identity).unwrap();
    let info = CertInfo::parse(authority.cert_der()).unwrap();
    // As a bundle's node.toml names it by default (made by the first writer).
    std::fs::create_dir(dir.path().join("node1")).unwrap();
    let state_dir = dir.path().join("node1/state");
    let node = TestNode {
        name: NODE.into(),
        zone: ZONE.into(),
        node_ca: Some(NodeCa { authority, info }),
        state_dir,
        identity,
    };
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
    pub fn signed_chain(&self, n: u64) -> Vec<crate::local::Stored> {
        self.signed_chain_with(n, |_| "ab12cd34")
    }

    /// The same, link `seq` written by the session `session(seq)`.
    pub fn signed_chain_with(
        &self,
        n: u64,
        session: impl Fn(u64) -> &'static str,
    ) -> Vec<crate::local::Stored> {
        let signer = crate::signing::Signer::for_node(&self.node.signing()).unwrap();
        let now_ms = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
        let mut out: Vec<crate::local::Stored> = Vec::new();
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
        prev: Option<&crate::local::Stored>,
        signed_ms: i64,
    ) -> crate::local::Stored {
        let signer = crate::signing::Signer::for_node(&self.node.signing()).unwrap();
        sign_link(&signer, seq, session, prev, signed_ms)
    }
}

/// The object every link of [`Fixture::signed_chain`] names (its size and SHA-256).
pub const OBJECT: &[u8] = b"x";

fn sign_link(
    signer: &crate::signing::Signer,
    seq: u64,
    session: &str,
    prev: Option<&crate::local::Stored>,
    signed_ms: i64,
) -> crate::local::Stored {
    use crate::chain::{delta_name, Kind, Link, FORMAT};
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
        object_sha256: crate::local::sha256_hex(OBJECT),
        next_delta: revision + 1,
        prev: prev.map(|p| p.sha256.clone()),
        signed_ms,
    };
    let body = serde_json::to_vec(&link).unwrap();
    let bytes = signer.sign(&body).unwrap();
    crate::manifest::stored(&link.manifest_name(), bytes)
}

/// Revision `revision`: one put of `app/<revision>` = `v`, at 1_700_000_000_000 + revision.
pub fn put_revision(revision: i64) -> crate::segment::Revision {
    use crate::segment::{Event, EventKind, Revision};
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
