//! Every etcd history porcupine publishes (Jepsen's etcd tests, a cas-register per log)
//! gives porcupine's known answer: linearizable or not. The logs are vendored in
//! tests/data/jepsen/ (see its README: source, version, license); etcd_095 is empty
//! upstream ("etcd cluster failed to start up") and has no answer.

use std::time::{Duration, Instant};
use zone_consistency::jepsen::parse_log;
use zone_consistency::models::CasRegister;
use zone_consistency::wgl::check;

/// (log number, linearizable), as porcupine's porcupine_test.go and porcupine-rs's
/// tests/etcd_jepsen.rs state them (the two lists agree).
const ANSWERS: &[(u32, bool)] = &[
    (0, false),
    (1, false),
    (2, true),
    (3, false),
    (4, false),
    (5, true),
    (6, false),
    (7, true),
    (8, false),
    (9, false),
    (10, false),
    (11, false),
    (12, false),
    (13, false),
    (14, false),
    (15, false),
    (16, false),
    (17, false),
    (18, true),
    (19, false),
    (20, false),
    (21, false),
    (22, false),
    (23, false),
    (24, false),
    (25, true),
    (26, false),
    (27, false),
    (28, false),
    (29, false),
    (30, false),
    (31, true),
    (32, false),
    (33, false),
    (34, false),
    (35, false),
    (36, false),
    (37, false),
    (38, true),
    (39, false),
    (40, false),
    (41, false),
    (42, false),
    (43, false),
    (44, false),
    (45, true),
    (46, false),
    (47, false),
    (48, true),
    (49, true),
    (50, false),
    (51, true),
    (52, false),
    (53, true),
    (54, false),
    (55, false),
    (56, true),
    (57, false),
    (58, false),
    (59, false),
    (60, false),
    (61, false),
    (62, false),
    (63, false),
    (64, false),
    (65, false),
    (66, false),
    (67, true),
    (68, false),
    (69, false),
    (70, false),
    (71, false),
    (72, false),
    (73, false),
    (74, false),
    (75, true),
    (76, true),
    (77, false),
    (78, false),
    (79, false),
    (80, true),
    (81, false),
    (82, false),
    (83, false),
    (84, false),
    (85, false),
    (86, false),
    (87, true),
    (88, false),
    (89, false),
    (90, false),
    (91, false),
    (92, true),
    (93, false),
    (94, false),
    (96, false),
    (97, false),
    (98, true),
    (99, false),
    (100, true),
    (101, true),
    (102, true),
];

#[test]
fn every_published_etcd_history_gives_the_known_answer() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/jepsen");
    let mut wrong = Vec::new();
    let mut times: Vec<(Duration, u32, usize)> = Vec::new();
    let all = Instant::now();
    for &(n, linearizable) in ANSWERS {
        let path = dir.join(format!("etcd_{n:03}.log"));
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let h = parse_log(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let start = Instant::now();
        let got = check(&CasRegister, &h.ops).is_ok();
        times.push((start.elapsed(), n, h.ops.len()));
        if got != linearizable {
            wrong.push(format!(
                "etcd_{n:03}: expected linearizable={linearizable}, got {got}"
            ));
        }
    }
    let total = all.elapsed();
    // Per-file search times (shown with --nocapture), slowest first.
    times.sort();
    for (t, n, ops) in times.iter().rev() {
        eprintln!("etcd_{n:03}: {ops} operations, {:.4} s", t.as_secs_f64());
    }
    eprintln!("all {} logs: {:.3} s", ANSWERS.len(), total.as_secs_f64());
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_eq!(ANSWERS.len(), 102);
    assert_eq!(ANSWERS.iter().filter(|a| a.1).count(), 23);
}
