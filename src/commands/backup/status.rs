//! `backup status`: the active writer, each target's newest full snapshot and newest delta
//! (its age is the recovery point), the window a restore can reach, the gaps, the last
//! drill; exit 1 when the backups are in trouble (see [`zone_backup::report`]).

use std::path::Path;
use std::sync::Arc;

use zone_io::Error;
use zone_pki::CertInfo;

use super::DRILL_KEY;
use zone_backup::chain::{parse_manifest_name, Kind, Verified};
use zone_backup::destination::Target;
use zone_backup::local::MAX_MANIFEST_BYTES;
use zone_backup::manifest;
use zone_backup::report::{self, Drill, Report, TargetFacts};
use zone_backup::runner::active::active_writer;
use zone_etcd_kit::cluster_api::{self, describe, within};
use zone_node::exposition::{family, labels};
use zone_node::node::Node;
use zone_node::report_output::{emit, CheckFormat};

/// A target's manifest count and the links read, or why it could not be read.
type TargetRead = Result<(usize, Vec<Verified>), String>;

/// How many gap links `status` reads at most (the newest).
const MAX_GAPS_READ: usize = 100;

pub fn run(config: &Path, format: CheckFormat, out: Option<&Path>) -> Result<(), Error> {
    let node = Node::load(config)?;
    let targets = super::open_targets(&node)?;
    let roots = zone_model::config::trusted_roots(&node.zone_ca_pem)?;
    let now = zone_backup::runner::writer::now_ms();
    let (active, drill) = ask_cluster(&node);
    let read: Vec<(Arc<dyn Target>, TargetRead)> = targets
        .iter()
        .map(|t| (t.clone(), read_target(t.as_ref(), &node.zone, &roots)))
        .collect();
    let reports: Vec<_> = read
        .iter()
        .map(|(t, r)| {
            let (error, links, verified) = match r {
                Ok((n, v)) => (None, *n, v.as_slice()),
                Err(e) => (Some(e.clone()), 0, &[][..]),
            };
            report::target_report(
                &TargetFacts {
                    url: t.url(),
                    error,
                    links,
                    read: verified,
                },
                now,
            )
        })
        .collect();
    let drill = drill.or_else(|| super::last_local(&node));
    let problems = report::problems(&reports, drill.as_ref(), now);
    let (active_node, active_session) = match active {
        Some((n, s)) => (Some(n), Some(s)),
        None => (None, None),
    };
    let report = Report {
        zone: node.zone.clone(),
        active_node,
        active_session,
        targets: reports,
        last_drill: drill,
        problems,
    };
    let text = match format {
        CheckFormat::Text => render_text(&report),
        CheckFormat::Json => serde_json::to_string_pretty(&report).unwrap_or_default() + "\n",
        CheckFormat::Prometheus => render_metrics(&report, &node.name, now),
    };
    emit(&text, out)?;
    // Each problem, with its own fix, is in the report; the line says where to read them
    // (repeating them here would put two fixes in one line).
    let listed = match (format, out) {
        (CheckFormat::Text, None) => "see the list above, each with its fix; the guide: Backups".to_string(),
        (CheckFormat::Json, None) => "the JSON above has each problem with its fix; the guide: Backups".to_string(),
        (_, Some(out)) => format!("see the problems in {}, each with its fix; the guide: Backups", out.display()),
        (_, None) => format!(
            "zone-etcd backup status --config {} lists each problem with its fix; the guide: Backups",
            config.display()
        ),
    };
    // The problems without their fixes: one line has one fix.
    let problems: Vec<&str> = report
        .problems
        .iter()
        .map(|p| p.split(" (fix: ").next().unwrap_or(p))
        .collect();
    match problems.len() {
        0 => Ok(()),
        n => Err(Error::new(format!(
            "{n} backup problem{} found: {}",
            if n == 1 { "" } else { "s" },
            problems.join("; ")
        ))
        .file(config)
        .fix(listed)),
    }
}

/// The election's leader and the last drill recorded in etcd; `None`s when the cluster
/// does not answer (the targets are still reported).
fn ask_cluster(node: &Node) -> (Option<(String, String)>, Option<Drill>) {
    let Ok(creds) = zone_node::reach::client_credentials(node) else {
        return (None, None);
    };
    let Ok(runtime) = cluster_api::runtime() else {
        return (None, None);
    };
    let endpoints: Vec<String> = node
        .members
        .iter()
        .map(zone_model::cluster::client_url)
        .collect();
    runtime.block_on(async {
        let Ok(mut client) = within(cluster_api::connect_many(
            &endpoints,
            &creds,
            cluster_api::CALL_DEADLINE,
        ))
        .await
        else {
            return (None, None);
        };
        let leader = active_writer(&client).await.ok().flatten();
        let drill = within(async { client.get(DRILL_KEY, None).await.map_err(|e| describe(&e)) })
            .await
            .ok()
            .and_then(|r| {
                r.kvs()
                    .first()
                    .and_then(|kv| serde_json::from_slice(kv.value()).ok())
            });
        (leader, drill)
    })
}

/// Lists a target's manifests and reads the few the report needs: the newest full, the
/// newest delta, the oldest full, and the newest gaps.
fn read_target(target: &dyn Target, zone: &str, roots: &[CertInfo]) -> TargetRead {
    let listed = target.list("chain/").map_err(|e| e.to_string())?;
    let mut names: Vec<(u64, Kind, String)> = listed
        .into_iter()
        .filter_map(|o| parse_manifest_name(&o.name).map(|(seq, kind)| (seq, kind, o.name)))
        .collect();
    names.sort();
    let newest = |kind: Kind| names.iter().rev().find(|n| n.1 == kind);
    let mut wanted: Vec<&(u64, Kind, String)> = [
        newest(Kind::Full),
        newest(Kind::Delta),
        names.iter().find(|n| n.1 == Kind::Full),
    ]
    .into_iter()
    .flatten()
    .chain(
        names
            .iter()
            .rev()
            .filter(|n| n.1 == Kind::Gap)
            .take(MAX_GAPS_READ),
    )
    .collect();
    wanted.sort();
    wanted.dedup();
    let mut read = Vec::new();
    for (_, _, name) in wanted {
        let bytes = target
            .get(name, MAX_MANIFEST_BYTES)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{name} vanished while read"))?;
        let stored = manifest::stored(name, bytes);
        read.push(manifest::verify(&stored, zone, roots).map_err(|p| format!("{name}: {p}"))?);
    }
    Ok((names.len(), read))
}

fn render_text(report: &Report) -> String {
    let mut out = format!(
        "zone {}: active backup writer: {}\n",
        report.zone,
        report.active_node.as_deref().unwrap_or("none")
    );
    let point = |p: &Option<report::Point>| match p {
        Some(p) => format!("revision {} ({:.0} s ago)", p.revision, p.age_seconds),
        None => "none".to_string(),
    };
    for t in &report.targets {
        out.push_str(&format!("target {}\n", t.url));
        if let Some(e) = &t.error {
            out.push_str(&format!("  cannot be read: {e}\n"));
            continue;
        }
        out.push_str(&format!("  links:         {}\n", t.links));
        out.push_str(&format!("  newest full:   {}\n", point(&t.newest_full)));
        out.push_str(&format!("  newest delta:  {}\n", point(&t.newest_delta)));
        out.push_str(&format!("  window from:   {}\n", point(&t.window_start)));
        if !t.gaps.is_empty() {
            out.push_str(&format!(
                "  gaps:          {:?}{}\n",
                t.gaps,
                if t.open_gap { " (open)" } else { "" }
            ));
        }
    }
    match &report.last_drill {
        Some(d) => out.push_str(&format!(
            "last drill: {} on {}: {}\n",
            if d.ok { "passed" } else { "FAILED" },
            d.node,
            d.summary
        )),
        None => out.push_str("last drill: none yet\n"),
    }
    for p in &report.problems {
        out.push_str(&format!("problem: {p}\n"));
    }
    out
}

fn render_metrics(report: &Report, node: &str, now_ms: i64) -> String {
    let mut out = String::new();
    let of = |url: &str| labels(&[("node", node), ("target", url)]);
    let secs = |ms: i64| ms / 1000;
    let age = |p: &Option<report::Point>| p.as_ref().map(|p| secs(now_ms - p.time_ms));
    family(
        &mut out,
        "zone_etcd_backup_target_up",
        "1 when the target's chain could be read and verified, else 0.",
        report
            .targets
            .iter()
            .map(|t| (of(&t.url), i64::from(t.error.is_none()))),
    );
    family(
        &mut out,
        "zone_etcd_backup_newest_delta_age_seconds",
        "Age of the target's newest delta: the recovery point if the zone were lost now.",
        report
            .targets
            .iter()
            .filter_map(|t| age(&t.newest_delta).map(|a| (of(&t.url), a))),
    );
    family(
        &mut out,
        "zone_etcd_backup_newest_full_age_seconds",
        "Age of the target's newest full snapshot.",
        report
            .targets
            .iter()
            .filter_map(|t| age(&t.newest_full).map(|a| (of(&t.url), a))),
    );
    family(
        &mut out,
        "zone_etcd_backup_window_seconds",
        "How far back from now a restore from the target can reach.",
        report
            .targets
            .iter()
            .filter_map(|t| age(&t.window_start).map(|a| (of(&t.url), a))),
    );
    family(
        &mut out,
        "zone_etcd_backup_gap_open",
        "1 when the target's chain has a gap no full snapshot closed yet.",
        report
            .targets
            .iter()
            .map(|t| (of(&t.url), i64::from(t.open_gap))),
    );
    family(
        &mut out,
        "zone_etcd_backup_active",
        "1 when a backup writer is active in the zone.",
        [(
            labels(&[("node", node)]),
            i64::from(report.active_node.is_some()),
        )],
    );
    family(
        &mut out,
        "zone_etcd_backup_drill_ok",
        "1 when the last restore drill passed, 0 when it failed or none ran.",
        [(
            labels(&[("node", node)]),
            i64::from(report.last_drill.as_ref().is_some_and(|d| d.ok)),
        )],
    );
    if let Some(d) = &report.last_drill {
        family(
            &mut out,
            "zone_etcd_backup_drill_timestamp_seconds",
            "When the last restore drill ran, in seconds since the Unix epoch.",
            [(labels(&[("node", node)]), secs(d.time_ms))],
        );
    }
    family(
        &mut out,
        "zone_etcd_backup_ok",
        "1 when backup status found no problem, else 0.",
        [(
            labels(&[("node", node)]),
            i64::from(report.problems.is_empty()),
        )],
    );
    out
}
