//! Reads one release's golden files with this release's own parsers and checks what
//! they say; with `newest`, also that this release renders what it read (or writes for
//! the same input) to the same bytes. Nothing here depends on the clock: certificates
//! expire, golden files stay.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use zone_pki::revocation::serial_hex;
use zone_pki::{Authority, CertInfo};

use super::fixture::*;
use zone_backup::chain::{Kind, Link};
use zone_backup::destination::file::DirTarget;
use zone_backup::local::LocalChain;
use zone_model::config::node::NodeFile;
use zone_model::config::zone::Zone;
use zone_node::bundle::MemberList;
use zone_node::identities::ca::{ClientRoot, SignerFor};
use zone_node::revocation::doc::Revocations;
use zone_node::revocation::kind::Kind as SerialKind;

/// A release's directory (a private copy) and the files the checks read in it.
struct Dir {
    root: PathBuf,
    seen: RefCell<BTreeSet<String>>,
}

impl Dir {
    /// The file `relative`, marked read.
    fn path(&self, relative: &str) -> PathBuf {
        let path = self.root.join(relative);
        assert!(path.is_file(), "{relative}: missing");
        self.seen.borrow_mut().insert(relative.to_string());
        path
    }

    fn text(&self, relative: &str) -> String {
        fs::read_to_string(self.path(relative)).unwrap()
    }

    fn bytes(&self, relative: &str) -> Vec<u8> {
        fs::read(self.path(relative)).unwrap()
    }

    /// Whether the directory holds the file `relative` (one a later format added).
    fn exists(&self, relative: &str) -> bool {
        self.root.join(relative).is_file()
    }

    /// The files directly in `relative`, by name.
    fn names(&self, relative: &str) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.root.join(relative))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

/// What the checks of one directory share: the zone file and the roots.
struct ZoneRoots {
    zone: Zone,
    root: Authority,
    roots: Vec<CertInfo>,
}

/// Checks every file of the release directory `root` (of release `release`); returns
/// the files read.
pub fn all(root: &Path, release: &str, newest: bool) -> BTreeSet<String> {
    let d = Dir {
        root: root.to_path_buf(),
        seen: RefCell::new(BTreeSet::new()),
    };
    let z = owner(&d, newest);
    rotation(&d, &z, newest);
    zone_document(&d, &z, newest);
    request_and_answer(&d, &z, newest);
    bundles(&d, &z, newest);
    node1_state(&d, &z, newest);
    backups(&d, &z, newest);
    laptop_state(&d, &z);
    etcd(&d, &z, release, newest);
    d.seen.into_inner()
}

/// The owner's files: the zone file, the CA directory, `ca admin`'s identity.
fn owner(d: &Dir, newest: bool) -> ZoneRoots {
    let zone = Zone::load(&d.path(ZONE_FILE)).unwrap();
    assert_eq!(zone.name, ZONE);
    let addr_info: Vec<(&str, &str, u16)> = zone
        .addr_info
        .iter()
        .map(|a| (a.protocol.as_str(), a.address.as_str(), a.port))
        .collect();
    assert_eq!(addr_info, [("https", "192.0.2.53", 3456)]);
    let members: Vec<(String, String, u16, u16)> = zone
        .members
        .iter()
        .map(|m| {
            let address = m.address.as_ref().map(|a| a.url_host()).unwrap_or_default();
            (m.node_name.clone(), address, m.peer_port, m.client_port)
        })
        .collect();
    let expected: Vec<(String, String, u16, u16)> = NODE_ADDRESSES
        .iter()
        .map(|(n, a)| (n.to_string(), a.to_string(), 2380, 2379))
        .collect();
    assert_eq!(members, expected);
    assert_eq!(zone.settings.heartbeat_interval_ms, Some(300));
    assert_eq!(zone.settings.election_timeout_ms, Some(3000));
    assert_eq!(zone.settings.quota_backend_bytes, Some(4_294_967_296));
    assert_eq!(
        zone.settings.auto_compaction_retention.as_deref(),
        Some("1h")
    );
    assert_eq!(zone.settings.snapshot_count, Some(10_000));
    assert_eq!(zone.backup.recipients.len(), 1);
    assert_eq!(
        zone.backup.full_every(),
        std::time::Duration::from_secs(3600)
    );
    assert_eq!(zone.backup.delta_every(), std::time::Duration::from_secs(5));
    assert_eq!(zone.backup.targets[0].url, TARGET_URL);
    assert!(zone.access.present && zone.access.enforce);
    assert_eq!(zone.access.nodes, [LAPTOP, REVOKED]);
    assert_eq!(zone.access.services[0].name, SERVICE);
    assert_eq!(zone.access.services[0].nodes, [LAPTOP]);
    assert_eq!(zone.access.services[0].read_write, ["apps/photos/"]);
    assert_eq!(zone.access.services[0].read, ["apps/shared/"]);
    // Quotas (since 0.3.0's work; absent, the defaults, from older directories).
    if newest || zone.access.node_quota.is_some() {
        assert_eq!(zone.access.node_quota, Some(4 << 20));
        assert_eq!(zone.access.service_quota, Some(16 << 20));
        assert_eq!(zone.access.services[0].quota, Some(64 << 20));
        assert_eq!(zone.access.services[0].max_keys, Some(100_000));
    }

    let ca = d.root.join(CA_DIR);
    // ca.crt and ca.key: the zone root, loaded as every owner's command loads it.
    d.path("ca/ca.crt");
    d.path("ca/ca.key");
    let root = zone_node::ca_dir::load_root(&ca, ZONE).unwrap();
    let root_info = CertInfo::parse(root.cert_der()).unwrap();
    assert_eq!(root_info.subject_cn, format!("{ZONE} root CA"));
    assert!(root_info.is_ca && root_info.is_self_issued());
    d.path("ca/client-ca.crt");
    d.path("ca/client-ca.key");
    let client = ClientRoot::of(&ca, ZONE).unwrap();
    let client_info = CertInfo::parse(client.authority.cert_der()).unwrap();
    assert_eq!(
        client_info.subject_cn,
        zone_pki::client::client_root_name(ZONE)
    );
    d.path("ca/zone-defaults.json");
    assert!(zone_node::ca_dir::zone_defaults::least_privilege(&ca).unwrap());
    // The zone file read beside this CA directory is the zone file as written ([access]).
    let beside = zone_node::ca_dir::zone_defaults::load_zone(&d.root.join(ZONE_FILE), &ca).unwrap();
    assert_eq!(beside, zone);
    if newest {
        assert_eq!(root.chain_pem(), d.text("ca/ca.crt"));
        assert_eq!(root.key_pem(), d.text("ca/ca.key"));
        assert_eq!(client.authority.chain_pem(), d.text("ca/client-ca.crt"));
        assert_eq!(client.authority.key_pem(), d.text("ca/client-ca.key"));
        let again = tempfile::tempdir().unwrap();
        zone_node::ca_dir::zone_defaults::write(again.path()).unwrap();
        assert_eq!(
            fs::read(again.path().join("zone-defaults.json")).unwrap(),
            d.bytes("ca/zone-defaults.json")
        );
    }

    // issued/<node>/<serial>.crt: what `revoke --node` lists.
    for (node, count) in [(NODE1, 2), (NODE2, 2), (LAPTOP, 1), (REVOKED, 1)] {
        let issued = zone_node::revocation::issued::issued_to(&ca, node).unwrap();
        assert_eq!(issued.len(), count, "ca/issued/{node}/");
        for info in &issued {
            let file = format!("ca/issued/{node}/{}.crt", serial_hex(info.serial()));
            d.path(&file);
            assert!(info.is_ca, "{file}");
            if newest {
                assert_eq!(info.pem(), d.text(&file), "{file}");
            }
        }
    }
    assert_eq!(d.names("ca/issued"), [LAPTOP, NODE1, NODE2, REVOKED]);
    let roots = vec![root_info];
    // The last revocations document `revoke` published from this CA directory.
    let text = d.text("ca/revocations.json");
    let doc = revocations(&text, &roots, &ca);
    if newest {
        assert_eq!(doc.to_json(), text);
    }

    // `ca admin`: the owner's etcd root identity, from the client CA.
    assert_eq!(d.text("admin/ca.crt"), d.text("ca/ca.crt"));
    let admin = CertInfo::parse_pem(&d.text("admin/client.crt")).unwrap();
    assert_eq!(admin.subject_cn, "root");
    assert!(admin.client_auth && !admin.is_ca);
    assert!(admin.is_signed_by(&client_info));
    let key = zone_pki::key::load_key(&d.path("admin/client.key")).unwrap();
    assert!(admin.public_key_matches(&key));
    if newest {
        assert_eq!(admin.pem(), d.text("admin/client.crt"));
        assert_eq!(key.serialize_pem(), d.text("admin/client.key"));
    }

    ZoneRoots { zone, root, roots }
}

/// The CA directory of a rotation begun: a new zone root and client root, the files
/// that trust both (new first), and what it carried over from the old directory.
fn rotation(d: &Dir, z: &ZoneRoots, newest: bool) {
    let dir = d.root.join(ROTATING_DIR);
    let at = |file: &str| format!("{ROTATING_DIR}/{file}");
    for file in [
        "ca.crt",
        "ca.key",
        "client-ca.crt",
        "client-ca.key",
        "trust.crt",
        "client-roots.crt",
    ] {
        d.path(&at(file));
    }
    let new = zone_node::ca_dir::load_root(&dir, ZONE).unwrap();
    let new_info = CertInfo::parse(new.cert_der()).unwrap();
    assert_ne!(new_info, z.roots[0]);
    let trust = zone_node::ca_dir::trust_pem(&dir, &new).unwrap();
    assert_eq!(trust, d.text(&at("trust.crt")));
    let roots = zone_model::config::node::trusted_roots(&trust).unwrap();
    assert_eq!(roots, [new_info, z.roots[0].clone()]);
    let client = ClientRoot::of(&dir, ZONE).unwrap();
    let clients = CertInfo::parse_chain_pem(&client.trust_pem).unwrap();
    assert_eq!(clients.len(), 2);
    assert_eq!(
        clients[0],
        CertInfo::parse(client.authority.cert_der()).unwrap()
    );
    let old_client = ClientRoot::of(&d.root.join(CA_DIR), ZONE).unwrap();
    assert_eq!(
        clients[1],
        CertInfo::parse(old_client.authority.cert_der()).unwrap()
    );
    if newest {
        // As `ca rotate` writes them: each root as it loads, both new first.
        assert_eq!(new.chain_pem(), d.text(&at("ca.crt")));
        assert_eq!(new.key_pem(), d.text(&at("ca.key")));
        assert_eq!(client.authority.chain_pem(), d.text(&at("client-ca.crt")));
        assert_eq!(client.authority.key_pem(), d.text(&at("client-ca.key")));
        assert_eq!(
            format!("{}{}", new.chain_pem(), z.root.chain_pem()),
            d.text(&at("trust.crt"))
        );
        assert_eq!(
            format!(
                "{}{}",
                client.authority.chain_pem(),
                old_client.authority.chain_pem()
            ),
            d.text(&at("client-roots.crt"))
        );
    }
    // Carried over: the zone's kind, the record of issued CAs, the last revocations.
    d.path(&at("zone-defaults.json"));
    assert!(zone_node::ca_dir::zone_defaults::least_privilege(&dir).unwrap());
    for node in [NODE1, NODE2, LAPTOP, REVOKED] {
        let serials = |ca: &Path| {
            let mut serials: Vec<String> = zone_node::revocation::issued::issued_to(ca, node)
                .unwrap()
                .iter()
                .map(|c| c.pem())
                .collect();
            serials.sort();
            serials
        };
        assert_eq!(serials(&dir), serials(&d.root.join(CA_DIR)), "{node}");
        for info in zone_node::revocation::issued::issued_to(&dir, node).unwrap() {
            let file = at(&format!("issued/{node}/{}.crt", serial_hex(info.serial())));
            d.path(&file);
            if newest {
                assert_eq!(info.pem(), d.text(&file), "{file}");
            }
        }
    }
    revocations(&d.text(&at("revocations.json")), &roots, &dir);
    if newest {
        for file in ["zone-defaults.json", "revocations.json"] {
            assert_eq!(
                d.text(&at(file)),
                d.text(&format!("{CA_DIR}/{file}")),
                "{file}"
            );
        }
    }
}

/// A revocations document: verified against `roots`, revoking the node CA the CA
/// directory `ca` records for [`REVOKED`].
fn revocations(text: &str, roots: &[CertInfo], ca: &Path) -> Revocations {
    let doc = Revocations::parse(text).unwrap();
    doc.verify(roots).unwrap();
    assert_eq!(doc.crl.number, CRL_NUMBER);
    assert_eq!(doc.crl.this_update, at());
    assert_eq!(doc.node_names(), [REVOKED]);
    let revoked = zone_node::revocation::issued::issued_to(ca, REVOKED).unwrap();
    assert!(doc.crl.revokes(revoked[0].serial()));
    assert_eq!(doc.nodes[0].serial, revoked[0].serial());
    assert_eq!(doc.crl.entries[0].revoked_at, at());
    if doc.format() >= zone_node::revocation::doc::FORMAT_KINDS {
        // Format 2 (0.3.0): the node CA is no client chain's; the branch is, and is the
        // client port's CRL's only serial.
        assert_eq!(doc.nodes[0].kind, Some(SerialKind::NodeCa));
        assert_eq!(doc.nodes[1].serial, REVOKED_BRANCH);
        assert_eq!(doc.nodes[1].kind, Some(SerialKind::Client));
        assert!(doc.crl.revokes(&REVOKED_BRANCH));
        let client = doc.client_crl();
        assert_eq!(client.number, CRL_NUMBER);
        assert!(client.revokes(&REVOKED_BRANCH) && !client.revokes(revoked[0].serial()));
        assert_eq!(client.entries.len(), 1);
    } else {
        assert_eq!(doc.client_crl(), &doc.crl);
    }
    doc
}

/// `zone sign`'s document: verified, saying what the zone file says.
fn zone_document(d: &Dir, z: &ZoneRoots, newest: bool) {
    let text = d.text(ZONE_DOC);
    let doc = zone_model::zone_doc::verify(&text, ZONE, &z.roots).unwrap();
    assert_eq!(doc.members, z.zone.members);
    assert_eq!(doc.settings, z.zone.settings);
    assert_eq!(doc.backup, z.zone.backup);
    assert_eq!(doc.access, z.zone.access);
    assert_eq!(doc.signed_at, at());
    if newest {
        // ECDSA signatures differ each time: all but the signature's bytes.
        let again = zone_model::zone_doc::sign(&z.zone, &z.root, at()).unwrap();
        assert_eq!(unsigned(&again), unsigned(&text));
    }
}

/// A zone document's text with its signature's bytes left out (scheme and key id kept).
fn unsigned(text: &str) -> String {
    let at = text.find("\"sign\": \"").expect("a sign field");
    let rest = &text[at..];
    let end = rest.find("\"\n").expect("the sign field's end");
    let sign = &rest[..end];
    let kept = &sign[..sign.rfind(':').expect("a signature")];
    format!("{}{kept}{}", &text[..at], &rest[end..])
}

/// Activation by request: the node's request, the owner's answer, put together by this
/// release's `activate install`.
fn request_and_answer(d: &Dir, z: &ZoneRoots, newest: bool) {
    let request = zone_pki::NodeRequest::from_pem(&d.text("request/request.csr")).unwrap();
    assert_eq!(request.node_name(), NODE2);
    let key = zone_pki::key::load_key(&d.path("request/node.key")).unwrap();
    assert!(request.key_matches(&key));
    if newest {
        assert_eq!(key.serialize_pem(), d.text("request/node.key"));
    }
    for file in [
        "answer/node.toml",
        "answer/pki/ca.crt",
        "answer/pki/node.crt",
        "answer/pki/client-ca.crt",
        "answer/pki/signer.crt",
    ] {
        d.path(file);
    }
    let file = NodeFile::parse(Path::new("node.toml"), &d.text("answer/node.toml")).unwrap();
    assert_eq!(file.name.as_deref(), Some(NODE2));
    assert_eq!(file.signer_key.as_deref(), Some("pki/node.key"));
    let out = tempfile::tempdir().unwrap();
    let bundle = out.path().join("bundle");
    crate::commands::activate::install::run(
        &d.root.join(REQUEST_DIR),
        &d.root.join(ANSWER_DIR),
        &bundle,
    )
    .unwrap();
    node_bundle(&bundle, NODE2, z);
}

/// The bundles `activate` wrote (node1 a member with the member list, laptop a node that
/// follows the nameservice), each laid out again by this release for the same zone.
fn bundles(d: &Dir, z: &ZoneRoots, newest: bool) {
    for node in [NODE1, LAPTOP] {
        for file in [
            "node.toml",
            "pki/ca.crt",
            "pki/node.crt",
            "pki/node.key",
            "pki/client-ca.crt",
        ] {
            d.path(&format!("{node}/{file}"));
        }
    }
    d.path(&format!("{NODE1}/pki/signer.crt"));
    d.path(&format!("{NODE1}/pki/signer.key"));
    let file = node_bundle(&d.root.join(NODE1), NODE1, z);
    assert!(file.etcd.is_some() && file.nameservice.is_none());
    assert_eq!(file.signer_key.as_deref(), Some("pki/signer.key"));
    let file = node_bundle(&d.root.join(LAPTOP), LAPTOP, z);
    assert!(file.etcd.is_none() && file.signer.is_none());
    assert_eq!(file.nameservice.as_deref(), Some(NAMESERVICE));
    assert!(file.settings.is_none() && file.backup.is_none() && file.access.is_none());
    if newest {
        // Laid out again from the CA directory and the node CA as loaded: what `activate`
        // writes for the same zone file (the node CA's key and a signer are new each time).
        let ca = d.root.join(CA_DIR);
        let client = ClientRoot::of(&ca, ZONE).unwrap();
        let trust = zone_node::ca_dir::trust_pem(&ca, &z.root).unwrap();
        for (node, members, signer) in [
            (NODE1, MemberList::Copy, SignerFor::FreshKey),
            (
                LAPTOP,
                MemberList::Nameservice(NAMESERVICE),
                SignerFor::NoSigner,
            ),
        ] {
            let bundle = d.root.join(node);
            let node_ca =
                Authority::load(&bundle.join("pki/node.crt"), &bundle.join("pki/node.key"))
                    .unwrap();
            assert_eq!(node_ca.key_pem(), d.text(&format!("{node}/pki/node.key")));
            let again = tempfile::tempdir().unwrap();
            zone_node::bundle::write_answer(
                again.path(),
                &trust,
                node_ca.chain_pem(),
                &z.zone,
                node,
                members,
                Some((&client, signer)),
            )
            .unwrap();
            for file in [
                "node.toml",
                "pki/ca.crt",
                "pki/node.crt",
                "pki/client-ca.crt",
            ] {
                assert_eq!(
                    fs::read_to_string(again.path().join(file)).unwrap(),
                    d.text(&format!("{node}/{file}")),
                    "{node}/{file}"
                );
            }
        }
        let signer = Authority::load(
            &d.root.join(NODE1).join("pki/signer.crt"),
            &d.root.join(NODE1).join("pki/signer.key"),
        )
        .unwrap();
        assert_eq!(
            signer.chain_pem(),
            d.text(&format!("{NODE1}/pki/signer.crt"))
        );
        assert_eq!(signer.key_pem(), d.text(&format!("{NODE1}/pki/signer.key")));
    }
}

/// A node's bundle at `dir`, read as loading node.toml reads it, without the clock: its
/// names, the zone roots, its node CA (signed by the root, its key matching, permitting
/// its name), its identities, and the zone's tables it copies. Returns node.toml.
fn node_bundle(dir: &Path, node: &str, z: &ZoneRoots) -> NodeFile {
    let path = dir.join("node.toml");
    let file = NodeFile::parse(&path, &fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(file.names().unwrap(), (node.to_string(), ZONE.to_string()));
    assert_eq!(file.ca.as_deref(), Some("pki/ca.crt"));
    assert_eq!(file.cert.as_deref(), Some("pki/node.crt"));
    assert_eq!(file.key.as_deref(), Some("pki/node.key"));
    assert_eq!(file.client_ca.as_deref(), Some("pki/client-ca.crt"));
    let roots = zone_model::config::node::trusted_roots(
        &fs::read_to_string(dir.join("pki/ca.crt")).unwrap(),
    )
    .unwrap();
    assert_eq!(roots, z.roots);
    let node_ca = Authority::load(&dir.join("pki/node.crt"), &dir.join("pki/node.key")).unwrap();
    let info = CertInfo::parse(node_ca.cert_der()).unwrap();
    assert_eq!(info.subject_cn, node);
    assert!(info.is_signed_by(&roots[0]));
    assert!(info.permitted.iter().any(|p| p == node));
    let identities = zone_model::config::identities::load(dir, &file, ZONE)
        .unwrap()
        .expect("a zone with [access]");
    let member = z.zone.member(node).is_some();
    assert_eq!(identities.signer.is_some(), member, "{node}: signer");
    if let Some(table) = &file.etcd {
        let members = zone_model::config::zone::validate_members(ZONE, table).unwrap();
        assert_eq!(members, z.zone.members);
        let names: Vec<String> = members.iter().map(|m| m.node_name.clone()).collect();
        let settings = file.settings.as_ref().expect("[settings]");
        let settings = zone_model::settings::Settings::parse(settings, "settings").unwrap();
        assert_eq!(settings, z.zone.settings);
        let backup = file.backup.as_ref().expect("[backup]");
        let backup = zone_model::backup::settings::BackupSettings::parse(backup, "backup").unwrap();
        assert_eq!(backup, z.zone.backup);
        let access = file.access.as_ref().expect("[access]");
        let access = zone_model::policy::Policy::parse(access, "access", ZONE, &names).unwrap();
        assert_eq!(access, z.zone.access);
    }
    file
}

const NODE1_STATE: &str = "node1.example.zone/state";

/// node1's state directory, but its backups ([`backups`]).
fn node1_state(d: &Dir, z: &ZoneRoots, newest: bool) {
    let state = d.root.join(NODE1_STATE);
    let at = |file: &str| format!("{NODE1_STATE}/{file}");

    d.path(&at("revocations.json"));
    let in_force = zone_node::revocation::store::in_force(&state, &z.roots)
        .unwrap()
        .expect("a document in force");
    let ca_doc = Revocations::parse(&d.text("ca/revocations.json")).unwrap();
    assert_eq!(in_force, ca_doc);
    if newest {
        assert_eq!(in_force.to_json(), d.text(&at("revocations.json")));
    }

    // The newest published policy node1 applied: the signed document as published.
    let text = d.text(&at("access-policy.json"));
    let doc = zone_model::zone_doc::verify(&text, ZONE, &z.roots).unwrap();
    assert_eq!(doc.access, z.zone.access);
    assert_eq!(doc.signed_at, at_time());

    d.path(&at("member.json"));
    let record = zone_node::first_start::record::read(&state).expect("a member record");
    assert_eq!(
        record,
        zone_node::first_start::record::Record {
            member_id: zone_etcd_kit::cluster_api::hex_id(MEMBER_ID),
            cluster_id: zone_etcd_kit::cluster_api::hex_id(CLUSTER_ID),
        }
    );
    if newest {
        let again = tempfile::tempdir().unwrap();
        let local = zone_etcd_kit::wal::LocalMember {
            member_id: MEMBER_ID,
            cluster_id: CLUSTER_ID,
        };
        zone_node::first_start::record::remember(again.path(), local).unwrap();
        assert_eq!(
            fs::read(again.path().join("member.json")).unwrap(),
            d.bytes(&at("member.json"))
        );
    }

    // Read as the restart's check reads it (its writer needs a loaded node).
    assert_eq!(d.text(&at("peer-url")).trim(), NODE1_PEER_URL);

    d.path(&at("etcd-step.json"));
    let step = zone_etcd_kit::etcd::shelf::read_step(&state).expect("a step");
    assert_eq!(step.version, ETCD_VERSION);
    assert_eq!(step.binary, Path::new(ETCD_BIN));
    if newest {
        let again = tempfile::tempdir().unwrap();
        zone_etcd_kit::etcd::shelf::write_step(again.path(), &step).unwrap();
        assert_eq!(
            fs::read(again.path().join("etcd-step.json")).unwrap(),
            d.bytes(&at("etcd-step.json"))
        );
    }

    d.path(&at("restored.json"));
    let restored =
        zone_node::restored::restored_record(&state, CLUSTER_ID).expect("a restore record");
    let value = |r: &zone_node::restored::Restored| serde_json::to_value(r).unwrap();
    assert_eq!(value(&restored), value(&restored_record()));
    if newest {
        assert_eq!(
            serde_json::to_string_pretty(&restored).unwrap() + "\n",
            d.text(&at("restored.json"))
        );
    }

    // The links the member's keeper kept, as `check` reads them (since 0.2.0).
    let links_file = at(zone_agent::links::FILE);
    if newest || d.exists(&links_file) {
        d.path(&links_file);
        let kept = zone_agent::links::kept(&state).expect("the kept links");
        assert_eq!(kept, links_record_in(newest, &kept));
        if newest {
            assert_eq!(kept.render(), d.text(&links_file));
        }
    }

    // The ledger's journal: entries the member's etcd did not take yet, as its keeper
    // reads them (`<node> <serial>.json`).
    let journal = at(zone_node::identities::ledger::JOURNAL);
    let expected = ledger_entries();
    assert_eq!(d.names(&journal).len(), expected.len());
    for (serial, entry) in &expected {
        let file = format!("{journal}/{LAPTOP} {serial}.json");
        let text = d.text(&file);
        let read: zone_node::identities::ledger::Entry = serde_json::from_str(&text).unwrap();
        assert_eq!(&read, entry, "{file}");
        if newest {
            assert_eq!(serde_json::to_string(&read).unwrap(), text, "{file}");
        }
    }

    // `snapshot save`'s manifest, read as `snapshot list` and `restore` read it.
    let name = zone_node::snapshot::manifest_name(&zone_node::snapshot::file_name(
        ZONE,
        at_time(),
        SNAPSHOT_REVISION,
    ));
    let text = d.text(&at(&format!("snapshots/{name}")));
    let manifest = zone_node::snapshot::Manifest::parse(&text).unwrap();
    assert_eq!(manifest, snapshot_manifest());
    if newest {
        assert_eq!(
            serde_json::to_string_pretty(&manifest).unwrap() + "\n",
            text
        );
    }
}

fn at_time() -> time::OffsetDateTime {
    super::fixture::at()
}

/// node1's local backup chain, the directory target it shipped to, the drill's record.
fn backups(d: &Dir, z: &ZoneRoots, newest: bool) {
    let state = d.root.join(NODE1_STATE);
    let owner = zone_backup::crypto::load_identities(&d.path(OWNER_KEY)).unwrap();
    // The owner's identity (age-keygen's file) is the zone's recipient.
    let text = d.text(OWNER_KEY);
    let secret = text.lines().find(|l| !l.starts_with('#')).unwrap();
    let identity: age::x25519::Identity = secret.parse().unwrap();
    let recipient = identity.to_public().to_string();
    assert_eq!(z.zone.backup.recipients, [recipient.as_str()]);
    assert!(text.contains(&format!("\n# public key: {recipient}\n")));
    // The boot whose unsynced files the chain holds: the kernel's boot ID (a UUID), or
    // `unknown` where it tells none, and a newline.
    let boot = d.text(&format!("{NODE1_STATE}/backup/unsynced-boot"));
    let id = boot.strip_suffix('\n').unwrap();
    let uuid = id.len() == 36
        && id.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit() && !c.is_ascii_uppercase(),
        });
    assert!(uuid || id == "unknown", "{id:?}");
    let local = LocalChain::open(&state).unwrap();
    // As `backup run` checks it after the machine restarted (the record names another
    // boot): every delta whole, encrypted and plain, every manifest signed, the links in
    // order.
    assert_eq!(
        zone_backup::torn::first_torn(&local, ZONE, &z.roots).unwrap(),
        None
    );
    let links = zone_backup::verify::local_links(&local, ZONE, &z.roots).unwrap();
    let kinds: Vec<Kind> = links.iter().map(|v| v.link.kind).collect();
    assert_eq!(
        kinds,
        [Kind::Full, Kind::Delta, Kind::Gap, Kind::Full, Kind::Delta]
    );
    let revisions: Vec<(i64, i64)> = links
        .iter()
        .map(|v| (v.link.first_revision, v.link.last_revision))
        .collect();
    let first = FIRST_FULL_REVISION;
    assert_eq!(
        revisions,
        [
            (first, first),
            (first + 1, first + 2),
            (first + 3, GAP_LAST),
            (GAP_LAST, GAP_LAST),
            (GAP_LAST + 1, GAP_LAST)
        ]
    );
    for v in &links {
        // Each manifest, its object and the object's plain copy.
        d.path(&format!("{NODE1_STATE}/backup/chain/{}", v.name));
        if let Some(object) = &v.link.object {
            let plain = object.strip_suffix(".age").unwrap();
            d.path(&format!("{NODE1_STATE}/backup/chain/{object}"));
            d.path(&format!("{NODE1_STATE}/backup/plain/{plain}"));
        }
        let l = &v.link;
        assert_eq!(l.zone, ZONE);
        assert_eq!(l.cluster_id, zone_etcd_kit::cluster_api::hex_id(CLUSTER_ID));
        assert_eq!((l.session.as_str(), l.writer.as_str()), (SESSION, NODE1));
    }
    assert_eq!(links[0].link.first_time_ms, at_ms());
    assert_eq!(links[1].link.last_time_ms, at_ms() + 10_000);

    // Every object: decrypted with the owner's identity, the same as the plain copy.
    for v in &links {
        let Some(object) = &v.link.object else {
            continue;
        };
        let encrypted = fs::read(local.object_path(object)).unwrap();
        let plain = fs::read(local.plain_path(object)).unwrap();
        let decrypted = zone_backup::crypto::decrypt_bytes(&encrypted, &owner).unwrap();
        assert_eq!(decrypted, plain, "{object}");
        match v.link.kind {
            Kind::Full => {
                let mut integrity = zone_etcd_kit::cluster_api::Integrity::default();
                integrity.update(&plain);
                let (size, _) = integrity.finish().unwrap();
                assert_eq!(size, plain.len() as u64);
                assert!(plain.starts_with(FULL_STAND_IN.as_bytes()), "{object}");
            }
            Kind::Delta => delta(&v.link, &plain, newest),
            Kind::Gap => unreachable!("a gap has no object"),
        }
    }
    if newest {
        // Each manifest's signed body, as this release serialises a link (the envelope's
        // signature differs each time: ECDSA).
        for v in &links {
            let stored = local.read_manifest(&v.name).unwrap();
            let envelope: serde_json::Value = serde_json::from_slice(&stored.bytes).unwrap();
            let body = envelope["body"].as_str().unwrap();
            assert_eq!(serde_json::to_string(&v.link).unwrap(), body, "{}", v.name);
        }
    }

    // The target: what a drill and a restore read, and the head a new writer reads.
    d.path(&format!("{TARGET_DIR}/{}", zone_backup::head::NAME));
    for v in &links {
        d.path(&format!("{TARGET_DIR}/{}", v.name));
        if let Some(object) = &v.link.object {
            d.path(&format!("{TARGET_DIR}/{object}"));
        }
    }
    let target = DirTarget::new(TARGET_URL, &d.root.join(TARGET_DIR));
    let (stored, _) = zone_backup::verify::target_links(&target, Some(ZONE), &z.roots).unwrap();
    assert_eq!(stored, links);
    let deep: Vec<&_> = links.iter().collect();
    zone_backup::verify::target_holds(&target, &local, &links, &deep).unwrap();
    match zone_backup::head::read(&target, ZONE, &z.roots).unwrap() {
        zone_backup::head::Head::Fresh(fresh) => {
            assert_eq!(fresh.next_session, SESSION);
            assert_eq!(&fresh.link, links.last().unwrap());
            if newest {
                let again = zone_backup::head::record(Some(&fresh.stored.bytes), SESSION);
                assert_eq!(again, d.bytes(&format!("{TARGET_DIR}/head")));
            }
        }
        zone_backup::head::Head::Listed(why) => panic!("the head is not used: {why}"),
    }

    // `backup drill`'s record.
    let text = d.bytes(&format!("{NODE1_STATE}/backup/drill.json"));
    let drill: zone_backup::report::Drill = serde_json::from_slice(&text).unwrap();
    assert_eq!(drill, drill_record());
    if newest {
        assert_eq!(serde_json::to_vec(&drill).unwrap(), text);
    }
}

/// A delta segment's plaintext: its header and revisions, the golden delta's (or none:
/// the heartbeat); encoded again by this release, the same lines.
fn delta(link: &Link, plain: &[u8], newest: bool) {
    use std::io::Read;
    let (header, revisions) =
        zone_backup::segment::decode(plain, ZONE, zone_backup::segment::MAX_SEGMENT_BYTES).unwrap();
    assert_eq!(
        (header.first_revision, header.last_revision),
        (link.first_revision, link.last_revision)
    );
    if revisions.is_empty() {
        assert_eq!(link.first_revision, link.last_revision + 1, "a heartbeat");
    } else {
        assert_eq!(revisions, delta_revisions());
    }
    if newest {
        // gzip's bytes belong to the compressor's version: the lines are the format.
        let lines = |gz: &[u8]| {
            let mut out = String::new();
            flate2::read::GzDecoder::new(gz)
                .read_to_string(&mut out)
                .unwrap();
            out
        };
        let again =
            zone_backup::segment::encode(ZONE, link.first_revision, link.last_revision, &revisions);
        assert_eq!(lines(&again), lines(plain));
    }
}

/// laptop's state directory: the cached zone document, the revocations it learnt, its
/// service's gateway password.
fn laptop_state(d: &Dir, z: &ZoneRoots) {
    let state = d.root.join(LAPTOP).join("state");
    let at = |file: &str| format!("{LAPTOP}/state/{file}");
    // The nameservice's cache: verified again on every use, as the nameservice's reader
    // does.
    let cached = d.text(&at(zone_node::nameservice::CACHE_FILE));
    let doc = zone_model::zone_doc::verify(&cached, ZONE, &z.roots).unwrap();
    assert_eq!(doc.members, z.zone.members);
    d.path(&at("revocations.json"));
    let in_force = zone_node::revocation::store::in_force(&state, &z.roots)
        .unwrap()
        .expect("a document in force");
    assert_eq!(in_force.node_names(), [REVOKED]);
    // The password is taken as it is, not made again.
    let file = at(&format!("services/{SERVICE}/gateway-password"));
    let before = d.text(&file);
    // As `new_password` makes it: 43 characters of URL-safe base64, no newline.
    assert_eq!(before.len(), 43);
    assert!(zone_node::identities::password::well_formed(&before));
    let (_, password) =
        zone_node::identities::password::load_or_make(&state.join("services").join(SERVICE))
            .unwrap();
    assert_eq!(password, before.trim());
    assert_eq!(d.text(&file), before);
}

/// The values zone-etcd keeps in the zone's etcd under `zone-etcd/`, one file per key.
fn etcd(d: &Dir, z: &ZoneRoots, release: &str, newest: bool) {
    let key = |k: &str| format!("{ETCD_DIR}/{k}");

    let text = d.text(&key(zone_node::revocation::doc::KEY));
    let doc = revocations(&text, &z.roots, &d.root.join(CA_DIR));
    if newest {
        assert_eq!(doc.to_json(), text);
    }

    let text = d.text(&key(zone_node::policy::in_force::POLICY_KEY));
    let policy = zone_model::zone_doc::verify(&text, ZONE, &z.roots).unwrap();
    assert_eq!(policy.access, z.zone.access);

    let text = d.text(&key(&format!(
        "{}{NODE1}",
        zone_node::policy::record::APPLIED_PREFIX
    )));
    let applied: zone_node::policy::record::Applied = serde_json::from_str(&text).unwrap();
    assert_eq!(applied, applied_record(&z.roots[0].fingerprint_hex()));
    if newest {
        assert_eq!(serde_json::to_string(&applied).unwrap(), text);
    }

    // The ledger: what `revoke --node` lists (the branch covers the identity it signed).
    let mut entries = Vec::new();
    for (serial, entry) in ledger_entries() {
        let text = d.text(&key(&zone_node::identities::ledger::key(LAPTOP, serial)));
        let read: zone_node::identities::ledger::Entry = serde_json::from_str(&text).unwrap();
        assert_eq!(read, entry, "{serial}");
        if newest {
            assert_eq!(serde_json::to_string(&read).unwrap(), text);
        }
        entries.push((serial.to_string(), Some(read)));
    }
    assert_eq!(
        zone_node::identities::ledger::to_list(entries, at_time()),
        ["5eed0001", "5eed0002"]
    );
    // Marks: their readers look at the key only; the value is an empty object.
    for mark in [
        format!("{}{LAPTOP}", zone_node::identities::ledger::NODES_PREFIX),
        format!(
            "{}{SERVICE}@{LAPTOP}",
            zone_node::identities::password::MARKS_PREFIX
        ),
    ] {
        let value: serde_json::Value = serde_json::from_str(&d.text(&key(&mark))).unwrap();
        assert!(value.is_object(), "{mark}");
        assert_eq!(d.text(&key(&mark)), zone_node::identities::ledger::MARK);
    }

    let text = d.text(&key(&format!("{}{NODE1}", zone_model::release::PREFIX)));
    let record = zone_model::release::Record::parse(text.as_bytes()).unwrap();
    // The levels are the writing release's: 1 until 0.3.0 brought level 2.
    let levels = if newest {
        (zone_model::release::READS, zone_model::release::WRITES)
    } else {
        (1, 1)
    };
    assert_eq!(
        record,
        zone_model::release::Record {
            reads: levels.0,
            writes: levels.1,
            ..zone_model::release::Record::new(release, COMMIT, AT)
        }
    );
    if newest {
        assert_eq!(record.render(), text);
    }

    let text = d.text(&key(zone_node::rollout::TARGET_KEY));
    let target: zone_node::rollout::Target = serde_json::from_str(&text).unwrap();
    assert_eq!(target, rollout_target());
    let turn_text = d.text(&key(zone_node::rollout::TURN_KEY));
    let turn: zone_node::rollout::Turn = serde_json::from_str(&turn_text).unwrap();
    assert_eq!(turn, rollout_turn());
    if newest {
        assert_eq!(serde_json::to_string(&target).unwrap(), text);
        assert_eq!(serde_json::to_string(&turn).unwrap(), turn_text);
    }
    // A member's wait (written since 0.2.0's work began; absent from older directories).
    let waiting_key = key(&format!("{}{NODE2}", zone_node::rollout::WAITING_PREFIX));
    if newest || d.exists(&waiting_key) {
        let text = d.text(&waiting_key);
        let waiting: zone_node::rollout::Waiting = serde_json::from_str(&text).unwrap();
        assert_eq!(waiting, rollout_waiting());
        if newest {
            assert_eq!(serde_json::to_string(&waiting).unwrap(), text);
        }
    }

    // A member's links (written since 0.2.0; absent from older directories).
    let links_key = key(&format!("{}{NODE1}", zone_model::links::PREFIX));
    if newest || d.exists(&links_key) {
        let text = d.text(&links_key);
        let links = zone_model::links::Links::parse(text.as_bytes()).unwrap();
        assert_eq!(links, links_record_in(newest, &links));
        if newest {
            assert_eq!(links.render(), text);
        }
    }

    // The quota decider's records (written since 0.3.0's work; absent from older
    // directories).
    let uses_key = key(zone_model::quota::record::USE_KEY);
    if newest || d.exists(&uses_key) {
        let text = d.text(&uses_key);
        let uses = zone_model::quota::record::Uses::parse(text.as_bytes()).unwrap();
        assert_eq!(uses, quota_uses());
        if newest {
            assert_eq!(uses.render(), text);
        }
        let stop_key = key(&quota_stop().key());
        let text = d.text(&stop_key);
        let stop = zone_model::quota::record::Stopped::parse(text.as_bytes()).unwrap();
        assert_eq!(stop, quota_stop());
        if newest {
            assert_eq!(stop.render(), text);
        }
    }

    // The backup election's leader, read as `active_writer` reads it.
    let election = key(zone_backup::runner::active::ELECTION);
    assert_eq!(d.names(&election), [ELECTION_LEASE]);
    let value = d.text(&format!("{election}/{ELECTION_LEASE}"));
    assert_eq!(value.split_once(' '), Some((NODE1, SESSION)));

    let text = d.text(&key(&format!("{}{NODE1}", zone_backup::coverage::PREFIX)));
    let coverage: zone_backup::coverage::Coverage = serde_json::from_str(&text).unwrap();
    assert_eq!(
        coverage,
        zone_backup::coverage::Coverage {
            node: NODE1.into(),
            oldest_revision: FIRST_FULL_REVISION,
            oldest_ms: at_ms(),
            newest_revision: GAP_LAST,
            newest_ms: at_ms() + 25_000,
        }
    );
    if newest {
        assert_eq!(serde_json::to_string(&coverage).unwrap(), text);
    }

    let drill = d.bytes(&key(crate::commands::backup::DRILL_KEY));
    let read: zone_backup::report::Drill = serde_json::from_slice(&drill).unwrap();
    assert_eq!(read, drill_record());
    assert_eq!(drill, d.bytes(&format!("{NODE1_STATE}/backup/drill.json")));
}
