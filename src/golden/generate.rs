//! Writes this release's golden files (`tests/golden/v<version>/`) with the real writers;
//! run on purpose only, once per release (see tests/golden/README.md):
//!
//! ```text
//! ZONE_ETCD_WRITE_GOLDEN=1 cargo test -p zone-etcd --lib golden::generate -- --ignored
//! ```
//!
//! With `ZONE_ETCD_GOLDEN_RELEASE=0.2.0-dev` it writes `tests/golden/v0.2.0-dev/` instead
//! (the work towards a release, once it writes a format otherwise than the last release:
//! the README says when), naming that release in what it writes.
//!
//! The directory is built beside its place and renamed into it once every check of
//! [`super::check`] passed on it; an existing directory is never written again (golden
//! files are never edited). What needs a live etcd is written with the serializer its
//! writer uses, as that writer would (noted at each step); certificates carry the time
//! they were made (the real writers take the clock), every other time is [`AT`].

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use age::secrecy::ExposeSecret;
use ring::digest::{digest, SHA256};
use zone_pki::revocation::RevokedCa;
use zone_pki::CertInfo;

use super::fixture::*;
use zone_backup::chain::Link;
use zone_backup::destination::file::DirTarget;
use zone_backup::destination::Target;
use zone_backup::local::LocalChain;
use zone_backup::runner::writer::{ChainWriter, FullReady, Head, LeaseGuard};
use zone_node::revocation::doc::{Listed, Revocations, FORMAT_KINDS};
use zone_node::revocation::kind::Kind;

#[test]
#[ignore = "writes tests/golden/v<version>/: run it on purpose (ZONE_ETCD_WRITE_GOLDEN=1)"]
fn write_this_releases_golden_files() {
    if std::env::var_os("ZONE_ETCD_WRITE_GOLDEN").is_none() {
        eprintln!("golden: set ZONE_ETCD_WRITE_GOLDEN=1 to write tests/golden/v{RELEASE}/");
        return;
    }
    let release = std::env::var("ZONE_ETCD_GOLDEN_RELEASE").unwrap_or_else(|_| RELEASE.to_string());
    let name = format!("v{release}");
    assert!(
        super::files::release_of(&name).is_some(),
        "ZONE_ETCD_GOLDEN_RELEASE={release}: not a release (0.2.0) nor the work towards one (0.2.0-dev)"
    );
    let place = super::files::golden_dir().join(&name);
    assert!(
        !place.exists(),
        "{} exists: golden files are never written again (a new release adds its own directory)",
        place.display()
    );
    let building = super::files::golden_dir().join(format!(".building-{name}"));
    if building.exists() {
        fs::remove_dir_all(&building).unwrap();
    }
    fs::create_dir_all(&building).unwrap();
    write_all(&building, &release);
    // What was written reads back, as the suite will read it.
    let copy = super::files::private_copy(&building);
    super::added::all(copy.path());
    let seen = super::check::all(copy.path(), &release, true);
    let written = super::files::files_under(&building);
    let unread: Vec<&String> = written.difference(&seen).collect();
    assert!(unread.is_empty(), "written but not checked: {unread:?}");
    fs::rename(&building, &place).unwrap();
    eprintln!(
        "golden: wrote {} ({} files)",
        place.display(),
        written.len()
    );
}

/// Every golden file of `release` (this build, under that name) into `root`.
fn write_all(root: &Path, release: &str) {
    let owner = age::x25519::Identity::generate();
    let recipient = owner.to_public().to_string();
    // As age-keygen writes an identity file (zone-etcd reads it; it never writes one).
    write(
        &root.join(OWNER_KEY),
        &format!(
            "# TEST KEY of zone-etcd's golden files (tests/golden/README.md): it protects nothing.\n# created: {AT}\n# public key: {recipient}\n{}\n",
            owner.to_string().expose_secret()
        ),
        zone_io::KEY_MODE,
    );
    let zone_file = root.join(ZONE_FILE);
    write(&zone_file, &zone_toml(&recipient), zone_io::PUBLIC_MODE);

    // The owner's machine: the CA directory, bundles, the request flow, `ca admin`.
    let ca = root.join(CA_DIR);
    crate::commands::ca_init::run(ZONE, &ca).unwrap();
    crate::commands::activate::run(&ca, &zone_file, NODE1, None, &root.join(NODE1)).unwrap();
    crate::commands::activate::run(
        &ca,
        &zone_file,
        LAPTOP,
        Some(NAMESERVICE),
        &root.join(LAPTOP),
    )
    .unwrap();
    // A node activated, then revoked: only the CA directory's record of it is kept.
    let gone = tempfile::tempdir().unwrap();
    crate::commands::activate::run(&ca, &zone_file, REVOKED, None, &gone.path().join("b")).unwrap();
    let request = root.join(REQUEST_DIR);
    crate::commands::activate::request::run(NODE2, &request).unwrap();
    crate::commands::activate::answer::run(
        &ca,
        &zone_file,
        &request.join(crate::commands::activate::request::REQUEST_FILE),
        None,
        &root.join(ANSWER_DIR),
    )
    .unwrap();
    crate::commands::ca_admin::run(&ca, &root.join(ADMIN_DIR)).unwrap();

    let zone = zone_node::ca_dir::zone_defaults::load_zone(&zone_file, &ca).unwrap();
    let root_ca = zone_node::ca_dir::load_root(&ca, ZONE).unwrap();
    let roots = vec![CertInfo::parse(root_ca.cert_der()).unwrap()];

    // `zone sign` (and `zone publish`, which signs the same document).
    let doc = zone_model::zone_doc::sign(&zone, &root_ca, at()).unwrap();
    zone_io::write_atomic(&root.join(ZONE_DOC), doc.as_bytes(), zone_io::PUBLIC_MODE).unwrap();

    // `revoke --node` in a zone at format level 2: the CRL names every node CA recorded as
    // issued to the node, and its branch (a client chain's: on the client port's CRL).
    let mut entries: Vec<Listed> = zone_node::revocation::issued::issued_to(&ca, REVOKED)
        .unwrap()
        .into_iter()
        .map(|info| Listed {
            node: REVOKED.to_string(),
            entry: RevokedCa {
                serial: info.serial().to_vec(),
                revoked_at: at(),
            },
            kind: Kind::of(&info, &roots),
        })
        .collect();
    entries.push(Listed {
        node: REVOKED.to_string(),
        entry: RevokedCa {
            serial: REVOKED_BRANCH.to_vec(),
            revoked_at: at(),
        },
        kind: Kind::Client,
    });
    let revocations =
        Revocations::issue(&root_ca, CRL_NUMBER, &entries, at(), FORMAT_KINDS).unwrap();
    let json = revocations.to_json();
    zone_io::write_atomic(
        &ca.join(zone_node::ca_dir::CA_DOC),
        json.as_bytes(),
        zone_io::PUBLIC_MODE,
    )
    .unwrap();

    // `ca rotate`: the CA directory in the middle of a rotation of the zone's roots.
    crate::commands::ca_rotation::begin(&ca, &root.join(ROTATING_DIR)).unwrap();

    // node1's state directory.
    let node = zone_node::node::Node::load(&root.join(NODE1).join("node.toml")).unwrap();
    let state = node.state_dir.clone();
    zone_node::revocation::store::install(&state, &roots, &revocations).unwrap();
    zone_node::policy::in_force::keep(&state, &doc).unwrap();
    zone_node::first_start::record::remember(
        &state,
        zone_etcd_kit::wal::LocalMember {
            member_id: MEMBER_ID,
            cluster_id: CLUSTER_ID,
        },
    )
    .unwrap();
    zone_node::preflight::restart::remember_peer_url(&node, NODE1_PEER_URL).unwrap();
    zone_etcd_kit::etcd::shelf::write_step(
        &state,
        &zone_etcd_kit::etcd::shelf::Shelved {
            version: ETCD_VERSION.into(),
            binary: ETCD_BIN.into(),
        },
    )
    .unwrap();
    // `restore` writes it after etcdutl restored a snapshot: its serializer, as it does.
    let restored = restored_record();
    zone_io::write_atomic(
        &state.join(zone_node::restored::RECORD_FILE),
        (serde_json::to_string_pretty(&restored).unwrap() + "\n").as_bytes(),
        zone_io::PUBLIC_MODE,
    )
    .unwrap();
    // The links measurer keeps the record it put (`check` reads it).
    zone_io::write_atomic(
        &state.join(zone_agent::links::FILE),
        links_record().render().as_bytes(),
        zone_io::PUBLIC_MODE,
    )
    .unwrap();
    // The identity endpoint's ledger, when the member's etcd did not take the entry (here:
    // no client leaves yet, so no etcd was asked).
    let nowhere = tempfile::tempdir().unwrap();
    for (serial, entry) in ledger_entries() {
        zone_node::identities::ledger::record(
            NODE1_CLIENT_URL,
            &zone_model::leaf_paths::LeafPaths::for_state_dir(nowhere.path()),
            &state,
            LAPTOP,
            serial,
            &entry,
        )
        .unwrap();
    }
    // `snapshot save` writes it beside the snapshot etcd streamed: its serializer, as it does.
    let snapshots = state.join("snapshots");
    zone_io::ensure_private_dir(&snapshots).unwrap();
    let name = zone_node::snapshot::file_name(ZONE, at(), SNAPSHOT_REVISION);
    zone_io::write_atomic(
        &snapshots.join(zone_node::snapshot::manifest_name(&name)),
        (serde_json::to_string_pretty(&snapshot_manifest()).unwrap() + "\n").as_bytes(),
        0o600,
    )
    .unwrap();

    // The backups: node1's local chain, a directory target, the records in etcd.
    let links = write_chain(&node, root, &owner);

    // laptop's state directory: a node that follows the nameservice.
    let laptop_state = root.join(LAPTOP).join("state");
    zone_io::ensure_private_dir(&laptop_state).unwrap();
    zone_io::write_atomic(
        &zone_node::nameservice::cache_path(&laptop_state),
        doc.as_bytes(),
        zone_io::PUBLIC_MODE,
    )
    .unwrap();
    zone_node::revocation::store::install(&laptop_state, &roots, &revocations).unwrap();
    let service = laptop_state.join("services").join(SERVICE);
    zone_io::ensure_private_tree(&laptop_state, Path::new("services").join(SERVICE).as_path())
        .unwrap();
    zone_node::identities::password::load_or_make(&service).unwrap();

    // The zone's keys under zone-etcd/, each value as its writer puts it.
    let etcd = |key: &str, value: &[u8]| {
        let path = root.join(ETCD_DIR).join(key);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, value).unwrap();
    };
    etcd(zone_node::revocation::doc::KEY, json.as_bytes());
    etcd(zone_node::policy::in_force::POLICY_KEY, doc.as_bytes());
    let applied = applied_record(&roots[0].fingerprint_hex());
    etcd(
        &format!("{}{NODE1}", zone_node::policy::record::APPLIED_PREFIX),
        serde_json::to_string(&applied).unwrap().as_bytes(),
    );
    for (serial, entry) in ledger_entries() {
        etcd(
            &zone_node::identities::ledger::key(LAPTOP, serial),
            serde_json::to_string(&entry).unwrap().as_bytes(),
        );
    }
    etcd(
        &format!("{}{LAPTOP}", zone_node::identities::ledger::NODES_PREFIX),
        zone_node::identities::ledger::MARK.as_bytes(),
    );
    etcd(
        &format!(
            "{}{SERVICE}@{LAPTOP}",
            zone_node::identities::password::MARKS_PREFIX
        ),
        zone_node::identities::ledger::MARK.as_bytes(),
    );
    etcd(
        &format!("{}{NODE1}", zone_model::release::PREFIX),
        release_record(release).render().as_bytes(),
    );
    etcd(
        zone_node::rollout::TARGET_KEY,
        serde_json::to_string(&rollout_target()).unwrap().as_bytes(),
    );
    etcd(
        zone_node::rollout::TURN_KEY,
        serde_json::to_string(&rollout_turn()).unwrap().as_bytes(),
    );
    etcd(
        &format!("{}{NODE2}", zone_node::rollout::WAITING_PREFIX),
        serde_json::to_string(&rollout_waiting())
            .unwrap()
            .as_bytes(),
    );
    etcd(
        &format!("{}{NODE1}", zone_model::links::PREFIX),
        links_record().render().as_bytes(),
    );
    etcd(
        zone_model::quota::record::USE_KEY,
        quota_uses().render().as_bytes(),
    );
    etcd(&quota_stop().key(), quota_stop().render().as_bytes());
    // etcd's election keeps the leader's value at `<election>/<lease id, hex>`.
    etcd(
        &format!("{}/{ELECTION_LEASE}", zone_backup::runner::active::ELECTION),
        format!("{NODE1} {SESSION}").as_bytes(),
    );
    let coverage = zone_backup::coverage::of_links(NODE1, Some(&links[0]), links.last())
        .expect("a chain with a full snapshot");
    etcd(
        &format!("{}{NODE1}", zone_backup::coverage::PREFIX),
        serde_json::to_string(&coverage).unwrap().as_bytes(),
    );
    // `backup drill` keeps its result in the local chain's directory and in etcd.
    let drill = serde_json::to_vec(&drill_record()).unwrap();
    zone_io::write_atomic(
        &state
            .join("backup")
            .join(crate::commands::backup::DRILL_FILE),
        &drill,
        zone_io::KEY_MODE,
    )
    .unwrap();
    etcd(crate::commands::backup::DRILL_KEY, &drill);

    // Not formats of their own: the state lock's empty file, etcd's CRL file (made again
    // from revocations.json at every start), the backup signer (issued again when
    // missing; its chain is in every manifest).
    for dir in [&state, &laptop_state] {
        fs::remove_file(dir.join("lock")).unwrap();
        fs::remove_file(zone_node::revocation::store::crl_path(dir)).unwrap();
        fs::remove_file(zone_node::revocation::store::client_crl_path(dir)).unwrap();
    }
    let (signer_crt, signer_key) = zone_backup::signing::signer_paths(&state);
    fs::remove_file(signer_crt).unwrap();
    fs::remove_file(signer_key).unwrap();
}

/// node1's local chain, written by the real chain writer, and the same links shipped to a
/// directory target with its head record. Returns the links in chain order.
fn write_chain(
    node: &zone_node::node::Node,
    root: &Path,
    owner: &age::x25519::Identity,
) -> Vec<Link> {
    let local = Arc::new(LocalChain::open(&node.state_dir).unwrap());
    let guard = Arc::new(LeaseGuard::default());
    guard.renewed(Instant::now(), Duration::from_secs(600), Duration::ZERO);
    let recipients = vec![owner.to_public()];
    let mut writer = ChainWriter {
        local: local.clone(),
        zone: ZONE.into(),
        cluster_id: zone_etcd_kit::cluster_api::hex_id(CLUSTER_ID),
        session: SESSION.into(),
        node: NODE1.into(),
        recipients: recipients.clone(),
        signer: zone_node::backup_node::signer(node).unwrap(),
        guard,
        head: Head {
            seq: 0,
            sha256: None,
            next_delta: FIRST_FULL_REVISION + 1,
        },
    };
    let full =
        |revision: i64, taken_ms: i64| full_snapshot(&local, &recipients, revision, taken_ms);
    let links = vec![
        writer
            .append_full(full(FIRST_FULL_REVISION, at_ms()))
            .unwrap(),
        writer
            .append_delta(&delta_revisions(), at_ms() + 10_000)
            .unwrap(),
        writer.append_gap(GAP_LAST, at_ms() + 20_000).unwrap(),
        writer
            .append_full(full(GAP_LAST, at_ms() + 21_000))
            .unwrap(),
        // A heartbeat: nothing changed up to its time.
        writer.append_delta(&[], at_ms() + 25_000).unwrap(),
    ];
    let target_dir = root.join(TARGET_DIR);
    fs::create_dir_all(&target_dir).unwrap();
    let target = DirTarget::new(TARGET_URL, &target_dir);
    let mut last = None;
    for link in &links {
        let manifest = fs::read(local.object_path(&link.manifest_name())).unwrap();
        if let Some(object) = &link.object {
            target
                .put(object, &fs::read(local.object_path(object)).unwrap())
                .unwrap();
        }
        target.put(&link.manifest_name(), &manifest).unwrap();
        last = Some(manifest);
    }
    target
        .put(
            zone_backup::head::NAME,
            &zone_backup::head::record(last.as_deref(), SESSION),
        )
        .unwrap();
    links
}

/// A full snapshot ready for its link, as `runner::full` makes one: its plaintext in the
/// local chain's `plain/full/`, encrypted to the owner beside the objects. The plaintext
/// stands in for etcd's database (etcd's format, not zone-etcd's), followed by etcd's
/// integrity hash, as a snapshot stream ends.
fn full_snapshot(
    local: &LocalChain,
    recipients: &[age::x25519::Recipient],
    revision: i64,
    taken_ms: i64,
) -> FullReady {
    let mut bytes = format!("{FULL_STAND_IN} (revision {revision})\n").into_bytes();
    let hash = digest(&SHA256, &bytes);
    bytes.extend_from_slice(hash.as_ref());
    let plain = local.temporary("plain/full").unwrap();
    fs::write(plain.path(), &bytes).unwrap();
    let pending: PathBuf = local
        .root()
        .join("chain/full")
        .join(format!(".pending-{SESSION}-r{revision}.age"));
    let encrypted = zone_backup::crypto::encrypt_file(plain.path(), &pending, recipients).unwrap();
    FullReady {
        encrypted: pending,
        plain,
        revision,
        taken_ms,
        size: encrypted.size,
        sha256: zone_io::hex(&encrypted.sha256),
    }
}

fn write(path: &Path, text: &str, mode: u32) {
    zone_io::write_atomic(path, text.as_bytes(), mode).unwrap();
}
