//! `zone-consistency check FILE...`: checks recorded histories (format: the library's
//! header, and guide "Consistency histories (format)").
//!
//! Exit status: 0 when every file is clean (one summary line per file on stdout); 1 at the
//! first file with an anomaly, naming its first anomaly in one line on stderr; 2 when a
//! file cannot be read or is malformed (file and line on stderr), or on bad usage.

#![forbid(unsafe_code)]

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;
use zone_consistency::{check_file, FileError};

const USAGE: &str = "usage: zone-consistency check FILE...";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.split_first() {
        Some((cmd, files)) if cmd == "check" && !files.is_empty() => check(files),
        Some((cmd, _)) if cmd == "-h" || cmd == "--help" => {
            println!("{USAGE}\nExit 0: every file clean; 1: an anomaly (the first one, on stderr); 2: unreadable or malformed input.");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("zone-consistency: {USAGE}");
            ExitCode::from(2)
        }
    }
}

fn check(files: &[String]) -> ExitCode {
    for file in files {
        let start = Instant::now();
        match check_file(Path::new(file)) {
            Ok(report) => {
                let took = start.elapsed().as_secs_f64();
                if let Some(first) = report.anomalies.first() {
                    let more = report.anomalies.len() - 1;
                    let more = if more > 0 {
                        format!(" (and {more} more)")
                    } else {
                        String::new()
                    };
                    eprintln!("{file}: {first}{more}");
                    return ExitCode::from(1);
                }
                println!(
                    "{file}: clean: {} operations on {} keys, {} watch responses, checked in {took:.2} s",
                    report.ops, report.keys, report.watch_responses
                );
            }
            Err(e @ (FileError::Read(_) | FileError::Malformed(_))) => {
                eprintln!("{file}: {e}");
                return ExitCode::from(2);
            }
        }
    }
    ExitCode::SUCCESS
}
