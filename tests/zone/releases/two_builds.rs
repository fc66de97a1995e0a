//! Two real builds of zone-etcd in one zone (issue 50, item 6): the previous release
//! (0.1.0, built from its commit by `scripts/previous-release.sh`) and this build, under a
//! writer. The zone is made by this build's tools and its members start on 0.1.0 (the
//! owner's tools ahead of the members); then a rolling upgrade, member by member, with a
//! revocation and a published policy change in the middle, and one member moved back to
//! 0.1.0 at the end, revoking again. Throughout: no write storm (zone-etcd's documents are
//! written once per change, never fought over), every revoked node refused by every
//! member within 10 s, every acknowledged write on every member; `status` names each
//! member's release. Seen failing: this build adding one field to the revocations
//! document left the laptop admitted by both 0.1.0 members 10 s after its revocation.
//!
//! Then this build's own level 2, raised for real (`zone raise-level --ca`): a revocation
//! then says what each serial is, and every member's client port reads a CRL without the
//! node CAs; and this build beside a simulated next release (this build claiming format
//! level 3, `ZONE_ETCD_SIMULATED_LEVEL`, which only debug builds read): `zone raise-level`
//! refused while one member reads level 2 only, done once every member reads 3, never
//! back; the member moved back to this release then refuses to start, even without the
//! level its keeper remembered (the others say it).
//!
//! Zones on `addresses::RELEASES` .11-13 and .21-23.

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::grpc_load::GrpcWriter;
use common::revocation::{client_identity, refused_times};
use common::{activate_args, run_ok, wait_for, Kind, Running, TestZone};
use serde_json::Value;
use zone_testkit::{addresses, Tools};

const ZONE: &str = "two.zone";
const LAPTOP: &str = "laptop.two.zone";
const PHONE: &str = "phone.two.zone";
/// zone-etcd's documents, each written once per change by the owner's tools (and put
/// back by a keeper only over a tampered or older one).
const DOCS: [&str; 2] = ["zone-etcd/revocations", "zone-etcd/access/policy"];
/// The variable a debug build reads to claim another format level.
const SIMULATED: &str = "ZONE_ETCD_SIMULATED_LEVEL";

/// The previous release's binary (built once per machine; the script waits for a build
/// test.sh started).
fn previous() -> PathBuf {
    let script = common::repo().join("scripts/previous-release.sh");
    let out = Command::new(&script)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", script.display()));
    assert!(
        out.status.success(),
        "scripts/previous-release.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(path.is_file(), "{}: no binary", path.display());
    path
}

/// A zone of three members on `addresses::RELEASES` .`first`.. (least privilege by
/// default), made by this build's tools: the zone and its zone file's text.
fn made(first: u8) -> (TestZone, String) {
    let members: Vec<(String, String)> =
        common::loopback_members(ZONE, addresses::RELEASES.subnet(), 3)
            .into_iter()
            .enumerate()
            .map(|(i, (name, _))| (name, addresses::RELEASES.ip(first + i as u8)))
            .collect();
    let pairs: Vec<(&str, &str)> = members
        .iter()
        .map(|(n, a)| (n.as_str(), a.as_str()))
        .collect();
    let text = common::zone_toml(ZONE, &pairs);
    let zone = TestZone::of_kind(Kind::LeastPrivilege, ZONE, &text, members, 2380, 2379);
    (zone, text)
}

/// `<binary> launch` for member `index`, its log `<node>.<phase>.log`.
fn launch_by(zone: &TestZone, index: usize, binary: &Path, phase: &str) -> Running {
    launch_env(zone, index, binary, phase, None)
}

/// [`launch_by`], this build claiming format level `level` when given (a simulated next
/// release: `ZONE_ETCD_SIMULATED_LEVEL`, read by debug builds only).
fn launch_env(
    zone: &TestZone,
    index: usize,
    binary: &Path,
    phase: &str,
    level: Option<u32>,
) -> Running {
    let tools = Tools {
        zone_etcd: binary.to_path_buf(),
        bin_dir: common::repo().join("bin"),
    };
    let mut cmd = tools.command();
    if let Some(level) = level {
        cmd.env(SIMULATED, level.to_string());
    }
    cmd.args(["launch", "--config", zone.config(index).to_str().unwrap()]);
    let log = zone.path(&format!("{}.{phase}.log", zone.members[index].0));
    Running::spawn(cmd, &log)
}

/// Every member answers (0.1.0's keepers record no release: the kit's wait, not the
/// tests' one that also waits for the records).
fn healthy(zone: &TestZone, running: &mut [Running]) {
    let kit: &zone_testkit::Zone = zone;
    kit.wait_healthy(running, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
}

/// Each key's version (how many times it was written since it was made; 0: absent) and
/// the zone's revision.
fn versions(zone: &TestZone) -> (BTreeMap<&'static str, i64>, i64) {
    let mut out = BTreeMap::new();
    let mut revision = 0;
    for key in DOCS {
        let (ok, text, err) = zone.etcdctl(0, &zone.endpoints(), &["get", key, "-w", "json"]);
        assert!(ok, "{err}");
        let json: Value = serde_json::from_str(&text).unwrap();
        out.insert(key, json["kvs"][0]["version"].as_i64().unwrap_or(0));
        revision = json["header"]["revision"].as_i64().unwrap_or(0);
    }
    (out, revision)
}

/// No keeper writes zone-etcd's documents over `window`, and the zone's revision moves
/// by the writer's puts and a few of the keepers' records at most: no storm.
fn quiet(zone: &TestZone, load: &GrpcWriter, window: Duration, when: &str) {
    let (before, rev0) = versions(zone);
    let acked0 = load.acknowledged();
    std::thread::sleep(window);
    let (after, rev1) = versions(zone);
    let acked = load.acknowledged() - acked0;
    assert_eq!(before, after, "{when}: zone-etcd's documents written again");
    let others = (rev1 - rev0) - acked as i64;
    eprintln!(
        "{when}: {} revisions in {window:?}, {acked} of them the writer's",
        rev1 - rev0
    );
    assert!(
        others <= 10,
        "{when}: {others} writes besides the writer's {acked} in {window:?}: a storm"
    );
}

/// What `status --json` (this build) says each member runs: its zone-etcd release, or
/// `None` for a member without a record.
fn releases(zone: &TestZone) -> Vec<Option<String>> {
    (0..zone.members.len())
        .map(|i| record_of(zone, i)["release"].as_str().map(String::from))
        .collect()
}

/// Member `index`'s release record as `status --json` (this build) shows it (`null`: none).
fn record_of(zone: &TestZone, index: usize) -> Value {
    let (_, json, err) = zone.status(0);
    let members = json["members"]
        .as_array()
        .unwrap_or_else(|| panic!("status --json: {err}"));
    members
        .iter()
        .find(|m| m["name"] == zone.members[index].0.as_str())
        .map(|m| m["zone_etcd"].clone())
        .unwrap_or(Value::Null)
}

/// Waits until status names member `index`'s release as `release`.
fn recorded(zone: &TestZone, index: usize, release: Option<&str>) {
    let mut last = Vec::new();
    wait_for(
        Duration::from_secs(20),
        &format!("status names member {index}'s release {release:?}"),
        || {
            last = releases(zone);
            last[index].as_deref() == release
        },
    );
}

/// Whether member `addr` takes a TLS connection with `who` (etcd's `/version` answers any
/// client its port admits, whatever the auth store says: the handshake is what a
/// revocation ends).
fn admitted(addr: &str, ca: &Path, who: &common::Identity) -> bool {
    common::https_request(addr, ca, Some(who), "GET", "/version", "")
        .is_ok_and(|r| r.status_line.contains(" 200"))
}

/// Asserts every member admits `node` (before its revocation: the check can fail).
fn all_admit(zone: &TestZone, node: &str) {
    let (ca, identity) = client_identity(&zone.path(node));
    for i in 0..3 {
        assert!(
            admitted(&zone.client_addr(i), &ca, &identity),
            "member {i} refuses {node} before its revocation"
        );
    }
}

/// The owner revokes `node` with this build's tools, through member 0; every member
/// refuses its new connections within the promise.
fn revoke(zone: &TestZone, node: &str, number: u32) {
    let out = run_ok(&[
        "revoke",
        "--ca",
        zone.path("ca").to_str().unwrap(),
        "--node",
        node,
        "--config",
        zone.config(0).to_str().unwrap(),
    ]);
    let revoked_at = Instant::now();
    assert!(
        out.contains(&format!("CRL number {number} published")),
        "{out}"
    );
    let (ca, identity) = client_identity(&zone.path(node));
    let addrs: Vec<String> = (0..3).map(|i| zone.client_addr(i)).collect();
    let times = refused_times(&addrs, revoked_at, |a| admitted(a, &ca, &identity));
    eprintln!("{node} refused by the members {times:?} after revoke returned");
}

#[test]
fn the_previous_release_and_this_build_run_one_zone_through_an_upgrade_and_a_move_back() {
    let prev = previous();
    let version = Command::new(&prev).arg("--version").output().unwrap();
    let version = String::from_utf8_lossy(&version.stdout).into_owned();
    assert!(version.contains("0.1.0"), "{version}");
    // This build's records name its release (the tag's name until the next release
    // bumps it: told apart by its commit); 0.1.0 records nothing.
    let this = env!("CARGO_PKG_VERSION");

    // The zone, made by this build's tools; two client nodes to revoke.
    let (zone, text) = made(11);
    for node in [LAPTOP, PHONE] {
        run_ok(&activate_args(
            zone.path("ca").to_str().unwrap(),
            zone.path("zone.toml").to_str().unwrap(),
            node,
            zone.path(node).to_str().unwrap(),
        ));
    }

    // Every member on 0.1.0, over node files this build wrote.
    let mut running: Vec<Running> = (0..3)
        .map(|i| launch_by(&zone, i, &prev, "0.1.0"))
        .collect();
    healthy(&zone, &mut running);
    assert_eq!(releases(&zone), [None, None, None], "0.1.0 records nothing");
    // The client nodes get their identities from 0.1.0's signers (this build's `env`).
    for node in [LAPTOP, PHONE] {
        run_ok(&[
            "env",
            "--config",
            zone.path(node).join("node.toml").to_str().unwrap(),
        ]);
    }
    // A writer as member 0 (root) over gRPC: etcd's HTTP gateway takes no certificate's
    // name in an enforced zone.
    let load = GrpcWriter::as_member0(&zone, "two/", Duration::from_millis(100));
    quiet(&zone, &load, Duration::from_secs(5), "all on 0.1.0");

    // The upgrade, member by member; a revocation after the first, a policy change after
    // the second.
    for i in 0..3 {
        running.remove(i).stop();
        running.insert(i, launch_by(&zone, i, &common::tools().zone_etcd, this));
        healthy(&zone, &mut running);
        recorded(&zone, i, Some(this));
        match i {
            0 => {
                all_admit(&zone, LAPTOP);
                revoke(&zone, LAPTOP, 1)
            }
            1 => {
                let grown = zone.path("zone-policy.toml");
                std::fs::write(
                    &grown,
                    format!(
                        "{text}\n[access]\nenforce = true\nnodes = [\"*\"]\n\n[[access.service]]\nname = \"photos\"\nnodes = [\"{PHONE}\"]\nread_write = [\"apps/photos/\"]\n"
                    ),
                )
                .unwrap();
                let out = run_ok(&[
                    "zone",
                    "publish",
                    "--ca",
                    zone.path("ca").to_str().unwrap(),
                    "--zone",
                    grown.to_str().unwrap(),
                    "--config",
                    zone.config(0).to_str().unwrap(),
                ]);
                eprintln!("zone publish: {out}");
            }
            _ => {}
        }
        quiet(
            &zone,
            &load,
            Duration::from_secs(5),
            &format!("member {i} on this build"),
        );
    }
    assert_eq!(releases(&zone), vec![Some(this.to_string()); 3]);

    // Member 1 moved back to 0.1.0 over its data: it starts, serves, refuses the laptop,
    // fights over nothing; a revocation now reaches it too.
    running.remove(1).stop();
    running.insert(1, launch_by(&zone, 1, &prev, "back"));
    healthy(&zone, &mut running);
    let (ca, laptop) = client_identity(&zone.path(LAPTOP));
    assert!(
        !admitted(&zone.client_addr(1), &ca, &laptop),
        "the member moved back admits the revoked laptop"
    );
    quiet(&zone, &load, Duration::from_secs(5), "member 1 moved back");
    all_admit(&zone, PHONE);
    revoke(&zone, PHONE, 2);
    quiet(&zone, &load, Duration::from_secs(5), "the phone revoked");

    // Every acknowledged write on every member; the only failures a member's restart
    // under the writer's one connection, one in 50 at most.
    let (acknowledged, failures) = load.stop();
    eprintln!(
        "{} writes acknowledged, {} failed",
        acknowledged.len(),
        failures.len()
    );
    assert!(acknowledged.len() > 100, "{}", acknowledged.len());
    assert!(
        failures.len() * 50 <= acknowledged.len(),
        "{:?}",
        &failures[..failures.len().min(5)]
    );
    for i in 0..3 {
        let (ok, keys, err) = zone.etcdctl(
            i,
            &zone.client_url(i),
            &["get", "two/", "--prefix", "--keys-only"],
        );
        assert!(ok, "{err}");
        let keys: std::collections::BTreeSet<&str> =
            keys.lines().filter(|l| !l.is_empty()).collect();
        let missing: Vec<&String> = acknowledged
            .iter()
            .filter(|k| !keys.contains(k.as_str()))
            .collect();
        assert!(missing.is_empty(), "member {i} lacks {missing:?}");
    }
    for member in running {
        member.stop();
    }
}

/// `zone raise-level ARGS` through member 0, as this build or (with `level`) the simulated
/// next release: (exit code, stdout, stderr).
fn raise_level(
    zone: &TestZone,
    args: &[&str],
    level: Option<u32>,
) -> (Option<i32>, String, String) {
    let mut cmd = common::zone_etcd();
    cmd.args([
        "zone",
        "raise-level",
        "--config",
        zone.config(0).to_str().unwrap(),
    ])
    .args(args);
    if let Some(level) = level {
        cmd.env(SIMULATED, level.to_string());
    }
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The zone's level document (`None`: absent).
fn zone_level(zone: &TestZone) -> Option<String> {
    let (ok, out, err) = zone.etcdctl(
        0,
        &zone.endpoints(),
        &["get", "zone-etcd/level", "--print-value-only"],
    );
    assert!(ok, "{err}");
    Some(out.trim().to_string()).filter(|v| !v.is_empty())
}

/// What status says member `index`'s release reads.
fn reads(zone: &TestZone, index: usize) -> Option<u64> {
    record_of(zone, index)["reads"].as_u64()
}

/// Member `index`'s `state/<file>` (a CRL in DER), read (`None`: absent or unreadable).
fn crl_of(zone: &TestZone, index: usize, file: &str) -> Option<zone_pki::revocation::Crl> {
    let der = std::fs::read(zone.node_dir(index).join("state").join(file)).ok()?;
    zone_pki::revocation::Crl::parse_der(&der).ok()
}

/// The CRL files member `index`'s etcd reads (from its command line): (client, peer).
fn crl_flags(running: &Running) -> (String, String) {
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", running.pid())).unwrap();
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let flag = |name: &str| {
        args.iter()
            .find_map(|a| a.strip_prefix(&format!("--{name}=")).map(str::to_string))
            .unwrap_or_else(|| panic!("etcd runs without --{name}: {args:?}"))
    };
    (flag("client-crl-file"), flag("peer-crl-file"))
}

#[test]
fn the_owner_raises_the_level_once_every_member_reads_it_and_a_release_below_it_refuses() {
    let this = common::tools().zone_etcd;
    let (zone, _) = made(21);
    run_ok(&activate_args(
        zone.path("ca").to_str().unwrap(),
        zone.path("zone.toml").to_str().unwrap(),
        LAPTOP,
        zone.path(LAPTOP).to_str().unwrap(),
    ));
    let mut running: Vec<Running> = (0..3).map(|i| launch_by(&zone, i, &this, "this")).collect();
    zone.wait_healthy(&mut running);
    let ca = zone.path("ca");
    let ca = ["--ca", ca.to_str().unwrap()];

    // This release writes level 2, and only the zone root binds a level above 1 (issue
    // 68): without --ca, refused before anything is asked; a level it does not write,
    // refused; nothing written either time.
    let (code, _, err) = raise_level(&zone, &[], None);
    assert_eq!(code, Some(78), "{err}");
    let line = common::one_error_line(&err);
    assert!(
        line.contains("only signed by the zone root") && line.contains("--ca"),
        "{line}"
    );
    let (code, _, err) = raise_level(&zone, &["--to", "3", ca[0], ca[1]], None);
    assert_eq!(code, Some(78), "{err}");
    let line = common::one_error_line(&err);
    assert!(
        line.contains("writes formats up to level 2, not level 3"),
        "{line}"
    );
    assert_eq!(zone_level(&zone), None, "a refused raise wrote the level");

    // Level 2 for real: every member runs this release (it reads 2); every keeper
    // remembers it.
    let (code, out, err) = raise_level(&zone, &ca, None);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("now at format level 2 (was 1)"), "{out}");
    let level = zone_level(&zone).expect("the level put");
    assert!(
        level.contains(r#""level":2"#) && level.contains(r#""sign":"ecdsa-sha256:"#),
        "{level}"
    );
    remembered(&zone, 2);

    // At level 2 the revocations say what each serial is (issue 68, item 9): the laptop's
    // node CA goes on every member's CRL, and off its client port's, which trusts the
    // client root alone (no client chain holds a node CA); its branch goes on both. The
    // laptop is refused by every member all the same.
    run_ok(&[
        "env",
        "--config",
        zone.path(LAPTOP).join("node.toml").to_str().unwrap(),
    ]);
    all_admit(&zone, LAPTOP);
    let node_ca = zone_pki::CertInfo::parse_pem(
        &std::fs::read_to_string(zone.path(LAPTOP).join("pki/node.crt")).unwrap(),
    )
    .unwrap();
    let chain = zone_pki::CertInfo::parse_chain_pem(
        &std::fs::read_to_string(zone.path(LAPTOP).join("state/tls/current/client.crt")).unwrap(),
    )
    .unwrap();
    let branch = chain[1].serial().to_vec();
    assert!(
        chain[1].is_ca,
        "the laptop's identity came without its branch"
    );
    revoke(&zone, LAPTOP, 1);
    let (ok, doc, err) = zone.etcdctl(
        0,
        &zone.endpoints(),
        &["get", "zone-etcd/revocations", "--print-value-only"],
    );
    assert!(ok, "{err}");
    let doc: Value = serde_json::from_str(doc.trim()).unwrap();
    assert_eq!(doc["format"], 2, "{doc}");
    for (i, member) in running.iter().enumerate() {
        let state = zone.node_dir(i).join("state");
        let (client, peer) = crl_flags(member);
        assert_eq!(
            (client.as_str(), peer.as_str()),
            (
                state.join("client-crl.der").to_str().unwrap(),
                state.join("crl.der").to_str().unwrap()
            ),
            "member {i}'s etcd"
        );
        wait_for(Duration::from_secs(10), "every member's CRLs", || {
            let (Some(client), Some(peer)) = (
                crl_of(&zone, i, "client-crl.der"),
                crl_of(&zone, i, "crl.der"),
            ) else {
                return false;
            };
            peer.revokes(node_ca.serial())
                && peer.revokes(&branch)
                && client.revokes(&branch)
                && !client.revokes(node_ca.serial())
        });
    }

    // Two members on the next release (reads and writes level 3), one still on this one:
    // the raise is refused naming it.
    for i in 0..2 {
        running.remove(i).stop();
        running.insert(i, launch_env(&zone, i, &this, "next", Some(3)));
        zone.wait_healthy(&mut running);
        wait_for(Duration::from_secs(20), "the next release recorded", || {
            reads(&zone, i) == Some(3)
        });
    }
    let (code, _, err) = raise_level(&zone, &ca, Some(3));
    assert_eq!(code, Some(78), "{err}");
    let line = common::one_error_line(&err);
    assert!(
        line.contains(&format!(
            "{} runs {} (reads up to level 2): it would refuse to start in a zone at level 3",
            zone.members[2].0,
            env!("CARGO_PKG_VERSION")
        )),
        "{line}"
    );
    assert!(
        zone_level(&zone).is_some_and(|l| l.contains(r#""level":2"#)),
        "a refused raise wrote the level"
    );

    // The last one moved: raised, and every member's keeper remembers it.
    running.remove(2).stop();
    running.insert(2, launch_env(&zone, 2, &this, "next", Some(3)));
    zone.wait_healthy(&mut running);
    wait_for(Duration::from_secs(20), "the next release recorded", || {
        reads(&zone, 2) == Some(3)
    });
    let (code, out, err) = raise_level(&zone, &ca, Some(3));
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("now at format level 3 (was 2)"), "{out}");
    remembered(&zone, 3);
    // Never back, and not again.
    let (code, out, _) = raise_level(&zone, &["--to", "2", ca[0], ca[1]], Some(3));
    assert_eq!(
        (code, out.contains("at format level 3 already")),
        (Some(0), true),
        "{out}"
    );

    // Member 2 moved back to this release: refused in one line, even with what its keeper
    // remembered gone (a member that was down during the raise): the others say it.
    running.remove(2).stop();
    std::fs::remove_file(zone.node_dir(2).join("state/zone-level.json")).unwrap();
    let out = common::zone_etcd()
        .args(["launch", "--config", zone.config(2).to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    let line = common::one_error_line(&err);
    assert!(
        line.contains("the zone is at format level 3")
            && line.contains("reads formats up to level 2"),
        "{line}"
    );
    // On the next release it starts again.
    running.insert(2, launch_env(&zone, 2, &this, "again", Some(3)));
    zone.wait_healthy(&mut running);
    for member in running {
        member.stop();
    }
}

/// Waits until every member's keeper remembers the zone at `level`.
fn remembered(zone: &TestZone, level: u32) {
    for i in 0..3 {
        let seen = zone.node_dir(i).join("state/zone-level.json");
        wait_for(
            Duration::from_secs(15),
            "every keeper remembers the level",
            || {
                std::fs::read_to_string(&seen)
                    .is_ok_and(|t| t.contains(&format!(r#""level":{level}"#)))
            },
        );
    }
}
