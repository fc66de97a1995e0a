//! The test addresses' registry (issue 49): every loopback block (`127.0.X.0/24`) and
//! network-namespace block (`198.18.X.0/24` on the switch's `198.18.0.0/16`,
//! `198.19.X.0/24` a network of its own) that a test, the recorder or the benchmark
//! program uses, one named constant each, with its owner: tests that run at once (test.sh
//! runs chains beside the main run) never meet on an address.
//!
//! A call site takes its addresses from its own constant, by its path
//! (`addresses::PITR.ip(1)`, `addresses::PITR.subnet()`), never as a literal:
//! `tests/module_circles/addresses.rs` refuses a literal block in the Rust sources of
//! `tests/`, `recorder/src` and `bench/src` (`127.0.0.x`, this machine's localhost, may
//! stay literal), a constant used outside its owner, and a subnet registered twice
//! without a reason. Files that are not Rust (the bad-input corpus, `tests/data`) keep
//! their literal addresses, never dialled: their blocks are registered here too.
//!
//! An owner is a test module (`tests/zone/pitr` for tests/zone/pitr.rs and
//! tests/zone/pitr/), the shared harness (`tests/zone/common`), a directory of data files
//! (`tests/corpus`), or a tool's sources (`recorder`, `bench`). A new test takes a free
//! block here.

use std::fmt;

/// Which network a block is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Net {
    /// `127.0.0.0/8`: this machine's loopback.
    Loopback,
    /// `198.18.0.0/16`: the network-namespace switch's one network ([`crate::netns`]).
    Switch,
    /// `198.19.0.0/16`: each `/24` a network of its own (a home's LAN, the recorder's
    /// machines).
    Network,
}

/// A `/24` of test addresses: `<net>.<subnet>.0/24`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Block {
    net: Net,
    subnet: u8,
}

impl Block {
    /// `127.0.<subnet>.0/24`.
    pub const fn loopback(subnet: u8) -> Block {
        Block {
            net: Net::Loopback,
            subnet,
        }
    }

    /// `198.18.<subnet>.0/24`, on the switch's `198.18.0.0/16`.
    pub const fn switch(subnet: u8) -> Block {
        Block {
            net: Net::Switch,
            subnet,
        }
    }

    /// `198.19.<subnet>.0/24`, a network of its own.
    pub const fn network(subnet: u8) -> Block {
        Block {
            net: Net::Network,
            subnet,
        }
    }

    /// Its network.
    pub const fn net(self) -> Net {
        self.net
    }

    /// Its third octet: what `TestZone::bootstrap`, `loopback_members` and the
    /// recorder's `--subnet` take.
    pub const fn subnet(self) -> u8 {
        self.subnet
    }

    /// Its first two octets: `"127.0"`, `"198.18"` or `"198.19"`.
    pub const fn network_prefix(self) -> &'static str {
        match self.net {
            Net::Loopback => "127.0",
            Net::Switch => "198.18",
            Net::Network => "198.19",
        }
    }

    /// Its first three octets, e.g. `"127.0.108"`.
    pub fn prefix(self) -> String {
        format!("{}.{}", self.network_prefix(), self.subnet)
    }

    /// The address of `host` in it, e.g. `"127.0.108.1"`.
    pub fn ip(self, host: u8) -> String {
        format!("{}.{host}", self.prefix())
    }

    /// The block in CIDR form, e.g. `"127.0.177.0/24"`.
    pub fn cidr(self) -> String {
        format!("{}.0/24", self.prefix())
    }
}

impl fmt::Display for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.0/24", self.prefix())
    }
}

/// One entry of the registry: a constant, its block, who may use it, and, when its
/// subnet is registered twice or it has several owners, what keeps them apart.
#[derive(Clone, Copy, Debug)]
pub struct Registered {
    /// The constant's name (`PITR`).
    pub name: &'static str,
    pub block: Block,
    /// Who may name it (see the module's documentation).
    pub owners: &'static [&'static str],
    /// Why several owners, or several constants, share its block.
    pub shared: Option<&'static str>,
}

macro_rules! registry {
    (@reason) => {
        None
    };
    (@reason $reason:literal) => {
        Some($reason)
    };
    ($(
        $(#[doc = $doc:literal])*
        $name:ident = $kind:ident($subnet:literal) for [$($owner:literal),+ $(,)?]
            $(shared $reason:literal)?;
    )*) => {
        $(
            $(#[doc = $doc])*
            #[doc = ""]
            #[doc = concat!("Owner: ", $("`", $owner, "` "),+ $(, "(shared: ", $reason, ")")?)]
            pub const $name: Block = Block::$kind($subnet);
        )*

        /// Every registered block, in the order above.
        pub const REGISTRY: &[Registered] = &[$(
            Registered {
                name: stringify!($name),
                block: $name,
                owners: &[$($owner),+],
                shared: registry!(@reason $($reason)?),
            },
        )*];
    };
}

registry! {
    /// Localhost, where it is a zone's subnet (membership's grow.zone on ports 32379/32380).
    LOCALHOST = loopback(0) for ["tests/zone/membership"]
        shared "localhost: any file may name 127.0.0.x literally; each user names its own ports (the demo owns 2379/2380)";

    /// The acceptance zone of the bundled etcd (3.6.15).
    ZONE_CLUSTER = loopback(10) for ["tests/zone/zone_cluster"];
    /// The one-member zone.
    ZONE_CLUSTER_SOLO = loopback(11) for ["tests/zone/zone_cluster"];
    /// The zone of addresses in every form (clients.zone).
    ADDRESSES = loopback(12) for ["tests/zone/addresses"];
    /// The acceptance zone of bookworm's etcd 3.4.23.
    ZONE_CLUSTER_BOOKWORM = loopback(13) for ["tests/zone/zone_cluster"];
    /// The acceptance zone of trixie's etcd 3.5.16.
    ZONE_CLUSTER_TRIXIE = loopback(14) for ["tests/zone/zone_cluster"];

    /// A node key that does not match its certificate.
    BAD_INPUT_KEY = loopback(20) for ["tests/zone/bad_input"];
    /// A node certificate the zone CA did not sign.
    BAD_INPUT_FOREIGN_CERT = loopback(21) for ["tests/zone/bad_input"];
    /// A key file readable by group or others.
    BAD_INPUT_KEY_MODE = loopback(22) for ["tests/zone/bad_input"];
    /// An existing CA and a non-empty output directory.
    BAD_INPUT_OVERWRITE = loopback(23) for ["tests/zone/bad_input"];
    /// A node activated as a client launched as a member.
    BAD_INPUT_CLIENT = loopback(24) for ["tests/zone/bad_input"];
    /// Client names that speak for someone else.
    BAD_INPUT_CLIENT_NAMES = loopback(46) for ["tests/zone/bad_input"];

    /// Leaves under a stand-in etcd.
    LEAVES = loopback(30) for ["tests/zone/leaves"];
    /// Leaves under a stand-in etcd, the second test.
    LEAVES_B = loopback(31) for ["tests/zone/leaves"];

    /// The real zone behind the nameservice.
    NAMESERVICE = loopback(40) for ["tests/zone/nameservice"];
    /// The nameservice's refusals (no etcd runs).
    NAMESERVICE_REFUSALS = loopback(41) for ["tests/zone/nameservice"];
    /// A real zone under load whose leaves rotate.
    ROTATION = loopback(42) for ["tests/zone/rotation"];
    /// The nameservice zone of the revocation promise (members .1-3, nameservice .100).
    REVOCATION_NAMESERVICE = loopback(43) for ["tests/zone/revocation"];
    /// Rotation under a stand-in etcd.
    ROTATION_STAND_IN = loopback(44) for ["tests/zone/rotation"];
    /// `zone-etcd check` (a stand-in etcd).
    CHECK = loopback(45) for ["tests/zone/check"];
    /// The zone whose CA rotates.
    CA_ROTATION = loopback(47) for ["tests/zone/ca_rotation"];
    /// The member with external certificates.
    EXTERNAL = loopback(48) for ["tests/zone/external"];

    /// A joiner held a learner: its keepers reach the zone through the voters (learner.zone).
    MEMBERSHIP_LEARNER = loopback(49) for ["tests/zone/membership"];
    /// A killed member comes back (crash.zone).
    MEMBERSHIP_CRASH = loopback(50) for ["tests/zone/membership"];
    /// A join killed after the add is retried (retry.zone).
    MEMBERSHIP_RETRY = loopback(51) for ["tests/zone/membership"];
    /// `status` reports quorum (quorum.zone).
    MEMBERSHIP_QUORUM = loopback(52) for ["tests/zone/membership"];
    /// Refusals that guard a zone's quorum (guard.zone, single.zone).
    MEMBERSHIP_GUARD = loopback(53) for ["tests/zone/membership"];
    /// A removed member cannot come back with its old data (again.zone).
    MEMBERSHIP_AGAIN = loopback(54) for ["tests/zone/membership"];
    /// zone-etcd's own releases in one zone (rel.zone).
    RELEASES = loopback(55) for ["tests/zone/releases"];
    /// Each member's links measured and shown by `status` (links.zone).
    LINKS = loopback(56) for ["tests/zone/links"];
    /// A zone with a member on a slow disk (zone-slowfs delays its syncs), watched by a
    /// Prometheus of its own (sd.zone).
    SLOW_DISK = loopback(57) for ["tests/zone/alerts"];
    /// A member whose data flip under it: the CORRUPT alarm and its fix (corrupt.zone).
    CORRUPTION = loopback(59) for ["tests/zone/corruption"];

    /// The bad-input corpus's addresses: its files name them, `tests/zone/corpus` reads
    /// them, only `tests/zone/security`'s member listens.
    CORPUS = loopback(60) for ["tests/corpus", "tests/zone/corpus", "tests/zone/security"]
        shared "the corpus only names addresses there; only tests/zone/security listens";

    /// The benchmark's point-in-time recovery zone (.1-3) and its SeaweedFS (.100).
    BENCH_PITR = loopback(68) for ["bench"];
    /// The benchmark's snapshot zone.
    BENCH_SNAPSHOTS = loopback(69) for ["bench"];

    /// Faults under a stand-in etcd.
    FAULTS = loopback(70) for ["tests/zone/faults"];
    /// A real member on a full disk.
    FAULTS_DISK = loopback(71) for ["tests/zone/faults"];
    /// A stopped member whose data `snapshot save --from-data` reads.
    FAULTS_RESCUE = loopback(72) for ["tests/zone/faults"];
    /// The benchmark's churn zone on etcd's defaults.
    BENCH_CHURN_DEFAULTS = loopback(73) for ["bench"];
    /// The benchmark's churn zone on zone-etcd's settings.
    BENCH_CHURN_OURS = loopback(74) for ["bench"];
    /// The benchmark's launch zone.
    BENCH_LAUNCH = loopback(75) for ["bench"];
    /// `maintain` brings a zone filled by history back, 20 times in a row.
    NOSPACE_REFILL = loopback(76) for ["tests/zone/nospace"];
    /// The benchmark's one-member launch zone and its PKI zone's members.
    BENCH_SOLO = loopback(77) for ["bench"];
    /// A zone whose quota is full.
    NOSPACE_FULL = loopback(78) for ["tests/zone/nospace"];
    /// A database a tenant filled.
    NOSPACE_TENANT = loopback(79) for ["tests/zone/nospace"];
    /// Quotas kept on the bundled etcd: a runaway service, a rewriter, a node's prefix.
    QUOTA = loopback(250) for ["tests/zone/quota"];
    /// Quotas kept on etcd 3.5.34.
    QUOTA_3_5 = loopback(251) for ["tests/zone/quota"];
    /// The benchmark's zone of etcd 3.6.15.
    BENCH_VERSIONS_3_6 = loopback(80) for ["bench"];
    /// The benchmark's zone of etcd 3.5.30.
    BENCH_VERSIONS_3_5 = loopback(81) for ["bench"];
    /// The benchmark's takeover zone (.1) and its SeaweedFS (.100).
    BENCH_TAKEOVER = loopback(82) for ["bench"];

    /// A member that moves (.1-3, then .13 and .23).
    MOVES = loopback(83) for ["tests/zone/moves"];
    /// The way back from a lost quorum.
    RECOVERY = loopback(85) for ["tests/zone/recovery"];
    /// `snapshot save | list | prune` (.1-3), a killed save (.10).
    SNAPSHOT = loopback(86) for ["tests/zone/snapshot"];
    /// A churn of rewrites under the default settings.
    COMPACTION = loopback(87) for ["tests/zone/compaction"];
    /// `zone-etcd maintain`.
    MAINTAIN = loopback(88) for ["tests/zone/maintain"];
    /// The zone's `[settings]` (members .1-3, the nameservice .100).
    SETTINGS = loopback(89) for ["tests/zone/settings"];

    /// Debian's 3.5.30 under writes, upgraded.
    VERSIONS_UPGRADE = loopback(91) for ["tests/zone/versions"];
    /// `status` on a zone with a member that never started.
    VERSIONS_LAZY = loopback(92) for ["tests/zone/versions"];
    /// Binaries that are not an etcd the launcher runs (nothing listens).
    VERSIONS_ODD = loopback(93) for ["tests/zone/versions"];
    /// Data directories lost, `state/` kept.
    BOOTSTRAP_ONCE_KEPT = loopback(94) for ["tests/zone/bootstrap_once"];
    /// Whole node directories put back from the owner's copy.
    BOOTSTRAP_ONCE_AGAIN = loopback(95) for ["tests/zone/bootstrap_once"];

    /// SeaweedFS of the backup targets' tests, one address each.
    SEAWEED_TARGETS = loopback(96) for ["tests/zone/backup_targets", "tests/zone/common"]
        shared "SeaweedFS fixtures (tests/zone/common/seaweed.rs): one address per test";
    /// SeaweedFS of the backup tests (the zones' S3 store), one address each.
    SEAWEED = loopback(97) for [
        "tests/zone/alerts",
        "tests/zone/backup",
        "tests/zone/common",
        "tests/zone/pitr",
        "tests/zone/undo_chain",
    ] shared "SeaweedFS fixtures (tests/zone/common/seaweed.rs): one address per test";

    /// A writer's takeover of the backups.
    BACKUP_TAKEOVER = loopback(100) for ["tests/zone/backup"];
    /// A tampered chain (.1-3), a scratch etcd (.50).
    BACKUP_TAMPER = loopback(101) for ["tests/zone/backup"];
    /// Backups under killall.
    BACKUP_KILLALL = loopback(102) for ["tests/zone/backup"];
    /// A store outage caught up.
    BACKUP_OUTAGE = loopback(103) for ["tests/zone/backup"];
    /// A foreign zone's manifest (only written into it).
    BACKUP_FOREIGN = loopback(104) for ["tests/zone/backup"];
    /// Pruning.
    BACKUP_PRUNE = loopback(105) for ["tests/zone/backup"];
    /// A torn chain (.1-3); a bad zone file (.1, nothing launched).
    BACKUP_TORN = loopback(106) for ["tests/zone/backup"];
    /// A gap in the chain.
    BACKUP_GAP = loopback(107) for ["tests/zone/backup"];
    /// Point-in-time recovery (.1-3), its throwaway etcd (.50).
    PITR = loopback(108) for ["tests/zone/pitr"];
    /// Refusals (.1-3) and another zone's chain (.10).
    PITR_OTHER = loopback(109) for ["tests/zone/pitr"];
    /// `zone-etcd undo` of a bad delete.
    UNDO = loopback(110) for ["tests/zone/undo"];
    /// `zone-etcd undo`'s refusals.
    UNDO_REFUSALS = loopback(111) for ["tests/zone/undo"];
    /// A late link.
    BACKUP_LATE = loopback(112) for ["tests/zone/backup"];
    /// A lagging target.
    BACKUP_LAGGING = loopback(113) for ["tests/zone/backup"];
    /// `undo` through the backup chain.
    UNDO_CHAIN = loopback(114) for ["tests/zone/undo_chain"];
    /// Requests to activate (.1-20).
    ACTIVATE_REQUEST = loopback(115) for ["tests/zone/activate_request"];
    /// URLs nothing listens on.
    ACTIVATE_REQUEST_DEAD = loopback(116) for ["tests/zone/activate_request"];
    /// The recorder's baseline and kill histories.
    CONSISTENCY_BASELINE = loopback(117) for ["tests/zone/consistency_scenarios"];
    /// The recorder's stop and maintain histories.
    CONSISTENCY_STOP = loopback(118) for ["tests/zone/consistency_scenarios"];
    /// The history with a lost acknowledged write.
    CONSISTENCY_LOST_WRITE = loopback(119) for ["tests/zone/consistency_scenarios"];
    /// The default of `zone-recorder scenario --subnet` (scripts/consistency.sh runs its
    /// scenarios there and keeps 127.0.120-125 to itself).
    RECORDER = loopback(120) for ["recorder"];
    /// Revocation (members .1-3).
    REVOCATION = loopback(126) for ["tests/zone/revocation"];
    /// The ignored revocation timing (scripts/bench.sh runs it).
    REVOCATION_TIMING = loopback(127) for ["tests/zone/revocation"];

    /// The acceptance zone of etcd 3.4.45.
    ZONE_CLUSTER_3_4 = loopback(130) for ["tests/zone/zone_cluster"];
    /// The acceptance zone of Debian's etcd 3.5.30.
    ZONE_CLUSTER_DEBIAN = loopback(131) for ["tests/zone/zone_cluster"];
    /// The acceptance zone of etcd 3.5.34.
    ZONE_CLUSTER_3_5 = loopback(132) for ["tests/zone/zone_cluster"];
    /// The acceptance zone of etcd 3.7.2.
    ZONE_CLUSTER_3_7 = loopback(133) for ["tests/zone/zone_cluster"];
    /// `check` of the metrics (a stand-in etcd).
    CHECK_METRICS = loopback(145) for ["tests/zone/check_metrics"];
    /// The previous etcd stopping.
    RELAUNCH_STOPPING = loopback(160) for ["tests/zone/relaunch"];
    /// A port held by another process.
    RELAUNCH_HELD = loopback(161) for ["tests/zone/relaunch"];
    /// Least privilege enforced.
    LEAST_PRIVILEGE = loopback(170) for ["tests/zone/least_privilege"];
    /// Least privilege, the second zone.
    LEAST_PRIVILEGE_B = loopback(171) for ["tests/zone/least_privilege"];
    /// The recorder's move to least privilege.
    CONSISTENCY_ACCESS = loopback(172) for ["tests/zone/consistency_scenarios"];
    /// Least privilege against an attacker.
    LEAST_PRIVILEGE_ATTACKER = loopback(173) for ["tests/zone/least_privilege"];
    /// Requests racing the auth store's changes.
    AUTH_CHURN = loopback(175) for ["tests/zone/auth_churn"];
    /// A zone of least privilege by default, backed up.
    BACKUP_LEAST = loopback(174) for ["tests/zone/backup"];
    /// The gRPC gateway.
    GATEWAY = loopback(176) for ["tests/zone/gateway"];
    /// Patroni's zone (.1-3) and database nodes (.11, .12).
    PATRONI = loopback(177) for ["tests/zone/patroni"];
    /// The clients' leaves across a CA rotation.
    CA_ROTATION_CLIENTS = loopback(178) for ["tests/zone/ca_rotation"];
    /// The benchmark's backup zone (.1-3) and its SeaweedFS (.100).
    BENCH_BACKUP = loopback(181) for ["bench"];
    /// The benchmark's latency of `maintain`.
    BENCH_MAINTAIN = loopback(182) for ["bench"];
    /// The benchmark's rotation under load (on 127.0.76, nospace's, before the registry).
    BENCH_ROTATION = loopback(183) for ["bench"];
    /// The benchmark's peak memory of launch (on 127.0.78, nospace's, before the registry).
    BENCH_MEMORY = loopback(184) for ["bench"];

    /// The forbidden step refused.
    VERSIONS_PATH = loopback(201) for ["tests/zone/versions"];
    /// The way back from 3.7.2 to 3.5.34.
    VERSIONS_DOWN = loopback(202) for ["tests/zone/versions"];
    /// The recorder's etcd path up and back down.
    CONSISTENCY_ETCD_PATH = loopback(203) for ["tests/zone/consistency_scenarios"];
    /// A rolling upgrade of etcd.
    UPGRADE_ETCD = loopback(204) for ["tests/zone/upgrade_etcd"];
    /// Access applied.
    ACCESS = loopback(205) for ["tests/zone/access"];
    /// Access, the second zone.
    ACCESS_B = loopback(206) for ["tests/zone/access"];
    /// The alerts' zone.
    ALERTS = loopback(210) for ["tests/zone/alerts"];
    /// node_exporter and Prometheus of the alerts.
    ALERTS_MONITOR = loopback(212) for ["tests/zone/alerts"];
    /// The identity endpoint.
    IDENTITY_ENDPOINT = loopback(221) for ["tests/zone/identity_endpoint"];
    /// The troubleshooting page's zone (never started: only written in the guide's pages).
    GUIDE_PAGES = loopback(230) for ["tests/zone/guide"];
    /// The zone whose `status` the guide shows.
    GUIDE_STATUS = loopback(232) for ["tests/zone/guide"];
    /// The benchmark's access zone with auth on.
    BENCH_ACCESS_ON = loopback(240) for ["bench"];
    /// The benchmark's access zone with auth off.
    BENCH_ACCESS_OFF = loopback(241) for ["bench"];
    /// The benchmark's CRL zone.
    BENCH_CRL = loopback(242) for ["bench"];
    /// The benchmark's access policy at scale.
    BENCH_ACCESS_SCALE = loopback(243) for ["bench"];
    /// The benchmark's quota zone without a tenant (its deciders idle; 254 is
    /// scripts/measure/bbolt-factor.py's).
    BENCH_QUOTA_OFF = loopback(244) for ["bench"];
    /// A tenant's quota alerts in a real Prometheus (the zone .1-3, node_exporter and
    /// Prometheus on .9).
    QUOTA_ALERTS = loopback(146) for ["tests/zone/alerts"];
    /// A member that stops sending in the middle of a snapshot (.1).
    SNAPSHOT_STALL = loopback(147) for ["tests/zone/snapshot"];
    /// Quotas seen by status and the metrics.
    QUOTA_STATUS = loopback(252) for ["tests/zone/quota_status"];
    /// The benchmark's quota zone with a tenant (its decider follows the load).
    BENCH_QUOTA_ON = loopback(253) for ["bench"];

    /// The quickstart's machines (198.18.0.1-3).
    QUICKSTART = switch(0) for ["tests/zone/guide", "tests/zone/quickstart"]
        shared "inside each test's own network namespaces; the guide only writes them into files";
    /// Machines of a zone spread over namespaces.
    MACHINES = switch(7) for ["tests/zone/machines"];
    /// Machines with one member behind a NAT (its router's WAN side at .254).
    MACHINES_NAT = switch(9) for ["tests/zone/machines"];
    /// The LAN of the home behind the NAT.
    MACHINES_HOME = network(9) for ["tests/zone/machines"];
    /// The cyfs machines: a rented server and two homes.
    CYFS = switch(11) for ["tests/zone/cyfs"];
    /// The mixed arm64 zone's machines (.1-3) and its clients (.4).
    ARM64 = switch(64) for ["tests/zone/arm64"];
    /// The recorder's latency histories (its own network).
    CONSISTENCY_LATENCY = network(115) for ["tests/zone/consistency_scenarios"];
    /// A zone behind slow links, with etcd's defaults and then the settings that fit
    /// (zone-recorder's machines and relays).
    SLOW_LINKS = network(117) for ["tests/zone/links"];
    /// The recorder's partition histories (its own network).
    CONSISTENCY_PARTITION = network(116) for ["tests/zone/consistency_scenarios"];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_writes_its_addresses() {
        assert_eq!(PITR.subnet(), 108);
        assert_eq!(PITR.ip(1), "127.0.108.1");
        assert_eq!(PITR.prefix(), "127.0.108");
        assert_eq!(PATRONI.cidr(), "127.0.177.0/24");
        assert_eq!(MACHINES.ip(3), "198.18.7.3");
        assert_eq!(MACHINES_HOME.ip(2), "198.19.9.2");
        assert_eq!(CYFS.to_string(), "198.18.11.0/24");
        assert_eq!(
            crate::netns::cidr(&MACHINES.ip(1)).unwrap(),
            "198.18.7.1/16"
        );
        assert_eq!(
            crate::netns::cidr(&MACHINES_HOME.ip(1)).unwrap(),
            "198.19.9.1/24"
        );
    }

    #[test]
    fn the_registry_lists_every_constant_once() {
        let names: std::collections::BTreeSet<_> = REGISTRY.iter().map(|r| r.name).collect();
        assert_eq!(names.len(), REGISTRY.len());
        assert!(REGISTRY
            .iter()
            .any(|r| r.name == "PITR" && r.block == PITR && r.owners == ["tests/zone/pitr"]));
    }
}
