//! The links between a zone's members, as etcd measures them: each member's metrics carry
//! `etcd_network_peer_round_trip_time_seconds`, a histogram per peer (its `To` label, the
//! peer's member ID in hex) of the round trips of etcd's own probes. From two readings a
//! minute apart come the last minute's p50 and p99 per peer ([`Histogram::since`],
//! [`Histogram::quantile`]); each member's keeper keeps them in the zone ([`Links`] at
//! [`PREFIX`]`<member>`, with the member's disk as its etcd saw it in the same minute,
//! [`crate::disk_minute`]), `status` shows them, and `check` compares them with the
//! zone's `[settings]` ([`fit`]).
//!
//! Invariants: a quantile is interpolated within its bucket as Prometheus'
//! `histogram_quantile` does, so `status` and a dashboard agree; a counter that went down
//! (etcd restarted) makes the later reading the whole minute; a record reads whatever
//! release wrote it (fields it does not know are skipped), and the text this release
//! writes is pinned by a golden test.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::disk_minute::DiskMinute;
use crate::histogram::{self, Histogram};
use crate::settings::{DEFAULT_HEARTBEAT_MS, MAX_ELECTION_MS, MIN_HEARTBEATS_PER_ELECTION};

/// Where each member's record is: `<PREFIX><member's node name>`.
pub const PREFIX: &str = "zone-etcd/links/";
/// The format of the record this release writes.
pub const FORMAT: u32 = 1;
/// The metric's name.
pub const METRIC: &str = "etcd_network_peer_round_trip_time_seconds";

/// Each peer's histogram in the metrics' text `text`, by the peer's member ID (hex, as
/// etcd's `To` label has it). Lines of other metrics, and lines that do not parse, are
/// skipped.
pub fn parse(text: &str) -> BTreeMap<String, Histogram> {
    histogram::parse(text, METRIC, Some("To"))
}

/// One peer's round trips over the last minute, as a member measured them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Peer {
    /// The peer's node name (its member ID in hex when the member list did not name it).
    pub peer: String,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// How many round trips were measured.
    pub samples: u64,
}

/// A member's links, as its keeper records them at [`PREFIX`]`<member>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Links {
    /// The record's own format ([`FORMAT`] when this release wrote it).
    pub format: u32,
    /// The member that measured.
    pub member: String,
    /// When (RFC 3339), the end of the minute measured.
    pub at: String,
    pub peers: Vec<Peer>,
    /// The member's disk as its etcd saw it (the last minute with a WAL sync), absent
    /// before the first (and in records of 0.2.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<DiskMinute>,
}

impl Links {
    /// The record as some release wrote it (fields this release does not know skipped).
    pub fn parse(text: &[u8]) -> Result<Links, String> {
        serde_json::from_slice(text).map_err(|e| format!("not a zone-etcd links record: {e}"))
    }

    /// The record's text, as it is put in etcd.
    pub fn render(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The peers as `status` and `check` print them: `node2 0.31/0.78 ms, …` (p50/p99).
    pub fn peers_line(&self) -> String {
        let peers: Vec<String> = self
            .peers
            .iter()
            .map(|p| format!("{} {}/{} ms", p.peer, p.p50_ms, p.p99_ms))
            .collect();
        peers.join(", ")
    }

    /// The slowest peer's p99 (ms), `None` without peers.
    pub fn farthest_p99_ms(&self) -> Option<f64> {
        self.peers.iter().map(|p| p.p99_ms).reduce(f64::max)
    }
}

/// The peers of one reading: each histogram of the minute (`now` since `before`), named by
/// `names` (member ID in hex → node name), rounded to a hundredth of a millisecond; a
/// peer without a round trip in the minute is left out.
pub fn peers(
    now: &BTreeMap<String, Histogram>,
    before: &BTreeMap<String, Histogram>,
    names: &BTreeMap<String, String>,
) -> Vec<Peer> {
    let ms = |s: f64| (s * 100_000.0).round() / 100.0;
    now.iter()
        .filter_map(|(id, h)| {
            let minute = match before.get(id) {
                Some(b) => h.since(b),
                None => h.clone(),
            };
            Some(Peer {
                peer: names.get(id).cloned().unwrap_or_else(|| id.clone()),
                p50_ms: ms(minute.quantile(0.5)?),
                p99_ms: ms(minute.quantile(0.99)?),
                samples: minute.count(),
            })
        })
        .collect()
}

/// Whether a new reading is worth a write (one raft entry a member): a peer came or went,
/// or a p99 moved by more than a fifth (and a millisecond) since the record in etcd.
pub fn changed(held: &Links, new: &[Peer]) -> bool {
    if held.peers.len() != new.len() {
        return true;
    }
    new.iter().any(|n| {
        held.peers
            .iter()
            .find(|h| h.peer == n.peer)
            .is_none_or(|h| {
                let moved = (n.p99_ms - h.p99_ms).abs();
                moved > 1.0 && moved > h.p99_ms / 5.0
            })
    })
}

/// What the zone's timeouts should be for round trips up to `farthest_p99_ms`, against
/// `heartbeat_ms` and `election_ms` as set (pure): etcd's guidance is a heartbeat near
/// the round trip between the farthest members and an election timeout about ten times
/// the heartbeat. The heartbeat suggested is the farthest p99 rounded up to 10 ms, never
/// below etcd's 100 ms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fit {
    pub heartbeat_ms: u64,
    pub election_ms: u64,
    /// The settings are below what the links need: a heartbeat under the farthest p99,
    /// or an election timeout under five of them.
    pub too_low: bool,
}

pub fn fit(farthest_p99_ms: f64, heartbeat_ms: u64, election_ms: u64) -> Fit {
    let rounded = ((farthest_p99_ms / 10.0).ceil() as u64).saturating_mul(10);
    // etcd refuses an election timeout of 50 s or more, and one under five heartbeats:
    // past a 4.99 s round trip the fit stops at what etcd takes.
    let election = rounded
        .max(DEFAULT_HEARTBEAT_MS)
        .saturating_mul(10)
        .min(MAX_ELECTION_MS - 100);
    let heartbeat = rounded
        .max(DEFAULT_HEARTBEAT_MS)
        .min(election / MIN_HEARTBEATS_PER_ELECTION);
    Fit {
        heartbeat_ms: heartbeat,
        election_ms: election,
        too_low: (heartbeat_ms as f64) < farthest_p99_ms
            || (election_ms as f64) < 5.0 * farthest_p99_ms,
    }
}

/// The zone's `records` with `own` (this member's record as its keeper kept it on disk,
/// before its put) in place of this member's when it is newer, or when the zone has none:
/// a zone whose leaders keep changing may never have taken it, and it is then the figure
/// that says why (pure). A time that does not parse counts as older.
pub fn with_own(mut records: Vec<Links>, own: Option<Links>) -> Vec<Links> {
    let Some(own) = own else {
        return records;
    };
    let at = |l: &Links| {
        time::OffsetDateTime::parse(&l.at, &time::format_description::well_known::Rfc3339).ok()
    };
    match records.iter_mut().find(|r| r.member == own.member) {
        Some(held) if at(&own) > at(held) => *held = own,
        Some(_) => {}
        None => records.push(own),
    }
    records
}

/// When the zone's timeouts (`heartbeat_ms`, `election_ms`) are below what the links in
/// `records` need: the line that says so, naming the farthest round trip and the
/// `[settings]` lines that fit (pure); `None` when they suffice or nothing was measured.
pub fn below(records: &[Links], heartbeat_ms: u64, election_ms: u64) -> Option<String> {
    let (member, farthest) = records
        .iter()
        .filter_map(|l| Some((l.member.as_str(), l.farthest_p99_ms()?)))
        .reduce(|a, b| if b.1 > a.1 { b } else { a })?;
    let fit = fit(farthest, heartbeat_ms, election_ms);
    fit.too_low.then(|| {
        format!(
            "the zone's timeouts (heartbeat {heartbeat_ms} ms, election {election_ms} ms) are below what its links need ({member}'s farthest round trip: p99 {farthest} ms): set in the zone file's [settings] heartbeat_interval_ms = {} and election_timeout_ms = {}, copy them into every node.toml's [settings] (or sign and publish the zone document), then restart the members one at a time",
            fit.heartbeat_ms, fit.election_ms
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(member: &str, at: &str, p99: f64) -> Links {
        Links {
            format: FORMAT,
            member: member.into(),
            at: at.into(),
            peers: vec![Peer {
                peer: "n9".into(),
                p50_ms: p99 / 2.0,
                p99_ms: p99,
                samples: 10,
            }],
            disk: None,
        }
    }

    #[test]
    fn the_own_kept_record_stands_in_when_the_zone_has_none_or_an_older_one() {
        let zone = vec![
            record("n1", "2026-11-27T10:00:00Z", 1.0),
            record("n2", "2026-11-27T10:00:00Z", 2.0),
        ];
        // None kept: the zone's records as they are.
        assert_eq!(with_own(zone.clone(), None), zone);
        // Newer than the zone's: it replaces this member's, and only it.
        let newer = record("n1", "2026-11-27T10:01:00.5Z", 900.0);
        let got = with_own(zone.clone(), Some(newer.clone()));
        assert_eq!(got, vec![newer.clone(), zone[1].clone()]);
        // Older, or of a time that does not parse: the zone's stands.
        for stale in ["2026-11-27T09:59:00Z", "yesterday"] {
            let got = with_own(zone.clone(), Some(record("n1", stale, 900.0)));
            assert_eq!(got, zone, "{stale}");
        }
        // The zone never took one (its leaders changing): the kept one is the figure.
        let got = with_own(vec![zone[1].clone()], Some(newer.clone()));
        assert_eq!(got, vec![zone[1].clone(), newer]);
    }

    const METRICS: &str = r#"# HELP etcd_network_peer_round_trip_time_seconds Round-Trip-Time histogram between peers
# TYPE etcd_network_peer_round_trip_time_seconds histogram
etcd_network_peer_round_trip_time_seconds_bucket{To="a1",le="0.0001"} 0
etcd_network_peer_round_trip_time_seconds_bucket{To="a1",le="0.0002"} 2
etcd_network_peer_round_trip_time_seconds_bucket{To="a1",le="0.0004"} 10
etcd_network_peer_round_trip_time_seconds_bucket{To="a1",le="0.0008"} 12
etcd_network_peer_round_trip_time_seconds_bucket{To="a1",le="+Inf"} 12
etcd_network_peer_round_trip_time_seconds_sum{To="a1"} 0.003
etcd_network_peer_round_trip_time_seconds_count{To="a1"} 12
etcd_network_peer_round_trip_time_seconds_bucket{To="b2",le="0.0001"} 0
etcd_network_peer_round_trip_time_seconds_bucket{To="b2",le="0.0002"} 0
etcd_network_peer_round_trip_time_seconds_bucket{To="b2",le="0.0004"} 0
etcd_network_peer_round_trip_time_seconds_bucket{To="b2",le="0.0008"} 0
etcd_network_peer_round_trip_time_seconds_bucket{To="b2",le="+Inf"} 4
etcd_disk_wal_fsync_duration_seconds_bucket{le="0.001"} 7
"#;

    #[test]
    fn each_peers_histogram_is_read_from_the_metrics() {
        let read = parse(METRICS);
        assert_eq!(read.keys().collect::<Vec<_>>(), ["a1", "b2"]);
        assert_eq!(read["a1"].count(), 12);
        assert_eq!(read["a1"].buckets.last(), Some(&(f64::INFINITY, 12)));
        assert!(parse("").is_empty());
        assert!(parse("etcd_network_peer_round_trip_time_seconds_bucket{To=\"x\"} 1").is_empty());
    }

    #[test]
    fn quantiles_interpolate_within_their_bucket_as_prometheus_does() {
        let a1 = &parse(METRICS)["a1"];
        // rank 6 of 12: in (0.0002, 0.0004], 4 of its 8 observations in.
        let p50 = a1.quantile(0.5).unwrap();
        assert!((p50 - 0.0003).abs() < 1e-12, "{p50}");
        // rank 11.88: in (0.0004, 0.0008], 1.88 of its 2.
        let p99 = a1.quantile(0.99).unwrap();
        assert!((p99 - 0.000776).abs() < 1e-12, "{p99}");
        // Everything past the last finite bound: that bound.
        assert_eq!(parse(METRICS)["b2"].quantile(0.5), Some(0.0008));
        assert_eq!(Histogram::default().quantile(0.5), None);
    }

    #[test]
    fn a_minute_is_the_difference_of_two_readings_and_a_restart_starts_anew() {
        let h = |counts: [u64; 3]| Histogram {
            buckets: vec![
                (0.001, counts[0]),
                (0.01, counts[1]),
                (f64::INFINITY, counts[2]),
            ],
        };
        assert_eq!(h([5, 9, 10]).since(&h([4, 6, 6])), h([1, 3, 4]));
        // etcd restarted: its counters went down.
        assert_eq!(h([1, 1, 1]).since(&h([4, 6, 6])), h([1, 1, 1]));
        let names = BTreeMap::from([("a1".to_string(), "node2".to_string())]);
        let now = BTreeMap::from([
            ("a1".to_string(), h([5, 9, 10])),
            ("c3".into(), h([0, 0, 0])),
        ]);
        let before = BTreeMap::from([("a1".to_string(), h([4, 6, 6]))]);
        let peers = peers(&now, &before, &names);
        assert_eq!(peers.len(), 1, "a peer without a round trip is left out");
        assert_eq!(peers[0].peer, "node2");
        assert_eq!(peers[0].samples, 4);
        // In milliseconds, to a hundredth: rank 2 of 4 in (0.001 s, 0.01 s], 1 of its 2.
        assert_eq!(peers[0].p50_ms, 5.5);
        assert_eq!(peers[0].p99_ms, 10.0);
    }

    #[test]
    fn the_record_this_release_writes_is_pinned() {
        let golden = r#"{"format":1,"member":"node1.example.zone","at":"2026-11-27T12:00:00Z","peers":[{"peer":"node2.example.zone","p50_ms":0.3,"p99_ms":0.78,"samples":12}]}"#;
        let links = Links::parse(golden.as_bytes()).unwrap();
        assert_eq!(links.render(), golden);
        assert_eq!(links.farthest_p99_ms(), Some(0.78));
        assert_eq!(links.peers_line(), "node2.example.zone 0.3/0.78 ms");
        let later = r#"{"format":2,"member":"n","at":"t","peers":[],"jitter":1}"#;
        assert_eq!(Links::parse(later.as_bytes()).unwrap().format, 2);
        assert!(Links::parse(b"{}").is_err());
    }

    #[test]
    fn a_reading_is_written_only_when_it_moved() {
        let peer = |p99: f64| Peer {
            peer: "n2".into(),
            p50_ms: 0.1,
            p99_ms: p99,
            samples: 12,
        };
        let held = Links {
            format: 1,
            member: "n1".into(),
            at: "t".into(),
            peers: vec![peer(10.0)],
            disk: None,
        };
        assert!(!changed(&held, &[peer(11.5)]));
        assert!(changed(&held, &[peer(12.5)]));
        assert!(!changed(
            &Links {
                peers: vec![peer(0.2)],
                ..held.clone()
            },
            &[peer(0.9)]
        ));
        assert!(changed(&held, &[]));
    }

    #[test]
    fn the_settings_that_fit_the_farthest_round_trip() {
        // A LAN: etcd's defaults fit.
        assert_eq!(
            fit(0.8, 100, 1000),
            Fit {
                heartbeat_ms: 100,
                election_ms: 1000,
                too_low: false
            }
        );
        // An ocean away: 182 ms p99 wants 190 / 1900, and the defaults are too low.
        assert_eq!(
            fit(182.0, 100, 1000),
            Fit {
                heartbeat_ms: 190,
                election_ms: 1900,
                too_low: true
            }
        );
        // A heartbeat that covers the round trip but an election under five of them.
        assert!(fit(150.0, 200, 700).too_low);
        assert!(!fit(150.0, 200, 2000).too_low);
        // A link past what etcd takes: the fit stops under its 50 s election timeout, at
        // five heartbeats or more.
        let far = fit(6_123.0, 100, 1000);
        assert_eq!((far.heartbeat_ms, far.election_ms), (6_130, 49_900));
        assert!(far.election_ms >= far.heartbeat_ms * MIN_HEARTBEATS_PER_ELECTION);
        let near = fit(4_200.0, 100, 1000);
        assert_eq!((near.heartbeat_ms, near.election_ms), (4_200, 42_000));
    }

    #[test]
    fn the_warning_names_the_farthest_link_and_the_lines_that_fit() {
        let record = |member: &str, p99: f64| Links {
            format: 1,
            member: member.into(),
            at: "t".into(),
            peers: vec![Peer {
                peer: "x".into(),
                p50_ms: p99 / 2.0,
                p99_ms: p99,
                samples: 10,
            }],
            disk: None,
        };
        let records = [record("n1", 20.0), record("n2", 182.0), record("n3", 3.0)];
        assert_eq!(
            below(&records, 100, 1000).as_deref(),
            Some("the zone's timeouts (heartbeat 100 ms, election 1000 ms) are below what its links need (n2's farthest round trip: p99 182 ms): set in the zone file's [settings] heartbeat_interval_ms = 190 and election_timeout_ms = 1900, copy them into every node.toml's [settings] (or sign and publish the zone document), then restart the members one at a time")
        );
        assert_eq!(below(&records, 190, 1900), None);
        assert_eq!(below(&records[..1], 100, 1000), None);
        assert_eq!(below(&[], 100, 1000), None);
    }
}
