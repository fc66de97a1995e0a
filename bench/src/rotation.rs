//! Rotation under load: a real 3-member zone, writers putting keys each over a new TLS
//! connection (so every request makes etcd load its certificate again), while every
//! member is rotated `runs` times, on a quiet disk and again beside a 4 GiB writer.
//! Figures: the time of one `zone-etcd rotate` in each, and the requests that failed.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

use crate::support::*;
use zone_testkit::addresses;

/// What the writers saw.
#[derive(Default)]
struct Load {
    ok: usize,
    failed: Vec<String>,
}

pub fn run(dir: &Path, runs: usize) -> Result<Value> {
    let zone = Zone::bootstrap(
        &dir.join("rotation"),
        "rotate.zone",
        addresses::BENCH_ROTATION.subnet(),
        3,
    )?;
    let mut members: Vec<Process> = (0..3).map(|i| zone.launch(i)).collect::<Result<_>>()?;
    // launch issues the leaves before it execs etcd; wait for the client's set.
    let current = zone.node_dir(0).join("state/tls/current/client.key");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !current.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let client = Arc::new(zone.client(0)?);
    zone.wait_healthy(&client, Instant::now())?;

    let stop = Arc::new(AtomicBool::new(false));
    let load = Arc::new(Mutex::new(Load::default()));
    let writers: Vec<_> = (0..3)
        .map(|i| {
            let (stop, load, client) = (stop.clone(), load.clone(), client.clone());
            let url = format!("{}/v3/kv/put", zone.client_url(i));
            std::thread::spawn(move || {
                let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    let body = format!(
                        "{{\"key\":\"{}\",\"value\":\"{}\"}}",
                        b64(&format!("load/{i}/{n}")),
                        b64("v")
                    );
                    let result = client.post(&url, &body);
                    let mut load = load.lock().unwrap_or_else(|e| e.into_inner());
                    match result {
                        Ok(_) => load.ok += 1,
                        Err(e) => load.failed.push(e),
                    }
                    n += 1;
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        })
        .collect();

    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let rotate_all = || -> Result<Vec<f64>> {
        let mut rotations = Vec::new();
        for _ in 0..runs {
            for i in 0..3 {
                let config = zone.config(i);
                rotations.push(ms(timed(zone_etcd(&[
                    "rotate",
                    "--config",
                    &config.to_string_lossy(),
                ])?)?));
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        Ok(rotations)
    };
    // The same rotations twice: on a quiet disk, then while another process writes 4 GiB
    // rounds to the same file system (a rotation's durable writes must not pay for it).
    let rotations = rotate_all()?;
    let writer = crate::writer::Writer::start(dir)?;
    let busy = rotate_all()?;
    let rounds = writer.stop();
    std::thread::sleep(Duration::from_millis(500));
    let seconds = started.elapsed().as_secs_f64() + 1.0;
    stop.store(true, Ordering::SeqCst);
    for writer in writers {
        let _ = writer.join();
    }
    if !members.iter_mut().all(Process::is_running) {
        return Err("a member exited during the rotations".into());
    }
    let load = load.lock().unwrap_or_else(|e| e.into_inner());
    let total = load.ok + load.failed.len();
    eprintln!(
        "  rotation: {:.1} ms per member quiet, {:.1} ms beside a 4 GiB writer ({} rotations each, writer rounds {rounds}), {} of {total} requests failed ({:.0} new TLS connections/s)",
        median(&rotations),
        median(&busy),
        rotations.len(),
        load.failed.len(),
        total as f64 / seconds
    );
    Ok(json!({
        "rotate_ms": summary(&rotations),
        "rotate_busy_ms": summary(&busy),
        "busy_over_quiet": round(median(&busy) / median(&rotations)),
        "requests": total,
        "failed": load.failed.len(),
        "failures": load.failed.iter().take(5).collect::<Vec<_>>(),
        "connections_per_second": round(total as f64 / seconds),
    }))
}
