//! node.toml, the zone file and the signed zone document as other releases write and read
//! them (issue 50, item 4): keys this release does not know are ignored and named, every
//! other mistake is refused as before; and what this release writes holds no key that
//! holds its default.

use std::path::Path;

use serde_json::{json, Value};
use zone_pki::{Authority, CertInfo};

use super::member::{Member, Protocol, RawMember};
use super::members::validate_members;
use super::node_file::NodeFile;
use super::zone::Zone;

const NODE_TOML: &str = "name = \"node1.example.zone\"\nca = \"pki/ca.crt\"\ncert = \"pki/node.crt\"\nkey = \"pki/node.key\"\n\n[[etcd]]\nnode_name = \"node1.example.zone\"\naddress = \"10.0.0.1\"\n";

const ZONE_TOML: &str = "name = \"example.zone\"\n\n[[addr_info]]\nprotocol = \"https\"\naddress = \"10.0.0.53\"\nport = 3456\n\n[[etcd]]\nnode_name = \"node1.example.zone\"\naddress = \"10.0.0.1\"\n\n[settings]\nheartbeat_interval_ms = 100\n";

/// The keys named, sorted (TOML tables come in the parser's order).
fn keys(ignored: &super::Ignored) -> Vec<String> {
    let mut keys: Vec<String> = ignored.keys().iter().map(|k| k.key.clone()).collect();
    keys.sort();
    keys
}

#[test]
fn node_toml_with_a_newer_releases_keys_reads_the_same_and_names_them() {
    let path = Path::new("/etc/zone-etcd/node.toml");
    let plain = NodeFile::parse(path, NODE_TOML).unwrap();
    assert!(plain.ignored.is_empty());
    let newer = NODE_TOML.replace(
        "key = \"pki/node.key\"\n",
        "key = \"pki/node.key\"\nraft_log = \"fast\"\n\n[external]\nclient_cert = \"c.crt\"\nhsm_slot = 3\n",
    ) + "learner = true\n";
    let file = NodeFile::parse(path, &newer).unwrap();
    assert_eq!(
        keys(&file.ignored),
        ["etcd #1 learner", "external.hsm_slot", "raft_log"]
    );
    assert_eq!(file.etcd, plain.etcd);
    assert_eq!(file.names().unwrap(), plain.names().unwrap());
    assert_eq!(
        file.external.and_then(|e| e.client_cert).as_deref(),
        Some("c.crt")
    );
    let first = &file.ignored.keys()[0];
    assert_eq!(first.file, "/etc/zone-etcd/node.toml");
    assert_eq!(first.remove, "remove it from /etc/zone-etcd/node.toml");
    // The seed's JSON form likewise.
    let json = r#"{"name": "node1.example.zone", "ca": "pki/ca.crt", "cert_file": "x"}"#;
    let file = NodeFile::parse(Path::new("node.json"), json).unwrap();
    assert_eq!(keys(&file.ignored), ["cert_file"]);
}

#[test]
fn node_toml_still_refuses_bad_values_and_bad_syntax() {
    let path = Path::new("node.toml");
    let bad = NODE_TOML.replacen("name = \"node1.example.zone\"", "name = 3", 1);
    let err = NodeFile::parse(path, &bad).unwrap_err().to_string();
    assert!(err.starts_with("node.toml: name: line 1"), "{err}");
    let bad = NODE_TOML.to_string() + "peer_port = \"x\"\n";
    let err = NodeFile::parse(path, &bad).unwrap_err().to_string();
    assert!(err.starts_with("node.toml: peer_port: line 9"), "{err}");
    let err = NodeFile::parse(path, "name = = 1").unwrap_err().to_string();
    assert!(err.contains("invalid TOML"), "{err}");
    let err = NodeFile::parse(Path::new("node.json"), r#"{"name": "a"} x"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("invalid JSON"), "{err}");
}

#[test]
fn a_zone_file_with_unknown_keys_reads_the_same_and_names_them() {
    let path = Path::new("zone.toml");
    let plain = Zone::parse(path, ZONE_TOML).unwrap();
    let newer = ZONE_TOML
        .replace("port = 3456\n", "port = 3456\nweight = 2\n")
        .replace(
            "address = \"10.0.0.1\"\n",
            "address = \"10.0.0.1\"\npeer_prot = 2381\n",
        )
        + "\n[setings]\nheartbeat_interval_ms = 1\n";
    let zone = Zone::parse(path, &newer).unwrap();
    assert_eq!(zone, plain);
    assert_eq!(
        keys(&zone.ignored),
        ["addr_info #1 weight", "etcd #1 peer_prot", "setings"]
    );
    // The seed's JSON form: its own keys accepted without a word, the others named.
    let seed = json!({"name": "example.zone", "type": "zone", "api_version": "v1",
        "signed_at": "x", "sign": "y", "owner": "me",
        "extend": {"etcd": [{"node_name": "node1.example.zone", "address": "10.0.0.1", "weight": 1}],
                   "dns": {}}});
    let zone = Zone::parse(Path::new("zone.json"), &seed.to_string()).unwrap();
    assert_eq!(
        keys(&zone.ignored),
        ["extend.dns", "extend.etcd #1 weight", "owner"]
    );
}

#[test]
fn a_zone_file_still_refuses_what_it_refused_but_unknown_keys() {
    let path = Path::new("zone.toml");
    for (text, expected) in [
        (
            ZONE_TOML.replace("heartbeat_interval_ms", "heartbeat"),
            "settings.heartbeat: unknown key",
        ),
        (
            ZONE_TOML.replace("heartbeat_interval_ms", "tls_cert"),
            "\"tls_cert\" cannot be set",
        ),
        (
            ZONE_TOML.to_string() + "\n[backup]\nsecret_key = \"x\"\n",
            "backup.secret_key: unknown key",
        ),
        (
            ZONE_TOML.to_string() + "\n[access]\nservce = []\n",
            "access.servce: unknown key",
        ),
        (
            ZONE_TOML.replace("node_name", "node_nmae"),
            "etcd #1 node_name: missing",
        ),
        (ZONE_TOML.replace("port = 3456", "port = 70000"), "line 6"),
    ] {
        let err = Zone::parse(path, &text).unwrap_err().to_string();
        assert!(err.contains(expected), "{expected}: {err}");
    }
}

#[test]
fn the_unknown_keys_of_a_refused_file_are_handed_over_before_the_refusal() {
    // A typo of a required key: the refusal names the missing key, the report the typo.
    let text = ZONE_TOML.replace("node_name", "node_nmae");
    let mut reported = Vec::new();
    let err = Zone::parse_reporting(Path::new("zone.toml"), &text, |ignored| {
        reported = keys(ignored)
    })
    .unwrap_err();
    assert!(
        err.to_string().contains("etcd #1 node_name: missing"),
        "{err}"
    );
    assert_eq!(reported, ["etcd #1 node_nmae"]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.toml");
    std::fs::write(&path, NODE_TOML.replacen("name =", "nmae =", 1)).unwrap();
    let mut reported = Vec::new();
    let err = super::node::NodeConfig::load_reporting(&path, |ignored| reported = keys(ignored))
        .err()
        .expect("refused");
    assert!(err.to_string().contains("name: missing"), "{err}");
    assert_eq!(reported, ["nmae"]);
}

/// `text` changed by `change` and signed by `root`, as a newer owner's tool would sign it.
fn resigned(text: &str, root: &Authority, change: impl FnOnce(&mut Value)) -> String {
    let mut value: Value = serde_json::from_str(text).unwrap();
    value.as_object_mut().unwrap().remove("sign");
    change(&mut value);
    let signature = root
        .sign(crate::zone_doc::canonical(&value).unwrap().as_bytes())
        .unwrap();
    let key_id = CertInfo::parse(root.cert_der()).unwrap().fingerprint_hex();
    use base64::Engine as _;
    value["sign"] = Value::String(format!(
        "{}:{key_id}:{}",
        crate::zone_doc::SIGN_SCHEME,
        base64::engine::general_purpose::STANDARD.encode(signature)
    ));
    value.to_string()
}

#[test]
fn a_signed_document_with_a_newer_releases_keys_verifies_and_names_them() {
    let root = Authority::new_root("example.zone").unwrap();
    let roots = [CertInfo::parse(root.cert_der()).unwrap()];
    let zone = Zone::parse(Path::new("zone.toml"), ZONE_TOML).unwrap();
    let now = time::OffsetDateTime::now_utc();
    let text = crate::zone_doc::sign(&zone, &root, now).unwrap();
    let plain = crate::zone_doc::verify(&text, "example.zone", &roots).unwrap();
    assert!(plain.ignored.is_empty());
    let newer = resigned(&text, &root, |v| {
        v["extend"]["etcd"][0]["learner"] = true.into();
        v["extend"]["dns"] = json!({"ttl": 60});
        v["owner"] = "me".into();
    });
    let doc = crate::zone_doc::verify(&newer, "example.zone", &roots).unwrap();
    assert_eq!(doc.members, plain.members);
    assert_eq!(doc.settings, plain.settings);
    assert_eq!(
        keys(&doc.ignored),
        ["extend.dns", "extend.etcd #1 learner", "owner"]
    );
    let named = doc.ignored.in_file("the zone document from http://ns");
    assert_eq!(named.keys()[0].file, "the zone document from http://ns");
    assert!(named.keys()[0]
        .remove
        .contains("sign the zone document again"));
    // The same key without the root's signature is a change, refused.
    let mut forged: Value = serde_json::from_str(&text).unwrap();
    forged["extend"]["etcd"][0]["learner"] = true.into();
    let err = crate::zone_doc::verify(&forged.to_string(), "example.zone", &roots)
        .unwrap_err()
        .to_string();
    assert!(err.contains("changed after it was signed"), "{err}");
    // A signed member list with a bad value of a known key is still refused.
    let bad = resigned(&text, &root, |v| {
        v["extend"]["etcd"][0]["peer_port"] = "x".into()
    });
    let err = crate::zone_doc::verify(&bad, "example.zone", &roots)
        .unwrap_err()
        .to_string();
    assert!(err.contains("extend.etcd: not a member list"), "{err}");
}

fn member(protocol: Protocol, address: Option<&str>, ports: (u16, u16)) -> Member {
    Member {
        node_name: "node1.example.zone".into(),
        address: address.map(zone_pki::Host::parse),
        peer_port: ports.0,
        client_port: ports.1,
        protocol,
    }
}

#[test]
fn a_member_is_written_without_its_defaults_and_reads_back_the_same() {
    let plain = member(Protocol::Https, Some("10.0.0.1"), (2380, 2379));
    assert_eq!(
        serde_json::to_value(RawMember::from(&plain)).unwrap(),
        json!({"node_name": "node1.example.zone", "address": "10.0.0.1"})
    );
    let cyfs = member(Protocol::Cyfs, None, (2480, 2479));
    assert_eq!(
        serde_json::to_value(RawMember::from(&cyfs)).unwrap(),
        json!({"node_name": "node1.example.zone", "protocol": "cyfs",
            "peer_port": 2480, "client_port": 2479})
    );
    let named = member(Protocol::Https, None, (2380, 2379));
    for m in [plain, cyfs, named] {
        let back = validate_members("example.zone", &[RawMember::from(&m)]).unwrap();
        assert_eq!(back, [m]);
    }
}
