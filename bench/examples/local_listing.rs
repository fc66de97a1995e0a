//! What the local chain's listing costs as the chain grows (issue 37): makes a local chain
//! with N empty manifests (as `delta_every` = 5 s or 1 s leaves over a 7-day window) in a
//! directory on the disk under test, then times `LocalChain::manifests()`, which every
//! shipping thread called once a second.
//!
//! usage: cargo run --release -p zone-etcd-bench --example local_listing -- DIR N [N..]

use std::time::Instant;

use zone_etcd::backup::chain::{manifest_name, Kind};
use zone_etcd::backup::local::LocalChain;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        eprintln!("usage: local_listing DIR N [N..]");
        std::process::exit(2);
    };
    let mut made = 0u64;
    for n in args.filter_map(|a| a.parse::<u64>().ok()) {
        let state = std::path::Path::new(&dir);
        let local = match LocalChain::open(state) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        };
        while made < n {
            made += 1;
            let name = manifest_name(made, "abcd1234", Kind::Delta);
            if let Err(e) = std::fs::write(local.object_path(&name), b"") {
                eprintln!("{e}");
                std::process::exit(1);
            }
        }
        let mut times = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            let names = local.manifests().map(|v| v.len()).unwrap_or(0);
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(names as u64, n);
        }
        times.sort_by(f64::total_cmp);
        let names = local.manifests().unwrap_or_default();
        let t = Instant::now();
        let copy = names.clone();
        let clone_ms = t.elapsed().as_secs_f64() * 1000.0;
        drop(copy);
        println!(
            "{n} manifests: manifests() median {:.1} ms (min {:.1}, max {:.1}); a copy of the list {clone_ms:.1} ms",
            times[2], times[0], times[4]
        );
    }
}
