//! A tenant's quota as a real Prometheus sees it (issue 69, item 4): the decider of a real
//! enforcing zone counts a service's writes, a member's `check --format prometheus` exports
//! the figures into node_exporter's textfile directory, and Debian's Prometheus, with the
//! shipped rules (`for:` made [`super::LIVE_FOR`]), fires `ZoneEtcdQuotaNearlyFull` at 80%
//! of the quota, `ZoneEtcdQuotaStopped` (and no longer the first) once the zone refuses the
//! service's writes, and neither once the service freed its keys with `quota free`.
//!
//! tests/zone/quota.rs's zone (photos' quota 2 MiB) on `addresses::QUOTA_ALERTS` .1-3,
//! etcd 3.7.2; node_exporter and Prometheus on .9 (ports 19210 and 19290).

use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::live::Monitoring;
use super::prom::{self, find};
use crate::common::{self, zone_etcd};
use crate::quota::{identity, quota_zone, NAS};
use zone_testkit::addresses;

/// Each put as etcd and the decider count it: 256 bytes, the key and the value.
const VALUE: usize = 100 * 1024;
const QUOTA: u64 = 2 << 20;

#[test]
fn a_tenant_near_and_at_its_quota_fires_its_alerts_in_a_real_prometheus() {
    let (zone, running) = quota_zone(addresses::QUOTA_ALERTS.subnet(), "3.7.2");
    let photos = identity(&zone, Some("photos"));
    let dir = tempfile::tempdir().unwrap();
    let textfiles = dir.path().join("textfiles");
    fs::create_dir_all(&textfiles).unwrap();

    // The metrics timer of node 1, every second (the package's runs every 5 minutes).
    let stop = Arc::new(AtomicBool::new(false));
    let timer = {
        let (stop, config, out) = (
            stop.clone(),
            zone.config(0),
            textfiles.join("zone-etcd.prom"),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                // A finding exits 1 after writing the file: the metrics report it.
                let _ = zone_etcd()
                    .args(["check", "--format", "prometheus", "--config"])
                    .arg(&config)
                    .arg("--out")
                    .arg(&out)
                    .output();
                std::thread::sleep(Duration::from_secs(1));
            }
        })
    };
    let mon = Monitoring::start_on(
        dir.path(),
        &textfiles,
        &zone.members,
        &addresses::QUOTA_ALERTS.ip(9),
    );
    let api = &mon.api;
    let tenant = [("kind", "service"), ("name", "photos")];
    let state = |name: &str| -> Option<String> {
        find(&api.alerts()?, name, &tenant).map(|a| a.state.clone())
    };

    // photos writes 100 KB values until the decider's figure is at 80% or more.
    let put = |i: usize| {
        let value = "p".repeat(VALUE);
        common::etcdctl_said(
            &zone.endpoints(),
            &zone.tls(0, "ca.crt"),
            &photos,
            &["put", &format!("apps/photos/{i:03}"), &value],
        )
    };
    let each = 256 + "apps/photos/000".len() as u64 + VALUE as u64;
    let nearly = (QUOTA * 8 / 10).div_ceil(each) as usize;
    for i in 0..nearly {
        let (ok, said) = put(i);
        assert!(ok, "photos' put {i} (below 80% of its quota): {said}");
    }
    let used = nearly as u64 * each;
    prom::wait_some(
        Duration::from_secs(60),
        "ZoneEtcdQuotaNearlyFull firing for photos",
        || mon.context(),
        || (state("ZoneEtcdQuotaNearlyFull").as_deref() == Some("firing")).then_some(()),
    );
    assert_eq!(state("ZoneEtcdQuotaStopped"), None, "{}", mon.context());
    // The figure Prometheus holds is the decider's count of what photos wrote.
    let series = format!(r#"zone_etcd_quota_used_bytes{{kind="service",name="photos"}} == {used}"#);
    assert_eq!(api.query(&series), Ok(1), "{series}\n{}", mon.context());

    // On until the zone refuses its writes: stopped, the stop fires and the warning goes.
    let refused = (nearly..nearly + 20).find(|&i| !put(i).0);
    assert!(
        refused.is_some(),
        "photos never refused past its quota: {}",
        mon.context()
    );
    prom::wait_some(
        Duration::from_secs(60),
        "ZoneEtcdQuotaStopped firing for photos, and no warning beside it",
        || mon.context(),
        || {
            (state("ZoneEtcdQuotaStopped").as_deref() == Some("firing")
                && state("ZoneEtcdQuotaNearlyFull").is_none())
            .then_some(())
        },
    );

    // photos frees its keys: writes again, and both alerts resolve.
    let nas = zone.path("nodes").join(NAS).join("node.toml");
    common::run_ok(&[
        "quota",
        "free",
        "--config",
        nas.to_str().unwrap(),
        "--service",
        "photos",
        "--prefix",
        "apps/photos/",
    ]);
    common::wait_for(Duration::from_secs(30), "photos writing again", || put(0).0);
    prom::wait_some(
        Duration::from_secs(60),
        "no quota alert for photos",
        || mon.context(),
        || {
            (state("ZoneEtcdQuotaStopped").is_none() && state("ZoneEtcdQuotaNearlyFull").is_none())
                .then_some(())
        },
    );
    stop.store(true, Ordering::Relaxed);
    timer.join().unwrap();
    for member in running {
        member.stop();
    }
}
