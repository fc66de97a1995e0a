//! PKI: the node bundles of a zone made by `zone-etcd bootstrap` (+ one `activate` per
//! client-only node) against the same certificate set made by the openssl script
//! (scripts/openssl-bootstrap.sh), and zone-pki's issuance timed in-process.
//!
//! Before any figure counts, the two sets are shown to be the same: every fact of every
//! node CA (extensions and their criticality, name constraints, key and signature
//! algorithms, life, key format, file modes) matches, and zone-etcd loads each openssl
//! bundle as a valid node.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::{json, Value};
use x509_parser::prelude::{FromDer, X509Certificate};
use zone_node::nameservice::CachePolicy;
use zone_node::node::Node;
use zone_pki::{Authority, CertInfo, Host, LeafKind, NodeIdentity};

use crate::support::*;
use zone_testkit::addresses;

/// A zone to make: `members` etcd members (one `bootstrap`) and `clients` client-only
/// nodes (one `activate` each).
struct Case {
    label: &'static str,
    members: usize,
    clients: usize,
}

const CASES: [Case; 4] = [
    Case {
        label: "3 members",
        members: 3,
        clients: 0,
    },
    Case {
        label: "7 members",
        members: 7,
        clients: 0,
    },
    Case {
        label: "31 members",
        members: 31,
        clients: 0,
    },
    Case {
        label: "101 nodes (5 members + 96 activated)",
        members: 5,
        clients: 96,
    },
];

const ZONE: &str = "bench.zone";

/// Node `i`'s address (on `addresses::BENCH_SOLO`, shared with launch's one-member zone).
fn host(i: usize) -> String {
    addresses::BENCH_SOLO.ip(u8::try_from(i).expect("fewer than 256 nodes"))
}

impl Case {
    fn certificates(&self) -> usize {
        self.members + self.clients
    }

    fn members(&self) -> Vec<(String, String)> {
        (1..=self.members)
            .map(|i| (format!("node{i}.{ZONE}"), host(i)))
            .collect()
    }

    fn clients(&self) -> Vec<String> {
        (1..=self.clients)
            .map(|i| format!("client{i}.{ZONE}"))
            .collect()
    }
}

/// Where the sets are written: the disk (zone-etcd makes every bundle durable, the
/// script does not), the same disk while another process writes 4 GiB rounds to it
/// ("disk-busy": durable writes must not pay for other writers), and a tmpfs (neither
/// pays for the disk: the work itself).
pub fn media() -> Vec<(&'static str, PathBuf)> {
    let mut media = vec![
        ("disk", std::env::temp_dir()),
        ("disk-busy", std::env::temp_dir()),
    ];
    if Path::new("/dev/shm").is_dir() {
        media.push(("tmpfs", PathBuf::from("/dev/shm")));
    }
    media
}

pub fn run(runs: usize) -> Result<Value> {
    let script = repo().join("scripts/openssl-bootstrap.sh");
    let mut results = Vec::new();
    for (medium, base) in media() {
        let dir = tempfile::Builder::new()
            .prefix("zone-etcd-bench-")
            .tempdir_in(&base)
            .map_err(|e| format!("{}: {e}", base.display()))?;
        let _writer = match medium {
            "disk-busy" => Some(crate::writer::Writer::start(dir.path())?),
            _ => None,
        };
        let ca = dir.path().join("ca");
        output(zone_etcd(&[
            "ca",
            "init",
            "--zone",
            ZONE,
            "--out",
            &ca.to_string_lossy(),
        ])?)?;
        for case in &CASES {
            let inputs = CaseInputs::write(dir.path(), case)?;
            let (mut ours, mut theirs) = (Vec::new(), Vec::new());
            for run in 0..runs {
                let work = dir.path().join(format!("run-{run}"));
                let (ze, os) = (work.join("zone-etcd"), work.join("openssl"));
                // Alternate which goes first, so neither always meets a warmer cache.
                let mut measure_ours = || -> Result<()> {
                    ours.push(ms(time_zone_etcd(&ca, &inputs, case, &ze)?));
                    Ok(())
                };
                let mut measure_theirs = || -> Result<()> {
                    let mut cmd = Command::new("bash");
                    cmd.arg(&script)
                        .arg(&ca)
                        .arg(ZONE)
                        .arg(&inputs.nodes)
                        .arg(&inputs.members)
                        .arg(&os);
                    theirs.push(ms(timed(cmd)?));
                    Ok(())
                };
                if run % 2 == 0 {
                    measure_ours()?;
                    measure_theirs()?;
                } else {
                    measure_theirs()?;
                    measure_ours()?;
                }
                if run == 0 {
                    same_sets(case, &ze, &os, &ca)?;
                }
                fs::remove_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
            }
            let (ours_ms, theirs_ms) = (median(&ours), median(&theirs));
            eprintln!(
                "  pki {medium:5} {:40} zone-etcd {ours_ms:9.1} ms   openssl {theirs_ms:9.1} ms   x{:.1}",
                case.label,
                theirs_ms / ours_ms
            );
            results.push(json!({
                "medium": medium,
                "case": case.label,
                "certificates": case.certificates(),
                "zone_etcd_ms": summary(&ours),
                "openssl_ms": summary(&theirs),
                "speedup": round(theirs_ms / ours_ms),
                "zone_etcd_ms_per_certificate": round(ours_ms / case.certificates() as f64),
                "openssl_ms_per_certificate": round(theirs_ms / case.certificates() as f64),
            }));
        }
    }
    Ok(json!({ "processes": results, "in_process": in_process(runs)? }))
}

/// The zone file and the script's inputs for one case.
struct CaseInputs {
    zone_file: PathBuf,
    nodes: PathBuf,
    members: PathBuf,
}

impl CaseInputs {
    fn write(dir: &Path, case: &Case) -> Result<CaseInputs> {
        let members = case.members();
        let inputs = CaseInputs {
            zone_file: dir.join(format!("zone-{}.toml", case.certificates())),
            nodes: dir.join(format!("nodes-{}.txt", case.certificates())),
            members: dir.join(format!("members-{}.toml", case.certificates())),
        };
        write(&inputs.zone_file, &zone_toml(ZONE, &members))?;
        write(&inputs.members, &members_toml(&members))?;
        let mut nodes: String = members
            .iter()
            .map(|(name, address)| format!("{name} {address} member\n"))
            .collect();
        nodes.extend(
            case.clients()
                .iter()
                .map(|name| format!("{name} - client\n")),
        );
        write(&inputs.nodes, &nodes)?;
        Ok(inputs)
    }
}

/// One `bootstrap` of the members, then one `activate` process per client-only node, as
/// an owner would run them.
fn time_zone_etcd(
    ca: &Path,
    inputs: &CaseInputs,
    case: &Case,
    out: &Path,
) -> Result<std::time::Duration> {
    let ca = ca.to_string_lossy();
    let zone = inputs.zone_file.to_string_lossy();
    let started = Instant::now();
    timed(zone_etcd(&[
        "bootstrap",
        "--ca",
        &ca,
        "--zone",
        &zone,
        "--out",
        &out.to_string_lossy(),
    ])?)?;
    for client in case.clients() {
        let dir = out.join(&client);
        timed(zone_etcd(&[
            "activate",
            "--ca",
            &ca,
            "--zone",
            &zone,
            "--node",
            &client,
            "--out",
            &dir.to_string_lossy(),
        ])?)?;
    }
    Ok(started.elapsed())
}

/// Both sets hold the same bundles with the same facts, and zone-etcd accepts each
/// openssl bundle as a node (its loader checks the chain, the key and the constraints).
fn same_sets(case: &Case, ours: &Path, theirs: &Path, ca: &Path) -> Result<()> {
    let names: Vec<String> = case
        .members()
        .into_iter()
        .map(|(n, _)| n)
        .chain(case.clients())
        .collect();
    for name in &names {
        let (a, b) = (facts(&ours.join(name), ca)?, facts(&theirs.join(name), ca)?);
        if a != b {
            let differ: Vec<String> = a
                .iter()
                .filter(|(k, v)| b.get(*k) != Some(v))
                .map(|(k, v)| format!("{k}: zone-etcd {v:?}, openssl {:?}", b.get(k)))
                .collect();
            return Err(format!(
                "the openssl script does not make the same set as zone-etcd for {name}: {}",
                differ.join("; ")
            ));
        }
        let config = theirs.join(name).join("node.toml");
        let node = Node::load_with(&config, CachePolicy::ReadOnly).map_err(|e| e.to_string())?;
        node.check_node_ca_covers(&node.identity())
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// What a bundle says, minus what differs between any two issuances (serials, keys).
fn facts(dir: &Path, ca: &Path) -> Result<BTreeMap<&'static str, String>> {
    let read = |p: &Path| fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
    let mode = |p: &Path| {
        fs::metadata(p)
            .map(|m| format!("{:o}", m.permissions().mode() & 0o777))
            .unwrap_or_default()
    };
    let pki = dir.join("pki");
    let pem = read(&pki.join("node.crt"))?;
    let info = CertInfo::parse_pem(&pem).map_err(|e| e.to_string())?;
    let (_, cert) = X509Certificate::from_der(info.der()).map_err(|e| e.to_string())?;
    let mut extensions: Vec<String> = cert
        .extensions()
        .iter()
        .map(|e| format!("{}{}", e.oid, if e.critical { " critical" } else { "" }))
        .collect();
    extensions.sort();
    let spki = &cert.public_key().algorithm;
    let curve = spki
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|o| o.to_id_string())
        .unwrap_or_default();
    let key_pem = read(&pki.join("node.key"))?;
    let key = zone_pki::key::parse_key(&key_pem).map_err(|e| e.to_string())?;
    let root = CertInfo::parse_pem(&read(&ca.join("ca.crt"))?).map_err(|e| e.to_string())?;
    let life = info.not_after - info.not_before;
    let mut facts = BTreeMap::new();
    facts.insert("subject", format!("{:?}", cert.subject().to_string()));
    facts.insert("issuer", cert.issuer().to_string());
    facts.insert("version", cert.version().0.to_string());
    facts.insert("ca, pathlen", format!("{} {:?}", info.is_ca, info.path_len));
    facts.insert(
        "key usage",
        format!(
            "certSign {} digitalSignature {}",
            info.key_cert_sign, info.digital_signature
        ),
    );
    facts.insert("extensions", extensions.join(", "));
    facts.insert(
        "name constraints",
        format!(
            "{:?} critical {}",
            info.permitted, info.name_constraints_critical
        ),
    );
    facts.insert("key", format!("{} {curve}", spki.algorithm.to_id_string()));
    facts.insert(
        "signature",
        cert.signature_algorithm.algorithm.to_id_string(),
    );
    facts.insert(
        "serial bytes",
        info.serial_hex
            .trim_start_matches("0x")
            .len()
            .div_ceil(2)
            .to_string(),
    );
    facts.insert("life (days)", life.whole_days().to_string());
    facts.insert(
        "key file",
        key_pem.lines().next().unwrap_or_default().to_string(),
    );
    facts.insert(
        "key matches, signed by root",
        format!(
            "{} {}",
            info.public_key_matches(&key),
            info.is_signed_by(&root)
        ),
    );
    facts.insert(
        "zone CA copy",
        (read(&pki.join("ca.crt"))? == read(&ca.join("ca.crt"))?).to_string(),
    );
    facts.insert(
        "modes (dir, pki, key, crt, ca, toml)",
        [
            dir.to_path_buf(),
            pki.clone(),
            pki.join("node.key"),
            pki.join("node.crt"),
            pki.join("ca.crt"),
            dir.join("node.toml"),
        ]
        .iter()
        .map(|p| mode(p))
        .collect::<Vec<_>>()
        .join(" "),
    );
    Ok(facts)
}

/// zone-pki alone, no process and no disk: node CAs for a 101-node zone and the three
/// leaves of 33 members, each with a fresh P-256 key; milliseconds per certificate.
fn in_process(runs: usize) -> Result<Value> {
    let root = Authority::new_root(ZONE).map_err(|e| e.to_string())?;
    let identity = |i: usize| NodeIdentity {
        zone: ZONE.into(),
        node_name: format!("node{i}.{ZONE}"),
        address: (i <= 5).then(|| Host::parse(&host(i))),
        member: i <= 5,
        tunneled: false,
    };
    let node_ca = root
        .issue_node_ca(&identity(1))
        .map_err(|e| e.to_string())?;
    let (mut cas, mut leaves) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let started = Instant::now();
        for i in 1..=101 {
            root.issue_node_ca(&identity(i))
                .map_err(|e| e.to_string())?;
        }
        cas.push(ms(started.elapsed()) / 101.0);
        let started = Instant::now();
        for _ in 0..33 {
            for kind in LeafKind::ALL {
                node_ca
                    .issue_leaf(kind, &identity(1), None)
                    .map_err(|e| e.to_string())?;
            }
        }
        leaves.push(ms(started.elapsed()) / 99.0);
    }
    eprintln!(
        "  pki in-process: node CA {:.3} ms, leaf {:.3} ms per certificate",
        median(&cas),
        median(&leaves)
    );
    Ok(json!({ "node_ca_ms": summary(&cas), "leaf_ms": summary(&leaves) }))
}
