//! The systemd units under scripts/systemd/ pass `systemd-analyze verify` (with the
//! built zone-etcd in place of /usr/bin/zone-etcd), and every timer names a service
//! that exists beside it.

use crate::common;

use std::fs;
use std::process::Command;

#[test]
fn every_unit_passes_systemd_analyze_verify() {
    let source = common::repo().join("scripts/systemd");
    let dir = tempfile::tempdir().unwrap();
    let binary = env!("CARGO_BIN_EXE_zone-etcd");
    let mut units = Vec::new();
    for entry in fs::read_dir(&source).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = fs::read_to_string(&path)
            .unwrap()
            .replace("/usr/bin/zone-etcd", binary);
        fs::write(dir.path().join(&name), text).unwrap();
        units.push(name);
    }
    units.sort();
    // A template is verified as an instance of itself (the bundle in /srv/zone/node1).
    let mut verified = Vec::new();
    for name in &units {
        if name.contains("@.") {
            let instance = name.replace("@.", "@srv-zone-node1.");
            fs::copy(dir.path().join(name), dir.path().join(&instance)).unwrap();
            verified.push(instance);
        } else {
            verified.push(name.clone());
        }
    }
    for timer in units.iter().filter(|u| u.ends_with(".timer")) {
        let service = timer.replace(".timer", ".service");
        assert!(units.contains(&service), "{timer} without {service}");
    }
    for expected in [
        "zone-etcd-snapshot.timer",
        "zone-etcd-maintain.timer",
        "zone-etcd@.service",
        "zone-etcd-backup.service",
        "zone-etcd-backup-drill.timer",
    ] {
        assert!(
            units.iter().any(|u| u == expected),
            "{expected} missing: {units:?}"
        );
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        // The man pages the units name are installed by the package (tests/zone/package.rs
        // renders them from the installed paths), not on this machine.
        .arg("--man=no")
        .args(verified.iter().map(|u| dir.path().join(u)))
        .output()
        .expect("systemd-analyze runs (scripts/test.sh installs systemd)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "systemd-analyze verify failed:\n{stderr}"
    );
    assert!(
        !stderr.contains(&*dir.path().to_string_lossy()),
        "systemd-analyze complained:\n{stderr}"
    );
}
