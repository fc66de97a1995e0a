//! The two zones of a run, set up and torn down ([`Live`]): each a fresh 3-member zone
//! of the bundled etcd launched by `zone-etcd launch`, the auth-on one with the
//! `[access]` of [`access_toml`]; the client identities the load and the publishes use
//! ([`Identity`]: a member's own certificate, the owner's `ca admin` identity, the
//! service `bench`'s from `env --service bench`); etcdctl as one of them; and what is
//! read of the members beside the latencies: their etcd metrics ([`super::metrics`])
//! and the CPU time of the members and of zone-etcd's helpers ([`Cpu`]),
//! each member's keeper and which member leads. Shared with the quota section
//! (`crate::quota`).
//!
//! Invariants: a [`Live`] is returned only once its zone answers healthy; when it is
//! dropped (at the end of a run, also on error) every member is killed by its PID, and
//! any helper of the zone (a process whose command line names the zone's directory) that
//! has not exited with its etcd within 5 s is killed by its PID too; nothing else is
//! signalled.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use zone_etcd_kit::cluster_api::{self, Credentials};

use super::metrics::parse;
use crate::support::*;
use zone_testkit::addresses;

pub(crate) const ZONE: &str = "access.zone";
pub(crate) const ON_SUBNET: u8 = addresses::BENCH_ACCESS_ON.subnet();
pub(crate) const OFF_SUBNET: u8 = addresses::BENCH_ACCESS_OFF.subnet();

/// The `[access]` of the auth-on zone: the service `bench` on node1, with `bench2/` too
/// when `more`.
pub(crate) fn access_toml(more: bool) -> String {
    let prefixes = if more {
        r#""bench/", "bench2/""#
    } else {
        r#""bench/""#
    };
    format!(
        "\n[access]\nenforce = true\n\n[[access.service]]\nname = \"bench\"\nnodes = [\"node1.{ZONE}\"]\nread_write = [{prefixes}]\n"
    )
}

/// A client identity's files: the roots that verify the members, its chain and key.
#[derive(Clone)]
pub(crate) struct Identity {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl Identity {
    pub(crate) fn credentials(&self) -> Result<Credentials> {
        let read = |p: &Path| fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
        Ok(Credentials::from_pem(
            &read(&self.ca)?,
            &read(&self.cert)?,
            &read(&self.key)?,
        ))
    }
}

/// A running zone: its members (killed by PID when dropped) and, found once it runs,
/// zone-etcd's helpers beside them (killed by PID if they outlive their etcd).
pub(crate) struct Live {
    pub(crate) zone: Zone,
    members: Vec<Process>,
    pub(crate) on: bool,
}

impl Live {
    pub(crate) fn start(dir: &Path, on: bool, run: usize) -> Result<Live> {
        let (name, subnet, extra) = if on {
            ("on", ON_SUBNET, access_toml(false))
        } else {
            ("off", OFF_SUBNET, String::new())
        };
        Live::start_with(
            &dir.join(format!("auth-{name}-run{run}")),
            subnet,
            &extra,
            on,
        )
    }

    /// A zone of [`ZONE`] in `dir` on 127.0.`subnet`.1-3 whose zone file ends in `extra`.
    pub(crate) fn start_with(dir: &Path, subnet: u8, extra: &str, on: bool) -> Result<Live> {
        let zone = Zone::bootstrap_with(dir, ZONE, subnet, 3, extra)?;
        let members = (0..3).map(|i| zone.launch(i)).collect::<Result<_>>()?;
        let live = Live { zone, members, on };
        // launch issues the leaves before it execs etcd.
        let current = live.zone.node_dir(0).join("state/tls/current/client.key");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !current.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        live.zone
            .wait_healthy(&live.zone.client(0)?, Instant::now())?;
        Ok(live)
    }

    /// `zone-etcd zone publish` of zone file `file` through member 0, to its exit.
    pub(crate) fn publish(&self, file: &Path) -> Result<()> {
        output(zone_etcd(&[
            "zone",
            "publish",
            "--ca",
            &self.zone.root.join("ca").to_string_lossy(),
            "--zone",
            &file.to_string_lossy(),
            "--config",
            &self.zone.config(0).to_string_lossy(),
        ])?)
        .map(drop)
    }

    fn ca(&self) -> PathBuf {
        self.zone.node_dir(0).join("state/tls/current/ca.crt")
    }

    pub(crate) fn endpoints(&self) -> Vec<String> {
        (0..3).map(|i| self.zone.client_url(i)).collect()
    }

    /// Member `i`'s own client certificate.
    pub(crate) fn member_identity(&self, i: usize) -> Identity {
        let tls = self.zone.node_dir(i).join("state/tls/current");
        Identity {
            ca: self.ca(),
            cert: tls.join("client.crt"),
            key: tls.join("client.key"),
        }
    }

    /// The owner's administrative identity (etcd's root), made once by `ca admin`.
    pub(crate) fn admin(&self) -> Result<Identity> {
        let dir = self.zone.root.join("admin");
        if !dir.exists() {
            output(zone_etcd(&[
                "ca",
                "admin",
                "--ca",
                &self.zone.root.join("ca").to_string_lossy(),
                "--out",
                &dir.to_string_lossy(),
            ])?)?;
        }
        Ok(Identity {
            ca: self.ca(),
            cert: dir.join("client.crt"),
            key: dir.join("client.key"),
        })
    }

    /// The service `bench`'s identity on node1 (`env --service bench`), and its user.
    pub(crate) fn service(&self) -> Result<(Identity, String)> {
        let out = output(zone_etcd(&[
            "env",
            "--format",
            "json",
            "--config",
            &self.zone.config(0).to_string_lossy(),
            "--service",
            "bench",
        ])?)?;
        let env: Value = serde_json::from_str(&out).map_err(|e| format!("env: {e}: {out}"))?;
        let field = |k: &str| {
            env[k]
                .as_str()
                .map(PathBuf::from)
                .ok_or_else(|| format!("env without {k}: {out}"))
        };
        Ok((
            Identity {
                ca: self.ca(),
                cert: field("cert_file")?,
                key: field("key_file")?,
            },
            env["user"].as_str().unwrap_or_default().to_string(),
        ))
    }

    /// etcdctl as `who` through every member: stdout and stderr.
    pub(crate) fn etcdctl(&self, who: &Identity, args: &[&str]) -> String {
        let out = std::process::Command::new(repo().join("bin/etcdctl"))
            .arg(format!("--endpoints={}", self.endpoints().join(",")))
            .arg(format!("--cacert={}", who.ca.display()))
            .arg(format!("--cert={}", who.cert.display()))
            .arg(format!("--key={}", who.key.display()))
            .arg("--dial-timeout=2s")
            .arg("--command-timeout=5s")
            .args(args)
            .output();
        match out {
            Ok(o) => format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => format!("etcdctl: {e}"),
        }
    }

    /// Waits until etcd says auth is on; the time it took from `since`.
    pub(crate) fn wait_auth_on(&self, since: Instant) -> Result<Duration> {
        self.wait_auth_on_within(since, Duration::from_secs(60))
    }

    /// [`Live::wait_auth_on`], waiting up to `limit`.
    pub(crate) fn wait_auth_on_within(&self, since: Instant, limit: Duration) -> Result<Duration> {
        let admin = self.admin()?;
        let deadline = Instant::now() + limit;
        loop {
            let out = self.etcdctl(&admin, &["auth", "status"]);
            if out.contains("Authentication Status: true") {
                return Ok(since.elapsed());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "auth not on after {limit:?} in {} (last answer: {}): see the logs there",
                    self.zone.root.display(),
                    out.trim()
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// zone-etcd's helpers of this zone: processes other than the members whose command
    /// line names a file in the zone's directory.
    fn helpers(&self) -> Vec<u32> {
        let members: Vec<u32> = self.members.iter().map(Process::pid).collect();
        processes_naming(&self.zone.root)
            .into_iter()
            .filter(|pid| !members.contains(pid))
            .collect()
    }

    /// CPU seconds of the members' etcd and of the helpers.
    pub(crate) fn cpu(&self) -> Cpu {
        let members: Vec<u32> = self.members.iter().map(Process::pid).collect();
        let by_pid = members
            .iter()
            .chain(&self.helpers())
            .filter_map(|p| Some((*p, cpu_seconds(*p)?)))
            .collect();
        Cpu { members, by_pid }
    }

    /// Member `i`'s etcd PID.
    pub(crate) fn member_pid(&self, i: usize) -> u32 {
        self.members[i].pid()
    }

    /// Member `i`'s keeper (`zone-etcd keep-revocations --config <its node.toml>`).
    pub(crate) fn keeper(&self, i: usize) -> Option<u32> {
        let config = self.zone.config(i);
        let config = config.as_os_str().as_encoded_bytes();
        self.helpers().into_iter().find(|pid| {
            fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                contains(&c, b"keep-revocations") && c.split(|b| *b == 0).any(|a| a == config)
            })
        })
    }

    /// The member that leads now, as each member's etcd says (as `who`).
    pub(crate) fn leader(&self, who: &Identity) -> Result<usize> {
        let creds = who.credentials()?;
        let runtime = cluster_api::runtime().map_err(|e| e.to_string())?;
        runtime.block_on(async {
            for (i, endpoint) in self.endpoints().iter().enumerate() {
                let mut client = cluster_api::connect(endpoint, &creds).await?;
                let status = client
                    .status()
                    .await
                    .map_err(|e| cluster_api::describe(&e))?;
                if status
                    .header()
                    .is_some_and(|h| h.member_id() == status.leader())
                {
                    return Ok(i);
                }
            }
            Err(format!("no member of {} leads", self.zone.root.display()))
        })
    }

    /// Each member's metrics of interest (`METRICS`, summed over their labels).
    pub(crate) fn metrics(&self) -> Result<Vec<HashMap<String, f64>>> {
        let agent = self.zone.client(0)?.agent();
        (0..3)
            .map(|i| {
                let url = format!("http://{}:2381/metrics", self.zone.members[i].1);
                let mut response = agent.get(&url).call().map_err(|e| format!("{url}: {e}"))?;
                let text = response
                    .body_mut()
                    .read_to_string()
                    .map_err(|e| format!("{url}: {e}"))?;
                Ok(parse(&text))
            })
            .collect()
    }
}

/// The CPU seconds of a zone's processes at one moment, by PID; which are the members.
pub(crate) struct Cpu {
    pub(crate) members: Vec<u32>,
    pub(crate) by_pid: HashMap<u32, f64>,
}

impl Cpu {
    /// The members' etcd and the helpers, summed.
    pub(crate) fn sums(&self) -> (f64, f64) {
        let sum = |members: bool| {
            self.by_pid
                .iter()
                .filter(|(pid, _)| self.members.contains(pid) == members)
                .map(|(_, s)| s)
                .sum::<f64>()
        };
        (sum(true), sum(false))
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let helpers = self.helpers();
        // The members first: the helpers watch their etcd and exit with it.
        drop(std::mem::take(&mut self.members));
        let deadline = Instant::now() + Duration::from_secs(5);
        let naming = |pid: &u32| {
            fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| contains(&c, self.zone.root.as_os_str().as_encoded_bytes()))
        };
        while helpers.iter().any(naming) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        for pid in helpers.iter().filter(|p| naming(p)) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(*pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// PIDs of the processes whose command line names something under `dir`.
fn processes_naming(dir: &Path) -> Vec<u32> {
    let needle = dir.as_os_str().as_encoded_bytes();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != std::process::id())
        .filter(|pid| fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| contains(&c, needle)))
        .collect()
}
