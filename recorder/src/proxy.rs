//! Latency and loss on the peer path, in user space (this kernel has no `tc netem`), as
//! etcd's own robustness suite does it: every peer connection a member opens goes through
//! a relay on its own machine that can hold each chunk of bytes back.
//!
//! How traffic gets there: in member `a`'s namespace, an iptables `nat OUTPUT` rule sends
//! every new TCP connection to member `b`'s peer port to the relay for `b`, listening on
//! `a`'s address at port [`RELAY_BASE`]` + b`; the relay connects on to `b`'s peer port
//! from `a`'s address with socket mark [`MARK`], which the rule lets pass, so `b` sees `a`
//! as the source (etcd's peer certificate checks hold) and nothing loops.
//!
//! What a fault sets ([`Delay`]): each chunk read is written on after `base` plus up to
//! `jitter`, never before the chunk before it (TCP's order); and one chunk in
//! `stall_one_in` waits `stall` more, as a lost segment waits for its retransmission
//! (TCP hides loss from both ends as delay, so that is what loss looks like to etcd).
//!
//! Invariants: the relays are installed before the members start (peer connections made
//! earlier would bypass them); every relay thread stops within [`POLL`] once the
//! [`Relays`] is dropped; counts of relayed chunks per directed pair prove the path
//! ([`Relays::relayed`]).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sched::CloneFlags;
use nix::sys::socket::{self, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn};

use crate::net::Net;
use crate::rng::Rng;

/// The relay for member `b` listens on port `RELAY_BASE + b`.
pub const RELAY_BASE: u16 = 2480;
/// The socket mark of a relay's own connections, which the redirect rule lets pass.
pub const MARK: u32 = 0x2e7c;
/// How often idle relay threads look whether they should stop.
pub const POLL: Duration = Duration::from_millis(100);

/// What the relays do to the bytes they carry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delay {
    pub base: Duration,
    pub jitter: Duration,
    /// One chunk in this many waits `stall` more (0: never).
    pub stall_one_in: u64,
    pub stall: Duration,
}

struct Shared {
    delay: Mutex<Delay>,
    stop: AtomicBool,
    /// Chunks relayed, per (from member, to member).
    relayed: Mutex<BTreeMap<(usize, usize), Arc<AtomicU64>>>,
    /// Chunks held back by a delay (not zero), per (from member, to member).
    delayed: Mutex<BTreeMap<(usize, usize), Arc<AtomicU64>>>,
}

/// The relays of every member, running until dropped.
pub struct Relays {
    shared: Arc<Shared>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Relays {
    /// Starts a relay on each member's machine for each other member, and the redirect
    /// rules that send the members' peer connections through them.
    pub fn install(net: &Net, count: usize, peer_port: u16) -> Result<Relays, String> {
        let shared = Arc::new(Shared {
            delay: Mutex::new(Delay::default()),
            stop: AtomicBool::new(false),
            relayed: Mutex::new(BTreeMap::new()),
            delayed: Mutex::new(BTreeMap::new()),
        });
        let mut relays = Relays {
            shared,
            threads: Vec::new(),
        };
        for a in 0..count {
            for b in (0..count).filter(|&b| b != a) {
                let port = RELAY_BASE + b as u16;
                let listen: SocketAddr = format!("{}:{port}", net.address(a))
                    .parse()
                    .map_err(|e| format!("{e}"))?;
                let target: SocketAddrV4 = format!("{}:{peer_port}", net.address(b))
                    .parse()
                    .map_err(|e| format!("{e}"))?;
                let ns = net.namespace_file(a)?;
                let shared = relays.shared.clone();
                let (ready_tx, ready_rx) = mpsc::channel();
                relays.threads.push(std::thread::spawn(move || {
                    // Everything this thread starts is on member a's machine.
                    let listener = nix::sched::setns(&ns, CloneFlags::CLONE_NEWNET)
                        .map_err(|e| format!("entering member {a}'s machine: {e}"))
                        .and_then(|_| {
                            TcpListener::bind(listen).map_err(|e| format!("{listen}: {e}"))
                        });
                    let listener = match listener {
                        Ok(l) => {
                            let _ = ready_tx.send(Ok(()));
                            l
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    accept_loop(listener, target, (a, b), shared);
                }));
                ready_rx
                    .recv()
                    .map_err(|_| "a relay thread ended before it listened".to_string())??;
                net.redirect(a, &net.address(b), peer_port, port, MARK)?;
            }
        }
        Ok(relays)
    }

    /// What the relays do from now on.
    pub fn set(&self, delay: Delay) {
        if let Ok(mut d) = self.shared.delay.lock() {
            *d = delay;
        }
    }

    /// Chunks relayed so far, per (from member, to member).
    pub fn relayed(&self) -> BTreeMap<(usize, usize), u64> {
        counts(&self.shared.relayed)
    }

    /// Chunks held back by a delay so far, per (from member, to member).
    pub fn delayed(&self) -> BTreeMap<(usize, usize), u64> {
        counts(&self.shared.delayed)
    }
}

fn counts(m: &Mutex<BTreeMap<(usize, usize), Arc<AtomicU64>>>) -> BTreeMap<(usize, usize), u64> {
    m.lock()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (*k, v.load(Ordering::Relaxed)))
                .collect()
        })
        .unwrap_or_default()
}

fn counter(
    m: &Mutex<BTreeMap<(usize, usize), Arc<AtomicU64>>>,
    pair: (usize, usize),
) -> Arc<AtomicU64> {
    m.lock()
        .map(|mut m| m.entry(pair).or_default().clone())
        .unwrap_or_default()
}

impl Drop for Relays {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn accept_loop(
    listener: TcpListener,
    target: SocketAddrV4,
    pair: (usize, usize),
    shared: Arc<Shared>,
) {
    if listener.set_nonblocking(true).is_err() {
        return;
    }
    let mut conns = Vec::new();
    let mut seed = Rng::seed_from_time() ^ ((pair.0 as u64) << 8 | pair.1 as u64);
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((inbound, _)) => {
                let Ok(outbound) = connect_marked(target) else {
                    continue;
                };
                seed = seed.wrapping_add(1);
                // a -> b, and b's answers back to a: both held back alike.
                for (from, to, dir) in [
                    (inbound.try_clone(), outbound.try_clone(), pair),
                    (outbound.try_clone(), inbound.try_clone(), (pair.1, pair.0)),
                ] {
                    let (Ok(from), Ok(to)) = (from, to) else {
                        continue;
                    };
                    conns.extend(pump(from, to, dir, seed ^ dir.0 as u64, shared.clone()));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(POLL / 4),
            Err(_) => std::thread::sleep(POLL / 4),
        }
        conns.retain(|t: &std::thread::JoinHandle<()>| !t.is_finished());
    }
    for t in conns {
        let _ = t.join();
    }
}

/// A connection to `target` carrying [`MARK`] (the redirect rule lets it pass).
fn connect_marked(target: SocketAddrV4) -> Result<TcpStream, String> {
    let fd: OwnedFd = socket::socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| format!("socket: {e}"))?;
    socket::setsockopt(&fd, sockopt::Mark, &MARK).map_err(|e| format!("SO_MARK: {e}"))?;
    socket::connect(fd.as_raw_fd(), &SockaddrIn::from(target))
        .map_err(|e| format!("connecting to {target}: {e}"))?;
    Ok(TcpStream::from(fd))
}

/// Copies `from` to `to`, each chunk held back as the shared [`Delay`] says: a reader
/// thread stamps each chunk with when it may go, a writer thread sends it then.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    dir: (usize, usize),
    seed: u64,
    shared: Arc<Shared>,
) -> Vec<std::thread::JoinHandle<()>> {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    let relayed = counter(&shared.relayed, dir);
    let delayed = counter(&shared.delayed, dir);
    let reader_shared = shared.clone();
    let reader = std::thread::spawn(move || {
        let _ = from.set_read_timeout(Some(POLL));
        let mut rng = Rng::new(seed);
        let mut last = Instant::now();
        let mut buf = vec![0u8; 64 * 1024];
        while !reader_shared.stop.load(Ordering::SeqCst) {
            match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let d = reader_shared.delay.lock().map(|d| *d).unwrap_or_default();
                    let mut hold = d.base;
                    if !d.jitter.is_zero() {
                        hold += Duration::from_micros(rng.below(d.jitter.as_micros() as u64 + 1));
                    }
                    if d.stall_one_in > 0 && rng.below(d.stall_one_in) == 0 {
                        hold += d.stall;
                    }
                    if !hold.is_zero() {
                        delayed.fetch_add(1, Ordering::Relaxed);
                    }
                    relayed.fetch_add(1, Ordering::Relaxed);
                    last = (Instant::now() + hold).max(last);
                    if tx.send((last, buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break,
            }
        }
        let _ = from.shutdown(std::net::Shutdown::Read);
    });
    let writer = std::thread::spawn(move || {
        while let Ok((due, bytes)) = rx.recv() {
            if shared.stop.load(Ordering::SeqCst) {
                break;
            }
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            if to.write_all(&bytes).is_err() {
                break;
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Write);
    });
    vec![reader, writer]
}
