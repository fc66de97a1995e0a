//! The backup targets against real stores: SeaweedFS (`weed`, on `addresses::SEAWEED_TARGETS`,
//! its own IP per test) and a directory. Both behave the same: put, get, paginated list,
//! multipart `put_file` read back byte-identical, delete, absent objects; a wrong secret
//! or a missing bucket is one clear refusal, a killed or hung store a retryable error in bounded time; a
//! credentials file others can read is refused; a directory target never follows a link.

use crate::common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use common::mode;
use common::seaweed::{Seaweed, BUCKET};
use zone_backup::destination::credentials;
use zone_backup::destination::file::DirTarget;
use zone_backup::destination::retry::Policy;
use zone_backup::destination::s3::{Options, S3Target, MIN_PART_SIZE};
use zone_backup::destination::{self, ObjectInfo, Target};
use zone_model::backup::settings::{parse_location, TargetSpec};
use zone_testkit::addresses;

const PREFIX: &str = "zones/test";

fn s3_target(weed: &Seaweed, prefix: &str, secret: &str, options: Options) -> S3Target {
    weed.target(BUCKET, prefix, secret, options).unwrap()
}

/// 5 MiB parts (S3's least) and 7 keys a listing page, so a test file of 12 MiB takes
/// three parts and 25 objects three pages.
fn small() -> Options {
    Options {
        part_size: MIN_PART_SIZE,
        list_page: 7,
        ..Options::default()
    }
}

/// Bytes that differ at every offset, so a misplaced part shows.
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// The behaviour every target shares.
fn exercise(t: &dyn Target, scratch: &Path) {
    let url = t.url().to_string();
    // Absent objects.
    assert_eq!(t.get("manifest/none", 1024).unwrap(), None);
    let dst = scratch.join("out");
    assert!(!t.get_to_file("full/none", &dst).unwrap());
    assert!(!dst.exists());
    t.delete("full/none").unwrap();
    assert_eq!(t.list("").unwrap(), Vec::new());

    // put / get / overwrite / limit.
    t.put("manifest/a", b"first").unwrap();
    assert_eq!(t.get("manifest/a", 1024).unwrap().unwrap(), b"first");
    t.put("manifest/a", b"second, longer").unwrap();
    assert_eq!(t.get("manifest/a", 14).unwrap().unwrap(), b"second, longer");
    let big = t.get("manifest/a", 13).unwrap_err();
    assert!(!big.retryable, "{big}");
    assert!(
        big.to_string().starts_with(&format!("{url}: manifest/a: ")),
        "{big}"
    );
    t.put("empty", b"").unwrap();
    assert_eq!(t.get("empty", 0).unwrap().unwrap(), b"");

    // A listing of more than one page, sorted, with sizes, under a prefix only.
    for i in (0..25).rev() {
        t.put(&format!("delta/{i:03}.seg"), &pattern(i, 1)).unwrap();
    }
    let deltas = t.list("delta/").unwrap();
    let want: Vec<ObjectInfo> = (0..25)
        .map(|i| ObjectInfo {
            name: format!("delta/{i:03}.seg"),
            size: i as u64,
        })
        .collect();
    assert_eq!(deltas, want);
    assert_eq!(t.list("delta/01").unwrap(), want[10..20].to_vec());
    assert_eq!(t.list("nothing/").unwrap(), Vec::new());
    let names: Vec<String> = t.list("").unwrap().into_iter().map(|o| o.name).collect();
    assert_eq!(names.len(), 27);
    assert_eq!(names[..2], ["delta/000.seg", "delta/001.seg"]);
    assert_eq!(names[25..], ["empty", "manifest/a"]);

    // A snapshot-sized file: in parts on S3, read back byte-identical.
    let snap = scratch.join("snap.db");
    let data = pattern(12 * 1024 * 1024 + 123, 7);
    fs::write(&snap, &data).unwrap();
    t.put_file("full/0000000000000000123.snap.age", &snap)
        .unwrap();
    let small = scratch.join("small.db");
    fs::write(&small, b"a small one").unwrap();
    t.put_file("full/0000000000000000001.snap.age", &small)
        .unwrap();
    let fulls = t.list("full/").unwrap();
    assert_eq!(
        fulls.iter().map(|o| o.size).collect::<Vec<_>>(),
        [11, data.len() as u64]
    );
    assert!(t
        .get_to_file("full/0000000000000000123.snap.age", &dst)
        .unwrap());
    assert!(
        fs::read(&dst).unwrap() == data,
        "get_to_file gave other bytes"
    );
    assert!(t
        .get_to_file("full/0000000000000000001.snap.age", &dst)
        .unwrap());
    assert_eq!(fs::read(&dst).unwrap(), b"a small one");
    let leftovers: Vec<_> = fs::read_dir(scratch)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // delete.
    t.delete("manifest/a").unwrap();
    t.delete("manifest/a").unwrap();
    assert_eq!(t.get("manifest/a", 1024).unwrap(), None);
    assert_eq!(t.list("manifest/").unwrap(), Vec::new());

    // Names that could leave the target.
    for bad in ["../escape", "/etc/x", "a//b", "full/"] {
        let e = t.put(bad, b"x").unwrap_err();
        assert!(!e.retryable && e.to_string().contains(&url), "{e}");
    }
}

#[test]
fn s3_and_directory_targets_behave_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let mut weed =
        Seaweed::start(&tmp.path().join("weed"), &addresses::SEAWEED_TARGETS.ip(1)).unwrap();
    let scratch = |name: &str| {
        let dir = tmp.path().join(name);
        fs::create_dir(&dir).unwrap();
        dir
    };

    let s3 = s3_target(&weed, PREFIX, weed.secret_key(), small());
    exercise(&s3, &scratch("s3-scratch"));
    // The objects are under the URL's prefix; the big one went up in three parts.
    let whole = s3_target(&weed, "", weed.secret_key(), small());
    let keys: Vec<String> = whole
        .list("")
        .unwrap()
        .into_iter()
        .map(|o| o.name)
        .collect();
    assert!(
        keys.iter().all(|k| k.starts_with("zones/test/")),
        "{keys:?}"
    );
    let etag = weed
        .etag("zones/test/full/0000000000000000123.snap.age")
        .unwrap()
        .unwrap();
    assert!(etag.ends_with("-3"), "not a 3-part upload: {etag}");
    assert!(!weed
        .etag("zones/test/full/0000000000000000001.snap.age")
        .unwrap()
        .unwrap()
        .contains('-'));
    // The same data directory after a restart.
    weed.restart().unwrap();
    assert_eq!(s3.list("delta/").unwrap().len(), 25);

    let root = tmp.path().join("usb");
    fs::create_dir(&root).unwrap();
    let dir = DirTarget::new(&format!("file://{}", root.display()), &root);
    exercise(&dir, &scratch("dir-scratch"));
    assert_eq!(mode(&root.join("full")), 0o700);
    assert_eq!(mode(&root.join("full/0000000000000000123.snap.age")), 0o600);
}

#[test]
fn a_directory_target_stays_inside_its_root() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("usb");
    let url = format!("file://{}", root.display());
    let dir = DirTarget::new(&url, &root);
    // An unmounted disk: retryable, and nothing is created in its place.
    let e = dir.put("full/1", b"x").unwrap_err();
    assert!(e.retryable, "{e}");
    assert!(e.to_string().contains("mkdir -m 700"), "{e}");
    assert!(!root.exists());

    fs::create_dir(&root).unwrap();
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("secret"), b"not yours").unwrap();
    std::os::unix::fs::symlink(&outside, root.join("full")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret"), root.join("manifest")).unwrap();
    let e = dir.put("full/1", b"x").unwrap_err();
    assert!(
        !e.retryable && e.to_string().contains("symbolic link"),
        "{e}"
    );
    assert!(dir.get("full/secret", 100).is_err());
    assert!(dir.get("manifest", 100).is_err());
    assert_eq!(dir.list("").unwrap(), Vec::new());
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 1);

    // A temporary file a crash left is not an object.
    fs::create_dir(root.join("delta")).unwrap();
    fs::write(root.join("delta/.tmp-123-0-abc"), b"partial").unwrap();
    dir.put("delta/1", b"whole").unwrap();
    let names: Vec<String> = dir.list("").unwrap().into_iter().map(|o| o.name).collect();
    assert_eq!(names, ["delta/1"]);
}

#[test]
fn a_wrong_secret_is_one_clear_refusal() {
    let tmp = tempfile::tempdir().unwrap();
    let weed = Seaweed::start(tmp.path(), &addresses::SEAWEED_TARGETS.ip(2)).unwrap();
    let wrong = "not-the-secret-key-at-all";
    let t = s3_target(&weed, PREFIX, wrong, Options::default());
    let started = Instant::now();
    let e = t.put("manifest/m", b"x").unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "retried a refusal"
    );
    assert!(!e.retryable, "{e}");
    let text = e.to_string();
    assert!(
        text.starts_with(&format!("s3://{BUCKET}/{PREFIX}: manifest/m: HTTP 403 ")),
        "{text}"
    );
    assert!(
        text.contains("SignatureDoesNotMatch") && text.contains("fix:"),
        "{text}"
    );
    assert!(!text.contains('\n') && !text.contains(wrong) && !text.contains("X-Amz"));
    let e = t.list("").unwrap_err();
    assert!(!e.retryable && e.to_string().contains("list \"\""), "{e}");

    // A missing bucket is not a missing object.
    let t = weed
        .target("no-such-bucket", "", weed.secret_key(), Options::default())
        .unwrap();
    let e = t.get("manifest/m", 100).unwrap_err();
    assert!(
        !e.retryable && e.to_string().contains("NoSuchBucket"),
        "{e}"
    );
    let e = t
        .get_to_file("full/1", &tmp.path().join("out"))
        .unwrap_err();
    assert!(
        !e.retryable && e.to_string().contains("NoSuchBucket"),
        "{e}"
    );
}

#[test]
fn a_stopped_or_hung_store_is_a_retryable_error_in_bounded_time() {
    let tmp = tempfile::tempdir().unwrap();
    let mut weed = Seaweed::start(tmp.path(), &addresses::SEAWEED_TARGETS.ip(3)).unwrap();
    let t = s3_target(&weed, PREFIX, weed.secret_key(), Options::default());
    t.put("manifest/before", b"kept").unwrap();

    weed.stop();
    let started = Instant::now();
    let e = t.put("manifest/during", b"x").unwrap_err();
    let took = started.elapsed();
    assert!(e.retryable, "{e}");
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert!(took > Duration::from_secs(1), "no backoff: {took:?}");
    assert!(
        e.to_string().contains("connection refused") && e.to_string().contains("4 attempts"),
        "{e}"
    );
    assert!(t.list("").unwrap_err().retryable);

    weed.restart().unwrap();
    assert_eq!(t.get("manifest/before", 100).unwrap().unwrap(), b"kept");
    // Hung: the connection opens, no answer comes. The timeouts end it.
    let impatient = Options {
        retry: Policy {
            attempts: 2,
            connect_timeout: Duration::from_secs(1),
            base_timeout: Duration::from_secs(2),
            ..Policy::default()
        },
        ..Options::default()
    };
    let hurried = s3_target(&weed, PREFIX, weed.secret_key(), impatient);
    weed.pause().unwrap();
    let started = Instant::now();
    let got = hurried.get("manifest/before", 100);
    let took = started.elapsed();
    // A stopped weed cannot answer: one that did was woken by someone (a SIGCONT to its
    // process group, say), which its threads' states now show.
    let states = weed.thread_states();
    weed.resume().unwrap();
    let e = got.expect_err(&format!(
        "a stopped weed answered after {took:?}; its threads now: {states}"
    ));
    assert!(e.retryable && e.to_string().contains("timed out"), "{e}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    t.put("manifest/after", b"back").unwrap();
}

#[test]
fn credentials_come_from_a_private_file_or_the_variables() {
    let tmp = tempfile::tempdir().unwrap();
    let weed = Seaweed::start(&tmp.path().join("weed"), &addresses::SEAWEED_TARGETS.ip(4)).unwrap();
    let file = tmp.path().join("credentials");
    fs::write(
        &file,
        format!(
            "[default]\naws_access_key_id = nobody\naws_secret_access_key = nothing\n\n[zone]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            weed.access_key(),
            weed.secret_key()
        ),
    )
    .unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
    let path = file.to_str().unwrap().to_string();
    let env = |key: &str| match key {
        "AWS_SHARED_CREDENTIALS_FILE" => Some(path.clone()),
        "AWS_PROFILE" => Some("zone".to_string()),
        _ => None,
    };
    let e = credentials::resolve(&env).unwrap_err().to_string();
    assert_eq!(
        e,
        format!("{path}: the credentials file is 0644: readable or writable by others, who could take the store's keys (fix: chmod 600 {path})")
    );
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    let creds = credentials::resolve(&env).unwrap();
    assert_eq!(creds.access_key, weed.access_key());

    // open() and open_url() read the process environment: in a child process of this
    // test binary, so no other test sees the variables.
    common::child_test("backup_targets::open_from_the_environment", |cmd| {
        cmd.env("ZONE_ETCD_TEST_CHILD", "1")
            .env("AWS_SHARED_CREDENTIALS_FILE", &file)
            .env("AWS_PROFILE", "zone")
            .env("AWS_ENDPOINT_URL_S3", weed.endpoint())
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY");
    });
}

/// Runs only as the child of the test above (it returns at once otherwise).
#[test]
fn open_from_the_environment() {
    if std::env::var_os("ZONE_ETCD_TEST_CHILD").is_none() {
        return;
    }
    let url = format!("s3://{BUCKET}/owner");
    let owner = destination::open_url(&url, None, None, None).unwrap();
    owner
        .put("manifest/x", b"from the owner's machine")
        .unwrap();
    let endpoint = std::env::var("AWS_ENDPOINT_URL_S3").unwrap();
    let spec = TargetSpec {
        url: url.clone(),
        location: parse_location(&url).unwrap(),
        endpoint: Some(endpoint),
        region: Some("us-east-1".into()),
        ca_file: None,
    };
    let node = destination::open(&spec, Path::new("/")).unwrap();
    assert_eq!(node.url(), url);
    assert_eq!(
        node.get("manifest/x", 100).unwrap().unwrap(),
        b"from the owner's machine"
    );
    // A half-set pair of variables is refused, naming the missing one.
    std::env::set_var("AWS_ACCESS_KEY_ID", "AKIDHALF");
    let e = destination::open(&spec, Path::new("/")).err().unwrap();
    assert_eq!(e.field_name(), Some("AWS_SECRET_ACCESS_KEY"), "{e}");
}

/// A writer killed in the middle of a PUT, before its body or within it: the store keeps
/// no object, empty or cut. (A SIGKILLed `backup run` once left an empty delta manifest on
/// SeaweedFS, which stores an empty object for a PUT cut off before its first body byte
/// unless the request carries its Content-MD5; every later writer refused that chain.)
#[test]
fn a_put_cut_off_midway_leaves_no_object() {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let weed = Seaweed::start(tmp.path(), &addresses::SEAWEED_TARGETS.ip(6)).unwrap();
    let t = s3_target(&weed, PREFIX, weed.secret_key(), Options::default());
    let body = pattern(1000, 7);
    for sent in [0, 10, 999] {
        let name = format!("manifest/cut-after-{sent}");
        let (url, headers) = t.put_request(&name, &body).unwrap();
        let rest = url.split_once("://").unwrap().1;
        let (host, path) = rest.split_once('/').unwrap();
        let mut request = format!(
            "PUT /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in &headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        let mut stream = std::net::TcpStream::connect(host).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        stream.write_all(&body[..sent]).unwrap();
        stream.flush().unwrap();
        std::thread::sleep(Duration::from_millis(200));
        drop(stream); // what the kernel does for a SIGKILLed writer
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(
            t.get(&name, 10_000).unwrap(),
            None,
            "a PUT cut off after {sent} of {} body bytes left an object",
            body.len()
        );
        // The same request sent whole is taken.
        t.put(&name, &body).unwrap();
        assert_eq!(t.get(&name, 10_000).unwrap().unwrap(), body);
    }
}
