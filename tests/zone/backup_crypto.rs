//! What zone-etcd encrypts, Debian's `age` decrypts, and the other way round: no lock-in.
//! Keys are made by `age-keygen`. Both tools must be installed (Debian's `age` package;
//! scripts/need.sh age): these tests fail, loudly, without them.

use std::fs::{self, File};
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use zone_backup::crypto::{decrypt_file, encrypt_file, load_identities, parse_recipients};

/// Runs one of Debian's age tools; panics when it is missing or fails.
fn age_tool(tool: &str, args: &[&str]) -> String {
    let output = Command::new(tool).args(args).output().unwrap_or_else(|e| {
        panic!("{tool}: {e}: these tests need Debian's age package (scripts/need.sh age)")
    });
    assert!(
        output.status.success(),
        "{tool} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// An owner key made by `age-keygen`: (identity file, recipient).
fn owner(dir: &Path) -> (PathBuf, String) {
    let key = dir.join("owner.key");
    age_tool("age-keygen", &["-o", key.to_str().unwrap()]);
    let recipient = age_tool("age-keygen", &["-y", key.to_str().unwrap()]);
    (key, recipient.trim().to_string())
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn sha256(path: &Path) -> Vec<u8> {
    let mut input = BufReader::new(File::open(path).unwrap());
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = input.read(&mut buffer).unwrap();
        if n == 0 {
            return digest.finish().as_ref().to_vec();
        }
        digest.update(&buffer[..n]);
    }
}

/// Writes `mib` MiB of varied bytes without holding them in memory.
fn write_big(path: &Path, mib: usize) {
    let mut out = File::create(path).unwrap();
    let mut block = vec![0u8; 1 << 20];
    for n in 0..mib {
        for (i, b) in block.iter_mut().enumerate() {
            *b = (i.wrapping_mul(31) ^ n.wrapping_mul(7)) as u8;
        }
        out.write_all(&block).unwrap();
    }
}

/// The process's peak resident memory (VmHWM), in bytes.
fn peak_rss() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

#[test]
fn the_age_cli_decrypts_what_we_encrypt_and_we_decrypt_what_it_encrypts() {
    let dir = tempfile::tempdir().unwrap();
    let (key, recipient) = owner(dir.path());
    let recipients = parse_recipients(std::slice::from_ref(&recipient)).unwrap();
    let plain = dir.path().join("snapshot.db");
    fs::write(&plain, b"the zone's keys and values\n".repeat(5000)).unwrap();

    // Ours -> age -d -i owner.key.
    let sealed = dir.path().join("snapshot.db.age");
    let written = encrypt_file(&plain, &sealed, &recipients).unwrap();
    assert_eq!(written.size, fs::metadata(&sealed).unwrap().len());
    assert_eq!(written.sha256.to_vec(), sha256(&sealed));
    let by_cli = dir.path().join("by-cli.db");
    age_tool(
        "age",
        &["-d", "-i", path(&key), "-o", path(&by_cli), path(&sealed)],
    );
    assert_eq!(fs::read(&by_cli).unwrap(), fs::read(&plain).unwrap());

    // age -e -r RECIPIENT -> ours.
    let from_cli = dir.path().join("from-cli.age");
    age_tool(
        "age",
        &["-e", "-r", &recipient, "-o", path(&from_cli), path(&plain)],
    );
    let identities = load_identities(&key).unwrap();
    let by_us = dir.path().join("by-us.db");
    decrypt_file(&from_cli, &by_us, &identities).unwrap();
    assert_eq!(fs::read(&by_us).unwrap(), fs::read(&plain).unwrap());

    // A byte flipped in what age wrote: refused, nothing written.
    let mut bytes = fs::read(&from_cli).unwrap();
    let at = bytes.len() - 40;
    bytes[at] ^= 0x04;
    fs::write(&from_cli, bytes).unwrap();
    let refused = dir.path().join("refused.db");
    let err = decrypt_file(&from_cli, &refused, &identities).unwrap_err();
    assert!(err.to_string().contains("changed or truncated"), "{err}");
    assert!(!refused.exists());
}

/// The bound is on the process's peak resident memory, so the streaming is measured in a
/// process of its own: this test binary running only [`stream_in_a_process_of_its_own`].
/// In the one test binary the other tests' allocations at the same moment count in the
/// process's peak (a clean run's red: "grew by 23020 KiB").
#[test]
fn twenty_mib_stream_through_with_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let (key, recipient) = owner(dir.path());
    let plain = dir.path().join("big.db");
    write_big(&plain, 20);
    let want = sha256(&plain);

    let stdout =
        crate::common::child_test("backup_crypto::stream_in_a_process_of_its_own", |cmd| {
            cmd.env(CHILD, dir.path())
                .env("ZONE_ETCD_TEST_RECIPIENT", &recipient);
        });
    let grown: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("peak memory grew by "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the child said nothing of its memory: {stdout}"));
    eprintln!("peak memory grew by {} KiB", grown >> 10);
    assert!(
        grown < 8 << 20,
        "peak memory grew by {} KiB for a 20 MiB file: not streamed",
        grown >> 10
    );
    let sealed = dir.path().join("big.db.age");
    let back = dir.path().join("back.db");
    assert_eq!(sha256(&back), want);

    let by_cli = dir.path().join("by-cli.db");
    age_tool(
        "age",
        &["-d", "-i", path(&key), "-o", path(&by_cli), path(&sealed)],
    );
    assert_eq!(sha256(&by_cli), want);
}

/// The variable naming the directory [`stream_in_a_process_of_its_own`] works in.
const CHILD: &str = "ZONE_ETCD_TEST_CHILD_STREAM";

/// Runs only as the child of the test above (it returns at once otherwise): encrypts and
/// decrypts the directory's `big.db` and prints how much its peak memory grew.
#[test]
fn stream_in_a_process_of_its_own() {
    let Some(dir) = std::env::var_os(CHILD).map(PathBuf::from) else {
        return;
    };
    let recipient = std::env::var("ZONE_ETCD_TEST_RECIPIENT").unwrap();
    let recipients = parse_recipients(&[recipient]).unwrap();
    let identities = load_identities(&dir.join("owner.key")).unwrap();
    let before = peak_rss();
    let sealed = dir.join("big.db.age");
    encrypt_file(&dir.join("big.db"), &sealed, &recipients).unwrap();
    decrypt_file(&sealed, &dir.join("back.db"), &identities).unwrap();
    println!(
        "peak memory grew by {} bytes",
        peak_rss().saturating_sub(before)
    );
}
