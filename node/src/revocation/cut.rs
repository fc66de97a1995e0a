//! Cutting the connections a revoked node already holds.
//!
//! etcd checks its CRL file only when a connection is accepted, so a revoked node keeps
//! what it had open (a watch may stay open for days). TLS hides which certificate a
//! connection was opened with, so the member cuts every connection to its client port
//! that was open when the new CRL took effect: [`snapshot`] right after the file is
//! written, [`cut`] after this member's [`stagger`] delay. A connection accepted after
//! the snapshot passed the new CRL and is left alone; a client of the zone loses each
//! member's old connection once, one member at a time, and reconnects to a member that
//! serves (every etcd client does), while the revoked node's reconnection is refused. On
//! the peer port only connections from a revoked member's address are cut: the cluster
//! removes that member anyway, and the other members' raft streams stay up.
//!
//! The kernel does the cut (`ss -K`, sock_destroy: the socket is closed and the peer gets
//! a reset); it needs CAP_NET_ADMIN, which the launcher running as root has.

use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::time::Duration;

/// One established TCP connection: this side's address and the other side's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Conn {
    pub local: SocketAddr,
    pub peer: SocketAddr,
}

/// Parses `ss -Htn state established` lines: `Recv-Q Send-Q Local:Port Peer:Port ...`.
pub fn parse_ss(text: &str) -> Vec<Conn> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local = parse_addr(fields.get(2)?)?;
            let peer = parse_addr(fields.get(3)?)?;
            Some(Conn { local, peer })
        })
        .collect()
}

/// `127.0.0.1:2379`, `[::1]:2379`, and ss's `[::ffff:127.0.0.1]:2379` (an IPv4 peer of a
/// dual-stack socket, taken as IPv4).
fn parse_addr(text: &str) -> Option<SocketAddr> {
    let addr: SocketAddr = text.parse().ok().or_else(|| {
        let (host, port) = text.rsplit_once(':')?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let ip: IpAddr = host.split('%').next()?.parse().ok()?;
        Some(SocketAddr::new(ip, port.parse().ok()?))
    })?;
    Some(match addr.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), addr.port()),
            None => addr,
        },
        IpAddr::V4(_) => addr,
    })
}

/// How long member number `index` (of `members`) waits before it cuts: one member after
/// another, so a client always has members it has not lost a connection to, and the
/// last within the zone's 10 s promise.
pub fn stagger(index: usize, members: usize) -> Duration {
    let step_ms = (6_000 / members.max(1) as u64).min(1_500);
    Duration::from_millis(step_ms * index as u64)
}

/// The connections established now to this member's listener: `port` on one of the
/// addresses of its listen URLs (several members may share a machine and a port on
/// different addresses; a URL whose host is not an IP address, or is unspecified,
/// matches every address).
pub fn snapshot_of(urls: &[String], port: u16) -> Result<Vec<Conn>, String> {
    let mut ips = Vec::new();
    for url in urls {
        match zone_etcd_kit::cluster_api::host_port(url)
            .and_then(|(host, _)| host.parse::<IpAddr>().ok())
        {
            Some(ip) if !ip.is_unspecified() => ips.push(ip),
            _ => return snapshot(port),
        }
    }
    let mut conns = snapshot(port)?;
    conns.retain(|c| ips.contains(&c.local.ip()));
    Ok(conns)
}

/// The connections established now to `port` on this machine.
pub fn snapshot(port: u16) -> Result<Vec<Conn>, String> {
    let filter = format!("( sport = :{port} )");
    Ok(parse_ss(&ss(
        &["-Htn", "state", "established", &filter],
        "ss failed",
    )?))
}

/// Runs `ss ARGS`: its output, or an error starting with `failed` and ss's own words.
fn ss(args: &[&str], failed: &str) -> Result<String, String> {
    let out = Command::new("ss")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run ss: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{failed}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The local addresses of the TCP connections process `pid` opened or accepted: with
/// etcd's pid, where its HTTP gateway dials etcd's own gRPC (a connection [`snapshot`]
/// also lists from the server side, and that no revoked node holds).
pub fn owned_by(pid: u32) -> Result<Vec<SocketAddr>, String> {
    let text = ss(&["-Htnp", "state", "established"], "ss failed")?;
    let marker = format!("pid={pid},");
    Ok(text
        .lines()
        .filter(|line| line.contains(&marker))
        .flat_map(parse_ss)
        .map(|conn| conn.local)
        .collect())
}

/// Cuts each of `conns` still established (by its exact addresses). Returns how many the
/// kernel closed.
pub fn cut(conns: &[Conn]) -> Result<usize, String> {
    let mut closed = 0;
    for conn in conns {
        let filter = format!(
            "( src {} and sport = :{} and dst {} and dport = :{} )",
            filter_ip(conn.local.ip()),
            conn.local.port(),
            filter_ip(conn.peer.ip()),
            conn.peer.port()
        );
        let out = ss(
            &["-K", "-Htn", "state", "established", &filter],
            "ss -K failed (the kernel needs CONFIG_INET_DIAG_DESTROY, and ss CAP_NET_ADMIN)",
        )?;
        closed += parse_ss(&out).len();
    }
    Ok(closed)
}

fn filter_ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ss_lines_parse_for_both_families() {
        let text = "0      0      127.0.0.1:40535 127.0.0.1:53292\n\
                    0      0      [::1]:2379 [::1]:41000 users:((\"etcd\",pid=1,fd=9))\n\
                    0      0      [::ffff:198.18.0.1]:2379 [::ffff:198.18.0.2]:5000\n\
                    garbage\n";
        let conns = parse_ss(text);
        assert_eq!(conns.len(), 3);
        assert_eq!(conns[0].peer, "127.0.0.1:53292".parse().unwrap());
        assert_eq!(conns[1].local, "[::1]:2379".parse().unwrap());
        assert_eq!(conns[2].peer, "198.18.0.2:5000".parse().unwrap());
        assert!(parse_ss("").is_empty());
    }

    #[test]
    fn members_cut_one_after_another_within_the_promise() {
        assert_eq!(stagger(0, 3), Duration::ZERO);
        assert_eq!(stagger(2, 3), Duration::from_millis(3_000));
        // Seven members: the last starts within 6 s.
        assert!(stagger(6, 7) <= Duration::from_secs(6));
        assert!(stagger(1, 7) > Duration::ZERO);
    }

    #[test]
    fn connections_are_attributed_to_their_process() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_server, _) = listener.accept().unwrap();
        let mine = owned_by(std::process::id()).unwrap();
        assert!(mine.contains(&client.local_addr().unwrap()), "{mine:?}");
        assert!(!owned_by(1).unwrap().contains(&client.local_addr().unwrap()));
    }

    #[test]
    fn a_member_sees_only_its_own_address_on_a_shared_port() {
        let mine = std::net::TcpListener::bind("127.0.0.2:0").unwrap();
        let port = mine.local_addr().unwrap().port();
        let theirs = std::net::TcpListener::bind(("127.0.0.3", port)).unwrap();
        let _a = std::net::TcpStream::connect(("127.0.0.2", port)).unwrap();
        let _b = std::net::TcpStream::connect(("127.0.0.3", port)).unwrap();
        let (_sa, _) = mine.accept().unwrap();
        let (_sb, _) = theirs.accept().unwrap();
        let url = format!("https://127.0.0.2:{port}");
        let seen = snapshot_of(&[url], port).unwrap();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0].local, mine.local_addr().unwrap());
        // An unspecified or named host: every address of the port.
        let all = snapshot_of(&[format!("https://0.0.0.0:{port}")], port).unwrap();
        assert_eq!(all.len(), 2, "{all:?}");
    }

    #[test]
    fn a_real_connection_is_seen_and_cut() {
        use std::io::Read;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (_server, _) = listener.accept().unwrap();
        let seen = snapshot(port).unwrap();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(cut(&seen).unwrap(), 1);
        let mut buf = [0u8; 8];
        let read = client.read(&mut buf);
        assert!(
            matches!(&read, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
            "{read:?}"
        );
        assert!(snapshot(port).unwrap().is_empty());
    }
}
