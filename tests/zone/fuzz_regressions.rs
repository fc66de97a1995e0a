//! Replays, without cargo-fuzz, every input the fuzz targets keep (fuzz/seeds/ and the
//! crash inputs committed to fuzz/regressions/), and every input file of the bad-input
//! corpus, through the same library entry points the fuzz targets call. Each must return,
//! not panic; every input that panics is reported by name.

use crate::common;

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use zone_node::fuzzing;
use zone_pki::CertInfo;

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(files_under(&path));
            } else if path.is_file() {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_kept_fuzz_input_and_corpus_file_is_handled_without_a_panic() {
    let repo = common::repo();
    let fuzz = repo.join("fuzz");
    let roots =
        vec![CertInfo::parse_pem(&fs::read_to_string(fuzz.join("root.crt")).unwrap()).unwrap()];
    type Target<'a> = (&'a str, Box<dyn Fn(&[u8]) + 'a>);
    let targets: Vec<Target> = vec![
        ("zone_file", Box::new(fuzzing::zone_file)),
        ("node_file", Box::new(fuzzing::node_file)),
        (
            "zone_document",
            Box::new(|data: &[u8]| fuzzing::zone_document(data, &roots)),
        ),
    ];
    // Each target's own inputs, then every corpus input through every target.
    let corpus_inputs: Vec<PathBuf> = files_under(&repo.join("tests/corpus"))
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n != "case.toml"))
        .collect();
    assert!(!corpus_inputs.is_empty());
    let mut replayed = 0;
    let mut panics = Vec::new();
    for (name, target) in &targets {
        let mut inputs = files_under(&fuzz.join("seeds").join(name));
        assert!(!inputs.is_empty(), "fuzz/seeds/{name} is empty");
        inputs.extend(files_under(&fuzz.join("regressions").join(name)));
        inputs.extend(corpus_inputs.iter().cloned());
        for input in inputs {
            let data = fs::read(&input).unwrap();
            replayed += 1;
            if catch_unwind(AssertUnwindSafe(|| target(&data))).is_err() {
                panics.push(format!("{name}: {}", input.display()));
            }
        }
    }
    eprintln!("replayed {replayed} inputs");
    assert!(
        panics.is_empty(),
        "these inputs panic:\n{}",
        panics.join("\n")
    );
}
