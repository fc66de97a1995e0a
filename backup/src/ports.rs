//! Loopback ports for the scratch etcd of a drill, picked outside the kernel's ephemeral
//! range (`/proc/sys/net/ipv4/ip_local_port_range`).
//!
//! A port the kernel hands out (`bind` to port 0) is free when asked and given back at
//! once: before etcd binds it, any outgoing connection of any process on the machine may
//! take it as its source port (the kernel picks those from the same range), and etcd then
//! exits with "address already in use". A port below the range is never a source port;
//! only a process that asks for that very port can take it in between.
//!
//! Invariants: a port given is bindable on 127.0.0.1 when picked, differs from every port
//! already given to the same scratch member, and lies below the ephemeral range when the
//! range is known; the pick itself ([`pick`]) is pure.

use std::hash::{BuildHasher, Hasher};

/// The lowest port picked (under it: well-known and registered services' ports).
const LOWEST: u16 = 10_000;
/// How many candidates are tried before falling back to a kernel-given port.
const TRIES: u32 = 64;

/// The kernel's ephemeral port range, `None` when it cannot be read.
fn ephemeral_range() -> Option<(u16, u16)> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    parse_range(&text)
}

/// `ip_local_port_range`'s two numbers.
fn parse_range(text: &str) -> Option<(u16, u16)> {
    let mut numbers = text.split_whitespace().map(str::parse::<u16>);
    match (numbers.next(), numbers.next()) {
        (Some(Ok(low)), Some(Ok(high))) if low <= high => Some((low, high)),
        _ => None,
    }
}

/// The first of `tries` candidates below the ephemeral range that is not `taken` and
/// that `bindable` accepts, walking from `seed` (pure; `None` when none is, or when the
/// range leaves no room below it).
pub fn pick(
    range: (u16, u16),
    seed: u64,
    tries: u32,
    taken: &[u16],
    mut bindable: impl FnMut(u16) -> bool,
) -> Option<u16> {
    let (low, _) = range;
    if low <= LOWEST {
        return None;
    }
    let span = u64::from(low - LOWEST);
    // A stride prime to the span's usual sizes spreads the walk over the whole room.
    let stride = 7_919;
    (0..u64::from(tries))
        .map(|i| LOWEST + ((seed.wrapping_add(i.wrapping_mul(stride))) % span) as u16)
        .find(|port| !taken.contains(port) && bindable(*port))
}

fn random_seed() -> u64 {
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

/// A loopback port for the scratch member, not one of `taken`: below the ephemeral range
/// when it can be, else the kernel's pick (the old race, rather than no drill).
pub fn loopback_port(taken: &[u16]) -> Result<u16, String> {
    let bindable = |port: u16| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok();
    if let Some(port) =
        ephemeral_range().and_then(|range| pick(range, random_seed(), TRIES, taken, bindable))
    {
        return Ok(port);
    }
    for _ in 0..TRIES {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|e| format!("cannot find a free loopback port: {e}"))?;
        if !taken.contains(&port) {
            return Ok(port);
        }
    }
    Err("cannot find a free loopback port".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernels_range_is_read_and_a_bad_one_is_none() {
        assert_eq!(parse_range("32768\t60999\n"), Some((32768, 60999)));
        assert_eq!(parse_range("60999 32768"), None);
        assert_eq!(parse_range(""), None);
        assert_eq!(parse_range("many"), None);
    }

    #[test]
    fn ports_are_below_the_ephemeral_range_distinct_and_bindable() {
        let range = (32768, 60999);
        for seed in [0, 1, 12_345, u64::MAX] {
            let port = pick(range, seed, 64, &[], |_| true).unwrap();
            assert!((LOWEST..32768).contains(&port), "{port}");
        }
        // One given already, and one not bindable: the next candidate.
        let first = pick(range, 5, 64, &[], |_| true).unwrap();
        let second = pick(range, 5, 64, &[first], |_| true).unwrap();
        assert_ne!(first, second);
        let third = pick(range, 5, 64, &[], |p| p != first).unwrap();
        assert_eq!(third, second);
        // Nothing bindable, or no room below the range.
        assert_eq!(pick(range, 5, 64, &[], |_| false), None);
        assert_eq!(pick((LOWEST, 60999), 5, 64, &[], |_| true), None);
        assert_eq!(pick((1024, 60999), 5, 64, &[], |_| true), None);
    }

    #[test]
    fn a_real_pick_binds() {
        let first = loopback_port(&[]).unwrap();
        let second = loopback_port(&[first]).unwrap();
        assert_ne!(first, second);
        std::net::TcpListener::bind(("127.0.0.1", first)).unwrap();
    }
}
