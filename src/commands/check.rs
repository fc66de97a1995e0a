//! `zone-etcd check`: one row per certificate of the node (zone CA, node CA, server,
//! peer, client) with subject, issuer, expiry and time left, then every problem found and
//! how to fix it. Exit 0 when clean, 1 when anything is wrong.
//!
//! Unlike the other commands it does not stop at the first fault: each certificate is
//! read on its own, so a broken node CA still gets its leaves inspected. It writes
//! nothing (the member list is looked up without caching).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};
use zone_pki::profile::peer_name;
use zone_pki::{CertInfo, Error, Host, LeafKind, NodeIdentity};

use crate::config::node::{read_pem_field, state_dir, trusted_roots, Node, NodeFile};
use crate::config::{parse, read_config};
use crate::leaves::{LeafPaths, RENEW_AT_LIFE_USED};
use crate::nameservice::CachePolicy;

/// A CA with less than this left is reported as expiring: re-activation takes planning.
const CA_WARNING: Duration = Duration::days(180);

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

#[derive(Debug, Serialize)]
struct Report {
    node: String,
    ok: bool,
    certificates: Vec<Row>,
    /// Problems that belong to no certificate: the node config, directory modes.
    other_problems: Vec<Problem>,
}

pub fn run(config: &Path, json: bool) -> Result<(), Error> {
    let text = read_config(config)?;
    let file: NodeFile = parse(config, &text)?;
    let report = inspect(config, &file, OffsetDateTime::now_utc());
    if json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| Error::new(format!("cannot write JSON: {e}")))?;
        println!("{text}");
    } else {
        print!("{}", render(&report));
    }
    let count = report
        .certificates
        .iter()
        .map(|r| r.problems.len())
        .sum::<usize>()
        + report.other_problems.len();
    if count == 0 {
        Ok(())
    } else {
        Err(Error::new(format!(
            "{count} problem{} found",
            if count == 1 { "" } else { "s" }
        ))
        .file(config)
        .fix("see the list above, each with its fix"))
    }
}

fn inspect(config: &Path, file: &NodeFile, now: OffsetDateTime) -> Report {
    let rotate = format!("zone-etcd rotate --config {}", config.display());
    let reactivate =
        "re-activate the node with the zone CA (zone-etcd activate) and copy the new bundle";
    let base = crate::config::node::base_dir(config);
    let mut other = Vec::new();

    // The node as the other commands see it: its member list and identity.
    let node = Node::load_with(config, CachePolicy::ReadOnly);
    let identity = match &node {
        Ok(node) => Some(node.identity()),
        Err(e) => {
            other.push(problem(
                e.to_string(),
                "fix the node config or bundle as the message says",
            ));
            None
        }
    };
    let name = file.name.clone().unwrap_or_default();

    let (zone_row, zone_ca) = cert_row("zone CA", &base, file.ca.as_deref(), "ca");
    let mut rows = vec![zone_row];
    if let Some(zone_ca) = &zone_ca {
        let row = &mut rows[0];
        if !zone_ca.is_ca {
            row.problems.push(problem(
                "not a CA certificate",
                "point ca to the zone's ca.crt",
            ));
        } else if !zone_ca.is_self_issued() {
            row.problems.push(problem(
                "not a root certificate",
                "point ca to the zone's ca.crt",
            ));
        }
        expiry(
            row,
            zone_ca,
            now,
            None,
            "the owner plans a zone CA rotation (README)",
        );
    }

    // Every root of the trust file (two while the zone CA rotates).
    let roots: Vec<CertInfo> = file
        .ca
        .as_deref()
        .and_then(|v| read_pem_field(&base, v, "ca").ok())
        .and_then(|(pem, _)| trusted_roots(&pem).ok())
        .unwrap_or_default();
    let (mut node_row, node_ca) = cert_row("node CA", &base, file.cert.as_deref(), "cert");
    if let Some(node_ca) = &node_ca {
        if !node_ca.is_ca || node_ca.path_len != Some(0) {
            node_row
                .problems
                .push(problem("not a pathlen:0 CA certificate", reactivate));
        }
        if zone_ca.is_some() && !roots.iter().any(|root| node_ca.is_signed_by(root)) {
            node_row
                .problems
                .push(problem("does not chain to the zone CA", reactivate));
        }
        if !node_ca.permits(&Host::Dns(name.clone())) {
            node_row.problems.push(problem(
                format!("its name constraints do not permit the node name {name:?}"),
                reactivate,
            ));
        }
        if let Some(key) = &file.key {
            key_problems(&mut node_row, &base, key, node_ca, reactivate);
        }
        expiry(&mut node_row, node_ca, now, None, reactivate);
    }
    rows.push(node_row);

    let state = state_dir(config, file);
    let paths = LeafPaths::for_state_dir(&state);
    let kinds: Vec<LeafKind> = match &identity {
        Some(id) => crate::leaves::kinds_for(id).to_vec(),
        None => LeafKind::ALL
            .into_iter()
            .filter(|k| paths.cert(*k).exists())
            .collect(),
    };
    for kind in kinds {
        rows.push(leaf_row(
            kind,
            &paths,
            node_ca.as_ref(),
            &roots,
            identity.as_ref(),
            now,
            &rotate,
        ));
    }

    for dir in private_dirs(&state) {
        if let Ok(meta) = std::fs::metadata(&dir) {
            if meta.permissions().mode() & 0o077 != 0 {
                other.push(problem(
                    format!(
                        "directory {} is open to group or others (mode {:o})",
                        dir.display(),
                        meta.permissions().mode() & 0o777
                    ),
                    format!("chmod 700 {}", dir.display()),
                ));
            }
        }
    }
    let ok = rows.iter().all(|r| r.problems.is_empty()) && other.is_empty();
    Report {
        node: name,
        ok,
        certificates: rows,
        other_problems: other,
    }
}

/// The directories that hold keys: the state directory and the leaf sets.
fn private_dirs(state: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![
        state.to_path_buf(),
        state.join("tls"),
        state.join("tls/sets"),
    ];
    if let Ok(entries) = std::fs::read_dir(state.join("tls/sets")) {
        dirs.extend(entries.flatten().map(|e| e.path()));
    }
    dirs
}

fn problem(problem: impl Into<String>, fix: impl Into<String>) -> Problem {
    Problem {
        problem: problem.into(),
        fix: fix.into(),
    }
}

/// Reads one certificate named by a node config field (inline PEM or a path).
fn cert_row(
    name: &'static str,
    base: &Path,
    field: Option<&str>,
    field_name: &str,
) -> (Row, Option<CertInfo>) {
    let mut row = Row::new(name, None);
    let Some(value) = field else {
        row.problems.push(problem(
            format!("the node config has no {field_name}"),
            "use the node.toml written by zone-etcd activate",
        ));
        return (row, None);
    };
    match read_pem_field(base, value, field_name) {
        Ok((pem, file)) => {
            row.file = Some(
                file.map(|f| f.display().to_string())
                    .unwrap_or_else(|| format!("{field_name} (inline)")),
            );
            parse_into(row, &pem)
        }
        Err(e) => {
            row.problems.push(problem(
                e.problem(),
                "restore the file from the node bundle",
            ));
            (row, None)
        }
    }
}

/// Fills a row from a certificate's PEM (its first certificate).
fn parse_into(mut row: Row, pem: &str) -> (Row, Option<CertInfo>) {
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
    fn new(name: &'static str, file: Option<String>) -> Row {
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
fn key_problems(row: &mut Row, base: &Path, key: &str, cert: &CertInfo, fix: &str) {
    let loaded = if crate::config::node::inline_pem(key) {
        zone_pki::authority::parse_key(key)
    } else {
        let path = base.join(key);
        if let Ok(meta) = std::fs::metadata(&path) {
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
        zone_pki::authority::read_text(&path).and_then(|t| zone_pki::authority::parse_key(&t))
    };
    match loaded {
        Ok(key) if cert.public_key_matches(&key) => {}
        Ok(_) => row
            .problems
            .push(problem("the key does not match the certificate", fix)),
        Err(e) => row
            .problems
            .push(problem(format!("key unreadable: {}", e.problem()), fix)),
    }
}

fn expiry(row: &mut Row, info: &CertInfo, now: OffsetDateTime, renew_at: Option<f64>, fix: &str) {
    if now >= info.not_after {
        row.problems.push(problem("expired", fix));
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

fn leaf_row(
    kind: LeafKind,
    paths: &LeafPaths,
    node_ca: Option<&CertInfo>,
    roots: &[CertInfo],
    identity: Option<&NodeIdentity>,
    now: OffsetDateTime,
    rotate: &str,
) -> Row {
    let name = match kind {
        LeafKind::Server => "server",
        LeafKind::Peer => "peer",
        LeafKind::Client => "client",
    };
    let cert_path = paths.cert(kind);
    let mut row = Row::new(name, Some(cert_path.display().to_string()));
    let pem = match std::fs::read_to_string(&cert_path) {
        Ok(pem) => pem,
        Err(_) => {
            row.problems
                .push(problem("missing", format!("{rotate} (or launch)")));
            return row;
        }
    };
    let (mut row, info) = parse_into(row, &pem);
    let Some(info) = info else { return row };
    let key = paths.key(kind);
    key_problems(
        &mut row,
        Path::new("/"),
        &key.display().to_string(),
        &info,
        rotate,
    );
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
    if let Some(node_ca) = node_ca {
        for san in &info.sans {
            if !node_ca.permits(san) {
                row.problems.push(problem(
                    format!("names {san}, outside its node CA's name constraints (Go and etcd refuse it)"),
                    rotate,
                ));
            }
        }
    }
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

/// The text report: a table, then each problem with its fix.
fn render(report: &Report) -> String {
    let mut out = format!("certificates of {}\n", report.node);
    let headers = [
        "CERTIFICATE",
        "SUBJECT",
        "ISSUER",
        "NOT AFTER",
        "LEFT",
        "STATUS",
    ];
    let rows: Vec<[String; 6]> = report
        .certificates
        .iter()
        .map(|r| {
            [
                r.name.to_string(),
                r.subject.clone().unwrap_or_else(|| "-".into()),
                r.issuer.clone().unwrap_or_else(|| "-".into()),
                r.not_after.clone().unwrap_or_else(|| "-".into()),
                r.seconds_left.map(time_left).unwrap_or_else(|| "-".into()),
                match r.problems.len() {
                    0 => "ok".into(),
                    1 => "1 problem".into(),
                    n => format!("{n} problems"),
                },
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..6)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].len())
                .chain([headers[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: [&str; 6]| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            text += &format!("{cell:<width$}  ", width = widths[i]);
        }
        text.trim_end().to_string() + "\n"
    };
    out += &line(headers);
    for row in &rows {
        out += &line([&row[0], &row[1], &row[2], &row[3], &row[4], &row[5]]);
    }
    let problems: Vec<(&str, &Problem)> = report
        .certificates
        .iter()
        .flat_map(|r| r.problems.iter().map(move |p| (r.name, p)))
        .chain(report.other_problems.iter().map(|p| ("node", p)))
        .collect();
    if problems.is_empty() {
        out += "no problems\n";
    } else {
        out += "\nproblems:\n";
        for (name, p) in problems {
            out += &format!("  {name}: {} (fix: {})\n", p.problem, p.fix);
        }
    }
    out
}

fn time_left(seconds: i64) -> String {
    if seconds <= 0 {
        "expired".into()
    } else if seconds >= 2 * 86_400 {
        format!("{}d", seconds / 86_400)
    } else {
        format!("{}h", seconds / 3_600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_left_reads_in_days_or_hours() {
        assert_eq!(time_left(-5), "expired");
        assert_eq!(time_left(90 * 86_400), "90d");
        assert_eq!(time_left(7_200), "2h");
    }
}
