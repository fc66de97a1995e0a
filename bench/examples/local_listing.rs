//! What the local chain's listing costs as the chain grows (issue 37): makes a local chain
//! with N empty manifests (as `delta_every` = 5 s or 1 s leaves over a 7-day window) in a
//! directory on the disk under test, then times a listing (`LocalChain::manifests()` of a chain
//! opened anew: what each shipping thread paid once a second before the names were kept in
//! memory) and the shipper's ask now (`manifests_after`).
//!
//! usage: cargo run --release -p zone-etcd-bench --example local_listing -- DIR N [N..]

use std::time::Instant;

use zone_backup::chain::{manifest_name, Kind};
use zone_backup::local::LocalChain;

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
        // A chain opened anew lists its directory at the first ask (what every ask cost
        // before the names were kept in memory); then the shipper's ask, the names after
        // the target's newest, from memory.
        let mut times = Vec::new();
        let mut after = Vec::new();
        for _ in 0..5 {
            let fresh = LocalChain::open(state).expect("open");
            let t = Instant::now();
            let names = fresh.manifests().map(|v| v.len()).unwrap_or(0);
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(names as u64, n);
            let t = Instant::now();
            let newest = fresh.manifests_after(n - 1).map(|v| v.len()).unwrap_or(0);
            after.push(t.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(newest, 1);
        }
        times.sort_by(f64::total_cmp);
        after.sort_by(f64::total_cmp);
        println!(
            "{n} manifests: a listing (manifests() of a chain opened anew) median {:.1} ms (min {:.1}, max {:.1}); manifests_after(newest - 1) from memory median {:.3} ms",
            times[2], times[0], times[4], after[2]
        );
    }
}
