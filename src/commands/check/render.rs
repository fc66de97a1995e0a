//! The text form of `zone-etcd check`'s report: the certificate table, the etcd binary,
//! then each problem with its fix.

use super::report::Report;
use zone_node::inspection::Problem;

/// The text report: a table, then each problem with its fix.
pub(super) fn render(report: &Report) -> String {
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
    if let Some(etcd) = &report.etcd {
        out += &format!(
            "etcd: {} (version {})\n",
            etcd.path,
            etcd.version.as_deref().unwrap_or("not supported")
        );
        for warning in &etcd.warnings {
            out += &format!("warning: {warning}\n");
        }
    }
    if let Some(disk) = &report.disk {
        match (&disk.measured, &disk.not_measured) {
            (Some(m), _) => out += &(zone_node::disk_probe::line(m) + "\n"),
            (None, Some(why)) => out += &format!("data disk: not measured: {why}\n"),
            (None, None) => {}
        }
        for finding in &disk.findings {
            out += &format!("warning: {} (fix: {})\n", finding.what, finding.fix);
        }
    }
    if let Some(links) = &report.links {
        out += &format!(
            "links: round trip p50/p99 over the minute to {}: {}; the zone's timeouts: heartbeat {} ms, election {} ms",
            links.record.at,
            links.record.peers_line(),
            links.heartbeat_interval_ms,
            links.election_timeout_ms
        );
        if let Some(fits) = &links.fits {
            out += &format!(
                " (what fits: heartbeat_interval_ms = {}, election_timeout_ms = {})",
                fits.heartbeat_interval_ms, fits.election_timeout_ms
            );
        }
        out.push('\n');
        if let Some(warning) = &links.warning {
            out += &format!("warning: {warning}\n");
        }
        if let Some(disk) = &links.record.disk {
            out += &format!(
                "data disk as etcd saw it (its last minute with writes, recorded at {}): {}\n",
                links.record.at,
                disk.line()
            );
        }
    }
    out += &zone_node::revocation::summary::line(report.crl.as_ref());
    out.push('\n');
    if let Some(access) = &report.access {
        out += &access.line;
        out.push('\n');
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
