//! Requests that race the auth store's changes (`addresses::AUTH_CHURN` .1-3, a real
//! 3-member zone of the bundled etcd with `[access] enforce = true`): etcd refuses a
//! request whose auth revision a concurrent auth write made stale (ErrAuthOldRevision,
//! "revision of auth store is old"), without applying it. The keepers change the auth
//! store whenever they apply a policy or a revocation, so every command writing in such
//! a zone meets it: `cluster_api::ask` asks again, as etcd's own client does, and
//! `revoke` (found failing on it in a clean run) goes through under a churning auth store,
//! as does a paged read (`cluster_api::range`; found failing in a clean run's quota test).

use crate::common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use zone_etcd_kit::cluster_api::{self, Kind};
use zone_testkit::addresses;

const ZONE: &str = "churn.zone";

const ACCESS: &str = r#"
[access]
enforce = true
"#;

/// Puts `writes` keys as the owner, plainly or through [`cluster_api::ask`]: how many
/// etcd refused for the old auth revision (any other failure fails the test).
fn refusals(
    creds: &cluster_api::Credentials,
    endpoints: &[String],
    writes: usize,
    asked: bool,
) -> usize {
    let runtime = cluster_api::runtime().unwrap();
    runtime.block_on(async {
        let mut client = cluster_api::connect_many(endpoints, creds, cluster_api::REQUEST_TIMEOUT)
            .await
            .expect("the owner connects");
        let mut kv = client.kv_client();
        let mut refused = 0;
        for i in 0..writes {
            let key = format!("apps/churn/{i}");
            let put = if asked {
                let key = key.as_str();
                cluster_api::ask(&kv, |mut kv| async move { kv.put(key, "v", None).await }).await
            } else {
                cluster_api::within(async {
                    kv.put(key.as_str(), "v", None)
                        .await
                        .map_err(cluster_api::EtcdError::from)
                })
                .await
            };
            match put {
                Ok(_) => {}
                Err(e) if e.kind() == Kind::AuthOldRevision => refused += 1,
                Err(e) => panic!("put {key}: {e}"),
            }
        }
        let _ = client.delete("apps/churn/", None).await;
        refused
    })
}

/// Reads the prefix `apps/` `reads` times as the owner, plainly or in pages through
/// [`cluster_api::range::read_prefix`] (the quota decider's and the commands' paged
/// read): how many etcd refused for the old auth revision (any other failure fails the
/// test).
fn read_refusals(
    creds: &cluster_api::Credentials,
    endpoints: &[String],
    reads: usize,
    paged: bool,
) -> usize {
    let runtime = cluster_api::runtime().unwrap();
    runtime.block_on(async {
        let client = cluster_api::connect_many(endpoints, creds, cluster_api::REQUEST_TIMEOUT)
            .await
            .expect("the owner connects");
        let mut refused = 0;
        for i in 0..reads {
            let read = if paged {
                cluster_api::range::read_prefix(&client, b"apps/", 0)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            } else {
                let mut kv = client.kv_client();
                let options = etcd_client::GetOptions::new().with_prefix();
                kv.get("apps/", Some(options))
                    .await
                    .map(|_| ())
                    .map_err(|e| cluster_api::describe(&e))
            };
            match read {
                Ok(()) => {}
                Err(e) if e.contains("revision of auth store is old") => refused += 1,
                Err(e) => panic!("read {i}: {e}"),
            }
        }
        refused
    })
}

/// Adds and deletes a role as the owner until `stop`, counting the auth store's changes.
fn churn(
    creds: cluster_api::Credentials,
    endpoints: Vec<String>,
    stop: Arc<AtomicBool>,
    changes: Arc<AtomicU64>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let runtime = cluster_api::runtime().unwrap();
        runtime.block_on(async {
            let client =
                cluster_api::connect_many(&endpoints, &creds, cluster_api::REQUEST_TIMEOUT)
                    .await
                    .expect("the churner connects");
            let mut auth = client.auth_client();
            while !stop.load(Ordering::Relaxed) {
                // The keepers remove a role the policy does not name: either may win.
                if auth.role_add("churn").await.is_ok() {
                    changes.fetch_add(1, Ordering::Relaxed);
                }
                if auth.role_delete("churn").await.is_ok() {
                    changes.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    })
}

#[test]
fn requests_racing_auth_changes_are_asked_again_and_revoke_goes_through() {
    let (zone, running) = common::access_zone(
        common::Kind::LeastPrivilege,
        ZONE,
        addresses::AUTH_CHURN.subnet(),
        ACCESS,
        &[],
    );
    let ca = zone.path("ca");
    let admin = common::admin_identity(&ca, &zone.path("admin"));
    let endpoints: Vec<String> = (0..3)
        .map(|i| format!("https://{}", zone.client_addr(i)))
        .collect();
    let creds = || common::grpc_load::credentials(&zone.tls(0, "ca.crt"), &admin);
    common::wait_for(Duration::from_secs(30), "the keepers turn auth on", || {
        let (ok, out) = common::etcdctl_said(
            &endpoints.join(","),
            &zone.tls(0, "ca.crt"),
            &admin,
            &["auth", "status"],
        );
        ok && out.contains("Authentication Status: true")
    });

    // Identities to revoke, made before the churn starts.
    let doomed: Vec<std::path::PathBuf> = (0..REVOCATIONS)
        .map(|i| common::admin_identity(&ca, &zone.path(&format!("doomed{i}"))).chain)
        .collect();

    let stop = Arc::new(AtomicBool::new(false));
    let changes = Arc::new(AtomicU64::new(0));
    let churner = churn(creds(), endpoints.clone(), stop.clone(), changes.clone());
    let plain = refusals(&creds(), &endpoints, WRITES, false);
    let asked = refusals(&creds(), &endpoints, WRITES, true);
    let plain_reads = read_refusals(&creds(), &endpoints, READS, false);
    let paged_reads = read_refusals(&creds(), &endpoints, READS, true);
    // `revoke` under the same churn, each one of several requests that may meet it (and
    // the keepers change the auth store too, removing what the CRL ends).
    let config = zone.config(0);
    let mut revoked = Vec::new();
    for cert in &doomed {
        revoked.push(common::run(&[
            "revoke",
            "--ca",
            ca.to_str().unwrap(),
            "--identity",
            cert.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ]));
    }
    stop.store(true, Ordering::Relaxed);
    churner.join().unwrap();
    let changes = changes.load(Ordering::Relaxed);
    eprintln!(
        "under {changes} auth changes: {plain} of {WRITES} plain puts refused for the old auth \
         revision, {asked} of {WRITES} asked ones"
    );
    // The race is real here, or this test proves nothing.
    assert!(
        plain > 0,
        "no plain put of {WRITES} met an auth change ({changes} made): the churn did not race"
    );
    assert_eq!(asked, 0, "asked puts refused for the old auth revision");
    eprintln!(
        "{plain_reads} of {READS} plain reads refused for the old auth revision, \
         {paged_reads} of {READS} paged ones"
    );
    assert!(
        plain_reads > 0,
        "no plain read of {READS} met an auth change: the churn did not race"
    );
    assert_eq!(
        paged_reads, 0,
        "paged reads refused for the old auth revision"
    );
    for (i, (ok, out, err)) in revoked.iter().enumerate() {
        assert!(ok, "revoke of doomed{i} under the churn failed:\n{err}");
        assert!(out.contains("revoked the identity root (serial "), "{out}");
    }
    drop(running);
}

/// Puts made under the churn, and revocations.
const WRITES: usize = 100;
const REVOCATIONS: usize = 5;
/// Reads made under the churn, each way.
const READS: usize = 100;
