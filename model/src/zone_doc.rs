//! The zone document: what the owner publishes through the nameservice (seeds/000) so a
//! node can follow the zone's member list without a local copy of it.
//!
//! ```json
//! { "name": "example.zone", "type": "zone", "addr_info": [...], "api_version": "v1",
//!   "signed_at": "2026-11-21T10:00:00Z",
//!   "extend": { "etcd": [ ...members... ], "settings": { ...if the zone has any... } },
//!   "sign": "ecdsa-sha256:<key id>:<signature>" }
//! ```
//!
//! Signature (`sign`), checkable with jq and openssl (see the guide):
//! - the signed bytes are the *canonical form* of the document without `sign`: JSON with
//!   every object's keys sorted, no whitespace, strings escaped minimally. For documents of
//!   strings, integers, arrays and objects this is RFC 8785 (JCS); other numbers are
//!   refused, so there is nothing to round;
//! - `<signature>` is base64 of the DER ECDSA P-256 signature over SHA-256 of those bytes,
//!   made with the zone root key (`openssl dgst -sha256 -sign` writes the same format);
//! - `<key id>` is the SHA-256 fingerprint (hex) of the signing CA certificate. It only
//!   improves the error message ("signed by another CA" rather than "changed"); trust
//!   comes from verifying with the zone CA of the node's own bundle.
//!
//! Invariant: verification and extraction use one parsed value, so what was verified is
//! exactly what is used (no second parse that could read duplicate keys differently).

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use zone_io::Error;
use zone_pki::{Authority, CertInfo};

use crate::backup::settings::BackupSettings;
use crate::config::ignored::{self, Ignored};
use crate::config::zone::{validate_members, AddrInfo, Member, RawMember, Zone};
use crate::policy::Policy;
use crate::settings::Settings;

/// The signature scheme named at the start of `sign`.
pub const SIGN_SCHEME: &str = "ecdsa-sha256";

/// A document whose signature verified against the zone CA and whose members are valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneDocument {
    pub zone: String,
    pub members: Vec<Member>,
    /// `extend.settings`, signed with the members.
    pub settings: Settings,
    /// `extend.backup`, signed with the members.
    pub backup: BackupSettings,
    /// `extend.access`, signed with the members.
    pub access: Policy,
    pub signed_at: OffsetDateTime,
    /// Keys of the document this release does not know, ignored (a newer owner's tool
    /// signed them: the signature covers them all), named "the zone document": the
    /// caller says where it came from ([`Ignored::in_file`]) and warns.
    pub ignored: Ignored,
}

/// The keys of a document this release reads; any other is ignored with a warning.
const KEYS: [&str; 6] = [
    "name",
    "type",
    "addr_info",
    "api_version",
    "signed_at",
    "extend",
];
/// The keys of `extend` this release reads.
const EXTEND_KEYS: [&str; 4] = ["etcd", "settings", "backup", "access"];
/// How an unknown key of a signed document goes away.
const REMOVE: &str = "remove it from the zone file and sign the zone document again";

/// The document as written, in the seed's field order.
#[derive(Serialize)]
struct Written<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    addr_info: &'a [AddrInfo],
    api_version: &'a str,
    signed_at: String,
    extend: Extend,
    #[serde(skip_serializing_if = "Option::is_none")]
    sign: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Extend {
    etcd: Vec<RawMember>,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    settings: serde_json::Map<String, Value>,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    backup: serde_json::Map<String, Value>,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    access: serde_json::Map<String, Value>,
}

/// Builds and signs the document of `zone` with its root CA; returns pretty JSON.
pub fn sign(zone: &Zone, root: &Authority, signed_at: OffsetDateTime) -> Result<String, Error> {
    let signed_at = signed_at
        .replace_nanosecond(0)
        .unwrap_or(signed_at)
        .format(&Rfc3339)
        .map_err(|e| Error::new(format!("cannot format the signing time: {e}")))?;
    let mut doc = Written {
        name: &zone.name,
        kind: "zone",
        addr_info: &zone.addr_info,
        api_version: "v1",
        signed_at,
        extend: Extend {
            etcd: zone.members.iter().map(RawMember::from).collect(),
            settings: zone.settings.to_value(),
            backup: zone.backup.to_value(),
            access: zone.access.to_value(),
        },
        sign: None,
    };
    let value = serde_json::to_value(&doc).map_err(internal)?;
    doc.sign = Some(sign_value(&value, root)?);
    let mut text = serde_json::to_string_pretty(&doc).map_err(internal)?;
    text.push('\n');
    Ok(text)
}

/// Parses and verifies a document for `zone` against the zone roots the node trusts (one,
/// or two during a zone CA rotation). Errors carry the field at fault; the caller adds
/// where the document came from.
pub fn verify(text: &str, zone: &str, roots: &[CertInfo]) -> Result<ZoneDocument, Error> {
    read(signed_value(text, zone, roots)?, zone)
}

/// When a document the zone root signed for `zone` was signed, whether or not this release
/// can read the rest of it: a document [`verify`] refuses but this accepts was signed by
/// the owner with content this release does not know (a newer zone-etcd's), never forged.
pub fn signed_at(text: &str, zone: &str, roots: &[CertInfo]) -> Result<OffsetDateTime, Error> {
    signed_time(&signed_value(text, zone, roots)?)
}

/// The document as JSON, without `sign`, once its name is `zone` and one of `roots`
/// signed it: nothing of its content is read before the signature is checked.
fn signed_value(text: &str, zone: &str, roots: &[CertInfo]) -> Result<Value, Error> {
    let mut value: Value = serde_json::from_str(text).map_err(|e| {
        let what = if e.is_eof() {
            "truncated JSON (it ends too early)".to_string()
        } else {
            format!("invalid JSON: {e}")
        };
        Error::new(format!("line {}, column {}: {what}", e.line(), e.column()))
            .fix("serve the document exactly as `zone-etcd zone sign` wrote it")
    })?;
    let Some(object) = value.as_object_mut() else {
        return Err(Error::new("the document is not a JSON object")
            .fix("serve the document exactly as `zone-etcd zone sign` wrote it"));
    };
    match object.get("name").and_then(Value::as_str) {
        Some(name) if name == zone => {}
        Some(name) => {
            return Err(Error::new(format!(
                "the document is for zone {name:?}, not this node's zone {zone:?}"
            ))
            .field("name")
            .fix(format!(
                "publish the document of zone {zone:?} (zone-etcd zone sign), or check which nameservice the node asks"
            )))
        }
        None => {
            return Err(Error::new("missing or not a string")
                .field("name")
                .fix("sign the document with `zone-etcd zone sign`"))
        }
    }
    // Another kind of document is no zone document, whoever signed it.
    match object.get("type") {
        None => {}
        Some(Value::String(s)) if s == "zone" => {}
        Some(other) => {
            return Err(Error::new(format!("is {other}, expected \"zone\""))
                .field("type")
                .fix(
                    "serve the zone document of api_version v1, as `zone-etcd zone sign` writes it",
                ))
        }
    }
    let sign = match object.remove("sign") {
        Some(Value::String(sign)) => sign,
        Some(_) => {
            return Err(Error::new("is not a string")
                .field("sign")
                .fix("sign the document with `zone-etcd zone sign`"))
        }
        None => {
            return Err(
                Error::new("the document is not signed (no sign field)")
                    .field("sign")
                    .fix("sign it with the zone root key: zone-etcd zone sign --ca DIR --zone ZONE_FILE --out FILE"),
            )
        }
    };
    check_signature(&value, &sign, roots)?;
    Ok(value)
}

fn signed_time(value: &Value) -> Result<OffsetDateTime, Error> {
    value
        .get("signed_at")
        .and_then(Value::as_str)
        .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
        .ok_or_else(|| {
            Error::new("missing or not an RFC 3339 time")
                .field("signed_at")
                .fix("sign the document with `zone-etcd zone sign`")
        })
}

/// The content of a signed document (see [`signed_value`]), as this release reads it.
fn read(value: Value, zone: &str) -> Result<ZoneDocument, Error> {
    match value.get("api_version") {
        None => {}
        Some(Value::String(s)) if s == "v1" => {}
        Some(other) => {
            return Err(Error::new(format!("is {other}, expected \"v1\""))
                .field("api_version")
                .fix(
                    "serve the zone document of api_version v1, as `zone-etcd zone sign` writes it",
                ))
        }
    }
    let raw_members = value
        .get("extend")
        .and_then(|e| e.get("etcd"))
        .cloned()
        .ok_or_else(|| {
            Error::new("missing")
                .field("extend.etcd")
                .fix("list the zone's members in the zone file and sign it again")
        })?;
    let (raw_members, member_keys): (Vec<RawMember>, _) =
        ignored::read(raw_members, &[]).map_err(|e| {
            Error::new(format!("not a member list: {e}"))
                .field("extend.etcd")
                .fix("fix the zone file and sign it again")
        })?;
    let mut unknown = Vec::new();
    let table_keys = |v: Option<&Value>, known: &[&str], at: &str| -> Vec<String> {
        let keys = v.and_then(Value::as_object).map(|m| m.keys());
        keys.into_iter()
            .flatten()
            .filter(|k| !known.contains(&k.as_str()))
            .map(|k| format!("{at}{k}"))
            .collect()
    };
    unknown.extend(table_keys(Some(&value), &KEYS, ""));
    unknown.extend(table_keys(value.get("extend"), &EXTEND_KEYS, "extend."));
    unknown.extend(member_keys.into_iter().map(|k| format!("extend.etcd{k}")));
    let members = validate_members(zone, &raw_members)
        .map_err(|e| e.fix("fix the zone file and sign it again"))?;
    let settings = match value.get("extend").and_then(|e| e.get("settings")) {
        // The fix names the key to change: in the zone file, then sign again.
        Some(table) => Settings::parse(table, "extend.settings")?,
        None => Settings::default(),
    };
    let backup = match value.get("extend").and_then(|e| e.get("backup")) {
        Some(table) => BackupSettings::parse(table, "extend.backup")?,
        None => BackupSettings::default(),
    };
    let names: Vec<String> = members.iter().map(|m| m.node_name.clone()).collect();
    let access = match value.get("extend").and_then(|e| e.get("access")) {
        Some(table) => Policy::parse(table, "extend.access", zone, &names)?,
        None => Policy::default(),
    };
    let signed_at = signed_time(&value)?;
    Ok(ZoneDocument {
        zone: zone.to_string(),
        members,
        settings,
        backup,
        access,
        signed_at,
        ignored: Ignored::of("the zone document", REMOVE, unknown),
    })
}

/// The `sign` value of `unsigned` (a JSON object without `sign`) by the zone root `root`:
/// the scheme, the root's key id and the signature over its canonical form, as a zone
/// document is signed (other signed documents use it too: [`crate::release::Level`]).
pub fn sign_value(unsigned: &Value, root: &Authority) -> Result<String, Error> {
    let payload = canonical(unsigned).map_err(Error::new)?;
    let signature = root.sign(payload.as_bytes())?;
    let key_id = CertInfo::parse(root.cert_der())?.fingerprint_hex();
    Ok(format!(
        "{SIGN_SCHEME}:{key_id}:{}",
        base64_engine().encode(signature)
    ))
}

/// Checks `sign` over the canonical form of `unsigned` (the document without `sign`).
pub fn check_signature(unsigned: &Value, sign: &str, roots: &[CertInfo]) -> Result<(), Error> {
    let malformed = || {
        Error::new(format!(
            "malformed: expected \"{SIGN_SCHEME}:<key id>:<base64 signature>\""
        ))
        .field("sign")
        .fix("sign the document with `zone-etcd zone sign`")
    };
    let mut parts = sign.splitn(3, ':');
    let (Some(scheme), Some(key_id), Some(signature)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    if scheme != SIGN_SCHEME {
        return Err(Error::new(format!(
            "unknown signature scheme {scheme:?} (this version knows {SIGN_SCHEME:?})"
        ))
        .field("sign")
        .fix("sign the document with `zone-etcd zone sign`"));
    }
    let signature = base64_engine().decode(signature).map_err(|_| malformed())?;
    let Some(zone_ca) = roots
        .iter()
        .find(|root| key_id.eq_ignore_ascii_case(&root.fingerprint_hex()))
    else {
        let ours: Vec<String> = roots
            .iter()
            .map(|r| format!("{:?} ({}…)", r.subject_cn, short_id(&r.fingerprint_hex())))
            .collect();
        return Err(Error::new(format!(
            "signed by another CA (key id {}…), not by this node's zone CA {}",
            short_id(key_id),
            ours.join(" or ")
        ))
        .field("sign")
        .fix("sign the document with this zone's root CA (zone-etcd zone sign --ca <the zone's CA dir>)"));
    };
    let payload = canonical(unsigned).map_err(|p| Error::new(p).field("sign"))?;
    if !zone_ca.verifies(payload.as_bytes(), &signature) {
        return Err(Error::new(format!(
            "the signature does not verify with the zone CA {:?}: the document was changed after it was signed",
            zone_ca.subject_cn
        ))
        .field("sign")
        .fix("publish the document exactly as `zone-etcd zone sign` wrote it; to change it, edit the zone file and sign again"));
    }
    Ok(())
}

fn short_id(id: &str) -> &str {
    id.get(..16).unwrap_or(id)
}

/// The canonical form the signature covers: keys sorted (by code point), no whitespace,
/// minimal string escapes; only integers as numbers.
pub fn canonical(value: &Value) -> Result<String, String> {
    let mut out = String::new();
    write_canonical(value, &mut out)?;
    Ok(out)
}

fn write_canonical(value: &Value, out: &mut String) -> Result<(), String> {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(item, out)?;
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out)?;
            }
            out.push(']');
        }
        Value::Number(n) if !(n.is_i64() || n.is_u64()) => {
            return Err(format!(
                "the document holds the number {n}; only integers can be signed"
            ));
        }
        other => out.push_str(&other.to_string()),
    }
    Ok(())
}

fn base64_engine() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

fn internal(e: serde_json::Error) -> Error {
    Error::new(format!("cannot serialise the zone document: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::zone::{Protocol, Zone};
    use zone_pki::Host;

    fn zone() -> Zone {
        Zone {
            name: "example.zone".into(),
            addr_info: vec![AddrInfo {
                protocol: "https".into(),
                address: "192.168.1.1".into(),
                port: 3456,
            }],
            members: vec![Member {
                node_name: "node1.example.zone".into(),
                address: Some(Host::parse("10.0.0.1")),
                peer_port: 2380,
                client_port: 2379,
                protocol: Default::default(),
            }],
            settings: Settings::default(),
            access: Policy::default(),
            backup: BackupSettings::default(),
            ignored: Ignored::default(),
        }
    }

    fn signed() -> (String, CertInfo, Authority) {
        let root = Authority::new_root("example.zone").unwrap();
        let info = CertInfo::parse(root.cert_der()).unwrap();
        let text = sign(&zone(), &root, OffsetDateTime::now_utc()).unwrap();
        (text, info, root)
    }

    /// `text` with `change` made to it, signed again by `root` (what another release of
    /// zone-etcd, or a forger with the root key, would publish).
    fn resigned(text: &str, root: &Authority, change: impl FnOnce(&mut Value)) -> String {
        let mut value: Value = serde_json::from_str(text).unwrap();
        value.as_object_mut().unwrap().remove("sign");
        change(&mut value);
        let signature = root.sign(canonical(&value).unwrap().as_bytes()).unwrap();
        let key_id = CertInfo::parse(root.cert_der()).unwrap().fingerprint_hex();
        value["sign"] = Value::String(format!(
            "{SIGN_SCHEME}:{key_id}:{}",
            base64_engine().encode(signature)
        ));
        value.to_string()
    }

    #[test]
    fn a_newer_releases_signed_document_is_told_apart_from_a_forged_one() {
        let (text, info, root) = signed();
        let roots = [info];
        // A key this release does not know, and another api_version, signed by the root.
        for newer in [
            resigned(&text, &root, |v| {
                v["extend"]["settings"]["raft_pipeline"] = 4.into()
            }),
            resigned(&text, &root, |v| v["api_version"] = "v2".into()),
        ] {
            assert!(verify(&newer, "example.zone", &roots).is_err());
            assert!(signed_at(&newer, "example.zone", &roots).is_ok(), "{newer}");
        }
        // The same change without the root's signature: neither.
        let mut forged: Value = serde_json::from_str(&text).unwrap();
        forged["extend"]["settings"]["raft_pipeline"] = 4.into();
        let forged = forged.to_string();
        assert!(verify(&forged, "example.zone", &roots).is_err());
        let err = signed_at(&forged, "example.zone", &roots)
            .unwrap_err()
            .to_string();
        assert!(err.contains("sign"), "{err}");
        // Another zone's, or another root's: neither.
        assert!(signed_at(&text, "other.zone", &roots).is_err());
        let other = Authority::new_root("example.zone").unwrap();
        let by_other = resigned(&text, &other, |_| {});
        assert!(signed_at(&by_other, "example.zone", &roots).is_err());
        // What this release signs it reads, and its time is the same both ways.
        let doc = verify(&text, "example.zone", &roots).unwrap();
        assert_eq!(
            signed_at(&text, "example.zone", &roots).unwrap(),
            doc.signed_at
        );
    }

    #[test]
    fn canonical_form_sorts_keys_and_drops_whitespace() {
        let value: Value =
            serde_json::from_str(r#"{ "b": [1, {"z": "\u00e9\n", "a": null}], "a": true }"#)
                .unwrap();
        assert_eq!(
            canonical(&value).unwrap(),
            "{\"a\":true,\"b\":[1,{\"a\":null,\"z\":\"é\\n\"}]}"
        );
        let float: Value = serde_json::from_str(r#"{"a": 1.5}"#).unwrap();
        assert!(canonical(&float).unwrap_err().contains("only integers"));
    }

    #[test]
    fn a_signed_document_verifies_and_yields_its_members() {
        let (text, info, _) = signed();
        let doc = verify(&text, "example.zone", std::slice::from_ref(&info)).unwrap();
        assert_eq!(doc.members, zone().members);
        // Whitespace and key order do not matter: the signature covers the canonical form.
        let value: Value = serde_json::from_str(&text).unwrap();
        assert!(verify(
            &value.to_string(),
            "example.zone",
            std::slice::from_ref(&info)
        )
        .is_ok());
    }

    #[test]
    fn the_access_policy_is_signed_with_the_members_and_read_back() {
        let root = Authority::new_root("example.zone").unwrap();
        let info = CertInfo::parse(root.cert_der()).unwrap();
        let mut zone = zone();
        let table = serde_json::json!({"nodes": ["nas.example.zone"], "service": [
            {"name": "photos", "nodes": ["nas.example.zone", "node1.example.zone"], "read_write": ["apps/photos/"]}]});
        let names = vec!["node1.example.zone".to_string()];
        zone.access = Policy::parse(&table, "access", "example.zone", &names).unwrap();
        let text = sign(&zone, &root, OffsetDateTime::now_utc()).unwrap();
        let doc = verify(&text, "example.zone", std::slice::from_ref(&info)).unwrap();
        assert_eq!(doc.access, zone.access);
        // A grant changed after signing is refused like a member changed.
        let tampered = text.replace("apps/photos/", "apps/");
        let err = verify(&tampered, "example.zone", std::slice::from_ref(&info)).unwrap_err();
        assert!(
            err.to_string().contains("was changed after it was signed"),
            "{err}"
        );
        // Without [access], no extend.access: documents signed before it read the same.
        let plain = sign(&self::tests::zone(), &root, OffsetDateTime::now_utc()).unwrap();
        assert!(!plain.contains("access"), "{plain}");
    }

    #[test]
    fn a_cyfs_member_keeps_its_protocol_through_the_signed_document() {
        let root = Authority::new_root("example.zone").unwrap();
        let info = CertInfo::parse(root.cert_der()).unwrap();
        let mut zone = zone();
        zone.members.push(Member {
            node_name: "home1.example.zone".into(),
            address: None,
            peer_port: 2480,
            client_port: 2479,
            protocol: Protocol::Cyfs,
        });
        let text = sign(&zone, &root, OffsetDateTime::now_utc()).unwrap();
        assert!(text.contains("\"protocol\": \"cyfs\""), "{text}");
        let doc = verify(&text, "example.zone", std::slice::from_ref(&info)).unwrap();
        assert_eq!(doc.members, zone.members);
        assert_eq!(doc.members[1].protocol, Protocol::Cyfs);
    }

    #[test]
    fn every_change_is_refused_with_its_reason() {
        let (text, info, _) = signed();
        let err = |t: &str| {
            verify(t, "example.zone", std::slice::from_ref(&info))
                .unwrap_err()
                .to_string()
        };
        let tampered = text.replace("10.0.0.1", "10.0.0.9");
        assert!(err(&tampered).contains("was changed after it was signed"));
        let added_field = text.replacen('{', "{\"x\": 1,", 1);
        assert!(err(&added_field).contains("was changed after it was signed"));
        assert!(err(&text[..text.len() / 2]).contains("truncated JSON"));
        assert!(verify(&text, "other.zone", std::slice::from_ref(&info))
            .unwrap_err()
            .to_string()
            .contains("is for zone \"example.zone\", not this node's zone \"other.zone\""));
        let other = Authority::new_root("example.zone").unwrap();
        let foreign = sign(&zone(), &other, OffsetDateTime::now_utc()).unwrap();
        assert!(err(&foreign).contains("signed by another CA"));
        // While the zone CA rotates, nodes trust both roots: either signature is good.
        let both = [info.clone(), CertInfo::parse(other.cert_der()).unwrap()];
        assert!(verify(&foreign, "example.zone", &both).is_ok());
        assert!(verify(&text, "example.zone", &both).is_ok());
        let value: Value = serde_json::from_str(&text).unwrap();
        let mut unsigned = value.clone();
        unsigned.as_object_mut().unwrap().remove("sign");
        assert!(err(&unsigned.to_string()).contains("not signed"));
        assert!(err("[1]").contains("not a JSON object"));
    }

    #[test]
    fn a_signed_but_invalid_member_list_is_refused() {
        let (_, info, root) = signed();
        let mut bad = zone();
        bad.members.push(bad.members[0].clone());
        let text = sign(&bad, &root, OffsetDateTime::now_utc()).unwrap();
        let err = verify(&text, "example.zone", std::slice::from_ref(&info))
            .unwrap_err()
            .to_string();
        assert!(err.contains("etcd #2 node_name"), "{err}");
    }
}
