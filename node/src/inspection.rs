//! Inspecting a node's certificates: the rows `check` prints, and the validation of
//! external leaves that `launch`, `env` and `rotate` refuse to use when broken. Each
//! function reads what it is given and reports problems with fixes; none writes.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};
use zone_pki::profile::peer_name;
use zone_pki::{CertInfo, Host, LeafKind, NodeIdentity};

use zone_model::leaf_paths::LeafPaths;
use zone_pki::inspect::RENEW_AT_LIFE_USED;

/// A CA with less than this left is reported as expiring: re-activation takes planning.
pub const CA_WARNING: Duration = Duration::days(180);

/// One certificate's row.
#[derive(Debug, Serialize)]
pub struct Row {
    pub name: &'static str,
    pub file: Option<String>,
    pub subject: Option<String>,
    pub issuer: Option<String>,
    pub not_after: Option<String>,
    pub seconds_left: Option<i64>,
    pub problems: Vec<Problem>,
}

/// Something wrong, and what to do about it.
#[derive(Debug, Serialize, Clone)]
pub struct Problem {
    pub problem: String,
    pub fix: String,
}

pub fn problem(problem: impl Into<String>, fix: impl Into<String>) -> Problem {
    Problem {
        problem: problem.into(),
        fix: fix.into(),
    }
}

/// Fills a row from a certificate's PEM (its first certificate).
pub fn parse_into(mut row: Row, pem: &str) -> (Row, Option<CertInfo>) {
    match CertInfo::parse_pem(pem) {
        Ok(info) => {
            row.subject = Some(info.subject_cn.clone());
            row.issuer = Some(info.issuer_cn.clone());
            row.not_after = info.not_after.format(&Rfc3339).ok();
            row.seconds_left = Some((info.not_after - OffsetDateTime::now_utc()).whole_seconds());
            (row, Some(info))
        }
        Err(e) => {
            row.problems.push(problem(
                format!("unreadable: {}", e.problem()),
                "restore the file",
            ));
            (row, None)
        }
    }
}

impl Row {
    pub fn new(name: &'static str, file: Option<String>) -> Row {
        Row {
            name,
            file,
            subject: None,
            issuer: None,
            not_after: None,
            seconds_left: None,
            problems: Vec::new(),
        }
    }
}

/// Reports a key that is too open, unreadable, or not the certificate's.
pub fn key_problems(row: &mut Row, path: &Path, cert: &CertInfo, fix: &str) {
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            row.problems.push(problem(
                format!(
                    "key file {} is readable by group or others (mode {mode:o})",
                    path.display()
                ),
                format!(
                    "chmod 600 {} (and consider the key exposed: rotate it)",
                    path.display()
                ),
            ));
        }
    }
    let matches = zone_io::read_text(path)
        .and_then(|t| zone_pki::key::parse_key(&t))
        .map(|key| cert.public_key_matches(&key));
    key_match_problems(row, matches, fix);
}

/// Reports a key that could not be read (`Err`), or is not the certificate's (`Ok(false)`).
pub fn key_match_problems(row: &mut Row, matches: Result<bool, zone_io::Error>, fix: &str) {
    match matches {
        Ok(true) => {}
        Ok(false) => row
            .problems
            .push(problem("the key does not match the certificate", fix)),
        Err(e) => row
            .problems
            .push(problem(format!("key unreadable: {}", e.problem()), fix)),
    }
}

pub fn expiry(
    row: &mut Row,
    info: &CertInfo,
    now: OffsetDateTime,
    renew_at: Option<f64>,
    fix: &str,
) {
    if now >= info.not_after {
        row.problems.push(problem("expired", fix));
    } else if now < info.not_before {
        row.problems.push(problem(
            format!("not valid yet (from {})", rfc3339(info.not_before)),
            fix,
        ));
    } else if let Some(fraction) = renew_at {
        if info.life_used(now) >= fraction {
            row.problems.push(problem(
                "due for renewal (past two thirds of its life) and not renewed",
                format!("{fix}; enable zone-etcd-rotate.timer (scripts/systemd/)"),
            ));
        }
    } else if info.not_after - now < CA_WARNING {
        row.problems.push(problem(
            format!("expires in {} days", (info.not_after - now).whole_days()),
            fix,
        ));
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

/// Who issued a leaf: this node's CA, or the operator's own PKI (`[external]`).
#[derive(Clone, Copy)]
pub enum LeafIssuer<'a> {
    NodeCa(&'a CertInfo),
    /// The leaf file carries its chain up to one of the trusted roots.
    External,
    /// The node CA could not be read; its own row says why.
    Unknown,
    /// Under `[access] enforce`, the node's own client leaf: an identity from a signer
    /// (carried after it in the file) of the zone's client CA (one of two while the
    /// owner rotates the roots), naming no host.
    ClientCa(&'a [CertInfo]),
}

/// Inspects one leaf: its key, chain, key usage, names and expiry. `fix` is what renews
/// it (rotate, or the operator's PKI for external leaves).
pub fn leaf_row(
    kind: LeafKind,
    paths: &LeafPaths,
    issuer: LeafIssuer<'_>,
    roots: &[CertInfo],
    identity: Option<&NodeIdentity>,
    now: OffsetDateTime,
    rotate: &str,
) -> Row {
    let node_ca = match issuer {
        LeafIssuer::NodeCa(ca) => Some(ca),
        _ => None,
    };
    let name = match kind {
        LeafKind::Server => "server",
        LeafKind::Peer => "peer",
        LeafKind::Client => "client",
    };
    let cert_path = paths.cert(kind);
    let mut row = Row::new(name, Some(cert_path.display().to_string()));
    let pem = match zone_io::read_text(&cert_path) {
        Ok(pem) => pem,
        Err(_) if !cert_path.exists() => {
            row.problems.push(problem("missing", rotate));
            return row;
        }
        Err(e) => {
            row.problems.push(problem(e.problem(), rotate));
            return row;
        }
    };
    let (mut row, info) = parse_into(row, &pem);
    let Some(info) = info else { return row };
    key_problems(&mut row, &paths.key(kind), &info, rotate);
    if let LeafIssuer::ClientCa(client_cas) = issuer {
        let chain: Vec<CertInfo> = std::iter::once(info.clone())
            .chain(chain_cas(&pem))
            .collect();
        if !zone_pki::inspect::chains_to(&chain, client_cas) {
            row.problems.push(problem(
                "does not chain to the zone's client CA through a signer (the client port takes nothing else under [access] enforce)",
                rotate,
            ));
        }
    }
    if matches!(issuer, LeafIssuer::External) && !chains_to_roots(&pem, roots) {
        row.problems.push(problem(
            "does not chain to the zone CA (ca): the file must hold the leaf, then any intermediates",
            rotate,
        ));
    }
    match node_ca {
        Some(node_ca) if !info.is_signed_by(node_ca) => row.problems.push(problem(
            "not issued by this node's CA, so it does not chain to the zone CA",
            rotate,
        )),
        Some(node_ca) if !roots.iter().any(|root| node_ca.is_signed_by(root)) => {
            row.problems.push(problem(
                "its node CA does not chain to the zone CA",
                "re-activate the node",
            ))
        }
        _ => {}
    }
    if info.is_ca {
        row.problems
            .push(problem("is a CA certificate, not a leaf", rotate));
    }
    let eku_ok = match kind {
        LeafKind::Server | LeafKind::Peer => info.server_auth && info.client_auth,
        LeafKind::Client => info.client_auth,
    };
    if !eku_ok {
        let want = match kind {
            LeafKind::Client => "clientAuth",
            _ => "serverAuth and clientAuth",
        };
        row.problems.push(problem(
            format!("wrong extended key usage: needs {want}"),
            rotate,
        ));
    }
    // The CAs whose name constraints bind this leaf: its node CA, or the intermediates
    // an external chain carries.
    let constraining: Vec<CertInfo> = match issuer {
        LeafIssuer::NodeCa(ca) => vec![ca.clone()],
        LeafIssuer::External => chain_cas(&pem),
        LeafIssuer::Unknown | LeafIssuer::ClientCa(_) => Vec::new(),
    };
    for ca in &constraining {
        for san in &info.sans {
            if !ca.permits(san) {
                row.problems.push(problem(
                    format!(
                        "names {san}, outside the name constraints of its CA {:?} (Go and etcd refuse it)",
                        ca.subject_cn
                    ),
                    rotate,
                ));
            }
        }
    }
    // An identity names its etcd user in its CN, and no host.
    let identity = identity.filter(|_| !matches!(issuer, LeafIssuer::ClientCa(_)));
    if let Some(identity) = identity {
        let mut needed = vec![Host::Dns(identity.node_name.clone())];
        if kind != LeafKind::Client {
            needed.push(identity.host());
        }
        if kind == LeafKind::Peer {
            needed.push(Host::Dns(peer_name(&identity.zone)));
        }
        for host in needed {
            if !info.sans.contains(&host) {
                row.problems.push(problem(
                    format!("does not name {host}, which this node advertises"),
                    rotate,
                ));
            }
        }
    }
    expiry(&mut row, &info, now, Some(RENEW_AT_LIFE_USED), rotate);
    row
}

/// The CA certificates after the leaf in a chain file.
fn chain_cas(chain_pem: &str) -> Vec<CertInfo> {
    zone_pki::encoding::parse_cert_chain(chain_pem)
        .map(|ders| {
            ders.iter()
                .skip(1)
                .filter_map(|der| CertInfo::parse(der).ok())
                .filter(|c| c.is_ca)
                .collect()
        })
        .unwrap_or_default()
}

/// True when the first certificate of `chain_pem` leads, through the certificates that
/// follow it in the file, to one of `roots`.
pub fn chains_to_roots(chain_pem: &str, roots: &[CertInfo]) -> bool {
    let Ok(ders) = zone_pki::encoding::parse_cert_chain(chain_pem) else {
        return false;
    };
    let Ok(chain) = ders
        .iter()
        .map(CertInfo::parse)
        .collect::<Result<Vec<_>, _>>()
    else {
        return false;
    };
    let Some(mut current) = chain.first() else {
        return false;
    };
    for _ in 0..chain.len() {
        if roots.iter().any(|root| current.is_signed_by(root)) {
            return true;
        }
        match chain[1..]
            .iter()
            .find(|c| c.is_ca && current.is_signed_by(c))
        {
            Some(next) => current = next,
            None => return false,
        }
    }
    false
}

/// Refuses external leaves that etcd or its peers would refuse (or that are expired);
/// warns about ones due for renewal. Each problem names the file and the fix.
pub fn validate_external(
    node: &crate::node::Node,
    paths: &LeafPaths,
    kinds: &[LeafKind],
) -> Result<(), zone_io::Error> {
    let roots = zone_model::config::node::trusted_roots(&node.zone_ca_pem)?;
    let identity = node.identity();
    let fix = "renew it with the PKI that made it (zone-etcd never rewrites external certificates)";
    for &kind in kinds {
        let row = leaf_row(
            kind,
            paths,
            LeafIssuer::External,
            &roots,
            Some(&identity),
            OffsetDateTime::now_utc(),
            fix,
        );
        for p in &row.problems {
            if p.problem.starts_with("due for renewal") {
                tracing::warn!(
                    "external {} certificate {}: {}",
                    row.name,
                    paths.cert(kind).display(),
                    p.problem
                );
                continue;
            }
            return Err(zone_io::Error::new(format!(
                "external {} certificate: {}",
                row.name, p.problem
            ))
            .file(paths.cert(kind))
            .field("external")
            .fix(p.fix.clone()));
        }
    }
    Ok(())
}
