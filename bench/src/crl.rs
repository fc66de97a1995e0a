//! The CRL's cost at the handshake (issue 48, item 7): etcd reads and parses its CRL file
//! at every TLS connection (`checkCRL` in etcd's transport: `os.ReadFile`, then
//! `x509.ParseRevocationList` and a map of every serial, no cache), so the zone's CRL is
//! paid by every client connection. Revoking a node puts every identity its signers
//! issued on the CRL, and an identity stays there until it expires (30 days), so a zone
//! that revoked many identities in a month carries them all.
//!
//! A one-member zone of the bundled etcd on `addresses::BENCH_CRL` .1, launched by `zone-etcd
//! launch`; its `crl.der` (the file `--client-crl-file` names) is replaced, atomically, by the CRL
//! to measure, in turns of [`BATCH`] connections: an empty CRL (what a zone that revoked
//! nothing carries) and one of 100, 1,000 and [`REVOKED`] entries (random 16-byte
//! serials, as signers issue, each with its revocation time and reason, as `revoke`
//! writes them). Each sample
//! is a new TCP connection, a full TLS 1.3 handshake with the member's client certificate
//! and `GET /version`, timed from the connect to the whole response: etcd answers only once
//! the CRL check passed. The turns alternate, so the machine's noise hits both alike.
//!
//! Beside them, the CRL this design keeps (`design`): members' signers issue each node a
//! branch that signs its identities ([`zone_node::identities::branch`]), and `revoke
//! --node` lists what the product's own [`zone_node::identities::ledger::to_list`] picks
//! from a node's ledger, plus its node CA. The cases: [`REVOKED`] identities on 100, 300
//! and 1,000 nodes ([`NODES`]), all revoked, each node served by one member (one branch),
//! and at 300 nodes the worst case, by each of three (three branches); the client port's
//! CRL at format level 1 (the node CAs on it) and at level 2 (the node CAs on the peer
//! port's CRL only: `client-crl.der`, which a client port that trusts the client root
//! alone reads). The file etcd reads is what is measured, whichever port's: this zone's
//! client port trusts the zone root (its clients are node-CA leaves), so it reads
//! `crl.der`, the file replaced here.
//!
//! Checked before anything is timed: a client certificate whose serial is on the large
//! CRL is refused while it is in place and admitted under the empty one, so the member
//! does read the file each connection.

use std::fs;
use std::path::Path;
use std::time::Instant;

use serde_json::{json, Value};
use zone_pki::revocation::{Crl, RevokedCa};
use zone_pki::{Authority, LeafKind, NodeIdentity};

use crate::support::*;
use zone_testkit::addresses;

/// Entries of the large CRL: the issue's case.
pub const REVOKED: usize = 10_000;
/// The sizes measured, each against the empty CRL: where the cost grows.
const SIZES: [usize; 3] = [100, 1_000, REVOKED];
/// The revoked nodes [`REVOKED`] identities were issued to in the design's cases (issue 68,
/// item 9: 100, 300 and 1,000).
const NODES: [usize; 3] = [100, 300, 1_000];
/// Connections in one turn.
const BATCH: usize = 100;
/// Turns of each CRL per run.
const TURNS: usize = 4;
const SUBNET: u8 = addresses::BENCH_CRL.subnet();
const ZONE: &str = "crl.zone";

/// The `crl` section: `runs` runs of [`TURNS`] turns of each CRL.
pub fn run(dir: &Path, runs: usize) -> Result<Value> {
    let root = dir.join("crl");
    fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
    let zone = Zone::bootstrap(&root, ZONE, SUBNET, 1)?;
    let (members, client) = zone.launch_all()?;
    let crl_file = zone.node_dir(0).join("state/crl.der");
    let url = format!("{}/version", zone.client_url(0));

    // A client of the member's node CA whose serial the large CRL lists.
    let node_dir = zone.node_dir(0);
    let read =
        |rel: &str| fs::read_to_string(node_dir.join(rel)).map_err(|e| format!("{rel}: {e}"));
    let node_ca = Authority::from_pem(&read("pki/node.crt")?, &read("pki/node.key")?)
        .map_err(|e| e.to_string())?;
    let identity = NodeIdentity {
        zone: ZONE.into(),
        node_name: zone.members[0].0.clone(),
        address: Some(zone_pki::Host::parse(&zone.members[0].1)),
        member: true,
        tunneled: false,
    };
    let listed = node_ca
        .issue_leaf(LeafKind::Client, &identity, Some("listed"))
        .map_err(|e| e.to_string())?;
    let listed_dir = root.join("listed");
    fs::create_dir_all(&listed_dir).map_err(|e| e.to_string())?;
    write(&listed_dir.join("client.crt"), &listed.chain_pem)?;
    write(&listed_dir.join("client.key"), &listed.key_pem)?;
    let listed_serial = zone_pki::CertInfo::parse_pem(&listed.chain_pem)
        .map_err(|e| e.to_string())?
        .serial()
        .to_vec();
    let listed_client = TlsClient::new(
        &node_dir.join("state/tls/current/ca.crt"),
        &listed_dir.join("client.crt"),
        &listed_dir.join("client.key"),
    )?;

    let empty = crl_der(&[])?;
    let mut serials = vec![listed_serial];
    while serials.len() < REVOKED {
        serials.push(random_serial()?);
    }
    let large = crl_der(&serials)?;
    let put = |der: &[u8]| -> Result<()> {
        let tmp = crl_file.with_extension("der.bench");
        fs::write(&tmp, der).map_err(|e| format!("{}: {e}", tmp.display()))?;
        fs::rename(&tmp, &crl_file).map_err(|e| format!("{}: {e}", crl_file.display()))
    };
    put(&large)?;
    if listed_client.get(&url).is_ok() {
        return Err("a client whose serial is on the large CRL was let in".into());
    }
    put(&empty)?;
    listed_client
        .get(&url)
        .map_err(|e| format!("the listed client under the empty CRL: {e}"))?;

    let load_before = loadavg();
    let mut sizes = Vec::new();
    let mut cases: Vec<(String, usize)> =
        SIZES.iter().map(|n| (format!("{n} revoked"), *n)).collect();
    // The client port's CRL at format level 1 (every node CA on it) and at level 2
    // (the node CAs only on the peer port's: no client chain holds one there).
    for nodes in NODES {
        for (level, branches) in [(1, 1), (2, 1), (2, 3)] {
            if branches == 3 && nodes != 300 {
                continue;
            }
            let size = design_entries(nodes, branches, level)?;
            cases.push((
                format!("design at level {level}: {REVOKED} identities on {nodes} revoked nodes, {branches} branch(es) a node"),
                size,
            ));
        }
    }
    for (case, size) in cases {
        let crl = crl_der(&serials[..size])?;
        let (mut with_empty, mut with_crl) = (Vec::new(), Vec::new());
        for turn in 0..runs.max(1) * TURNS * 2 {
            let crl_turn = turn % 2 == 1;
            put(if crl_turn { &crl } else { &empty })?;
            let samples = if crl_turn {
                &mut with_crl
            } else {
                &mut with_empty
            };
            for _ in 0..BATCH {
                let started = Instant::now();
                client.get(&url)?;
                samples.push(ms(started.elapsed()));
            }
        }
        let (empty_sorted, crl_sorted) = (sorted(with_empty), sorted(with_crl));
        let side = |s: &[f64]| {
            json!({
                "connections": s.len(),
                "p50_ms": round(percentile(s, 50.0)),
                "p90_ms": round(percentile(s, 90.0)),
                "p99_ms": round(percentile(s, 99.0)),
            })
        };
        let ratio = |p: f64| round(percentile(&crl_sorted, p) / percentile(&empty_sorted, p));
        eprintln!(
            "  crl: {case}: {size} listed ({} bytes) against none: p50 {:.2} / {:.2} ms (x{}), p99 {:.2} / {:.2} ms (x{})",
            crl.len(),
            percentile(&crl_sorted, 50.0),
            percentile(&empty_sorted, 50.0),
            ratio(50.0),
            percentile(&crl_sorted, 99.0),
            percentile(&empty_sorted, 99.0),
            ratio(99.0),
        );
        sizes.push(json!({
            "case": case,
            "revoked": size,
            "crl_bytes": crl.len(),
            "with_crl": side(&crl_sorted),
            "empty": side(&empty_sorted),
            "ratio_p50": ratio(50.0),
            "ratio_p99": ratio(99.0),
        }));
    }
    put(&empty)?;
    drop(members);
    let _ = fs::remove_dir_all(&root);
    Ok(json!({
        "zone": addresses::BENCH_CRL.ip(1),
        "batch": BATCH,
        "empty_crl_bytes": empty.len(),
        "load_before": load_before,
        "load_after": loadavg(),
        "sizes": sizes,
    }))
}

/// How many serials the client port's CRL lists once `revoke --node` revoked all `nodes`
/// nodes holding [`REVOKED`] identities between them, each node served by `branches`
/// members: the product's choice from each node's ledger, and, at format level 1, the
/// node's own CA (at level 2 only the peer port's CRL lists it).
fn design_entries(nodes: usize, branches: usize, level: u32) -> Result<usize> {
    use zone_node::identities::ledger::{to_list, Entry};
    let now = time::OffsetDateTime::now_utc();
    let not_after = (now + time::Duration::days(20))
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| e.to_string())?;
    let mut listed = 0;
    for node in 0..nodes {
        let mut entries = Vec::new();
        for b in 0..branches {
            let entry = Entry {
                user: format!("n{node} identities by m{b}"),
                not_after: not_after.clone(),
                branch: None,
            };
            entries.push((format!("b{node}-{b}"), Some(entry)));
        }
        let count = REVOKED / nodes + usize::from(node < REVOKED % nodes);
        for i in 0..count {
            let entry = Entry {
                user: format!("s{i}@n{node}"),
                not_after: not_after.clone(),
                branch: Some(format!("b{node}-{}", i % branches)),
            };
            entries.push((format!("i{node}-{i}"), Some(entry)));
        }
        listed += to_list(entries, now).len() + usize::from(level < 2);
    }
    Ok(listed)
}

fn sorted(mut values: Vec<f64>) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    values
}

/// A CRL listing `serials`, in DER, signed by a key made for it (etcd checks serials only).
fn crl_der(serials: &[Vec<u8>]) -> Result<Vec<u8>> {
    let now = time::OffsetDateTime::now_utc();
    let revoked: Vec<RevokedCa> = serials
        .iter()
        .map(|serial| RevokedCa {
            serial: serial.clone(),
            revoked_at: now,
        })
        .collect();
    let signer = Authority::new_root("crl.bench").map_err(|e| e.to_string())?;
    let pem = signer
        .sign_crl(1, &revoked, now)
        .map_err(|e| e.to_string())?;
    Ok(Crl::parse_pem(&pem)
        .map_err(|e| e.to_string())?
        .der()
        .to_vec())
}

/// 16 random bytes, the first below 0x80 (a positive serial, as signers issue).
fn random_serial() -> Result<Vec<u8>> {
    let mut bytes = vec![0u8; 16];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .map_err(|e| format!("/dev/urandom: {e}"))?;
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    Ok(bytes)
}
