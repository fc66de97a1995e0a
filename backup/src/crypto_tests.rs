use std::fs;
use std::os::unix::fs::PermissionsExt;

use age::secrecy::ExposeSecret;

use super::*;

fn owner() -> (x25519::Identity, Vec<x25519::Recipient>) {
    let identity = x25519::Identity::generate();
    let recipient = identity.to_public();
    (identity, vec![recipient])
}

fn boxed(identity: x25519::Identity) -> Identities {
    vec![Box::new(identity)]
}

/// Files left in `dir` besides `keep`: temporary files must never stay behind.
fn others(dir: &Path, keep: &[&str]) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !keep.contains(&n.as_str()))
        .collect()
}

#[test]
fn bytes_round_trip_and_a_changed_byte_is_refused() {
    let (identity, recipients) = owner();
    let identities = boxed(identity);
    let secret = b"key/value of the zone".to_vec();
    let sealed = encrypt_bytes(&secret, &recipients).unwrap();
    assert!(sealed.starts_with(b"age-encryption.org/v1\n"), "binary age");
    assert!(!sealed.windows(secret.len()).any(|w| w == secret.as_slice()));
    assert_eq!(decrypt_bytes(&sealed, &identities).unwrap(), secret);

    for at in [sealed.len() - 1, sealed.len() - 20, 30] {
        let mut bad = sealed.clone();
        bad[at] ^= 0x01;
        let err = decrypt_bytes(&bad, &identities).unwrap_err().to_string();
        assert!(err.starts_with("cannot decrypt"), "{at}: {err}");
        assert!(!err.contains('\n'));
    }
    let err = decrypt_bytes(&sealed[..sealed.len() - 1], &identities).unwrap_err();
    assert!(err.to_string().contains("changed or truncated"), "{err}");
    let (stranger, _) = owner();
    let err = decrypt_bytes(&sealed, &boxed(stranger)).unwrap_err();
    assert!(err
        .to_string()
        .contains("not encrypted to any of the given identities"));
}

#[test]
fn files_round_trip_privately_with_the_ciphertext_size_and_hash() {
    let dir = tempfile::tempdir().unwrap();
    let (identity, recipients) = owner();
    let identities = boxed(identity);
    // Several age chunks (64 KiB each) and a partial last one.
    let plain: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let (src, sealed, back) = (
        dir.path().join("snap.db"),
        dir.path().join("snap.db.age"),
        dir.path().join("back.db"),
    );
    fs::write(&src, &plain).unwrap();
    let written = encrypt_file(&src, &sealed, &recipients).unwrap();
    let bytes = fs::read(&sealed).unwrap();
    assert_eq!(written.size, bytes.len() as u64);
    let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
    assert_eq!(written.sha256.as_slice(), digest.as_ref());
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&sealed), 0o600);

    decrypt_file(&sealed, &back, &identities).unwrap();
    assert_eq!(fs::read(&back).unwrap(), plain);
    assert_eq!(mode(&back), 0o600);
    assert!(others(dir.path(), &["snap.db", "snap.db.age", "back.db"]).is_empty());
}

#[test]
fn a_changed_or_truncated_file_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let (identity, recipients) = owner();
    let identities = boxed(identity);
    let src = dir.path().join("plain");
    fs::write(&src, vec![7u8; 300_000]).unwrap();
    let sealed = dir.path().join("sealed");
    encrypt_file(&src, &sealed, &recipients).unwrap();
    let good = fs::read(&sealed).unwrap();
    let out = dir.path().join("out");

    // A byte in the middle chunk: earlier chunks decrypted fine, and still nothing stays.
    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 0x80;
    let truncated = good[..good.len() - 100].to_vec();
    let cut_at_chunk = good[..good.len() - (300_000 % 65_536) - 16].to_vec();
    for (what, bytes) in [
        ("flipped", flipped),
        ("truncated", truncated),
        ("cut at a chunk", cut_at_chunk),
    ] {
        let bad = dir.path().join("bad");
        fs::write(&bad, bytes).unwrap();
        let err = decrypt_file(&bad, &out, &identities).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("changed or truncated"), "{what}: {text}");
        assert_eq!(err.file_path(), Some(bad.as_path()), "{what}");
        assert!(!out.exists(), "{what}: no partial output");
        assert!(
            others(dir.path(), &["plain", "sealed", "bad"]).is_empty(),
            "{what}"
        );
    }
    // A failed decryption never replaces what was there.
    fs::write(&out, b"previous").unwrap();
    let bad = dir.path().join("bad");
    decrypt_file(&bad, &out, &identities).unwrap_err();
    assert_eq!(fs::read(&out).unwrap(), b"previous");
}

#[test]
fn recipients_are_parsed_and_bad_ones_named() {
    let (_, recipients) = owner();
    let text = recipients[0].to_string();
    assert_eq!(
        parse_recipients(std::slice::from_ref(&text)).unwrap().len(),
        1
    );
    let err = parse_recipients(&[text, "age1nope".into()]).unwrap_err();
    assert_eq!(err.field_name(), Some("backup.recipients[1]"));
    let err = parse_recipients(&[]).unwrap_err();
    assert_eq!(err.field_name(), Some("backup.recipients"));
}

#[test]
fn identity_files_as_age_keygen_writes_them() {
    let dir = tempfile::tempdir().unwrap();
    let identity = x25519::Identity::generate();
    let recipient = identity.to_public();
    let secret = identity.to_string().expose_secret().to_string();
    let path = dir.path().join("owner.key");
    let write = |text: &str, mode: u32| {
        fs::write(&path, text).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    };
    write(
        &format!("# created: 2026-01-01T00:00:00Z\n# public key: {recipient}\n{secret}\n"),
        0o600,
    );
    let identities = load_identities(&path).unwrap();
    let sealed = encrypt_bytes(b"x", &[recipient]).unwrap();
    assert_eq!(decrypt_bytes(&sealed, &identities).unwrap(), b"x");

    write("# only comments\n\n", 0o600);
    let err = load_err(&path);
    assert!(err.to_string().contains("holds no age identity"), "{err}");
    assert_eq!(err.file_path(), Some(path.as_path()));

    write(&format!("{secret}\nAGE-SECRET-KEY-1GARBAGE\n"), 0o600);
    let err = load_err(&path).to_string();
    assert!(err.contains("line 2"), "{err}");
    assert!(
        !err.contains(&secret) && !err.contains("GARBAGE"),
        "no key text: {err}"
    );

    write(&format!("{secret}\n"), 0o644);
    let err = load_err(&path).to_string();
    assert!(err.contains("chmod 600"), "{err}");
}

fn load_err(path: &Path) -> Error {
    match load_identities(path) {
        Ok(found) => panic!("{} identities loaded, expected a refusal", found.len()),
        Err(e) => e,
    }
}
