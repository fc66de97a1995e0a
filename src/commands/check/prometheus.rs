//! `check --format prometheus`: the report as metrics in Prometheus' text exposition
//! format 0.0.4, for node_exporter's textfile collector (`--out` into its directory).
//!
//! Every family is a gauge with `# HELP` and `# TYPE` lines, named `zone_etcd_*`, and
//! every series carries `node`; certificate series carry `certificate` too, named as in
//! the text and JSON reports (`zone CA`, `node CA`, `server`, `peer`, `client`, and
//! with `[access]` `client CA` and `signer`). A
//! certificate that could not be read has its problems series and no expiry series.
//! Only counts and dates: no problem text, no path, no key material.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::report::Report;
use zone_node::exposition::{family, labels};
use zone_node::inspection::Row;

/// The metrics of `report`, for a check that ran at `now`.
pub(super) fn render(report: &Report, now: OffsetDateTime) -> String {
    let now = now.unix_timestamp();
    let node = ("node", report.node.as_str());
    let of = |row: &Row| labels(&[("certificate", row.name), node]);
    let dated: Vec<(&Row, i64)> = report
        .certificates
        .iter()
        .filter_map(|row| not_after(row, now).map(|t| (row, t)))
        .collect();
    let total = report.problem_count();

    let mut out = String::new();
    family(
        &mut out,
        "zone_etcd_certificate_expiry_seconds",
        "Seconds until the certificate's notAfter, negative once it has expired.",
        dated.iter().map(|(row, t)| (of(row), t - now)),
    );
    family(
        &mut out,
        "zone_etcd_certificate_not_after_timestamp_seconds",
        "The certificate's notAfter, in seconds since the Unix epoch.",
        dated.iter().map(|(row, t)| (of(row), *t)),
    );
    family(
        &mut out,
        "zone_etcd_certificate_problems",
        "Problems zone-etcd check found in the certificate (0 when clean).",
        report
            .certificates
            .iter()
            .map(|row| (of(row), count(row.problems.len()))),
    );
    family(
        &mut out,
        "zone_etcd_check_problems",
        "Problems zone-etcd check found on the node, with those of no certificate.",
        [(labels(&[node]), count(total))],
    );
    family(
        &mut out,
        "zone_etcd_check_ok",
        "1 when zone-etcd check found no problem, else 0.",
        [(labels(&[node]), i64::from(total == 0))],
    );
    family(
        &mut out,
        "zone_etcd_crl_number",
        "The number of the zone's CRL in force on the node (0: the zone has revoked nothing).",
        [(
            labels(&[node]),
            report.crl.as_ref().map_or(0, |c| c.number as i64),
        )],
    );
    family(
        &mut out,
        "zone_etcd_crl_age_seconds",
        "Seconds since the zone's CRL in force on the node was signed (absent: no CRL).",
        report.crl.iter().map(|c| (labels(&[node]), c.age_seconds)),
    );
    family(
        &mut out,
        "zone_etcd_etcd_warnings",
        "Known defects of the etcd release a launch of this member runs (vulnerabilities, end of life, others): zone-etcd check names them.",
        report.etcd.iter().filter_map(|etcd| {
            let version = etcd.version.as_deref()?;
            Some((
                labels(&[node, ("version", version)]),
                count(etcd.warnings.len()),
            ))
        }),
    );
    family(
        &mut out,
        "zone_etcd_access_enforced",
        "1 when the zone enforces its access policy (each identity its grants), 0 when every client certificate of the zone is root in etcd (absent: the node config did not load).",
        report
            .access
            .iter()
            .map(|a| (labels(&[node]), i64::from(a.enforced))),
    );
    let measured = report.disk.as_ref().and_then(|d| d.measured.as_ref());
    family(
        &mut out,
        "zone_etcd_disk_fdatasync_seconds",
        "The member's data disk: fdatasync latency of small appends as etcd's WAL makes them (quantile 0.5, 0.99 and 1, the worst), as zone-etcd check last measured it (etcd's guidance: 0.99 under 0.01).",
        measured.into_iter().flat_map(|m| {
            [
                ("0.5", m.fdatasync_p50_ms),
                ("0.99", m.fdatasync_p99_ms),
                ("1", m.fdatasync_max_ms),
            ]
            .map(|(q, ms)| (labels(&[node, ("quantile", q)]), ms / 1000.0))
        }),
    );
    family(
        &mut out,
        "zone_etcd_disk_measured_timestamp_seconds",
        "When zone-etcd check last measured the member's data disk, in seconds since the Unix epoch.",
        measured.into_iter().filter_map(|m| {
            let at = OffsetDateTime::parse(&m.at, &Rfc3339).ok()?;
            Some((labels(&[node]), at.unix_timestamp()))
        }),
    );
    family(
        &mut out,
        "zone_etcd_disk_findings",
        "What zone-etcd check found wrong with the member's data disk for etcd (an SD card, memory, a network file system, slow syncs): it names each with its fix.",
        report
            .disk
            .iter()
            .filter(|d| d.measured.is_some())
            .map(|d| (labels(&[node]), count(d.findings.len()))),
    );
    family(
        &mut out,
        "zone_etcd_peer_round_trip_seconds",
        "The member's round trips to each peer over a minute (quantile 0.5 and 0.99), from etcd's own probes, as its keeper last recorded them (etcd's guidance: a heartbeat near the farthest, an election timeout about ten times that).",
        report.links.iter().flat_map(|l| {
            l.record.peers.iter().flat_map(|p| {
                [("0.5", p.p50_ms), ("0.99", p.p99_ms)].map(|(q, ms)| {
                    (
                        labels(&[node, ("peer", p.peer.as_str()), ("quantile", q)]),
                        ms / 1000.0,
                    )
                })
            })
        }),
    );
    super::quotas::families(&mut out, report.quotas.as_ref(), &report.node);
    let build = &report.zone_etcd;
    let (reads, writes) = (build.reads.to_string(), build.writes.to_string());
    family(
        &mut out,
        "zone_etcd_release_info",
        "The zone-etcd release installed on the node (what checked, and what its launch and keepers run once restarted), with its commit and the format levels it reads and writes; always 1.",
        [(
            labels(&[
                node,
                ("release", build.release),
                ("commit", build.commit),
                ("reads", &reads),
                ("writes", &writes),
            ]),
            1,
        )],
    );
    family(
        &mut out,
        "zone_etcd_check_timestamp_seconds",
        "When zone-etcd check ran, in seconds since the Unix epoch.",
        [(labels(&[node]), now)],
    );
    out
}

/// A row's notAfter in Unix seconds; `None` for a certificate that could not be read.
fn not_after(row: &Row, now: i64) -> Option<i64> {
    row.not_after
        .as_deref()
        .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
        .map(OffsetDateTime::unix_timestamp)
        .or_else(|| row.seconds_left.map(|left| now.saturating_add(left)))
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;
    use zone_node::exposition::{escape_help, escape_label};
    use zone_node::inspection::problem;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("a valid time")
    }

    fn row(name: &'static str, not_after: Option<OffsetDateTime>, problems: usize) -> Row {
        let mut row = Row::new(name, None);
        row.not_after = not_after.and_then(|t| t.format(&Rfc3339).ok());
        row.seconds_left = not_after.map(|t| (t - now()).whole_seconds());
        row.problems = (0..problems).map(|_| problem("wrong", "fix it")).collect();
        row
    }

    fn report(node: &str, certificates: Vec<Row>, other: usize) -> Report {
        Report {
            node: node.to_string(),
            ok: certificates.iter().all(|r| r.problems.is_empty()) && other == 0,
            certificates,
            other_problems: (0..other).map(|_| problem("odd", "fix it")).collect(),
            etcd: None,
            crl: None,
            disk: None,
            links: None,
            quotas: None,
            access: None,
            zone_etcd: crate::commands::check::report::ThisBuild::default(),
        }
    }

    /// The lines of `text` that are samples of `name` (not HELP or TYPE).
    fn samples<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
        text.lines()
            .filter(|l| l.starts_with(&format!("{name}{{")))
            .collect()
    }

    #[test]
    fn label_values_escape_backslash_quote_and_newline() {
        assert_eq!(escape_label(r#"a\b"c"#), r#"a\\b\"c"#);
        assert_eq!(escape_label("two\nlines"), r"two\nlines");
        assert_eq!(escape_label(r#"\""#), r#"\\\""#);
        assert_eq!(escape_help("a\\b\nc"), r"a\\b\nc");
        let text = render(
            &report("odd\"node\\\nname", vec![row("server", None, 0)], 0),
            now(),
        );
        assert_eq!(
            samples(&text, "zone_etcd_check_ok"),
            [r#"zone_etcd_check_ok{node="odd\"node\\\nname"} 1"#]
        );
        // Every line is a comment or one whole sample: no raw newline inside a value.
        for line in text.lines() {
            assert!(
                line.starts_with("# HELP zone_etcd_")
                    || line.starts_with("# TYPE zone_etcd_")
                    || line.starts_with("zone_etcd_"),
                "{line}"
            );
        }
    }

    #[test]
    fn a_clean_node_has_every_family_and_is_ok() {
        let in_90_days = now() + Duration::days(90);
        let text = render(
            &report(
                "node1.example.zone",
                vec![
                    row("zone CA", Some(now() + Duration::days(3650)), 0),
                    row("server", Some(in_90_days), 0),
                ],
                0,
            ),
            now(),
        );
        assert!(text.ends_with('\n'));
        for name in [
            "zone_etcd_certificate_expiry_seconds",
            "zone_etcd_certificate_not_after_timestamp_seconds",
            "zone_etcd_certificate_problems",
            "zone_etcd_check_problems",
            "zone_etcd_check_ok",
            "zone_etcd_check_timestamp_seconds",
        ] {
            let help = format!("# HELP {name} ");
            let kind = format!("# TYPE {name} gauge\n{name}{{");
            assert!(text.contains(&help), "{name}:\n{text}");
            assert!(text.contains(&kind), "{name}:\n{text}");
        }
        let server = r#"{certificate="server",node="node1.example.zone"}"#;
        assert!(text.contains(&format!(
            "zone_etcd_certificate_expiry_seconds{server} {}\n",
            90 * 86_400
        )));
        assert!(text.contains(&format!(
            "zone_etcd_certificate_not_after_timestamp_seconds{server} {}\n",
            in_90_days.unix_timestamp()
        )));
        assert!(text.contains(&format!("zone_etcd_certificate_problems{server} 0\n")));
        assert!(text.contains(r#"zone_etcd_certificate_problems{certificate="zone CA","#));
        assert!(text.contains("zone_etcd_check_problems{node=\"node1.example.zone\"} 0\n"));
        assert!(text.contains("zone_etcd_check_ok{node=\"node1.example.zone\"} 1\n"));
        assert!(text.contains(
            "zone_etcd_check_timestamp_seconds{node=\"node1.example.zone\"} 1800000000\n"
        ));
        assert_eq!(
            samples(&text, "zone_etcd_release_info"),
            [format!(
                "zone_etcd_release_info{{node=\"node1.example.zone\",release=\"{}\",commit=\"{}\",reads=\"2\",writes=\"2\"}} 1",
                zone_node::this_build::RELEASE,
                zone_node::this_build::COMMIT
            )]
        );
        // No CRL: number 0, and no age sample.
        assert!(text.contains("zone_etcd_crl_number{node=\"node1.example.zone\"} 0\n"));
        assert!(samples(&text, "zone_etcd_crl_age_seconds").is_empty());
    }

    #[test]
    fn the_crl_in_force_has_its_number_and_age() {
        let mut with_crl = report("node1.example.zone", vec![], 0);
        with_crl.crl = Some(zone_node::revocation::summary::CrlSummary {
            number: 3,
            this_update: "2027-01-15T08:00:00Z".into(),
            next_update: None,
            age_seconds: 3600,
            revoked: vec!["laptop.example.zone".into()],
            overdue: false,
        });
        let text = render(&with_crl, now());
        assert!(
            text.contains("zone_etcd_crl_number{node=\"node1.example.zone\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("zone_etcd_crl_age_seconds{node=\"node1.example.zone\"} 3600\n"),
            "{text}"
        );
    }

    #[test]
    fn the_etcd_of_a_member_has_its_version_and_known_defects() {
        let mut member = report("node1.example.zone", vec![], 0);
        let old = zone_etcd_kit::etcd::release::Version::new(3, 4, 45);
        let warnings = zone_etcd_kit::etcd::advisories::security_warnings(old);
        assert!(warnings.len() > 1, "3.4.45 is end-of-life and vulnerable");
        member.etcd = Some(super::super::report::EtcdBinary {
            path: "/usr/lib/zone-etcd/etcd".into(),
            version: Some("3.4.45".into()),
            warnings: warnings.clone(),
        });
        let text = render(&member, now());
        assert_eq!(
            samples(&text, "zone_etcd_etcd_warnings"),
            [format!(
                r#"zone_etcd_etcd_warnings{{node="node1.example.zone",version="3.4.45"}} {}"#,
                warnings.len()
            )]
        );
        // A clean release: the series is there, at 0.
        member.etcd = Some(super::super::report::EtcdBinary {
            path: "/usr/lib/zone-etcd/etcd".into(),
            version: Some("3.7.2".into()),
            warnings: Vec::new(),
        });
        assert_eq!(
            samples(&render(&member, now()), "zone_etcd_etcd_warnings"),
            [r#"zone_etcd_etcd_warnings{node="node1.example.zone",version="3.7.2"} 0"#]
        );
        // No etcd (not a member), or one that is not an etcd: no series.
        member.etcd = None;
        assert!(samples(&render(&member, now()), "zone_etcd_etcd_warnings").is_empty());
        member.etcd = Some(super::super::report::EtcdBinary {
            path: "/bin/true".into(),
            version: None,
            warnings: Vec::new(),
        });
        assert!(samples(&render(&member, now()), "zone_etcd_etcd_warnings").is_empty());
    }

    #[test]
    fn an_expired_certificate_has_a_negative_expiry_and_its_problem() {
        let expired = now() - Duration::days(3);
        let text = render(&report("n", vec![row("peer", Some(expired), 1)], 0), now());
        assert_eq!(
            samples(&text, "zone_etcd_certificate_expiry_seconds"),
            [format!(
                r#"zone_etcd_certificate_expiry_seconds{{certificate="peer",node="n"}} {}"#,
                -3 * 86_400
            )]
        );
        assert_eq!(
            samples(&text, "zone_etcd_certificate_not_after_timestamp_seconds"),
            [format!(
                r#"zone_etcd_certificate_not_after_timestamp_seconds{{certificate="peer",node="n"}} {}"#,
                expired.unix_timestamp()
            )]
        );
        assert_eq!(
            samples(&text, "zone_etcd_certificate_problems"),
            [r#"zone_etcd_certificate_problems{certificate="peer",node="n"} 1"#]
        );
        assert_eq!(
            samples(&text, "zone_etcd_check_ok"),
            [r#"zone_etcd_check_ok{node="n"} 0"#]
        );
    }

    #[test]
    fn a_missing_certificate_has_problems_and_no_expiry() {
        let text = render(
            &report(
                "n",
                vec![
                    row("server", Some(now() + Duration::days(80)), 0),
                    row("client", None, 1),
                ],
                2,
            ),
            now(),
        );
        for name in [
            "zone_etcd_certificate_expiry_seconds",
            "zone_etcd_certificate_not_after_timestamp_seconds",
        ] {
            let series = samples(&text, name);
            assert_eq!(series.len(), 1, "{series:?}");
            assert!(series[0].contains(r#"certificate="server""#), "{series:?}");
        }
        assert_eq!(
            samples(&text, "zone_etcd_certificate_problems"),
            [
                r#"zone_etcd_certificate_problems{certificate="server",node="n"} 0"#,
                r#"zone_etcd_certificate_problems{certificate="client",node="n"} 1"#,
            ]
        );
        // The node's own problems count in the total, under no certificate.
        assert_eq!(
            samples(&text, "zone_etcd_check_problems"),
            [r#"zone_etcd_check_problems{node="n"} 3"#]
        );
        assert_eq!(
            samples(&text, "zone_etcd_check_ok"),
            [r#"zone_etcd_check_ok{node="n"} 0"#]
        );
    }
}
