//! What two builds wrote, compared: the same paths (names made of serials or times shown
//! as `<id>`), modes and link targets; certificates by structure (subject, issuer,
//! lifetime, algorithms, every extension but the key identifiers: SANs, name
//! constraints, key usages), keys as PKCS#8 PEM that load, every other file byte for byte.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use x509_parser::extensions::ParsedExtension;

/// A path component that names a serial (40 hex) or a set (digits and dashes): `<id>`.
fn normal(component: &str) -> String {
    let hex = component.len() >= 32
        && component
            .trim_end_matches(".crt")
            .chars()
            .all(|c| c.is_ascii_hexdigit());
    let set = component.contains('-') && component.chars().all(|c| c.is_ascii_digit() || c == '-');
    match (hex, set) {
        (true, _) if component.ends_with(".crt") => "<id>.crt".to_string(),
        (true, _) | (_, true) => "<id>".to_string(),
        _ => component.to_string(),
    }
}

fn normal_path(rel: &Path) -> String {
    rel.components()
        .map(|c| normal(&c.as_os_str().to_string_lossy()))
        .collect::<Vec<_>>()
        .join("/")
}

/// Every entry under `dir`: normalized path -> (mode, what it is), and the real path.
fn tree(dir: &Path) -> BTreeMap<String, (u32, String, std::path::PathBuf)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in fs::read_dir(&at).unwrap().flatten() {
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let kind = if meta.is_symlink() {
                format!("link to {}", normal_path(&fs::read_link(&path).unwrap()))
            } else if meta.is_dir() {
                stack.push(path.clone());
                "directory".to_string()
            } else {
                "file".to_string()
            };
            let mut rel = normal_path(path.strip_prefix(dir).unwrap());
            // Two serials in one directory (a node issued twice): counted, not told apart.
            let base = rel.clone();
            for n in 2.. {
                if !out.contains_key(&rel) {
                    break;
                }
                rel = format!("{base} #{n}");
            }
            let mode = meta.permissions().mode() & 0o7777;
            out.insert(rel, (mode, kind, path));
        }
    }
    out
}

/// What a certificate file is, chain order kept, without what is random or dated.
pub fn cert_structure(file: &Path) -> Vec<String> {
    let bytes = fs::read(file).unwrap();
    let mut out = Vec::new();
    for pem in x509_parser::pem::Pem::iter_from_buffer(&bytes) {
        let pem = pem.unwrap_or_else(|e| panic!("{}: PEM: {e}", file.display()));
        let cert = pem
            .parse_x509()
            .unwrap_or_else(|e| panic!("{}: X.509: {e}", file.display()));
        let validity = cert.validity();
        out.push(format!("subject {}", cert.subject()));
        out.push(format!("issuer {}", cert.issuer()));
        out.push(format!(
            "lifetime {} s",
            validity.not_after.timestamp() - validity.not_before.timestamp()
        ));
        out.push(format!("signature {}", cert.signature_algorithm.algorithm));
        out.push(format!("key {:?}", cert.public_key().algorithm));
        for ext in cert.extensions() {
            out.push(match ext.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(_)
                | ParsedExtension::AuthorityKeyIdentifier(_) => format!("{} (a key id)", ext.oid),
                parsed => format!("{} critical={} {parsed:?}", ext.oid, ext.critical),
            });
        }
    }
    assert!(!out.is_empty(), "{}: no certificate", file.display());
    out
}

/// Panics, naming the path, unless `a` and `b` hold the same files as described above.
/// Files named in `skip` (normalized paths) are compared by presence and mode only.
pub fn assert_same(a: &Path, b: &Path, skip: &[&str]) {
    let (left, right) = (tree(a), tree(b));
    let shape = |t: &BTreeMap<String, (u32, String, std::path::PathBuf)>| {
        t.iter()
            .map(|(k, (mode, kind, _))| format!("{k} {mode:o} {kind}"))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        shape(&left),
        shape(&right),
        "{} and {} differ in files, modes or links",
        a.display(),
        b.display()
    );
    for (rel, (_, kind, path)) in &left {
        let other = &right[rel].2;
        if kind != "file" || skip.contains(&rel.as_str()) {
            continue;
        }
        if rel.contains(".crt") {
            // Files counted apart (`<id>.crt #2`: a node CA and a signer in one node's
            // directory) are compared as the set of their structures: which one the
            // directory lists first is the file system's order, not the build's.
            let base = rel.split(" #").next().unwrap_or(rel);
            let structures = |t: &BTreeMap<String, (u32, String, std::path::PathBuf)>| {
                let mut all: Vec<Vec<String>> = t
                    .iter()
                    .filter(|(k, _)| k.split(" #").next() == Some(base))
                    .map(|(_, (_, _, p))| cert_structure(p))
                    .collect();
                all.sort();
                all
            };
            if base != rel.as_str() || left.contains_key(&format!("{base} #2")) {
                assert_eq!(structures(&left), structures(&right), "{base}");
            } else {
                assert_eq!(cert_structure(path), cert_structure(other), "{rel}");
            }
        } else if rel.ends_with(".key") {
            for key in [path, other] {
                let text = fs::read_to_string(key).unwrap();
                assert!(
                    text.starts_with("-----BEGIN PRIVATE KEY-----\n"),
                    "{}: not PKCS#8 PEM",
                    key.display()
                );
                zone_pki::key::load_key(key).unwrap_or_else(|e| panic!("{}: {e}", key.display()));
            }
        } else {
            assert!(
                fs::read(path).unwrap() == fs::read(other).unwrap(),
                "{rel} differs:\n{}\n----\n{}",
                fs::read_to_string(path).unwrap_or_default(),
                fs::read_to_string(other).unwrap_or_default()
            );
        }
    }
}
