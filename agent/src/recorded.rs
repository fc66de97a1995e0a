//! The duty of recording, in the zone, which zone-etcd release this member runs
//! ([`zone_model::release::Record`] at [`zone_model::release::PREFIX`]`<member>`), for
//! `status` and for the releases that come after this one.
//!
//! It also keeps the zone's format level ([`zone_model::release::LEVEL_KEY`]) in the state
//! directory, for the start after a move back to an older release: looked at every
//! [`LEVEL_LOOK`] (one serializable read of one key), so a level `zone raise-level` put
//! is remembered within seconds. A level above what this build reads (put by hand: the
//! raise refuses it while a member reads less) is said once in the log: this member goes
//! on serving, and its next start is refused.
//!
//! Invariants: the record is put only when the one in etcd names another build (or there
//! is none): a restart on the same build changes nothing, and its `since` stays when this
//! member first ran the build; a record that does not parse (tampered, or no record) is
//! put right; once recorded, the duty looks again only every `AGAIN` (a member's record
//! deleted by hand comes back), before that every `FIRST` (etcd starting); its pause
//! is `FIRST` throughout, so the keeper process ends within a second of its etcd.

use std::time::{Duration, Instant};

use etcd_client::Client;
use time::format_description::well_known::Rfc3339;
use zone_model::release::{Level, Record, LEVEL_KEY, PREFIX};

use super::duty::{Duty, Round};
use super::link::Link;
use zone_etcd_kit::cluster_api;
use zone_node::preflight::level::Trust;

/// Between two rounds (a try while the record is not put yet: etcd is starting).
const FIRST: Duration = Duration::from_secs(1);
/// Between two looks once it is.
const AGAIN: Duration = Duration::from_secs(300);
/// Between two looks at the zone's format level.
pub const LEVEL_LOOK: Duration = Duration::from_secs(10);

pub struct Recorder {
    link: Link,
    member: String,
    /// Where the zone's format level is remembered ([`zone_node::preflight::level::FILE`]),
    /// and what binds it.
    trust: Trust,
    /// When the record was last found or put, and the line that said so (`None`: not yet).
    recorded: Option<(Instant, String)>,
    /// When the level was last looked at.
    level_looked: Instant,
}

impl Recorder {
    /// The recorder of `member`'s release, over the duties' shared `link`.
    pub fn new(link: Link, member: String, trust: Trust) -> Recorder {
        Recorder {
            link,
            member,
            trust,
            recorded: None,
            level_looked: Instant::now(),
        }
    }
}

impl Duty for Recorder {
    fn name(&self) -> String {
        format!("zone-etcd release record: {}", self.link.endpoint())
    }

    /// Short whatever the state: the loop sees etcd exit within one pause, and the
    /// process must not outlive its etcd (its identity endpoint would serve on).
    fn pause(&self) -> Duration {
        FIRST
    }

    async fn round(&mut self) -> Result<Round, String> {
        if let Some((at, line)) = &self.recorded {
            if at.elapsed() < AGAIN {
                let line = line.clone();
                if self.level_looked.elapsed() >= LEVEL_LOOK {
                    self.level_looked = Instant::now();
                    let client = self.link.client().await?;
                    if let Err(e) = remember_level(&client, &self.trust).await {
                        self.link.reset().await;
                        return Err(e);
                    }
                }
                // The same line: the loop logs a line once, until it changes.
                return Ok(Round::Said(line));
            }
        }
        let client = self.link.client().await?;
        let done = record(&client, &self.member, &self.trust).await;
        if done.is_err() {
            self.link.reset().await;
        }
        let record = done?;
        let line = format!(
            "member {} runs zone-etcd {} (formats: reads level {}, writes level {})",
            self.member,
            record.short(),
            record.reads,
            record.writes
        );
        self.recorded = Some((Instant::now(), line.clone()));
        Ok(Round::Said(line))
    }
}

/// Puts this build's record for `member` unless etcd holds one of the same build, and
/// remembers the zone's format level in `state_dir` (a start after a move to an older
/// release is refused by it, [`zone_node::preflight::level`]); returns the record that stands.
async fn record(client: &Client, member: &str, trust: &Trust) -> Result<Record, String> {
    remember_level(client, trust).await?;
    let key = format!("{PREFIX}{member}");
    let got = cluster_api::get_prefix(client, &key).await?;
    let held = got
        .kvs()
        .iter()
        .find(|kv| kv.key() == key.as_bytes())
        .and_then(|kv| Record::parse(kv.value()).ok());
    let now = time::OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .map_err(|e| e.to_string())?;
    let mine = zone_node::this_build::record(&now);
    match held {
        Some(held) if held.same_build(&mine) => Ok(held),
        _ => {
            let (key, text) = (key.as_str(), mine.render());
            let text = text.as_str();
            cluster_api::ask(client, |mut c| async move { c.put(key, text, None).await }).await?;
            Ok(mine)
        }
    }
}

/// Reads the zone's format level and keeps it in the state directory when higher than
/// the one kept ([`zone_node::preflight::level::remember`]); warns when this build does not
/// read it. A level that does not bind (above 1 and not signed by the zone root for this
/// zone: [`zone_model::release::Level::binding`]) is ignored, said once in the log.
async fn remember_level(client: &Client, trust: &Trust) -> Result<(), String> {
    let mut kv = client.kv_client();
    let got = cluster_api::within(async {
        kv.get(
            LEVEL_KEY,
            Some(etcd_client::GetOptions::new().with_serializable()),
        )
        .await
        .map_err(|e| cluster_api::describe(&e))
    })
    .await?;
    let Some(kv) = got.kvs().first() else {
        return Ok(());
    };
    let level = match trust.binding(kv.value()) {
        Ok(level) => level,
        Err(e) => {
            let said = format!("{LEVEL_KEY}: {e}");
            let mut last = trust
                .said
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if last.as_deref() != Some(said.as_str()) {
                tracing::warn!("{said}");
                *last = Some(said);
            }
            return Ok(());
        }
    };
    let state_dir = &trust.state_dir;
    let reads = zone_node::this_build::reads();
    if let Some((problem, fix)) =
        zone_model::release::refusal(&level, reads, zone_node::this_build::RELEASE)
    {
        // Said once: the loop logs a line once until it changes, but this round says
        // the record's line; the file keeps it from being said again.
        let seen = std::fs::read(state_dir.join(zone_node::preflight::level::FILE))
            .ok()
            .and_then(|t| Level::parse(&t).ok());
        if seen.is_none_or(|s| s.level < level.level) {
            tracing::warn!(
                "{problem}: this member serves on, but its next start is refused ({fix})"
            );
        }
    }
    zone_node::preflight::level::remember(state_dir, &level).map_err(|e| e.to_string())
}

/// Every member's record, by node name (records that do not parse are left out: `status`
/// shows those members as not recorded); `None` when no member answered.
pub async fn read_all(client: &etcd_client::Client) -> Option<Vec<(String, Record)>> {
    let got = cluster_api::get_prefix(client, PREFIX).await.ok()?;
    Some(
        got.kvs()
            .iter()
            .filter_map(|kv| {
                let member = kv.key_str().ok()?.strip_prefix(PREFIX)?.to_string();
                Some((member, Record::parse(kv.value()).ok()?))
            })
            .collect(),
    )
}
