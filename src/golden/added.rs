//! A release directory's JSON machine formats read again with a field a later release
//! might add (issue 50, item 4): the snapshot manifest, each backup manifest (its
//! envelope and its signed body), each delta segment (its header, revision lines and
//! events) and the target's head record. Each must read to the same value as the file
//! as written; the chain's hashes are of the bytes as stored, so an added field never
//! breaks them. Works on a private copy, which it leaves as it found it.

use std::fs;
use std::io::{Read, Write};
use std::path::Path;

use serde_json::Value;
use zone_pki::CertInfo;

use super::fixture::*;
use zone_backup::chain::Link;
use zone_backup::destination::file::DirTarget;
use zone_backup::destination::Target;
use zone_backup::head::{self, Head};
use zone_backup::manifest;
use zone_backup::segment;

/// The field added everywhere, as a later release might write it.
const ADDED: &str = "compression_level";

fn with_added(value: &mut Value) {
    value
        .as_object_mut()
        .expect("a JSON object")
        .insert(ADDED.into(), Value::from(3));
}

/// Reads every JSON machine format of the directory at `root` with a field added.
pub fn all(root: &Path) {
    let ca = zone_node::ca_dir::load_root(&root.join(CA_DIR), ZONE).unwrap();
    let roots = vec![CertInfo::parse(ca.cert_der()).unwrap()];
    let state = root.join(NODE1).join("state");
    snapshot_manifest(&state);
    chain_manifests(&state.join("backup/chain/chain"), &roots);
    delta_segments(&state.join("backup/plain/delta"));
    head_record(&root.join(TARGET_DIR), &roots);
}

fn snapshot_manifest(state: &Path) {
    let name = zone_node::snapshot::manifest_name(&zone_node::snapshot::file_name(
        ZONE,
        at(),
        SNAPSHOT_REVISION,
    ));
    let text = fs::read_to_string(state.join("snapshots").join(name)).unwrap();
    let mut value: Value = serde_json::from_str(&text).unwrap();
    with_added(&mut value);
    let read = zone_node::snapshot::Manifest::parse(&value.to_string()).unwrap();
    assert_eq!(read, zone_node::snapshot::Manifest::parse(&text).unwrap());
}

fn chain_manifests(dir: &Path, roots: &[CertInfo]) {
    let names = files_in(dir);
    assert!(!names.is_empty(), "{}: no manifests", dir.display());
    for name in names {
        let bytes = fs::read(dir.join(&name)).unwrap();
        let stored = manifest::stored(&format!("chain/{name}"), bytes.clone());
        let as_written = manifest::verify(&stored, ZONE, roots).unwrap();
        // A field beside the envelope's four (outside the signature): verified the same,
        // its hash the hash of the bytes as stored.
        let mut envelope: Value = serde_json::from_slice(&bytes).unwrap();
        with_added(&mut envelope);
        let added = manifest::stored(&stored.name, serde_json::to_vec(&envelope).unwrap());
        let read = manifest::verify(&added, ZONE, roots).unwrap();
        assert_eq!(read.link, as_written.link, "{name}");
        assert_eq!(read.sha256, zone_backup::local::sha256_hex(&added.bytes));
        // A field in the signed body (its signature is no longer the writer's, so read as
        // the body alone, as retention and the head read it).
        let mut envelope: Value = serde_json::from_slice(&bytes).unwrap();
        let mut body: Value = serde_json::from_str(envelope["body"].as_str().unwrap()).unwrap();
        with_added(&mut body);
        envelope["body"] = Value::from(body.to_string());
        let link: Link = manifest::body_unverified(&serde_json::to_vec(&envelope).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(link, as_written.link, "{name}");
    }
}

fn delta_segments(dir: &Path) {
    let names = files_in(dir);
    assert!(!names.is_empty(), "{}: no delta segments", dir.display());
    for name in names {
        let bytes = fs::read(dir.join(&name)).unwrap();
        let as_written = segment::decode(&bytes, ZONE, segment::MAX_SEGMENT_BYTES).unwrap();
        let mut text = String::new();
        flate2::read::GzDecoder::new(bytes.as_slice())
            .read_to_string(&mut text)
            .unwrap();
        let mut lines = String::new();
        for line in text.lines() {
            let mut value: Value = serde_json::from_str(line).unwrap();
            with_added(&mut value);
            if let Some(events) = value.get_mut("events").and_then(Value::as_array_mut) {
                events.iter_mut().for_each(with_added);
            }
            lines += &format!("{value}\n");
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(lines.as_bytes()).unwrap();
        let added = gz.finish().unwrap();
        let read = segment::decode(&added, ZONE, segment::MAX_SEGMENT_BYTES)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(read, as_written, "{name}");
    }
}

fn head_record(target_dir: &Path, roots: &[CertInfo]) {
    let copy = super::files::private_copy(target_dir);
    let path = copy.path().join(head::NAME);
    let mut record: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    with_added(&mut record);
    fs::write(&path, serde_json::to_vec(&record).unwrap()).unwrap();
    let target = DirTarget::new(TARGET_URL, copy.path());
    let written = fs::read(target_dir.join(head::NAME)).unwrap();
    let manifest = serde_json::from_slice::<Value>(&written).unwrap()["manifest"].clone();
    match head::read(&target, ZONE, roots).unwrap() {
        Head::Fresh(fresh) => {
            assert_eq!(fresh.next_session, SESSION);
            use base64::Engine as _;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(manifest.as_str().unwrap())
                .unwrap();
            assert_eq!(fresh.stored.bytes, bytes);
            assert!(target.get(&fresh.stored.name, 1 << 20).unwrap().is_some());
        }
        Head::Listed(why) => panic!("a head with an added field was not used: {why}"),
    }
}

/// The names of the files directly in `dir`, sorted.
fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
