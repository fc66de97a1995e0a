//! The duty of measuring this member's links and disk: once a minute it reads its own
//! etcd's metrics (loopback, plain HTTP, [`zone_model::cluster::metrics_url`]), takes the
//! minute's p50 and p99 round trip to each peer from etcd's own probes
//! ([`zone_model::links`]) and the minute's WAL syncs and commits
//! ([`zone_model::disk_minute`]), and records them in the zone at
//! [`zone_model::links::PREFIX`]`<member>` for `status` and `check`.
//!
//! The record is also kept in the state directory ([`FILE`]), where `check` reads it
//! without asking the zone: kept before it is put, so a zone that cannot take the write
//! (its leaders changing on links its timeouts do not fit) still has it on each member.
//!
//! Invariants: the record is put (one raft entry) only when a peer came or went or a p99
//! moved by more than a fifth ([`zone_model::links::changed`],
//! [`zone_model::disk_minute::moved`]: the disk only when it crossed etcd's guidance, or
//! moved by half while over it),
//! or the last put is
//! [`REFRESH`] old, so an idle zone pays one entry a member every ten minutes; the first
//! reading after a start only sets the minute's beginning; the duty's pause is a second,
//! so the keeper's process ends within a second of its etcd.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use time::format_description::well_known::Rfc3339;
use zone_model::disk_minute::{self, Reading};
use zone_model::histogram::Histogram;
use zone_model::links::{self, Links, PREFIX};

use super::duty::{Duty, Round};
use super::link::Link;
use zone_etcd_kit::cluster_api::{self, hex_id};

/// Between two rounds (the loop notices etcd's exit within one).
const PAUSE: Duration = Duration::from_secs(1);
/// The window measured.
pub const MINUTE: Duration = Duration::from_secs(60);
/// The longest a record stands without being put again.
pub const REFRESH: Duration = Duration::from_secs(600);
/// In the node's state directory: the record last put (the same text).
pub const FILE: &str = "links.json";

pub struct Measurer {
    link: Link,
    member: String,
    state_dir: std::path::PathBuf,
    metrics: String,
    /// The last reading (round trips, disk) and when it was taken.
    before: Option<(Instant, BTreeMap<String, Histogram>, Reading)>,
    /// The record last put, and when.
    held: Option<(Instant, Links)>,
}

impl Measurer {
    /// The measurer of `member`'s links, reading its metrics at `metrics` (a URL), keeping
    /// its record in `state_dir` too.
    pub fn new(
        link: Link,
        member: String,
        state_dir: std::path::PathBuf,
        metrics: String,
    ) -> Measurer {
        Measurer {
            link,
            member,
            state_dir,
            metrics,
            before: None,
            held: None,
        }
    }
}

impl Duty for Measurer {
    fn name(&self) -> String {
        format!("links: {}", self.metrics)
    }

    fn pause(&self) -> Duration {
        PAUSE
    }

    async fn round(&mut self) -> Result<Round, String> {
        if self
            .before
            .as_ref()
            .is_some_and(|(at, _, _)| at.elapsed() < MINUTE)
        {
            return Ok(Round::Quiet);
        }
        let url = format!("{}/metrics", self.metrics);
        let text = tokio::task::spawn_blocking(move || read_metrics(&url))
            .await
            .map_err(|e| e.to_string())??;
        let now = links::parse(&text);
        let disk_now = Reading::read(&text);
        let Some((_, before, disk_before)) =
            self.before
                .replace((Instant::now(), now.clone(), disk_now.clone()))
        else {
            return Ok(Round::Quiet);
        };
        let client = self.link.client().await?;
        let names = match member_names(&client).await {
            Ok(names) => names,
            Err(e) => {
                self.link.reset().await;
                return Err(e);
            }
        };
        let peers = links::peers(&now, &before, &names);
        let minute = disk_minute::minute(&disk_now, &disk_before);
        let held_disk = self.held.as_ref().and_then(|(_, h)| h.disk.as_ref());
        let due = match &self.held {
            None => true,
            Some((at, held)) => {
                at.elapsed() >= REFRESH
                    || links::changed(held, &peers)
                    || disk_minute::moved(held_disk, minute.as_ref())
            }
        };
        // A minute without a WAL sync keeps the last minute that had one.
        let disk = minute.or_else(|| held_disk.cloned());
        if !due {
            return Ok(Round::Quiet);
        }
        let record = Links {
            format: links::FORMAT,
            member: self.member.clone(),
            at: time::OffsetDateTime::now_utc()
                .format(&Rfc3339)
                .map_err(|e| e.to_string())?,
            peers,
            disk,
        };
        // Kept first: `check` on this member reads it without the zone, so a zone whose
        // links keep it from writing (its leaders changing) still says what they need.
        keep(&self.state_dir, &record);
        let key = format!("{PREFIX}{}", self.member);
        let (key, text) = (key.as_str(), record.render());
        let text = text.as_str();
        let put = cluster_api::ask(&client, |mut c| async move { c.put(key, text, None).await })
            .await
            .map_err(String::from);
        if let Err(e) = put {
            self.link.reset().await;
            return Err(e);
        }
        self.held = Some((Instant::now(), record));
        Ok(Round::Quiet)
    }
}

/// Keeps `record` in `state_dir` (under the state lock); a failure only leaves `check`
/// the record before, so it is not an error.
fn keep(state_dir: &std::path::Path, record: &Links) {
    if let Ok(_lock) = zone_io::state::lock(state_dir) {
        let _ = zone_io::write_atomic(
            &state_dir.join(FILE),
            record.render().as_bytes(),
            zone_io::PUBLIC_MODE,
        );
    }
}

/// The record this member's measurer last kept in `state_dir`, when this release reads it.
pub fn kept(state_dir: &std::path::Path) -> Option<Links> {
    let text = std::fs::read(state_dir.join(FILE)).ok()?;
    Links::parse(&text).ok()
}

/// The metrics' text at `url` (loopback: a few seconds at most).
fn read_metrics(url: &str) -> Result<String, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    agent
        .get(url)
        .call()
        .map_err(|e| format!("{url}: {e}"))?
        .body_mut()
        .read_to_string()
        .map_err(|e| format!("{url}: {e}"))
}

/// Each member's node name by its ID in hex (as etcd's metrics label its peers).
async fn member_names(client: &etcd_client::Client) -> Result<BTreeMap<String, String>, String> {
    let mut cluster = client.cluster_client();
    let list = cluster_api::within(async {
        cluster
            .member_list()
            .await
            .map_err(|e| cluster_api::describe(&e))
    })
    .await?;
    Ok(list
        .members()
        .iter()
        .filter(|m| !m.name().is_empty())
        .map(|m| (hex_id(m.id()), m.name().to_string()))
        .collect())
}
