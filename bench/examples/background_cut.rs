//! What running a cut's CPU work at a lower priority (`backup::runner::background`, issue
//! 37) costs the cut when the machine's CPUs are busy: the same job (a 5 s cut's segment:
//! 400 revisions of the bench's writer, encoded and gzipped) run on the background worker
//! and on a thread at normal priority, alternating, first on a quiet machine, then beside
//! BUSY threads spinning at normal priority (default: one per CPU, a saturated machine; a
//! zone's etcd alone is not). The wall time of the job on each side, median and worst. A
//! cut on the background worker is late on a saturated machine, never lost: this says how
//! late.
//!
//! usage: cargo run --release -p zone-etcd-bench --example background_cut -- [ROUNDS] [--busy N]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use zone_backup::runner::background;
use zone_backup::segment::encode;

mod common;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rounds: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(20);
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    let busy: usize = args
        .iter()
        .position(|a| a == "--busy")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(cpus);
    let revisions = Arc::new(common::revisions(400, false));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    println!("background_cut: {rounds} rounds, a 400-revision segment; {cpus} CPUs");
    for spinners in [0, busy] {
        let stop = Arc::new(AtomicBool::new(false));
        let spinning: Vec<_> = (0..spinners)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                    }
                    x
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(200));
        let (mut on_background, mut on_normal) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            let job = revisions.clone();
            let started = Instant::now();
            runtime
                .block_on(background::run(move || {
                    encode("bench.zone", 1000, 1399, &job).len()
                }))
                .expect("the background worker runs the job");
            on_background.push(started.elapsed());
            let job = revisions.clone();
            let started = Instant::now();
            std::thread::spawn(move || encode("bench.zone", 1000, 1399, &job).len())
                .join()
                .expect("the normal thread runs the job");
            on_normal.push(started.elapsed());
            std::thread::sleep(Duration::from_millis(50));
        }
        stop.store(true, Ordering::Relaxed);
        for s in spinning {
            let _ = s.join();
        }
        println!(
            "beside {spinners} spinning threads: background worker {}, normal thread {}",
            summary(&mut on_background),
            summary(&mut on_normal)
        );
    }
}

fn summary(times: &mut [Duration]) -> String {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "median {:.1} ms, worst {:.1} ms",
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1])
    )
}
