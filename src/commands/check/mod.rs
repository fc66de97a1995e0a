//! `zone-etcd check`: one row per certificate of the node (zone CA, node CA, server,
//! peer, client; in a zone with `[access]` also the client CA and a member's signer) with
//! subject, issuer, expiry and time left, then every problem found and how to fix it, the
//! etcd binary a launch would run (its version, and the known defects of that release as
//! warnings), and a member's data disk (its fdatasync latency against etcd's guidance,
//! [`zone_node::disk_probe`]; what it means as warnings), and a member's round trips to its
//! peers as its keeper last recorded them ([`zone_agent::links`]) against the zone's
//! timeouts, with the `[settings]` that fit. Exit 0 when clean, 1 when anything is wrong.
//!
//! Unlike the other commands it does not stop at the first fault: each certificate is
//! read on its own, so a broken node CA still gets its leaves inspected. It writes
//! nothing (the member list is looked up without caching) but the `--out` file, which
//! is written even when problems are found (that is what metrics are for), and the data
//! disk's probe (its own file, removed) and measurement kept for an hour.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;
use zone_io::Error;
use zone_pki::{CertInfo, Host, LeafKind};

use zone_model::config::node::{inline_pem, read_pem_field, state_dir, trusted_roots, NodeFile};
use zone_model::config::read_config;
use zone_model::leaf_paths::LeafPaths;
use zone_node::inspection::{
    expiry, key_match_problems, key_problems, leaf_row, parse_into, problem, LeafIssuer, Problem,
    Row,
};
use zone_node::nameservice::CachePolicy;
use zone_node::node::Node;

mod crl;
pub(crate) mod prometheus;
mod quotas;
mod render;
mod report;
use render::render;
use report::{EtcdBinary, Report};
use zone_node::report_output::{emit, CheckFormat};

pub fn run(config: &Path, format: CheckFormat, out: Option<&Path>) -> Result<(), Error> {
    let now = OffsetDateTime::now_utc();
    let report = match read_config(config).and_then(|text| NodeFile::parse(config, &text)) {
        // The metrics timer's check reports the kept figure of the data disk and never
        // measures it (zone_node::disk_probe says why).
        Ok(file) => {
            let metrics = format == CheckFormat::Prometheus;
            inspect(config, &file, now, !metrics, metrics)
        }
        // Metrics say a node whose config does not load is broken, instead of leaving the
        // last run's numbers in place; the other formats give the error line alone.
        Err(e) if format == CheckFormat::Prometheus => {
            emit(&prometheus::render(&Report::unreadable(&e), now), out)?;
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    let text = match format {
        CheckFormat::Text => render(&report),
        CheckFormat::Json => {
            serde_json::to_string_pretty(&report)
                .map_err(|e| Error::new(format!("cannot write JSON: {e}")))?
                + "\n"
        }
        CheckFormat::Prometheus => prometheus::render(&report, now),
    };
    emit(&text, out)?;
    let count = report.problem_count();
    if count == 0 {
        return Ok(());
    }
    Err(Error::new(format!(
        "{count} problem{} found",
        if count == 1 { "" } else { "s" }
    ))
    .file(config)
    .fix(where_listed(config, format, out)))
}

/// `measure`: the data disk (else its kept figure); `zone`: the zone's quota records from
/// the member's etcd (the metrics run, [`quotas`]).
fn inspect(
    config: &Path,
    file: &NodeFile,
    now: OffsetDateTime,
    measure: bool,
    zone: bool,
) -> Report {
    let rotate = if file.external.is_some() {
        "renew it with the PKI that made it (zone-etcd never rewrites external certificates)"
            .to_string()
    } else {
        format!("zone-etcd rotate --config {}", config.display())
    };
    let reactivate =
        "re-activate the node with the zone CA (zone-etcd activate) and copy the new bundle";
    let base = zone_model::config::node::base_dir(config);
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
            "the owner plans a zone CA rotation (guide: Certificates and revocation)",
        );
    }

    // Every root of the trust file (two while the zone CA rotates).
    let roots: Vec<CertInfo> = file
        .ca
        .as_deref()
        .and_then(|v| read_pem_field(&base, v, "ca").ok())
        .and_then(|(pem, _)| trusted_roots(&pem).ok())
        .unwrap_or_default();
    // External leaves may come without a node CA: then there is no row for it.
    let skip_node_ca = file.external.is_some() && file.cert.is_none();
    let (mut node_row, node_ca) = if skip_node_ca {
        (Row::new("node CA", None), None)
    } else {
        cert_row("node CA", &base, file.cert.as_deref(), "cert")
    };
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
        match file.key.as_deref() {
            Some(key) if inline_pem(key) => {
                let matches = zone_pki::key::parse_key(key).map(|k| node_ca.public_key_matches(&k));
                key_match_problems(&mut node_row, matches, reactivate);
            }
            Some(key) => key_problems(&mut node_row, &base.join(key), node_ca, reactivate),
            None => {}
        }
        expiry(&mut node_row, node_ca, now, None, reactivate);
    }
    if !skip_node_ca {
        rows.push(node_row);
    }

    let state = state_dir(config, file);
    let paths = node
        .as_ref()
        .ok()
        .and_then(|n| n.external.clone())
        .unwrap_or_else(|| LeafPaths::for_state_dir(&state));
    // Leaves are read through the state directory's links only when they stay inside it.
    let layout = match &file.external {
        Some(_) => Ok(()),
        None => zone_node::leaves::check_tls_layout(&state),
    };
    if let Err(e) = &layout {
        let path = e.file_path().map(|p| p.display().to_string());
        other.push(problem(
            format!("{}: {}", path.unwrap_or_default(), e.problem()),
            e.fix_text().unwrap_or("restore the state directory"),
        ));
    }
    let kinds: Vec<LeafKind> = match &identity {
        _ if layout.is_err() => Vec::new(),
        Some(id) => zone_node::leaves::kinds_for(id).to_vec(),
        None => LeafKind::ALL
            .into_iter()
            .filter(|k| paths.cert(*k).exists())
            .collect(),
    };
    let client_ca = identities_rows(&mut rows, &base, file, now, reactivate);
    // Under [access] enforce the node's client leaf is its identity from the zone.
    let enforced = node.as_ref().is_ok_and(|n| n.access.enforce);
    for kind in kinds {
        rows.push(leaf_row(
            kind,
            &paths,
            match (&file.external, &node_ca, &client_ca) {
                (None, _, Some(cas)) if enforced && kind == LeafKind::Client => {
                    LeafIssuer::ClientCa(cas)
                }
                (Some(_), _, _) => LeafIssuer::External,
                (None, Some(ca), _) => LeafIssuer::NodeCa(ca),
                (None, None, _) => LeafIssuer::Unknown,
            },
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
    let etcd = node
        .as_ref()
        .ok()
        .filter(|n| n.member().is_some())
        .and_then(|n| etcd_binary(n, &mut other));
    let crl = node
        .as_ref()
        .ok()
        .and_then(|n| crl::inspect(n, now, &mut other));
    let disk = node
        .as_ref()
        .ok()
        .filter(|n| n.member().is_some())
        .and_then(|n| report::Disk::of(n, measure));
    let links = node
        .as_ref()
        .ok()
        .filter(|n| n.member().is_some())
        .and_then(report::LinksSeen::of);
    let ok = rows.iter().all(|r| r.problems.is_empty()) && other.is_empty();
    Report {
        node: name,
        ok,
        certificates: rows,
        other_problems: other,
        etcd,
        crl,
        access: node.as_ref().ok().map(|n| report::Access::of(&n.access)),
        disk,
        links,
        quotas: node.as_ref().ok().filter(|_| zone).and_then(quotas::read),
        zone_etcd: report::ThisBuild::default(),
    }
}

/// The member's etcd as `launch` finds and identifies it (without remembering it).
fn etcd_binary(node: &Node, other: &mut Vec<Problem>) -> Option<EtcdBinary> {
    let config = &node.path;
    let binary = match zone_etcd_kit::etcd::find_binary(node.etcd_bin.as_deref(), config) {
        Ok(binary) => binary,
        Err(e) => {
            other.push(problem(e.problem(), e.fix_text().unwrap_or_default()));
            return None;
        }
    };
    let identified = zone_etcd_kit::etcd::identify(
        &binary,
        &node.state_dir,
        zone_etcd_kit::etcd::Remember::No,
        config,
    );
    let (version, warnings) = match identified {
        Ok(profile) => (Some(profile.version.to_string()), profile.warnings),
        Err(e) => {
            other.push(problem(e.problem(), e.fix_text().unwrap_or_default()));
            (None, Vec::new())
        }
    };
    Some(EtcdBinary {
        path: binary.display().to_string(),
        version,
        warnings,
    })
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

/// The rows of a zone with `[access]`: the client CA (a self-signed CA) and a member's
/// signer (a CA the client CA signed, its key matching); returns the client CAs (two
/// while the owner rotates the zone's roots).
fn identities_rows(
    rows: &mut Vec<Row>,
    base: &Path,
    file: &NodeFile,
    now: OffsetDateTime,
    reactivate: &str,
) -> Option<Vec<CertInfo>> {
    let field = file.client_ca.as_ref()?;
    let (mut row, client_ca) = cert_row("client CA", base, Some(field), "client_ca");
    let client_cas: Option<Vec<CertInfo>> = client_ca.map(|first| {
        read_pem_field(base, field, "client_ca")
            .ok()
            .and_then(|(pem, _)| CertInfo::parse_chain_pem(&pem).ok())
            .unwrap_or_else(|| vec![first])
    });
    for ca in client_cas.iter().flatten() {
        if !ca.is_ca || !ca.is_self_issued() {
            row.problems
                .push(problem("not a self-signed CA certificate", reactivate));
        }
        expiry(&mut row, ca, now, None, reactivate);
    }
    rows.push(row);
    if file.signer.is_some() {
        let (mut row, signer) = cert_row("signer", base, file.signer.as_deref(), "signer");
        if let Some(signer) = &signer {
            // pathlen:1 issues branches; pathlen:0, of an older client root, does not.
            if !signer.is_ca || !matches!(signer.path_len, Some(0 | 1)) {
                row.problems
                    .push(problem("not a pathlen:1 (or 0) CA certificate", reactivate));
            }
            if client_cas
                .as_ref()
                .is_some_and(|cas| !cas.iter().any(|ca| signer.is_signed_by(ca)))
            {
                row.problems
                    .push(problem("not signed by the zone's client CA", reactivate));
            }
            if let Some(key) = file.signer_key.as_deref() {
                key_problems(&mut row, &base.join(key), signer, reactivate);
            }
            expiry(&mut row, signer, now, None, reactivate);
        }
        rows.push(row);
    }
    client_cas
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

/// The fix of "N problems found": where the problems and their fixes can be read.
fn where_listed(config: &Path, format: CheckFormat, out: Option<&Path>) -> String {
    match (format, out) {
        (CheckFormat::Prometheus, _) => format!(
            "zone-etcd check --config {} lists each problem with its fix",
            config.display()
        ),
        (_, Some(out)) => format!("see the list in {}, each with its fix", out.display()),
        (_, None) => "see the list above, each with its fix".to_string(),
    }
}
