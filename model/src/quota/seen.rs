//! What `status` and `check` show of the decider's records ([`super::record`]): one
//! [`Seen`] a tenant, from the use record and the stop records read in one range, the
//! tenant most at risk first, and the lines people read.
//!
//! Invariants: pure; a tenant with a stop record is shown stopped, with why, whether or
//! not the use record (written at most once a second, so possibly older) says so yet; a
//! tenant stopped but absent from the use record is still shown, with the figures its stop
//! recorded; percentages are rounded down, so nothing under its budget ever reads 100%.

use serde::Serialize;

pub use super::kind_and_name;
use super::record::{Stopped, TenantUse, Uses, STOPPED_PREFIX, USE_KEY};
use crate::size::human;

/// The one range that holds the use record and every stop record.
pub const PREFIX: &str = "zone-etcd/quota/";

/// The records among the keys and values of a read of [`PREFIX`]: the use record, and
/// each stop record (those that do not parse, and other keys, left out).
pub fn records<'a>(
    kvs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
) -> (Option<Uses>, Vec<Stopped>) {
    let (mut uses, mut stops) = (None, Vec::new());
    for (key, value) in kvs {
        if key == USE_KEY.as_bytes() {
            uses = Uses::parse(value).ok();
        } else if key.starts_with(STOPPED_PREFIX.as_bytes()) {
            stops.extend(Stopped::parse(value).ok());
        }
    }
    (uses, stops)
}

/// One tenant as `status --json` and the metrics give it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Seen {
    /// Its service or node name, without the role's prefix.
    pub name: String,
    /// `service` or `node` (`tenant` for a role of neither shape, from a later release).
    pub kind: &'static str,
    pub used_bytes: u64,
    pub quota_bytes: u64,
    pub keys: u64,
    pub max_keys: Option<u64>,
    pub written_bytes: u64,
    pub write_budget: u64,
    pub stopped: bool,
    /// Why it is stopped ([`Stopped::line`]), when a stop record says.
    pub why: Option<String>,
    /// What brings it back, when it is stopped.
    #[serde(skip)]
    pub fix: Option<String>,
}

/// The share of `budget` that `used` is, in whole percent, rounded down (an unknown
/// budget, 0, counts as full once anything is used).
pub fn percent(used: u64, budget: u64) -> u64 {
    if budget == 0 {
        return if used == 0 { 0 } else { 100 };
    }
    u64::try_from(u128::from(used) * 100 / u128::from(budget)).unwrap_or(u64::MAX)
}

impl Seen {
    /// Its largest share of any bound (its quota; its keys and history together against
    /// its quota and write budget together; its max_keys), in whole percent: what stops it
    /// first.
    pub fn share(&self) -> u64 {
        let keys = self.max_keys.map_or(0, |m| percent(self.keys, m));
        let file = percent(
            self.used_bytes.saturating_add(self.written_bytes),
            self.quota_bytes.saturating_add(self.write_budget),
        );
        percent(self.used_bytes, self.quota_bytes)
            .max(file)
            .max(keys)
    }

    /// `service photos`.
    pub fn who(&self) -> String {
        format!("{} {}", self.kind, self.name)
    }

    /// Its figures, in the three columns of [`lines`]: its use against its quota, its
    /// keys, the history it made since the last compaction (what its puts replaced and
    /// its deletes removed).
    fn columns(&self) -> [String; 3] {
        [
            format!(
                "{} of {} ({}%)",
                human(self.used_bytes),
                human(self.quota_bytes),
                percent(self.used_bytes, self.quota_bytes)
            ),
            match self.max_keys {
                Some(max) => format!("{} of {max} keys", self.keys),
                None => format!("{} keys", self.keys),
            },
            format!(
                "history {} since the last compaction (with its keys {} of {})",
                human(self.written_bytes),
                human(self.used_bytes.saturating_add(self.written_bytes)),
                human(self.quota_bytes.saturating_add(self.write_budget))
            ),
        ]
    }
}

/// Every tenant of `uses` and `stops`, the stopped first, then the largest share, then by
/// kind and name.
pub fn seen(uses: Option<&Uses>, stops: &[Stopped]) -> Vec<Seen> {
    let mut all: Vec<Seen> = uses
        .map(|u| u.tenants.iter().map(|t| of_use(t, stops)).collect())
        .unwrap_or_default();
    for stop in stops {
        let listed = uses.is_some_and(|u| u.tenants.iter().any(|t| t.name == stop.tenant));
        if !listed {
            all.push(of_stop(stop));
        }
    }
    all.sort_by(|a, b| {
        b.stopped
            .cmp(&a.stopped)
            .then(b.share().cmp(&a.share()))
            .then(a.kind.cmp(b.kind))
            .then(a.name.cmp(&b.name))
    });
    all
}

fn of_use(t: &TenantUse, stops: &[Stopped]) -> Seen {
    let stop = stops.iter().find(|s| s.tenant == t.name);
    let (kind, name) = kind_and_name(&t.name);
    let stopped = t.stopped || stop.is_some();
    Seen {
        name: name.to_string(),
        kind,
        used_bytes: t.used_bytes,
        quota_bytes: t.quota_bytes,
        keys: t.keys,
        max_keys: t.max_keys,
        written_bytes: t.written_bytes,
        write_budget: t.write_budget,
        stopped,
        why: stop.map(Stopped::line),
        fix: stopped.then(|| fix(stop.map_or("quota", |s| s.crossed.as_str()), kind, name)),
    }
}

/// A stopped tenant the use record does not list yet: the figure its stop recorded for
/// the budget it crossed, nothing else known.
fn of_stop(stop: &Stopped) -> Seen {
    let (kind, name) = kind_and_name(&stop.tenant);
    let mut seen = Seen {
        name: name.to_string(),
        kind,
        used_bytes: 0,
        quota_bytes: 0,
        keys: 0,
        max_keys: None,
        written_bytes: 0,
        write_budget: 0,
        stopped: true,
        why: Some(stop.line()),
        fix: Some(fix(&stop.crossed, kind, name)),
    };
    match stop.crossed.as_str() {
        "max_keys" => (seen.keys, seen.max_keys) = (stop.used, Some(stop.budget)),
        "writes" => (seen.written_bytes, seen.write_budget) = (stop.used, stop.budget),
        _ => (seen.used_bytes, seen.quota_bytes) = (stop.used, stop.budget),
    }
    seen
}

/// What brings back the tenant `kind` `name` (`service photos`) stopped at `crossed`
/// (`quota`, `max_keys`, `writes`).
pub fn fix(crossed: &str, kind: &str, name: &str) -> String {
    let free = match kind {
        "service" => format!(
            "on a node that runs it, `zone-etcd quota free --config /etc/zone-etcd/node.toml --service {name} --prefix PREFIX`"
        ),
        _ => format!(
            "on {name}, `zone-etcd quota free --config /etc/zone-etcd/node.toml --prefix PREFIX`"
        ),
    };
    let owner = format!(
        "delete some of its keys ({free}; or as the owner, with the admin identity from `zone-etcd ca admin`)"
    );
    let owner = owner.as_str();
    const RAISE: &str = "in the zone file and `zone-etcd zone publish`";
    match crossed {
        "max_keys" => format!(
            "its writes are refused until it holds under 90% of its max_keys: {owner}, or raise its max_keys {RAISE}"
        ),
        "writes" => format!(
            "its writes are refused until the next compaction starts its count again (the zone's auto_compaction_retention) and it is under 90% of every budget; to let it write more between compactions, raise its quota {RAISE}"
        ),
        _ => format!(
            "its writes are refused until it is under 90% of its quota: {owner}, or raise its quota {RAISE}"
        ),
    }
}

/// `status`'s lines of `tenants`, one a tenant in aligned columns, a stopped one followed
/// by why and its fix.
pub fn lines(tenants: &[Seen]) -> Vec<String> {
    let rows: Vec<[String; 4]> = tenants
        .iter()
        .map(|t| {
            let [used, keys, written] = t.columns();
            [t.who(), used, keys, written]
        })
        .collect();
    let width = |c: usize| rows.iter().map(|r| r[c].len()).max().unwrap_or(0);
    let (w0, w1, w2) = (width(0), width(1), width(2));
    let mut out = Vec::new();
    for (t, [who, used, keys, written]) in tenants.iter().zip(&rows) {
        let mark = if t.stopped { "   STOPPED" } else { "" };
        out.push(format!(
            "{who:<w0$}   {used:<w1$}   {keys:<w2$}   {written}{mark}"
        ));
        if t.stopped {
            let why = t
                .why
                .clone()
                .unwrap_or_else(|| format!("{} is stopped", t.who()));
            out.push(format!("  {why}: {}", t.fix.as_deref().unwrap_or_default()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn tenant(name: &str, used: u64, quota: u64, written: u64) -> TenantUse {
        TenantUse {
            name: name.into(),
            used_bytes: used,
            quota_bytes: quota,
            keys: 12,
            max_keys: None,
            written_bytes: written,
            write_budget: quota,
            stopped: false,
        }
    }

    fn stop(tenant: &str, crossed: &str, used: u64, budget: u64) -> Stopped {
        Stopped {
            format: 1,
            tenant: tenant.into(),
            crossed: crossed.into(),
            used,
            budget,
            at: "2026-11-28T12:00:00Z".into(),
            by: "node1.example.zone".into(),
        }
    }

    fn uses(tenants: Vec<TenantUse>) -> Uses {
        Uses {
            format: 1,
            at: "2026-11-28T12:00:01Z".into(),
            by: "node1.example.zone".into(),
            tenants,
            leases: None,
        }
    }

    #[test]
    fn one_range_gives_the_use_and_the_stops() {
        let record = uses(vec![tenant("svc:photos", 1, 2, 0)]).render();
        let stopped = stop("svc:photos", "quota", 3, 2).render();
        let kvs: Vec<(&[u8], &[u8])> = vec![
            (b"zone-etcd/quota/stopped/svc:photos", stopped.as_bytes()),
            (b"zone-etcd/quota/stopped/svc:bad", b"{}"),
            (b"zone-etcd/quota/lift/svc:photos", b"later"),
            (b"zone-etcd/quota/use", record.as_bytes()),
        ];
        let (read, stops) = records(kvs);
        assert_eq!(read.map(|u| u.tenants.len()), Some(1));
        assert_eq!(stops.len(), 1);
        assert_eq!(records(Vec::new()), (None, Vec::new()));
    }

    #[test]
    fn roles_split_into_kind_and_name() {
        assert_eq!(kind_and_name("svc:photos"), ("service", "photos"));
        assert_eq!(
            kind_and_name("node:nas.example.zone"),
            ("node", "nas.example.zone")
        );
        assert_eq!(kind_and_name("later:x"), ("tenant", "later:x"));
    }

    #[test]
    fn percentages_round_down_and_never_divide_by_zero() {
        assert_eq!(percent(52 * MIB + MIB / 10, 64 * MIB), 81);
        assert_eq!(percent(64 * MIB - 1, 64 * MIB), 99);
        assert_eq!(percent(64 * MIB, 64 * MIB), 100);
        assert_eq!(percent(u64::MAX, 1), u64::MAX);
        assert_eq!((percent(0, 0), percent(1, 0)), (0, 100));
    }

    /// The largest share of any bound first: a rewriter near its quota and write budget
    /// (61 of 64 MiB) before a tenant whose live data is larger; a stopped one before all.
    #[test]
    fn the_tenant_most_at_risk_comes_first() {
        let record = uses(vec![
            tenant("node:nas.example.zone", 300, 8 * MIB, 300),
            tenant("svc:photos", 52 * MIB, 64 * MIB, 3 * MIB),
            tenant("svc:locks", MIB, 32 * MIB, 60 * MIB),
            tenant("svc:music", 0, 32 * MIB, 0),
        ]);
        let order: Vec<String> = seen(Some(&record), &[]).iter().map(Seen::who).collect();
        assert_eq!(
            order,
            [
                "service locks",
                "service photos",
                "node nas.example.zone",
                "service music"
            ]
        );
        let stopped = seen(Some(&record), &[stop("svc:music", "max_keys", 10, 10)]);
        assert_eq!(stopped[0].who(), "service music");
        assert!(stopped[0].stopped && stopped[1..].iter().all(|t| !t.stopped));
        assert_eq!(
            stopped[0].why.as_deref(),
            Some("service music holds too many keys (10 of 10)")
        );
    }

    #[test]
    fn a_stop_the_use_record_does_not_list_yet_is_shown_with_its_figure() {
        let shown = seen(
            Some(&uses(vec![tenant("svc:photos", MIB, 64 * MIB, 0)])),
            &[stop("node:nas.example.zone", "writes", 9 * MIB, 8 * MIB)],
        );
        assert_eq!(shown.len(), 2);
        let nas = &shown[0];
        assert_eq!(
            (nas.kind, nas.name.as_str(), nas.stopped),
            ("node", "nas.example.zone", true)
        );
        assert_eq!((nas.written_bytes, nas.write_budget), (9 * MIB, 8 * MIB));
        assert_eq!((nas.used_bytes, nas.quota_bytes), (0, 0));
        // No record at all: the stops alone; nothing: nothing.
        assert_eq!(seen(None, &[stop("svc:a", "quota", 2, 1)]).len(), 1);
        assert!(seen(None, &[]).is_empty());
    }

    #[test]
    fn the_lines_give_each_tenant_its_figures_and_a_stopped_one_its_fix() {
        let mut photos = tenant("svc:photos", 52 * MIB + 110_000, 64 * MIB, 3 * MIB);
        photos.stopped = true;
        let mut nas = tenant("node:nas.example.zone", 300, 8 * MIB, 300);
        (nas.keys, nas.max_keys) = (1, Some(1000));
        let shown = seen(
            Some(&uses(vec![nas, photos])),
            &[stop("svc:photos", "quota", 70 * MIB, 64 * MIB)],
        );
        assert_eq!(
            lines(&shown),
            [
                "service photos          52.1 MiB of 64 MiB (81%)   12 keys          history 3 MiB since the last compaction (with its keys 55.1 MiB of 128 MiB)   STOPPED",
                "  service photos is over its quota (70 MiB of 64 MiB): its writes are refused until it is under 90% of its quota: delete some of its keys (on a node that runs it, `zone-etcd quota free --config /etc/zone-etcd/node.toml --service photos --prefix PREFIX`; or as the owner, with the admin identity from `zone-etcd ca admin`), or raise its quota in the zone file and `zone-etcd zone publish`",
                "node nas.example.zone   300 B of 8 MiB (0%)        1 of 1000 keys   history 300 B since the last compaction (with its keys 600 B of 16 MiB)",
            ]
        );
        // Stopped by the use record alone (its stop record not read yet): named, no why.
        let mut only_flag = tenant("svc:a", 1, 1, 0);
        only_flag.stopped = true;
        let shown = seen(Some(&uses(vec![only_flag])), &[]);
        assert_eq!(shown[0].why, None);
        assert!(lines(&shown)[1].starts_with("  service a is stopped: its writes are refused"));
        assert!(fix("writes", "service", "photos").contains("next compaction"));
    }
}
