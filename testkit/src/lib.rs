//! zone-testkit: the harness zone-etcd's integration tests (`tests/zone/`), its history
//! recorder (`recorder/`) and its benchmark program (`bench/`) share, so all run real
//! zones and servers the same way: [`zone`], a local zone made and launched with the real
//! zone-etcd binary; [`process`], a child held by its PID with its log; [`netns`],
//! machines as network namespaces on a switch; [`seaweed`], SeaweedFS as the S3 store of
//! backups; [`slowfs`], a slow disk (zone-slowfs: a FUSE mount whose syncs wait);
//! [`addresses`], the one registry of the address blocks they use.
//!
//! Layer: a tool, above the app (it builds the app's S3 targets). Only tests and tools
//! depend on it; the product's crates never do (`tests/module_circles/layers.rs`).
//!
//! Every fixture fails with one line (`Err(String)`: what is missing and how to get it),
//! never a panic: a test unwraps it (the test fails, never passes), the recorder and the
//! benchmark say it and stop. Every process a fixture starts is killed by its PID when it
//! is dropped, never by name.

pub mod addresses;
pub mod netns;
pub mod process;
pub mod seaweed;
pub mod slowfs;
pub mod zone;

pub use process::Process;
pub use zone::{Kind, Tools, Zone};

/// The pause before the next look of a wait that has lasted `waited`: 200 ms, then a
/// quarter of the time waited so far, at most a second. A wait then sees its condition at
/// most a quarter (and a second) late, and does not spend the machine's CPU on its looks:
/// most are a process (a debug build's `zone-etcd status` costs about 0.1 CPU-second, and
/// each member about 2 ms per TLS handshake, for it reads its certificate, key and CRL
/// files again at each).
pub fn next_look(waited: std::time::Duration) -> std::time::Duration {
    use std::time::Duration;
    (waited / 4).clamp(Duration::from_millis(200), Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn a_wait_looks_every_200_ms_then_at_a_quarter_of_its_length_then_every_second() {
        let ms = |n| Duration::from_millis(n);
        assert_eq!(super::next_look(ms(0)), ms(200));
        assert_eq!(super::next_look(ms(800)), ms(200));
        assert_eq!(super::next_look(ms(2000)), ms(500));
        assert_eq!(super::next_look(ms(4000)), ms(1000));
        assert_eq!(super::next_look(ms(600_000)), ms(1000));
    }
}
