//! The one zone every release's golden files describe: its names, addresses and times,
//! and the records written for it. The generator writes them; the checks expect them in
//! every release's directory (a later release keeps these values, so the checks hold for
//! all directories alike).

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use zone_backup::report::Drill;
use zone_backup::segment::{Event, EventKind, Revision};
use zone_model::release::Record;
use zone_node::identities::ledger::Entry;
use zone_node::policy::record::{Applied, Removed};
use zone_node::restored::Restored;
use zone_node::rollout::{Target, Turn, Waiting};
use zone_node::snapshot::Manifest;

/// The release whose golden files this build writes.
pub const RELEASE: &str = env!("CARGO_PKG_VERSION");

pub const ZONE: &str = "example.zone";
pub const NODE1: &str = "node1.example.zone";
pub const NODE2: &str = "node2.example.zone";
pub const NODE3: &str = "node3.example.zone";
/// A node that is not an etcd member and follows the nameservice.
pub const LAPTOP: &str = "laptop.example.zone";
/// A node activated and then revoked.
pub const REVOKED: &str = "tv.example.zone";
pub const SERVICE: &str = "photos";
/// Documentation addresses (RFC 5737): written into files, never dialled.
pub const NODE_ADDRESSES: [(&str, &str); 3] = [
    (NODE1, "192.0.2.11"),
    (NODE2, "192.0.2.12"),
    (NODE3, "192.0.2.13"),
];
pub const NAMESERVICE: &str = "http://192.0.2.53:3456";
pub const NODE1_PEER_URL: &str = "https://192.0.2.11:2380";
pub const NODE1_CLIENT_URL: &str = "https://192.0.2.11:2379";

/// The files and directories of a release's directory.
pub const OWNER_KEY: &str = "owner-age.key";
pub const ZONE_FILE: &str = "zone.toml";
pub const CA_DIR: &str = "ca";
/// The CA directory `ca rotate` made from [`CA_DIR`], the rotation not finished.
pub const ROTATING_DIR: &str = "ca-rotating";
pub const ADMIN_DIR: &str = "admin";
pub const REQUEST_DIR: &str = "request";
pub const ANSWER_DIR: &str = "answer";
pub const ZONE_DOC: &str = "zone.json";
pub const ETCD_DIR: &str = "etcd";
pub const TARGET_DIR: &str = "backup-target";
pub const TARGET_URL: &str = "file:///srv/zone-backups";

/// Every time the fixture names (certificates and manifest signatures carry their own).
pub const AT: &str = "2026-11-27T00:00:00Z";
pub const CRL_NUMBER: u64 = 1;
/// The serial of [`REVOKED`]'s branch on the CRL (from 0.3.0's files: the revocations
/// document at format level 2 says what each serial is).
pub const REVOKED_BRANCH: [u8; 4] = [0x5e, 0xed, 0x0b, 0x01];
pub const MEMBER_ID: u64 = 0x8e9e_05c5_2164_694d;
pub const CLUSTER_ID: u64 = 0xcdf8_1819_4e3a_8c32;
pub const ETCD_VERSION: &str = "3.6.15";
pub const ETCD_BIN: &str = "/usr/lib/zone-etcd/etcd";
pub const SNAPSHOT_REVISION: i64 = 41;
/// The backup chain: a full snapshot, a delta, a gap, a full snapshot, a heartbeat.
pub const FIRST_FULL_REVISION: i64 = 41;
pub const GAP_LAST: i64 = 50;
pub const SESSION: &str = "9f3c2a71";
pub const ELECTION_LEASE: &str = "694d7a1c0b2e9f01";
pub const LEASE: i64 = 0x694d_7a1c_0b2e_9f02;
pub const FULL_STAND_IN: &str = "zone-etcd golden files: a stand-in for etcd's snapshot database";
/// The commit a release record names (fixed: the record's format is what is pinned).
pub const COMMIT: &str = "75da28a1b2";

pub fn at() -> OffsetDateTime {
    OffsetDateTime::parse(AT, &Rfc3339).expect("a fixed time")
}

pub fn at_ms() -> i64 {
    at().unix_timestamp() * 1000
}

fn after(seconds: i64) -> String {
    (at() + time::Duration::seconds(seconds))
        .format(&Rfc3339)
        .expect("a fixed time")
}

/// The owner's zone file (TOML), backups encrypted to `recipient`.
pub fn zone_toml(recipient: &str) -> String {
    let mut text = format!(
        "name = \"{ZONE}\"\n\n[[addr_info]]\nprotocol = \"https\"\naddress = \"192.0.2.53\"\nport = 3456\n"
    );
    for (node, address) in NODE_ADDRESSES {
        text += &format!(
            "\n[[etcd]]\nnode_name = \"{node}\"\nprotocol = \"https\"\naddress = \"{address}\"\npeer_port = 2380\nclient_port = 2379\n"
        );
    }
    text += "\n[settings]\nheartbeat_interval_ms = 300\nelection_timeout_ms = 3000\nquota_backend_bytes = 4294967296\nauto_compaction_mode = \"periodic\"\nauto_compaction_retention = \"1h\"\nsnapshot_count = 10000\n";
    text += &format!(
        "\n[backup]\nrecipients = [\"{recipient}\"]\nfull_every = \"1h\"\ndelta_every = \"5s\"\nwindow = \"7d\"\nkeep_hourly = \"48h\"\nkeep_daily = \"30d\"\nkeep_weekly = \"12w\"\n\n[[backup.target]]\nurl = \"{TARGET_URL}\"\n"
    );
    text += &format!(
        "\n[access]\nenforce = true\nnodes = [\"{LAPTOP}\", \"{REVOKED}\"]\nnode_prefix = \"nodes/\"\nnode_quota = \"4 MiB\"\nservice_quota = \"16 MiB\"\n\n[[access.service]]\nname = \"{SERVICE}\"\nnodes = [\"{LAPTOP}\"]\nread_write = [\"apps/photos/\"]\nread = [\"apps/shared/\"]\nquota = \"64 MiB\"\nmax_keys = 100000\n"
    );
    text
}

/// `restore`'s record in node1's state directory.
pub fn restored_record() -> Restored {
    Restored {
        cluster_id: zone_etcd_kit::cluster_api::hex_id(CLUSTER_ID),
        snapshot: format!(
            "/var/lib/zone-etcd/state/snapshots/{}",
            zone_node::snapshot::file_name(ZONE, at(), SNAPSHOT_REVISION)
        ),
        sha256: snapshot_manifest().sha256,
        revision: SNAPSHOT_REVISION,
        moved_aside: Some("/var/lib/zone-etcd/state/data.before-restore-1795737600".into()),
        restored_at: after(600),
    }
}

/// The manifest `snapshot save` writes beside a snapshot.
pub fn snapshot_manifest() -> Manifest {
    Manifest {
        format: zone_node::snapshot::MANIFEST_FORMAT,
        zone: ZONE.into(),
        cluster_id: zone_etcd_kit::cluster_api::hex_id(CLUSTER_ID),
        member: NODE1.into(),
        member_id: zone_etcd_kit::cluster_api::hex_id(MEMBER_ID),
        revision: SNAPSHOT_REVISION,
        taken_at: AT.into(),
        size: 24_608,
        sha256: "5d41f2b1a0c3e4d5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d".into(),
        etcd_version: ETCD_VERSION.into(),
    }
}

/// The identities members issued to the laptop (serial hex, entry): its own, the branch
/// of node1 that signs its identities, and its service's identity signed by that branch.
pub fn ledger_entries() -> Vec<(&'static str, Entry)> {
    let until = |days: i64| after(days * 86_400);
    vec![
        (
            "5eed0001",
            Entry {
                user: LAPTOP.into(),
                not_after: until(90),
                branch: None,
            },
        ),
        (
            "5eed0002",
            Entry {
                user: zone_pki::client::branch_name(LAPTOP, NODE1),
                not_after: until(180),
                branch: None,
            },
        ),
        (
            "5eed0003",
            Entry {
                user: format!("{SERVICE}@{LAPTOP}"),
                not_after: until(90),
                branch: Some("5eed0002".into()),
            },
        ),
    ]
}

/// node1's record of the policy its etcd holds (`signer`: the root's key id).
pub fn applied_record(signer: &str) -> Applied {
    Applied {
        policy: AT.into(),
        signer: signer.into(),
        enforced: true,
        client_port_enforced: true,
        at: after(60),
        removed: vec![Removed {
            what: "user eve".into(),
            at: after(60),
        }],
    }
}

/// The release record of node1, as the build of `release` writes it.
pub fn release_record(release: &str) -> Record {
    Record::new(release, COMMIT, AT)
}

pub fn rollout_target() -> Target {
    Target {
        to: ETCD_VERSION.into(),
        set_at: at().unix_timestamp() as u64,
        by: NODE1.into(),
    }
}

pub fn rollout_turn() -> Turn {
    Turn {
        member: NODE2.into(),
        to: ETCD_VERSION.into(),
        since: at().unix_timestamp() as u64 + 60,
    }
}

pub fn rollout_waiting() -> Waiting {
    Waiting {
        format: 1,
        member: NODE2.into(),
        to: ETCD_VERSION.into(),
        last_v2: 4211,
        snapshot: 4000,
        count: 100,
    }
}

/// The quota decider's figures (issue 69, since 0.3.0's work).
pub fn quota_uses() -> zone_model::quota::record::Uses {
    zone_model::quota::record::Uses {
        format: 1,
        at: AT.into(),
        by: NODE1.into(),
        tenants: vec![zone_model::quota::record::TenantUse {
            name: format!("svc:{SERVICE}"),
            used_bytes: 70 << 20,
            quota_bytes: 64 << 20,
            keys: 700,
            max_keys: Some(100_000),
            written_bytes: 3 << 20,
            write_budget: 64 << 20,
            stopped: true,
        }],
        leases: Some(12),
    }
}

/// The decider's stop of the service (since 0.3.0's work).
pub fn quota_stop() -> zone_model::quota::record::Stopped {
    zone_model::quota::record::Stopped {
        format: 1,
        tenant: format!("svc:{SERVICE}"),
        crossed: "quota".into(),
        used: 70 << 20,
        budget: 64 << 20,
        at: AT.into(),
        by: NODE1.into(),
    }
}

/// Member 1's links, as its keeper records them (with its disk since 0.3.0's work; the
/// checks take the record without it for the directories before).
pub fn links_record() -> zone_model::links::Links {
    zone_model::links::Links {
        format: 1,
        member: NODE1.into(),
        at: AT.into(),
        peers: vec![zone_model::links::Peer {
            peer: NODE2.into(),
            p50_ms: 0.31,
            p99_ms: 0.78,
            samples: 12,
        }],
        disk: Some(zone_model::disk_minute::DiskMinute {
            wal_fsync_p50_ms: 0.42,
            wal_fsync_p99_ms: 1.9,
            wal_fsyncs: 31,
            backend_commit_p99_ms: Some(3.8),
        }),
    }
}

/// The links record as `dir` should hold it: with the disk in the newest directory and
/// wherever a release wrote one, without it in the directories before (0.2.0).
pub fn links_record_in(newest: bool, read: &zone_model::links::Links) -> zone_model::links::Links {
    if newest || read.disk.is_some() {
        links_record()
    } else {
        zone_model::links::Links {
            disk: None,
            ..links_record()
        }
    }
}

pub fn drill_record() -> Drill {
    Drill {
        ok: true,
        time_ms: at_ms() + 60_000,
        node: NODE1.into(),
        summary: format!(
            "2 local segments read whole; restored the full snapshot at revision {GAP_LAST} and 1 deltas to revision {GAP_LAST}: HashKV 0x1a2b3c4d equals the live cluster's; {TARGET_URL} holds all 5 links"
        ),
    }
}

/// The revisions of the golden delta: a put, a put with a lease, a delete.
pub fn delta_revisions() -> Vec<Revision> {
    let event = |kind, key: &str, value: &str, revision: i64, lease: i64| Event {
        kind,
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
        create_revision: if kind == EventKind::Put { revision } else { 0 },
        mod_revision: revision,
        version: if kind == EventKind::Put { 1 } else { 0 },
        lease,
    };
    let first = FIRST_FULL_REVISION + 1;
    vec![
        Revision {
            revision: first,
            time_ms: at_ms() + 1_000,
            events: vec![
                event(EventKind::Put, "apps/photos/album", "summer", first, 0),
                event(
                    EventKind::Put,
                    "nodes/laptop.example.zone/seen",
                    "yes",
                    first,
                    LEASE,
                ),
            ],
        },
        Revision {
            revision: first + 1,
            time_ms: at_ms() + 2_000,
            events: vec![event(
                EventKind::Delete,
                "apps/photos/album",
                "",
                first + 1,
                0,
            )],
        },
    ]
}
