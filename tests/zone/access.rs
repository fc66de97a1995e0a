//! The owner's `[access]` policy made into etcd's users and roles (model/src/policy/rbac.rs and
//! node/src/policy/apply.rs, issue 34 item 4's core), on a real one-member zone of the bundled etcd
//! (`addresses::ACCESS`, .1), with auth enabled by the apply: each service's identity reads and
//! writes its own prefix and nothing else (get, put, delete, a range over everything, a txn, a
//! watch), an identity the policy does not name is refused, and a changed policy changes
//! exactly what it changed. The service certificates are made here with openssl from the
//! member's node CA (the zone's signers do not exist yet: see
//! docs/design/least-privilege.md).

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{wait_for, Kind, TestZone};
use zone_etcd_kit::cluster_api::{self, Credentials};
use zone_model::policy::{rbac, Policy};
use zone_node::policy::{apply, read};
use zone_testkit::addresses;

const ZONE: &str = "access.zone";

/// Why these zones are of the previous kind: the tests play the keepers themselves, with
/// certificates from the member's node CA, so the zone's own keepers must not apply a
/// policy of their own (they would remove the tests' users as outsiders).
const ROOT_FOR_ALL: Kind =
    Kind::Previous("the test applies policies itself: the zone's own keepers must not");
const NODE: &str = "node1.access.zone";

/// A client certificate with CN `cn` from member 0's node CA (SAN: the node's name, within
/// the CA's name constraints), in `dir`: (cert, key).
fn client_cert(zone: &TestZone, dir: &Path, cn: &str) -> (PathBuf, PathBuf) {
    let pki = zone.node_dir(0).join("pki");
    let (key, csr, crt, ext) = (
        dir.join(format!("{cn}.key")),
        dir.join(format!("{cn}.csr")),
        dir.join(format!("{cn}.crt")),
        dir.join(format!("{cn}.ext")),
    );
    std::fs::write(
        &ext,
        format!("basicConstraints=critical,CA:false\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\nsubjectAltName=DNS:{NODE}\n"),
    )
    .unwrap();
    let ok = |cmd: &mut Command| {
        let out = cmd.output().expect("openssl runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    ok(Command::new("openssl")
        .args([
            "ecparam",
            "-genkey",
            "-name",
            "prime256v1",
            "-noout",
            "-out",
        ])
        .arg(&key));
    ok(Command::new("openssl")
        .args(["req", "-new", "-subj", &format!("/CN={cn}"), "-key"])
        .arg(&key)
        .arg("-out")
        .arg(&csr));
    ok(Command::new("openssl")
        .args(["x509", "-req", "-days", "2", "-in"])
        .arg(&csr)
        .arg("-CA")
        .arg(pki.join("node.crt"))
        .arg("-CAkey")
        .arg(pki.join("node.key"))
        .arg("-CAcreateserial")
        .arg("-extfile")
        .arg(&ext)
        .arg("-out")
        .arg(&crt));
    // The chain up to the node CA: etcd verifies it against the zone root.
    let chain = format!(
        "{}{}",
        std::fs::read_to_string(&crt).unwrap(),
        std::fs::read_to_string(pki.join("node.crt")).unwrap()
    );
    std::fs::write(&crt, chain).unwrap();
    (crt, key)
}

/// etcdctl as the identity `who`: (success, stdout + stderr).
fn as_identity(zone: &TestZone, who: &(PathBuf, PathBuf), args: &[&str]) -> (bool, String) {
    let identity = common::Identity {
        chain: who.0.clone(),
        key: who.1.clone(),
    };
    common::etcdctl_said(&zone.client_url(0), &zone.tls(0, "ca.crt"), &identity, args)
}

fn policy(mut value: serde_json::Value) -> Policy {
    value["enforce"] = serde_json::json!(true);
    Policy::parse(&value, "access", ZONE, &[NODE.to_string()]).unwrap()
}

/// Applies `policy` through member 0 with its own client certificate (the member's
/// identity holds etcd's root role): the operations done.
fn apply_policy(zone: &TestZone, policy: &Policy) -> Vec<rbac::Op> {
    let read = |f: &str| std::fs::read_to_string(zone.tls(0, f)).unwrap();
    let creds = Credentials::from_pem(&read("ca.crt"), &read("client.crt"), &read("client.key"));
    let want = rbac::desired(policy, &[NODE.to_string()]);
    let runtime = cluster_api::runtime().unwrap();
    runtime.block_on(async {
        let mut client = cluster_api::connect(&zone.client_url(0), &creds)
            .await
            .expect("connect as the member");
        apply::apply(&mut client, &want, ZONE, &Default::default(), true, true)
            .await
            .expect("the policy applies")
            .ops
    })
}

#[test]
fn a_policy_becomes_etcds_users_and_roles_and_each_service_gets_its_prefix_only() {
    let zone = TestZone::bootstrap_of(ROOT_FOR_ALL, ZONE, addresses::ACCESS.subnet(), 1);
    let mut running = zone.launch_all();
    zone.wait_healthy(&mut running);
    let dir = tempfile::tempdir().unwrap();
    let photos = client_cert(&zone, dir.path(), &format!("photos@{NODE}"));
    let music = client_cert(&zone, dir.path(), &format!("music@{NODE}"));
    let stranger = client_cert(&zone, dir.path(), &format!("stranger@{NODE}"));
    let member = (zone.tls(0, "client.crt"), zone.tls(0, "client.key"));
    for (key, value) in [
        ("apps/photos/a", "1"),
        ("apps/music/b", "2"),
        ("apps/shared/c", "3"),
        ("zone-etcd/x", "4"),
    ] {
        assert!(as_identity(&zone, &member, &["put", key, value]).0);
    }
    // Before the policy every certificate the zone accepts is root: photos reads music's.
    let (ok, out) = as_identity(&zone, &photos, &["get", "apps/music/b"]);
    assert!(ok && out.contains("apps/music/b"), "{out}");

    let v1 = policy(serde_json::json!({"service": [
        {"name": "photos", "nodes": [NODE], "read_write": ["apps/photos/"], "read": ["apps/shared/"]},
        {"name": "music", "nodes": [NODE], "read_write": ["apps/music/"]}]}));
    let ops = apply_policy(&zone, &v1);
    assert_eq!(ops.last(), Some(&rbac::Op::Enable), "{ops:?}");

    // photos: its prefix read and written, the shared prefix read.
    assert!(as_identity(&zone, &photos, &["put", "apps/photos/new", "x"]).0);
    let (ok, out) = as_identity(&zone, &photos, &["get", "apps/photos/", "--prefix"]);
    assert!(
        ok && out.contains("apps/photos/a") && out.contains("apps/photos/new"),
        "{out}"
    );
    assert!(as_identity(&zone, &photos, &["get", "apps/shared/c"]).0);
    assert!(as_identity(&zone, &photos, &["del", "apps/photos/new"]).0);
    // ...and nothing else: each refused, with etcd's reason.
    for args in [
        &["put", "apps/shared/c", "x"][..],
        &["get", "apps/music/b"],
        &["put", "apps/music/b", "x"],
        &["del", "apps/music/b"],
        &["get", "", "--prefix"],
        &["get", "zone-etcd/x"],
        &["put", "zone-etcd/x", "x"],
        &["watch", "apps/music/", "--prefix"],
    ] {
        let (ok, out) = as_identity(&zone, &photos, args);
        assert!(
            !ok && out.contains("permission denied"),
            "photos {args:?}: {out}"
        );
    }
    let (ok, out) = txn(&zone, &photos, "put apps/music/b x");
    assert!(
        !ok && out.contains("permission denied"),
        "photos txn: {out}"
    );
    // music has its own; an identity the policy does not name is nobody.
    assert!(as_identity(&zone, &music, &["put", "apps/music/b", "5"]).0);
    let (ok, out) = as_identity(&zone, &music, &["get", "apps/photos/a"]);
    assert!(!ok && out.contains("permission denied"), "{out}");
    let (ok, out) = as_identity(&zone, &stranger, &["get", "apps/photos/a"]);
    assert!(!ok, "{out}");
    // The member (root) still does everything.
    assert!(as_identity(&zone, &member, &["get", "", "--prefix"]).0);

    // A new policy: music gone, photos reads apps/common/ instead of apps/shared/. Only
    // that changes; applying it again changes nothing.
    let v2 = policy(serde_json::json!({"service": [
        {"name": "photos", "nodes": [NODE], "read_write": ["apps/photos/"], "read": ["apps/common/"]}]}));
    let ops = apply_policy(&zone, &v2);
    // A grant, music's user and role deleted, a grant revoked: auth is on already.
    assert_eq!(ops.len(), 4, "{ops:?}");
    assert!(as_identity(&zone, &photos, &["get", "apps/common/", "--prefix"]).0);
    wait_for(
        std::time::Duration::from_secs(10),
        "photos loses apps/shared/",
        || !as_identity(&zone, &photos, &["get", "apps/shared/c"]).0,
    );
    let (ok, out) = as_identity(&zone, &music, &["get", "apps/music/b"]);
    assert!(!ok, "music still reads: {out}");
    assert!(as_identity(&zone, &photos, &["put", "apps/photos/a", "6"]).0);
    assert_eq!(apply_policy(&zone, &v2), vec![], "applied again");
}

/// `etcdctl txn` as `who` with `op` as its success branch: (success, output).
fn txn(zone: &TestZone, who: &(PathBuf, PathBuf), op: &str) -> (bool, String) {
    use std::io::Write;
    let mut child = Command::new(common::bundled("etcdctl"))
        .arg(format!("--endpoints={}", zone.client_url(0)))
        .arg(format!("--cacert={}", zone.tls(0, "ca.crt").display()))
        .arg(format!("--cert={}", who.0.display()))
        .arg(format!("--key={}", who.1.display()))
        .arg("txn")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    write!(child.stdin.take().unwrap(), "\n{op}\n\n\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success() && !text.contains("Error"), text)
}

/// How many services' roles and users [`keepers_applying_one_plan_at_once_each_finish`]
/// takes away, each round: with 40, the keepers race in every round even on an idle
/// disk (with 12 they did not: with the product's `done_already` turned off, the test
/// still passed). One round: without `done_already` it failed in round 0 every time (5
/// of 5 alone); three rounds took 170 s in cc101's main run, its slowest test, each of
/// the thousand auth calls waiting on a WAL sync of the suite's shared disk.
const SERVICES: usize = 40;
const ROUNDS: usize = 1;

/// How long [`keepers_applying_one_plan_at_once_each_finish`]'s clients wait for an answer.
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(60);

/// Every member's keeper applies the same plan at once (agent/src/access/): a role or
/// user another keeper deletes between this one's list and its read of it is gone, not a
/// failed round (a failed round costs a second, and a revocation's cut waits for it). Six
/// applies 40 ms apart take 40 services' roles and users away; each finishes.
///
/// What is asserted is that no keeper fails on another's work, not how fast one member
/// takes some four hundred auth calls: each is a raft entry its WAL syncs, on a disk the
/// suite shares with a dozen members and a compiler. So the test's clients wait up to
/// [`PATIENCE`] for an answer, not the product's 5 s: under that load one DeleteUser once
/// waited longer than 5 s, a timeout that said nothing about the keepers (a real keeper
/// applies again at its next round), and each keeper applies again when etcd itself timed
/// a proposal out. A hang still fails the test.
#[test]
fn keepers_applying_one_plan_at_once_each_finish() {
    let zone = TestZone::bootstrap_of(ROOT_FOR_ALL, ZONE, addresses::ACCESS_B.subnet(), 1);
    let mut running = zone.launch_all();
    zone.wait_healthy(&mut running);
    let read = |f: &str| std::fs::read_to_string(zone.tls(0, f)).unwrap();
    let creds = Credentials::from_pem(&read("ca.crt"), &read("client.crt"), &read("client.key"));
    let many = || {
        let mut state = rbac::AuthState::default();
        for i in 0..SERVICES {
            let role = format!("svc:s{i}");
            let perm = rbac::Perm {
                access: rbac::Access::ReadWrite,
                key: format!("apps/s{i}/").into_bytes(),
                range_end: format!("apps/s{i}0").into_bytes(),
            };
            state.roles.insert(role.clone(), [perm].into());
            state.users.insert(format!("s{i}@{NODE}"), [role].into());
        }
        state
    };
    let runtime = cluster_api::runtime().unwrap();
    runtime.block_on(async {
        for round in 0..ROUNDS {
            let mut client = cluster_api::connect_for(&zone.client_url(0), &creds, PATIENCE)
                .await
                .expect("connect as the member");
            let ops = apply::apply(&mut client, &many(), ZONE, &Default::default(), true, true)
                .await
                .expect("the services' roles and users are made")
                .ops;
            assert_eq!(ops.len(), 4 * SERVICES, "round {round}");
            let mut keepers = Vec::new();
            for k in 0..6u64 {
                let mut client = cluster_api::connect_for(&zone.client_url(0), &creds, PATIENCE)
                    .await
                    .expect("connect as the member");
                // One after another, so that some read while others delete.
                keepers.push(tokio::spawn(async move {
                    tokio::time::sleep(std::time::Duration::from_millis(k * 40)).await;
                    // etcd's own timeout of a proposal (its WAL sync stalled on the
                    // suite's shared disk: cc98, a DeleteUser) is no keeper's failure
                    // on another's work: a real keeper applies again at its next round,
                    // and so does this one, twice at most. Any other error fails.
                    let mut tries = 0;
                    loop {
                        let done = apply::apply(
                            &mut client,
                            &rbac::AuthState::default(),
                            ZONE,
                            &Default::default(),
                            true,
                            true,
                        )
                        .await;
                        tries += 1;
                        match done {
                            Err(e) if e.contains("etcdserver: request timed out") && tries < 3 => {
                                eprintln!("keeper {k}: {e}; applying again");
                            }
                            done => break done,
                        }
                    }
                }));
            }
            for keeper in keepers {
                let done = keeper.await.expect("the keeper's task ends");
                assert!(done.is_ok(), "round {round}: {done:?}");
            }
            let left = read::read(&mut client).await.expect("the auth store reads");
            assert!(
                left.roles.keys().all(|r| !r.starts_with("svc:")) && left.users.is_empty(),
                "round {round}: {left:?}"
            );
        }
    });
}
