//! Leaf sets at launch: reused while valid, reissued whole when not, and launches of one
//! node serialised by the state lock. etcd is replaced by a stand-in here: these tests are
//! about what launch writes before exec, and start no server.

use crate::common;

use std::fs;
use std::path::Path;

use common::{assert_whole_set, run, serial, zone_with_true_etcd, TestZone};
use zone_testkit::addresses;

fn launch(zone: &TestZone) {
    let (ok, _, err) = run(&["launch", "--config", zone.config(0).to_str().unwrap()]);
    assert!(ok, "{err}");
}

#[test]
fn valid_leaves_are_reused_and_a_broken_set_is_reissued_whole() {
    let zone = zone_with_true_etcd(addresses::LEAVES.subnet());
    launch(&zone);
    assert_whole_set(&zone);
    let first = serial(&zone.tls(0, "server.crt"));
    launch(&zone);
    assert_eq!(
        serial(&zone.tls(0, "server.crt")),
        first,
        "valid leaves are reused"
    );

    fs::remove_file(zone.tls(0, "peer.key")).unwrap();
    launch(&zone);
    assert_whole_set(&zone);
    assert_ne!(
        serial(&zone.tls(0, "server.crt")),
        first,
        "the whole set is reissued"
    );
    let sets = fs::read_dir(zone.node_dir(0).join("state/tls/sets"))
        .unwrap()
        .count();
    assert_eq!(sets, 2, "the current set and the previous one are kept");
    launch(&zone);
    assert_eq!(
        fs::read_dir(zone.node_dir(0).join("state/tls/sets"))
            .unwrap()
            .count(),
        2
    );
}

#[test]
fn concurrent_launches_of_one_node_leave_one_whole_set() {
    let zone = zone_with_true_etcd(addresses::LEAVES_B.subnet());
    let config = zone.config(0);
    let children: Vec<_> = (0..6)
        .map(|_| {
            common::zone_etcd()
                .args(["launch", "--config", config.to_str().unwrap()])
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_whole_set(&zone);
    let sets: Vec<_> = fs::read_dir(zone.node_dir(0).join("state/tls/sets"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(
        sets.len(),
        1,
        "one launch issued, the others reused it: {sets:?}"
    );
    let mode = |p: &Path| {
        std::os::unix::fs::PermissionsExt::mode(&fs::metadata(p).unwrap().permissions()) & 0o777
    };
    assert_eq!(mode(&zone.node_dir(0).join("state")), 0o700);
    assert_eq!(mode(&zone.tls(0, "server.key")), 0o600);
    assert_eq!(mode(&zone.node_dir(0).join("state/tls/current/")), 0o700);
}
