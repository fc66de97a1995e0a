//! Before `launch` execs etcd: nothing else holds this member's listen addresses, and no
//! earlier etcd still runs on its data directory. Without this check, a launch right
//! after a stop (an etcd takes seconds to exit after SIGTERM) starts an etcd that dies
//! on "bind: address already in use" with a Go stack trace.
//!
//! Invariants:
//! - An etcd on this member's data directory (its command line's `--data-dir`, or its
//!   `ETCD_DATA_DIR`) is this member's previous etcd: the start waits for it to exit, up
//!   to [`WAIT`], logging one line; still there after that, it is refused in one line
//!   naming the PID, the data directory and the fix (exit 78).
//! - A listen address held by any other process is refused at once, in one line naming
//!   the address, the holder and the fix (exit 78).
//! - The decisions are pure ([`decide`], [`conflicts`]); what `/proc` shows is read at
//!   the edge ([`super::procfs`]), and nothing is written, so a refusal leaves the node
//!   as it was.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use zone_io::Error;

use crate::node::Node;
use zone_model::cluster;
use zone_model::config::zone::Member;

use super::procfs::{absolute, database_locked};
use super::procfs::{look, Listening, Process};

/// The longest a start waits for this member's previous etcd to exit.
pub const WAIT: Duration = Duration::from_secs(30);
/// Between two looks while waiting.
const POLL: Duration = Duration::from_millis(200);

/// What a start may do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Every address is free and no etcd runs on the data directory.
    Free,
    /// This member's previous etcd still runs (these processes): wait for it.
    Wait(Vec<Process>),
    /// `addr`, one of this member's listen addresses, is held by another process.
    Held {
        addr: SocketAddr,
        holder: Option<Process>,
    },
}

/// Whether `listening` holds `wanted`: the same port, and the same address or a listener
/// on every address (`0.0.0.0`, `::`). A wildcard this member wants against another
/// process's one address is not counted: the addresses differ, and etcd's own bind says
/// so (as before this check; a stand-in etcd in the tests never binds at all).
pub fn conflicts(wanted: SocketAddr, listening: SocketAddr) -> bool {
    wanted.port() == listening.port()
        && (wanted.ip() == listening.ip() || listening.ip().is_unspecified())
}

/// The decision for this member's `wanted` listen addresses and `data_dir` (absolute),
/// given what listens and which processes run on the data directory. A holder on the
/// data directory is this member's previous etcd; any other holder is refused first.
pub fn decide(
    wanted: &[SocketAddr],
    listening: &[Listening],
    data_dir: &Path,
    on_data_dir: &[Process],
) -> Decision {
    let ours = |p: &Process| {
        p.data_dir.as_deref() == Some(data_dir) || on_data_dir.iter().any(|o| o.pid == p.pid)
    };
    for &addr in wanted {
        for l in listening.iter().filter(|l| conflicts(addr, l.addr)) {
            if !l.holder.as_ref().is_some_and(ours) {
                return Decision::Held {
                    addr,
                    holder: l.holder.clone(),
                };
            }
        }
    }
    let mut waiting: Vec<Process> = on_data_dir.to_vec();
    for l in listening {
        if let Some(p) = &l.holder {
            if ours(p) && !waiting.iter().any(|w| w.pid == p.pid) {
                waiting.push(p.clone());
            }
        }
    }
    if waiting.is_empty() {
        Decision::Free
    } else {
        Decision::Wait(waiting)
    }
}

/// Whether this process could listen on `addr` now: bound (with SO_REUSEADDR, as etcd
/// binds, so closing connections do not count) and let go at once. A listener there, or
/// on every address at its port, makes it fail.
fn bindable(addr: SocketAddr) -> bool {
    std::net::TcpListener::bind(addr).is_ok()
}

/// The addresses this member's etcd listens on for clients and peers (its metrics
/// listener, on loopback, is left to etcd's own bind).
pub fn listen_addresses(member: &Member, listen: Option<IpAddr>) -> Vec<SocketAddr> {
    let mut urls = cluster::listen_client_urls(member, listen);
    urls.extend(cluster::listen_peer_urls(member, listen));
    urls.iter()
        .filter_map(|url| {
            let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
            let rest = rest.trim_end_matches('/');
            rest.parse::<SocketAddr>().ok()
        })
        .collect()
}

/// Waits until this member's listen addresses and data directory are free (see the
/// module's rules), or refuses.
pub fn wait_until_free(node: &Node, member: &Member) -> Result<(), Error> {
    let config = &node.path;
    let wanted = listen_addresses(member, node.listen_address);
    let data_dir = absolute(&node.data_dir);
    // The usual case, cheaply: every address binds and nobody holds the database (no
    // process, and not /proc/net/tcp, whose size grows with every socket of the machine,
    // is looked at: a launch stays a few milliseconds).
    if wanted.iter().all(|addr| bindable(*addr)) && !database_locked(&data_dir) {
        return Ok(());
    }
    let deadline = Instant::now() + WAIT;
    let mut said = false;
    loop {
        let (listening, on_data_dir) = look(&data_dir);
        match decide(&wanted, &listening, &data_dir, &on_data_dir) {
            Decision::Free => return Ok(()),
            Decision::Held { addr, holder } => {
                // The socket table is read before the processes: a listener whose holder
                // was not found may be one whose process exited in between (this member's
                // previous etcd, as it ends). It is held only if the address still does
                // not bind; else look again (until the deadline: then it is refused).
                if holder.is_none() && bindable(addr) && Instant::now() < deadline {
                    std::thread::sleep(POLL);
                    continue;
                }
                return Err(held_error(addr, holder.as_ref(), config));
            }
            Decision::Wait(processes) => {
                let pids = pid_list(&processes);
                if Instant::now() >= deadline {
                    return Err(Error::new(format!(
                        "etcd ({pids}) still runs on this member's data directory {} after {}s; a second etcd cannot start on it",
                        data_dir.display(),
                        WAIT.as_secs()
                    ))
                    .file(config)
                    .fix(format!(
                        "stop it: kill {} (or wait until it exits), then launch again",
                        kill_args(&processes)
                    ))
                    .permanent());
                }
                if !said {
                    tracing::info!(
                        "waiting up to {}s for the previous etcd ({pids}) on data directory {} to exit",
                        WAIT.as_secs(),
                        data_dir.display()
                    );
                    said = true;
                }
                std::thread::sleep(POLL);
            }
        }
    }
}

fn held_error(addr: SocketAddr, holder: Option<&Process>, config: &Path) -> Error {
    let (who, stop) = match holder {
        Some(p) => (
            format!("{} (pid {})", p.name, p.pid),
            format!("stop that process: kill {}", p.pid),
        ),
        None => (
            "a process this user cannot see".to_string(),
            format!(
                "find it (sudo ss -ltnp 'sport = :{}') and stop it",
                addr.port()
            ),
        ),
    };
    Error::new(format!(
        "{addr}, where this member's etcd listens, is held by {who}; etcd cannot listen there while it is"
    ))
    .file(config)
    .fix(format!(
        "{stop}; or give this member other ports in the zone file; then launch again"
    ))
    .permanent()
}

fn pid_list(processes: &[Process]) -> String {
    let pids: Vec<String> = processes.iter().map(|p| format!("pid {}", p.pid)).collect();
    pids.join(", ")
}

fn kill_args(processes: &[Process]) -> String {
    let pids: Vec<String> = processes.iter().map(|p| p.pid.to_string()).collect();
    pids.join(" ")
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn an_address_a_listener_holds_does_not_bind() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let at = held.local_addr().unwrap();
        assert!(!bindable(at));
        drop(held);
        assert!(
            bindable(at),
            "the probe of a free address binds and lets go"
        );
        assert!(bindable(at), "and keeps nothing");
    }

    #[test]
    fn a_database_another_process_holds_is_seen_locked() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!database_locked(dir.path()), "no database, no lock");
        let snap = dir.path().join("member/snap");
        std::fs::create_dir_all(&snap).unwrap();
        std::fs::write(snap.join("db"), b"").unwrap();
        assert!(!database_locked(dir.path()));
        // flock belongs to an open file description: another one's lock is seen.
        let holder = std::fs::File::open(snap.join("db")).unwrap();
        let held = nix::fcntl::Flock::lock(holder, nix::fcntl::FlockArg::LockExclusiveNonblock)
            .map_err(|(_, e)| e)
            .unwrap();
        assert!(database_locked(dir.path()));
        drop(held);
        assert!(!database_locked(dir.path()), "the probe keeps no lock");
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn etcd(pid: u32, dir: &str) -> Process {
        Process {
            pid,
            name: "etcd".into(),
            data_dir: Some(PathBuf::from(dir)),
        }
    }

    fn other(pid: u32) -> Process {
        Process {
            pid,
            name: "nc".into(),
            data_dir: None,
        }
    }

    const DATA: &str = "/var/lib/zone/data";

    #[test]
    fn an_address_is_held_by_a_listener_on_it_or_on_every_address() {
        assert!(conflicts(addr("127.0.0.1:2379"), addr("127.0.0.1:2379")));
        assert!(conflicts(addr("127.0.0.1:2379"), addr("0.0.0.0:2379")));
        assert!(conflicts(addr("0.0.0.0:2379"), addr("0.0.0.0:2379")));
        assert!(!conflicts(addr("0.0.0.0:2379"), addr("10.0.0.1:2379")));
        assert!(conflicts(addr("[::1]:2379"), addr("[::]:2379")));
        assert!(!conflicts(addr("127.0.0.1:2379"), addr("127.0.0.2:2379")));
        assert!(!conflicts(addr("127.0.0.1:2379"), addr("127.0.0.1:2380")));
    }

    #[test]
    fn nothing_held_is_free() {
        let listening = [Listening {
            addr: addr("127.0.0.1:22"),
            holder: Some(other(7)),
        }];
        let d = decide(&[addr("127.0.0.1:2379")], &listening, Path::new(DATA), &[]);
        assert_eq!(d, Decision::Free);
    }

    #[test]
    fn the_previous_etcd_on_the_data_directory_is_waited_for() {
        let previous = etcd(41, DATA);
        // Still listening.
        let listening = [Listening {
            addr: addr("127.0.0.1:2380"),
            holder: Some(previous.clone()),
        }];
        let d = decide(
            &[addr("127.0.0.1:2379"), addr("127.0.0.1:2380")],
            &listening,
            Path::new(DATA),
            std::slice::from_ref(&previous),
        );
        assert_eq!(d, Decision::Wait(vec![previous.clone()]));
        // Its listeners closed, the process not gone yet.
        let d = decide(
            &[addr("127.0.0.1:2379")],
            &[],
            Path::new(DATA),
            std::slice::from_ref(&previous),
        );
        assert_eq!(d, Decision::Wait(vec![previous]));
    }

    #[test]
    fn any_other_holder_is_refused_even_while_waiting() {
        let previous = etcd(41, DATA);
        let listening = [
            Listening {
                addr: addr("127.0.0.1:2380"),
                holder: Some(previous.clone()),
            },
            Listening {
                addr: addr("0.0.0.0:2379"),
                holder: Some(other(99)),
            },
        ];
        let d = decide(
            &[addr("127.0.0.1:2379"), addr("127.0.0.1:2380")],
            &listening,
            Path::new(DATA),
            &[previous],
        );
        assert_eq!(
            d,
            Decision::Held {
                addr: addr("127.0.0.1:2379"),
                holder: Some(other(99))
            }
        );
        // Another member's etcd (another data directory) is another holder.
        let d = decide(
            &[addr("127.0.0.1:2379")],
            &[Listening {
                addr: addr("127.0.0.1:2379"),
                holder: Some(etcd(5, "/srv/other")),
            }],
            Path::new(DATA),
            &[],
        );
        assert!(matches!(d, Decision::Held { holder: Some(p), .. } if p.pid == 5));
        // A holder this user cannot see.
        let d = decide(
            &[addr("127.0.0.1:2379")],
            &[Listening {
                addr: addr("127.0.0.1:2379"),
                holder: None,
            }],
            Path::new(DATA),
            &[],
        );
        assert_eq!(
            d,
            Decision::Held {
                addr: addr("127.0.0.1:2379"),
                holder: None
            }
        );
    }
}
