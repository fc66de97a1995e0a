//! What a delta segment's encoding costs the active `backup run` at each cut (issue 37):
//! a segment of N revisions of the bench's writer (one put of a 256-byte random value
//! each, or of a small JSON document with `--text`), encoded by `segment::encode`, against
//! the same lines serialised straight into the gzip encoder (the encoder before this issue's
//! profile: serde_json's small writes each made flate2 zero its 32 KiB output buffer), in
//! alternating blocks in the same run; and the lines serialised alone, without gzip: the
//! part of a cut's encoding that could be done as the watch delivers each revision.
//!
//! usage: cargo run --release -p zone-etcd-bench --example segment_encode -- [N] [--text]

use std::io::Write;
use std::time::{Duration, Instant};

use zone_backup::segment::encode;

mod common;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: i64 = args.iter().find_map(|a| a.parse().ok()).unwrap_or(80);
    let text = args.iter().any(|a| a == "--text");
    let revisions = common::revisions(n, text);
    let last = 1000 + n - 1;
    let now = || encode("backup.zone", 1000, last, &revisions).len();
    let before = || {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        for r in &revisions {
            let _ = serde_json::to_writer(&mut gz, r);
            let _ = gz.write_all(b"\n");
        }
        gz.finish().map_or(0, |v| v.len())
    };
    let lines_only = || {
        let mut lines = Vec::new();
        for r in &revisions {
            let _ = serde_json::to_writer(&mut lines, r);
            lines.push(b'\n');
        }
        lines.len()
    };
    let (mut t_now, mut t_before, mut t_lines) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut size_lines = 0;
    let (mut size_now, mut size_before) = (0, 0);
    let per_block = 50;
    for _ in 0..10 {
        let t = Instant::now();
        for _ in 0..per_block {
            size_now = now();
        }
        t_now += t.elapsed();
        let t = Instant::now();
        for _ in 0..per_block {
            size_before = before();
        }
        t_before += t.elapsed();
        let t = Instant::now();
        for _ in 0..per_block {
            size_lines = lines_only();
        }
        t_lines += t.elapsed();
    }
    let each = |t: Duration| t.as_secs_f64() * 1000.0 / (10 * per_block) as f64;
    println!(
        "{n} revisions{}: segment::encode {:.3} ms ({size_now} bytes), straight into gzip {:.3} ms ({size_before} bytes): x{:.2}",
        if text { " (text)" } else { "" },
        each(t_now),
        each(t_before),
        each(t_now) / each(t_before)
    );
    println!(
        "  of which serialising the lines alone (no gzip): {:.3} ms ({size_lines} bytes), {:.0}% of segment::encode",
        each(t_lines),
        100.0 * each(t_lines) / each(t_now)
    );
}
