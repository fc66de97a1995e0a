//! The writer: unique keys `bench/<n>`, one put per request over the members in turn,
//! each request recorded with the window it was part of.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::shape::{IDLE, PAUSE, VALUE_BYTES};
use crate::support::*;

#[derive(Clone, Copy)]
pub(super) struct Sample {
    pub(super) n: u64,
    pub(super) phase: u8,
    pub(super) round: u16,
    pub(super) started: Instant,
    /// `started` on the wall clock, ms since the epoch (to place it against the cuts).
    pub(super) wall_ms: f64,
    pub(super) acked: Option<Instant>,
    /// The revision etcd gave the put.
    pub(super) revision: i64,
}

/// The writer: unique keys `bench/<n>`, one put per request, until stopped.
pub(super) struct Load {
    pub(super) stop: Arc<AtomicBool>,
    pub(super) phase: Arc<AtomicU8>,
    pub(super) round: Arc<std::sync::atomic::AtomicU16>,
    pub(super) samples: Arc<Mutex<Vec<Sample>>>,
    pub(super) failures: Arc<Mutex<Vec<String>>>,
    pub(super) handle: Option<std::thread::JoinHandle<()>>,
}

pub(super) fn wall_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

pub(super) fn key(n: u64) -> String {
    format!("bench/{n:09}")
}

pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

impl Load {
    pub(super) fn start(zone: &Zone, client: &TlsClient) -> Load {
        let bases: Vec<String> = (0..zone.members.len())
            .map(|i| zone.client_url(i))
            .collect();
        let agents: Vec<ureq::Agent> = bases.iter().map(|_| client.agent()).collect();
        let mut load = Load {
            stop: Arc::new(AtomicBool::new(false)),
            phase: Arc::new(AtomicU8::new(IDLE)),
            round: Arc::new(std::sync::atomic::AtomicU16::new(0)),
            samples: Arc::new(Mutex::new(Vec::new())),
            failures: Arc::new(Mutex::new(Vec::new())),
            handle: None,
        };
        let (stop, phase, round, samples, failures) = (
            load.stop.clone(),
            load.phase.clone(),
            load.round.clone(),
            load.samples.clone(),
            load.failures.clone(),
        );
        let handle = std::thread::spawn(move || {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let i = n as usize % bases.len();
                // Random bytes: gzip cannot shrink them, the figures hold for real data.
                let value: Vec<u8> = (0..VALUE_BYTES / 8)
                    .flat_map(|_| rng.next().to_le_bytes())
                    .collect();
                let (ph, r) = (phase.load(Ordering::SeqCst), round.load(Ordering::SeqCst));
                let started = Instant::now();
                let wall_ms = wall_ms();
                let result = put(&agents[i], &bases[i], &key(n), &value);
                let acked = Instant::now();
                if let Err(e) = &result {
                    let mut f = failures.lock().unwrap_or_else(|e| e.into_inner());
                    f.push(format!("{}: {e}", bases[i]));
                }
                samples
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(Sample {
                        n,
                        phase: ph,
                        round: r,
                        started,
                        wall_ms,
                        acked: result.is_ok().then_some(acked),
                        revision: *result.as_ref().unwrap_or(&0),
                    });
                n += 1;
                std::thread::sleep(PAUSE);
            }
        });
        load.handle = Some(handle);
        load
    }

    pub(super) fn set(&self, phase: u8, round: usize) {
        self.round.store(round as u16, Ordering::SeqCst);
        self.phase.store(phase, Ordering::SeqCst);
    }

    pub(super) fn samples(&self) -> Vec<Sample> {
        self.samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(super) fn stop(&mut self) -> (Vec<Sample>, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        let failures = self
            .failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        (self.samples(), failures)
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
