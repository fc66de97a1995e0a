//! What `/proc` shows this user of the machine's processes: the listening TCP sockets
//! and the processes that hold them, and the data directory each process names, as etcd
//! would read it.
//!
//! Invariants: read-only (the database lock is probed, never kept); a process or file this
//! user cannot read is skipped (a socket
//! whose holder cannot be seen has none), never an error; a zombie is no process (it has
//! exited); the parsing of `/proc`'s text and of a command line is pure
//! ([`parse_listening`], [`data_dir_of`]).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// A process as `/proc` shows it (to this user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    /// Its command name (`/proc/<pid>/comm`).
    pub name: String,
    /// The data directory its command line or environment names, made absolute.
    pub data_dir: Option<PathBuf>,
}

/// A listening TCP socket and its process (`None`: not one this user can see).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listening {
    pub addr: SocketAddr,
    pub holder: Option<Process>,
}

/// The data directory a process's command line (`args`, without the program) or
/// environment names, as etcd reads them: `--data-dir=DIR`, `--data-dir DIR` (one or two
/// dashes), else `ETCD_DATA_DIR`. Relative to the process's `cwd`.
pub fn data_dir_of(args: &[&OsStr], env: &[&OsStr], cwd: &Path) -> Option<PathBuf> {
    let flag = |a: &OsStr| {
        let a = a.as_bytes();
        let a = a.strip_prefix(b"--").or_else(|| a.strip_prefix(b"-"))?;
        a.strip_prefix(b"data-dir").map(<[u8]>::to_vec)
    };
    let mut found: Option<Vec<u8>> = None;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match flag(arg).as_deref() {
            Some([]) => found = iter.next().map(|v| v.as_bytes().to_vec()),
            Some([b'=', value @ ..]) => found = Some(value.to_vec()),
            _ => {}
        }
    }
    let found = found.or_else(|| {
        env.iter()
            .find_map(|e| e.as_bytes().strip_prefix(b"ETCD_DATA_DIR="))
            .map(<[u8]>::to_vec)
    })?;
    if found.is_empty() {
        return None;
    }
    Some(cwd.join(Path::new(OsStr::from_bytes(&found))))
}

/// `path` made absolute, links resolved when it exists.
pub fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path)
        .or_else(|_| std::path::absolute(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

/// The listening TCP sockets (address and inode) of `/proc/net/tcp` and `tcp6`.
fn listening_sockets() -> Vec<(SocketAddr, u64)> {
    [("/proc/net/tcp", false), ("/proc/net/tcp6", true)]
        .into_iter()
        .filter_map(|(file, v6)| Some(parse_listening(&std::fs::read_to_string(file).ok()?, v6)))
        .flatten()
        .collect()
}

/// Whether a process holds the lock on etcd's database in `data_dir`
/// (`member/snap/db`): bbolt takes it (flock) when etcd opens the database and lets it
/// go when etcd has closed it, last thing before it exits. Probed by taking it, without
/// waiting, and letting it go at once; a database that is not there is not held.
pub fn database_locked(data_dir: &Path) -> bool {
    use nix::fcntl::{Flock, FlockArg};
    let Ok(file) = std::fs::File::open(data_dir.join("member").join("snap").join("db")) else {
        return false;
    };
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(held) => {
            drop(held);
            false
        }
        Err((_, errno)) => errno == nix::errno::Errno::EWOULDBLOCK,
    }
}

/// What listens now, and which other processes run on `data_dir`, as `/proc` shows them
/// to this user. Reads only.
pub fn look(data_dir: &Path) -> (Vec<Listening>, Vec<Process>) {
    let own = std::process::id();
    let mut sockets: HashMap<u64, Vec<SocketAddr>> = HashMap::new();
    for (addr, inode) in listening_sockets() {
        sockets.entry(inode).or_default().push(addr);
    }
    let mut holders: HashMap<u64, Process> = HashMap::new();
    let mut on_data_dir = Vec::new();
    for pid in pids() {
        let Some(process) = process(pid) else {
            continue;
        };
        if !sockets.is_empty() {
            for inode in socket_inodes(pid) {
                if sockets.contains_key(&inode) {
                    holders.insert(inode, process.clone());
                }
            }
        }
        if pid != own && process.data_dir.as_deref().map(absolute).as_deref() == Some(data_dir) {
            on_data_dir.push(Process {
                data_dir: Some(data_dir.to_path_buf()),
                ..process
            });
        }
    }
    let listening = sockets
        .into_iter()
        .flat_map(|(inode, addrs)| {
            let holder = holders.get(&inode).cloned();
            addrs.into_iter().map(move |addr| Listening {
                addr,
                holder: holder.clone(),
            })
        })
        .collect();
    (listening, on_data_dir)
}

/// The LISTEN sockets of `/proc/net/tcp` (or `tcp6`): address and inode.
pub fn parse_listening(text: &str, v6: bool) -> Vec<(SocketAddr, u64)> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.get(3) != Some(&"0A") {
                return None;
            }
            let (ip, port) = fields.get(1)?.split_once(':')?;
            let port = u16::from_str_radix(port, 16).ok()?;
            let ip = if v6 { parse_ipv6(ip)? } else { parse_ipv4(ip)? };
            let inode = fields.get(9)?.parse().ok()?;
            Some((SocketAddr::new(ip, port), inode))
        })
        .collect()
}

/// The kernel prints an IPv4 address as one 32-bit word in host (little-endian) order.
fn parse_ipv4(hex: &str) -> Option<IpAddr> {
    let word = u32::from_str_radix(hex, 16).ok()?;
    Some(IpAddr::V4(Ipv4Addr::from(word.to_le_bytes())))
}

/// And an IPv6 address as four such words.
fn parse_ipv6(hex: &str) -> Option<IpAddr> {
    if hex.len() != 32 {
        return None;
    }
    let mut bytes = [0u8; 16];
    for (i, chunk) in bytes.chunks_mut(4).enumerate() {
        let word = u32::from_str_radix(hex.get(i * 8..i * 8 + 8)?, 16).ok()?;
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    Some(IpAddr::V6(Ipv6Addr::from(bytes)))
}

fn pids() -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
}

/// A running process (a zombie has exited: none).
fn process(pid: u32) -> Option<Process> {
    if !crate::detached::running(pid) {
        return None;
    }
    let dir = PathBuf::from(format!("/proc/{pid}"));
    let name = std::fs::read_to_string(dir.join("comm")).ok()?;
    let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
    let environ = std::fs::read(dir.join("environ")).unwrap_or_default();
    let split = |bytes: &[u8]| -> Vec<Vec<u8>> {
        bytes
            .split(|b| *b == 0)
            .filter(|s| !s.is_empty())
            .map(<[u8]>::to_vec)
            .collect()
    };
    let args = split(&cmdline);
    let env = split(&environ);
    let args: Vec<&OsStr> = args.iter().skip(1).map(|a| OsStr::from_bytes(a)).collect();
    let env: Vec<&OsStr> = env.iter().map(|e| OsStr::from_bytes(e)).collect();
    let cwd = std::fs::read_link(dir.join("cwd")).unwrap_or_else(|_| PathBuf::from("/"));
    Some(Process {
        pid,
        name: name.trim().to_string(),
        data_dir: data_dir_of(&args, &env, &cwd),
    })
}

/// The inodes of the sockets process `pid` holds (none when this user cannot see).
fn socket_inodes(pid: u32) -> Vec<u64> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|fd| {
            let target = std::fs::read_link(fd.path()).ok()?;
            let target = target.to_str()?;
            target
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_data_directory_is_read_as_etcd_reads_it() {
        let os = |v: &[&'static str]| -> Vec<&'static OsStr> {
            v.iter().map(|s| OsStr::new(*s)).collect()
        };
        let cwd = Path::new("/home/z");
        assert_eq!(
            data_dir_of(&os(&["--name=n1", "--data-dir=/d/one"]), &[], cwd),
            Some(PathBuf::from("/d/one"))
        );
        assert_eq!(
            data_dir_of(&os(&["-data-dir", "rel/two"]), &[], cwd),
            Some(PathBuf::from("/home/z/rel/two"))
        );
        assert_eq!(
            data_dir_of(&[], &os(&["PATH=/bin", "ETCD_DATA_DIR=/d/three"]), cwd),
            Some(PathBuf::from("/d/three"))
        );
        // The flag wins over the environment, as in etcd.
        assert_eq!(
            data_dir_of(
                &os(&["--data-dir", "/d/flag"]),
                &os(&["ETCD_DATA_DIR=/d/env"]),
                cwd
            ),
            Some(PathBuf::from("/d/flag"))
        );
        assert_eq!(data_dir_of(&os(&["--data-dirx=/d"]), &[], cwd), None);
        assert_eq!(data_dir_of(&os(&["--name", "n1"]), &[], cwd), None);
    }

    #[test]
    fn proc_net_tcp_lines_give_listeners_and_their_inodes() {
        let v4 = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:0953 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0000000000000000 100 0 0 10 0\n   1: 0100007F:0953 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 4243 1 0000000000000000 100 0 0 10 0\n";
        assert_eq!(parse_listening(v4, false), [(addr("127.0.0.1:2387"), 4242)]);
        let v6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 00000000000000000000000001000000:0953 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 77 1 0000000000000000 100 0 0 10 0\n";
        assert_eq!(parse_listening(v6, true), [(addr("[::1]:2387"), 77)]);
    }

    #[test]
    fn a_listener_is_seen_with_its_holder() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let bound = listener.local_addr().unwrap();
        let (listening, on_data_dir) = look(Path::new("/nonexistent/data"));
        let l = listening.iter().find(|l| l.addr == bound).unwrap();
        assert_eq!(l.holder.as_ref().map(|p| p.pid), Some(std::process::id()));
        assert!(on_data_dir.is_empty());
    }
}
