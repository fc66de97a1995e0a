//! What an active etcd alarm means for the zone and what fixes it (pure): `status` and
//! `maintain` word it the same way.
//!
//! An alarm is the cluster's, not a member's health: under NOSPACE (a member's database
//! reached its quota) or CORRUPT (the members' data disagree) every member still answers,
//! a leader still leads and linearizable reads still go through; what etcd refuses is
//! writes.

use std::path::Path;

use super::human_size;

/// Why writes are refused while alarm `kind`, raised by `member`, is active.
pub fn why_writes_refused(kind: &str, member: &str, quota: i64) -> String {
    match kind {
        "NOSPACE" => format!(
            "NOSPACE on {member}: its database reached its quota_backend_bytes ({})",
            human_size(quota)
        ),
        "CORRUPT" => format!(
            "CORRUPT on {member}: its data disagree with the other members' (etcd's corruption check)"
        ),
        other => format!("{other} on {member}"),
    }
}

/// What clears the alarms of `kinds`, for a node whose config is `config`.
pub fn fix(kinds: &[&str], config: &Path) -> String {
    let mut fixes = Vec::new();
    if kinds.contains(&"NOSPACE") {
        fixes.push(format!(
            "run zone-etcd maintain --config {}: it compacts the history, defragments every member and disarms NOSPACE",
            config.display()
        ));
    }
    if kinds.contains(&"CORRUPT") {
        fixes.push(
            "on the named member's node: stop it, move its data directory aside (mv <state>/data <state>/data.corrupt) and run zone-etcd join --replace (guide: Troubleshooting by symptom), then disarm the alarm (etcdctl alarm disarm)"
                .to_string(),
        );
    }
    if kinds.iter().any(|k| !matches!(*k, "NOSPACE" | "CORRUPT")) {
        fixes.push("see etcd's documentation of the alarm, then etcdctl alarm disarm".into());
    }
    fixes.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_alarm_names_its_cause_and_fix() {
        let why = why_writes_refused("NOSPACE", "node1", 16 << 20);
        assert_eq!(
            why,
            "NOSPACE on node1: its database reached its quota_backend_bytes (16.0 MiB)"
        );
        assert!(why_writes_refused("CORRUPT", "node2", 1).contains("data disagree"));
        let config = Path::new("/etc/zone-etcd/node.toml");
        let fix_nospace = fix(&["NOSPACE"], config);
        assert!(
            fix_nospace.starts_with("run zone-etcd maintain --config /etc/zone-etcd/node.toml:")
        );
        let fix_corrupt = fix(&["CORRUPT"], config);
        assert!(!fix_corrupt.contains("maintain"), "{fix_corrupt}");
        assert!(fix_corrupt.contains("join --replace"), "{fix_corrupt}");
        assert_eq!(
            fix(&["NOSPACE", "CORRUPT"], config).matches("; ").count(),
            1
        );
    }
}
