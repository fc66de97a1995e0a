//! The arm64 package (issue 35), checked on this amd64 machine: both packages as a user's
//! dpkg sees them (Architecture, every binary's ELF class and machine, Depends against
//! the binaries' needs, the same files at the same paths), and the check failing on a
//! package with an amd64 binary swapped in; the arm64 zone-etcd under qemu-user writing
//! what the amd64 build writes; and a mixed zone over network-namespace machines (tag
//! "a6", `addresses::ARM64` .1-4) whose third member runs the arm64 zone-etcd and etcd from the
//! .deb under qemu-user. Emulation is slow: waits on the emulated member scale by
//! [`SLOW`]; no assertion is loosened, and no speed is measured.
//!
//! Needs root, qemu-user-static, libc6-arm64-cross and binutils (scripts/package.sh
//! --arch arm64 installs the first two and builds the package; tests/zone/common/sysroot.rs's
//! package_for runs it when the package is stale).

use crate::common;

mod binfmt;
mod emulated;
mod mixed_zone;
mod package_check;
mod same_files;

use std::fs;
use std::path::Path;
use std::process::Command;

use binfmt::Binfmt;
use common::netns::must;
use common::sysroot;
use zone_testkit::addresses;

/// How many times longer than a native member's the waits on the emulated one are.
const SLOW: u32 = 4;

/// Runs `cmd`, insisting it succeeds; its stdout.
fn output_ok(mut cmd: Command) -> String {
    let (ok, stdout, stderr) = common::outcome(cmd.output().expect("the command runs"));
    assert!(ok, "{cmd:?} failed:\n{stdout}{stderr}");
    stdout
}

#[test]
fn both_packages_are_what_dpkg_expects_and_a_swapped_in_amd64_binary_fails_the_check() {
    let arm = package_check::unpack(&sysroot::package_for("arm64"));
    let amd = package_check::unpack(&sysroot::package_for("amd64"));
    assert_eq!(package_check::problems(&arm, "arm64"), Vec::<String>::new());
    assert_eq!(package_check::problems(&amd, "amd64"), Vec::<String>::new());
    for field in ["Package", "Version", "Depends", "Section", "Description"] {
        assert_eq!(arm.field(field), amd.field(field), "control field {field}");
    }

    // The same files at the same paths, with the same modes; all but the binaries
    // (man pages, completions, units, docs) byte for byte.
    let (arm_files, amd_files) = (arm.files(), amd.files());
    assert_eq!(
        arm_files.keys().collect::<Vec<_>>(),
        amd_files.keys().collect::<Vec<_>>()
    );
    for (rel, (mode, elf)) in &arm_files {
        assert_eq!(
            (mode, elf),
            (&amd_files[rel].0, &amd_files[rel].1),
            "{rel:?}"
        );
        let (a, b) = (arm.root.path().join(rel), amd.root.path().join(rel));
        if !elf && a.is_file() {
            assert!(fs::read(&a).unwrap() == fs::read(&b).unwrap(), "{rel:?}");
        }
    }

    // An amd64 etcd swapped into the arm64 package, and its control lowered: the check
    // names each fault.
    let work = tempfile::tempdir().unwrap();
    let tree = work.path().join("tree");
    let deb = sysroot::package_for("arm64");
    must(
        "dpkg-deb",
        &["-R", deb.to_str().unwrap(), tree.to_str().unwrap()],
    );
    let swapped = "usr/lib/zone-etcd/etcd-3.5.34/etcd";
    fs::copy(amd.root.path().join(swapped), tree.join(swapped)).unwrap();
    let control = tree.join("DEBIAN/control");
    let text = fs::read_to_string(&control).unwrap();
    assert!(text.contains("libc6 (>= 2.34)"), "{text}");
    fs::write(&control, text.replace("libc6 (>= 2.34)", "libc6 (>= 2.17)")).unwrap();
    let tampered = work.path().join("tampered.deb");
    must(
        "dpkg-deb",
        &[
            "-Znone",
            "--root-owner-group",
            "-b",
            tree.to_str().unwrap(),
            tampered.to_str().unwrap(),
        ],
    );
    let problems = package_check::problems(&package_check::unpack(&tampered), "arm64");
    let wrong_machine = format!(
        "{swapped}: ELF64 Advanced Micro Devices X86-64, not ELF64 AArch64 (an arm64 package)"
    );
    assert!(problems.contains(&wrong_machine), "{problems:#?}");
    assert!(
        problems.contains(
            &"usr/bin/zone-etcd: needs libc6 >= 2.34 (its symbol versions), Depends says >= 2.17"
                .to_string()
        ),
        "{problems:#?}"
    );
    // An arm64 package said to be amd64 fails on the field and on every binary.
    let problems = package_check::problems(&arm, "amd64");
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("control field Architecture"))
            && problems.len() == 1 + package_check::BINARIES.len(),
        "{problems:#?}"
    );
}

#[test]
fn the_arm64_build_under_qemu_writes_what_the_amd64_build_writes() {
    let arm = emulated::unpack(&sysroot::package_for("arm64"));
    // `check` runs the package's own (arm64) etcd --version.
    let _binfmt = Binfmt::register();
    let work = tempfile::tempdir().unwrap();
    let at = |rel: &str| work.path().join(rel).to_str().unwrap().to_string();
    let amd64 = |args: &[String]| common::run_ok(args);
    let arm64 = |args: &[String]| output_ok(arm.command(args));

    assert_eq!(
        amd64(&["--version".to_string()]),
        arm64(&["--version".to_string()])
    );
    // The same etcd releases (Git SHA and Go too), built for linux/arm64, and the same
    // Debian etcdctl and etcdutl, each asked under qemu-user.
    for (tool, arg) in [
        ("etcd", "--version"),
        ("etcd-3.5.34/etcd", "--version"),
        ("etcdctl", "version"),
        ("etcdutl", "version"),
    ] {
        let mut amd = Command::new(common::bundled(tool));
        amd.arg(arg);
        let mut emulated = emulated::emulated(&arm.lib(tool));
        emulated.arg(arg);
        let (amd, arm) = (output_ok(amd), output_ok(emulated));
        assert_eq!(
            amd.replace("linux/amd64", "linux/arm64"),
            arm,
            "{tool} {arg}"
        );
    }
    // Each build its own zone CA: the same structure.
    amd64(&common::ca_init_args("same.zone", &at("amd64/own-ca")));
    arm64(&common::ca_init_args("same.zone", &at("arm64/own-ca")));
    same_files::assert_same(
        &work.path().join("amd64/own-ca"),
        &work.path().join("arm64/own-ca"),
        &[],
    );

    // One zone CA for both (a copy each, as bootstrap records what it issues there):
    // bootstrap, activate and zone sign.
    let zone = format!(
        "name = \"same.zone\"\n\n[[etcd]]\nnode_name = \"node1.same.zone\"\naddress = \"{}\"\n\n[[etcd]]\nnode_name = \"node2.same.zone\"\naddress = \"{}\"\n",
        addresses::ARM64.ip(1),
        addresses::ARM64.ip(2)
    );
    fs::write(work.path().join("zone.toml"), zone).unwrap();
    for build in ["amd64", "arm64"] {
        must(
            "cp",
            &["-a", &at("amd64/own-ca"), &at(&format!("{build}/ca"))],
        );
    }
    let steps = |build: &str| {
        let dir = |rel: &str| at(&format!("{build}/{rel}"));
        vec![
            common::bootstrap_args(&dir("ca"), &at("zone.toml"), &dir("nodes")),
            common::activate_args(
                &dir("ca"),
                &at("zone.toml"),
                "node2.same.zone",
                &dir("node2"),
            ),
            [
                "zone",
                "sign",
                "--ca",
                &dir("ca"),
                "--zone",
                &at("zone.toml"),
                "--out",
                &dir("zone.json"),
            ]
            .map(String::from)
            .to_vec(),
            // The leaves, as a launch would issue them.
            [
                "rotate",
                "--config",
                &dir("nodes/node1.same.zone/node.toml"),
            ]
            .map(String::from)
            .to_vec(),
        ]
    };
    for step in steps("amd64") {
        amd64(&step);
    }
    for step in steps("arm64") {
        arm64(&step);
    }
    let roots = [zone_pki::CertInfo::parse_pem(
        &fs::read_to_string(work.path().join("amd64/ca/ca.crt")).unwrap(),
    )
    .unwrap()];
    let mut documents = Vec::new();
    for build in ["amd64", "arm64"] {
        let file = work.path().join(build).join("zone.json");
        let text = fs::read_to_string(&file).unwrap();
        zone_model::zone_doc::verify(&text, "same.zone", &roots)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        // The same document but its time and its (randomized) ECDSA signature.
        let stable: Vec<&str> = text
            .lines()
            .filter(|l| !l.contains("\"signed_at\"") && !l.contains("\"sign\""))
            .collect();
        documents.push(stable.join("\n"));
        fs::remove_file(file).unwrap();
    }
    assert_eq!(documents[0], documents[1]);
    same_files::assert_same(
        &work.path().join("amd64"),
        &work.path().join("arm64"),
        &["nodes/node1.same.zone/state/lock"],
    );

    // check reads both alike; the arm64 one finds the package's arm64 etcd.
    let report = |json: String, etcd: &Path, base: &str| {
        let mut value: serde_json::Value =
            serde_json::from_str(&json.replace(base, "<dir>")).unwrap();
        let found = Path::new(value["etcd"]["path"].as_str().unwrap_or_default()).canonicalize();
        assert_eq!(
            found.ok(),
            etcd.canonicalize().ok(),
            "the etcd check runs: {value}"
        );
        value["etcd"]["path"] = "<etcd>".into();
        // The data disk's figures and findings are measured, each run its own.
        for key in [
            "at",
            "bytes",
            "seconds",
            "writes",
            "fdatasync_p50_ms",
            "fdatasync_p99_ms",
            "fdatasync_max_ms",
            "findings",
        ] {
            assert!(!value["disk"][key].is_null(), "{key}: {value}");
            value["disk"][key] = serde_json::Value::Null;
        }
        for cert in value["certificates"].as_array_mut().unwrap() {
            cert["not_after"] = serde_json::Value::Null; // issued seconds apart
            cert["seconds_left"] = serde_json::Value::Null;
        }
        value
    };
    let check = |build: &str| {
        let config = at(&format!("{build}/nodes/node1.same.zone/node.toml"));
        ["check", "--json", "--config", &config]
            .map(String::from)
            .to_vec()
    };
    let amd_report = report(
        amd64(&check("amd64")),
        &common::bundled("etcd"),
        &at("amd64"),
    );
    let arm_report = report(arm64(&check("arm64")), &arm.lib("etcd"), &at("arm64"));
    assert_eq!(amd_report["ok"], true, "{amd_report}");
    assert_eq!(arm_report["etcd"]["version"], "3.6.15", "{arm_report}");
    assert_eq!(amd_report, arm_report);
}

#[test]
fn an_unknown_architecture_is_refused_in_one_line_naming_the_flag_before_anything_is_written() {
    let names = |dir: &str| {
        let mut names: Vec<String> = fs::read_dir(common::repo().join(dir))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    };
    let before = (names("dist"), names("bin"));
    for script in ["scripts/package.sh", "scripts/fetch-etcd.sh"] {
        let out = Command::new(common::repo().join(script))
            .args(["--arch", "riscv64"])
            .output()
            .expect("the script runs");
        let (ok, _, err) = common::outcome(out);
        assert!(!ok, "{script} --arch riscv64 succeeded");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "{script}: {err}");
        for word in ["--arch", "riscv64", "--arch amd64", "--arch arm64"] {
            assert!(lines[0].contains(word), "{script}: {err}");
        }
    }
    // And a profile packages are not built with.
    let out = Command::new(common::repo().join("scripts/package.sh"))
        .args(["--profile", "fast"])
        .output()
        .expect("the script runs");
    let (ok, _, err) = common::outcome(out);
    assert!(!ok, "package.sh --profile fast succeeded");
    assert_eq!(err.lines().count(), 1, "{err}");
    for word in ["--profile", "fast", "--profile release", "--profile dev"] {
        assert!(err.contains(word), "{err}");
    }
    assert_eq!((names("dist"), names("bin")), before, "nothing written");
}
